"""The four answers, as rules over the tiny apparel shop (tests/recsvc/bundles.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from recsvc.answers import (BadRequest, BundleQuery, ComplementsQuery, Context, ItemFilter, Reason, RecommendQuery,
                            SubstitutesQuery, UnknownItem, bundle, complements, recommend, substitutes)
from recsvc.config import Config
from recsvc.model import load_model
from recsvc.operations import update_prices, update_stock
from recsvc.promotions import Promotion, PromotionBook
from recsvc.runtime import make_live
from recsvc.store import open_store
from tests.recsvc.bundles import write_apparel

NOW = datetime(2025, 11, 11, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def shop(tmp_path):
    """make(**config) -> a Live over the apparel bundle with a fresh SQLite state."""
    write_apparel(tmp_path / "model")
    model = load_model(tmp_path / "model")
    stores = []

    def make(**cfg):
        store = open_store(f"sqlite:///{tmp_path / f'state{len(stores)}.db'}")
        stores.append(store)
        return make_live(model, store, PromotionBook(store), Config(model_dir=str(tmp_path / "model"), **cfg))

    yield make
    for s in stores:
        s.close()


def ids(answer) -> list[str]:
    return [i.item_id for i in answer.items]


# --- complements ------------------------------------------------------------------------

def test_complements_follow_co_purchase_and_explain_it(shop):
    a = complements(shop(), ComplementsQuery(("JKT-1-M",), limit=3))
    assert ids(a) == ["JEANS-1", "TEE-1", "BELT-1"]
    assert [i.reason for i in a.items] == [Reason.CO_PURCHASE] * 3
    assert a.items[0].explanation == "bought together in 312 orders"
    assert a.items[0].title == "Slim jeans" and a.items[0].category == "jeans" and a.items[0].price == 60.0
    assert a.model_version


def test_complements_never_hold_the_anchor_nor_its_category(shop):
    a = complements(shop(), ComplementsQuery(("JKT-1",), limit=20))
    assert "JKT-1" not in ids(a)
    assert all(i.category != "jackets" for i in a.items)  # JKT-3 is bought with it, but is a jacket


def test_same_category_complements_can_be_allowed_per_category(shop):
    a = complements(shop(complements_same_category=["jackets"]), ComplementsQuery(("JKT-1",), limit=4))
    assert ids(a) == ["JEANS-1", "TEE-1", "JKT-3", "BELT-1"]


def test_out_of_stock_complements_are_dropped_unless_asked(shop):
    live = shop()
    update_stock(live, [("JEANS-1", 0)])  # every variant of the product
    assert "JEANS-1" not in ids(complements(live, ComplementsQuery(("JKT-1",), limit=3)))
    a = complements(live, ComplementsQuery(("JKT-1",), limit=3, filter=ItemFilter(include_out_of_stock=True)))
    assert ids(a)[0] == "JEANS-1" and a.items[0].in_stock is False


def test_one_size_left_keeps_a_product_in_stock(shop):
    live = shop()
    update_stock(live, [("JEANS-1-30", 0), ("JEANS-1-32", 0)])
    assert ids(complements(live, ComplementsQuery(("JKT-1",), limit=1))) == ["JEANS-1"]


def test_cart_shown_and_excluded_items_are_not_recommended_again(shop):
    q = ComplementsQuery(("JKT-1",), limit=3, context=Context(cart_item_ids=("JEANS-1-32",), shown_item_ids=("TEE-1",)),
                         filter=ItemFilter(exclude_item_ids=("BELT-1",)))
    got = ids(complements(shop(), q))
    assert not {"JEANS-1", "TEE-1", "BELT-1"} & set(got) and len(got) == 3


def test_several_anchors_combine_their_rows(shop):
    a = complements(shop(), ComplementsQuery(("JKT-1", "JKT-2"), limit=5))
    assert ids(a) == ["JEANS-1", "JEANS-2", "TEE-1", "TEE-2", "BELT-1"]
    assert a.items[1].explanation == "bought together with Wool jacket in 80 orders"


def test_a_product_without_history_gets_category_complements(shop):
    a = complements(shop(), ComplementsQuery(("JKT-NEW-M",), limit=4))
    assert [i.reason for i in a.items] == [Reason.CATEGORY_FALLBACK] * 4
    # one per category in turn (jeans, shirts, belts), each category's most popular first
    assert ids(a) == ["JEANS-1", "TEE-1", "BELT-1", "JEANS-2"]
    assert a.items[0].explanation == "popular in jeans, which goes well with jackets"
    scores = [i.score for i in a.items]
    assert scores == sorted(scores, reverse=True)


def test_short_co_purchase_rows_are_filled_below_them(shop):
    a = complements(shop(), ComplementsQuery(("JKT-1",), limit=5))
    assert [i.reason for i in a.items] == [Reason.CO_PURCHASE] * 3 + [Reason.CATEGORY_FALLBACK] * 2
    assert len(set(ids(a))) == 5


def test_filters_by_category_price_and_size(shop):
    live = shop()
    assert ids(complements(live, ComplementsQuery(("JKT-1",), filter=ItemFilter(categories=("shirts",))))) == ["TEE-1", "TEE-2"]
    assert ids(complements(live, ComplementsQuery(("JKT-1",), limit=3, filter=ItemFilter(max_price=25)))) == ["TEE-1", "TEE-2"]
    a = complements(live, ComplementsQuery(("JKT-1",), limit=2, filter=ItemFilter(attributes={"size": "34"})))
    assert ids(a) == ["JEANS-1", "JEANS-2"] and a.items[0].variant_id == "JEANS-1-34"


# --- substitutes ------------------------------------------------------------------------

def test_substitutes_in_the_sold_out_size(shop):
    live = shop()
    update_stock(live, [("JKT-1-XL", 0)])
    a = substitutes(live, SubstitutesQuery("JKT-1-XL", filter=ItemFilter(attributes={"size": "XL"})))
    # JKT-3 is too dear (300 vs 100 +/-30 %), JKT-4 has no XL
    assert ids(a) == ["JKT-2", "JKT-NEW"]
    assert [i.variant_id for i in a.items] == ["JKT-2-XL", "JKT-NEW-XL"]
    assert a.items[0].reason == Reason.SIMILAR
    assert a.items[0].explanation == "similar style, your size XL is in stock, 10% dearer"


def test_substitutes_skip_products_whose_asked_size_is_sold_out(shop):
    live = shop()
    update_stock(live, [("JKT-2-XL", 0)])
    q = SubstitutesQuery("JKT-1", filter=ItemFilter(attributes={"size": "XL"}))
    assert ids(substitutes(live, q)) == ["JKT-NEW"]


def test_a_frequent_complement_is_never_a_substitute(shop):
    # JKT-4 is JKT-2's first substitute but bought with it in 5 orders
    assert ids(substitutes(shop(), SubstitutesQuery("JKT-2"))) == ["JKT-1", "JKT-NEW"]
    assert ids(substitutes(shop(substitutes_min_complement_support=6), SubstitutesQuery("JKT-2")))[0] == "JKT-4"


def test_price_band_is_configurable(shop):
    # JKT-3 (300) is far outside 110 +/-30 %; JKT-1 (100) and JKT-NEW (120) are inside
    assert ids(substitutes(shop(), SubstitutesQuery("JKT-2"))) == ["JKT-1", "JKT-NEW"]
    assert ids(substitutes(shop(substitutes_price_band=0), SubstitutesQuery("JKT-2"))) == ["JKT-1", "JKT-3", "JKT-NEW"]
    assert ids(substitutes(shop(substitutes_price_band=0.05), SubstitutesQuery("JKT-2"))) == []


def test_substitutes_stay_in_category_or_mapped_ones(shop):
    live = shop(substitutes_category_map={"jeans": ["jackets"]}, substitutes_price_band=0)
    got = ids(substitutes(live, SubstitutesQuery("JEANS-1", limit=20)))
    assert got[:2] == ["JEANS-2", "JEANS-3"]  # the similar ones first, then popular fills
    assert {i.split("-")[0] for i in got} <= {"JEANS", "JKT"}


def test_substitutes_fill_with_popular_in_category(shop):
    a = substitutes(shop(substitutes_price_band=0), SubstitutesQuery("TEE-2", limit=3))
    assert ids(a) == ["TEE-1"] and a.items[0].reason == Reason.POPULAR  # TEE-2 has no substitutes row


# --- bundles ----------------------------------------------------------------------------

def promo(name="Jacket+jeans", **kw) -> Promotion:
    base = dict(id="", name=name, item_ids=[], categories=["jeans"], kind="amount", value=20.0, cap=None,
                starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=1), priority=0)
    base.update(kw)
    return Promotion(**base)


def test_bundle_without_promotion_is_at_list_price_and_says_so(shop):
    b = bundle(shop(), BundleQuery("JKT-1-M"), NOW)
    assert b.anchor.item_id == "JKT-1" and b.anchor.variant_id == "JKT-1-M"
    assert [i.item_id for i in b.items] == ["JEANS-1"]
    assert (b.list_price, b.bundle_price, b.saving, b.promotion, b.valid_until) == (160.0, 160.0, 0.0, None, None)
    assert "no promotion" in b.explanation


def test_bundle_uses_the_promotion_active_at_request_time(shop):
    live = shop()
    live.promotions.create(promo())
    b = bundle(live, BundleQuery("JKT-1-M"), NOW)
    assert (b.list_price, b.bundle_price, b.saving) == (160.0, 140.0, 20.0)
    assert b.promotion.name == "Jacket+jeans" and b.valid_until == NOW + timedelta(hours=1)
    assert b.explanation.startswith("buy both and save 20.00 with Jacket+jeans")
    assert bundle(live, BundleQuery("JKT-1-M"), NOW + timedelta(hours=2)).saving == 0.0  # expired
    assert bundle(live, BundleQuery("JKT-1-M"), NOW - timedelta(hours=2)).saving == 0.0  # not started


def test_bundle_saving_never_exceeds_the_cap(shop):
    live = shop()
    live.promotions.create(promo(kind="percent", value=50, cap=15.0))
    assert bundle(live, BundleQuery("JKT-1-M"), NOW).saving == 15.0


def test_bundle_prefers_a_complement_the_promotion_covers(shop):
    live = shop()
    live.promotions.create(promo(categories=["shirts"]))
    b = bundle(live, BundleQuery("JKT-1"), NOW)
    assert [i.item_id for i in b.items] == ["TEE-1"] and b.saving == 20.0


def test_bundle_items_are_in_stock_and_of_distinct_categories(shop):
    live = shop()
    update_stock(live, [("JEANS-1", 0)])
    b = bundle(live, BundleQuery("JKT-1", max_items=3, filter=ItemFilter(include_out_of_stock=True)), NOW)
    assert [i.item_id for i in b.items] == ["TEE-1", "BELT-1", "JEANS-2"]
    assert all(i.in_stock for i in b.items)


def test_bundle_uses_current_prices(shop):
    live = shop()
    update_prices(live, [("JEANS-1", 50.0)])
    assert bundle(live, BundleQuery("JKT-1-M"), NOW).list_price == 150.0


def test_bundle_max_items_is_bounded(shop):
    with pytest.raises(BadRequest, match="max_items"):
        bundle(shop(), BundleQuery("JKT-1", max_items=6), NOW)


# --- recommend --------------------------------------------------------------------------

def test_known_customer_gets_personal_items_without_what_they_bought(shop):
    a = recommend(shop(), RecommendQuery(limit=3, context=Context(user_id="alice")))
    assert ids(a) == ["TEE-1", "TEE-2", "JKT-2"]  # shirts axis first; socks bought, jackets/jeans next
    assert a.items[0].reason == Reason.PERSONAL


def test_repeat_purchase_categories_stay_recommendable(shop):
    a = recommend(shop(recommend_repeat_categories=["socks"]), RecommendQuery(limit=3, context=Context(user_id="alice")))
    assert ids(a) == ["TEE-1", "TEE-2", "SOCK-1"]


def test_unknown_customer_gets_popular_in_asked_categories(shop):
    a = recommend(shop(), RecommendQuery(limit=2, context=Context(user_id="stranger"),
                                         filter=ItemFilter(categories=("jeans",))))
    assert ids(a) == ["JEANS-1", "JEANS-2"] and a.items[0].reason == Reason.POPULAR
    assert a.items[0].explanation == "popular in jeans: bought in 50 orders recently"
    assert ids(recommend(shop(), RecommendQuery(limit=3))) == ["JEANS-1", "TEE-1", "JKT-1"]


def test_large_catalogs_score_the_customers_neighbourhood(shop):
    # exact scoring turned off: candidates come from alice's rows plus popular items
    live = shop(recommend_exact_max_products=0)
    a = recommend(live, RecommendQuery(limit=3, context=Context(user_id="alice")))
    assert ids(a) == ["TEE-1", "TEE-2", "JKT-2"]


def test_personal_items_too_few_are_filled_with_popular(shop):
    a = recommend(shop(), RecommendQuery(limit=3, context=Context(user_id="bob"), filter=ItemFilter(categories=("shirts",))))
    assert ids(a) == ["TEE-2"]  # bob bought TEE-1; only TEE-2 is left in shirts


# --- bad requests -----------------------------------------------------------------------

@pytest.mark.parametrize("call, field", [
    (lambda live: complements(live, ComplementsQuery(())), "item_ids"),
    (lambda live: complements(live, ComplementsQuery(("JKT-1",), limit=0)), "limit"),
    (lambda live: complements(live, ComplementsQuery(("JKT-1",), limit=101)), "limit"),
    (lambda live: substitutes(live, SubstitutesQuery("")), "item_id"),
    (lambda live: recommend(live, RecommendQuery(filter=ItemFilter(min_price=10, max_price=5))), "filter.min_price"),
    (lambda live: recommend(live, RecommendQuery(filter=ItemFilter(categories=("hats",)))), "filter.categories[0]"),
    (lambda live: substitutes(live, SubstitutesQuery("JKT-1", filter=ItemFilter(attributes={"colour": "red"}))),
     "filter.attributes['colour']"),
])
def test_bad_requests_name_the_field(shop, call, field):
    with pytest.raises(BadRequest) as e:
        call(shop())
    assert e.value.field == field and str(e.value).startswith(field)


def test_unknown_items_are_named(shop):
    with pytest.raises(UnknownItem) as e:
        complements(shop(), ComplementsQuery(("JKT-1", "NOPE")))
    assert e.value.item_id == "NOPE" and e.value.field == "item_ids[1]"
