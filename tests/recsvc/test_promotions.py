"""Promotions: which one prices a bundle, how much it saves, and what is refused.

A bundle here is a jacket (anchor, 120.00) and gloves (30.00): list price 150.00.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from recsvc.promotions import (BundleLine, Promotion, PromotionBook, price_bundle,
                               validate_promotion)
from recsvc.store import open_store

T0 = datetime(2025, 11, 1, 9, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(days=7)
JACKET = BundleLine("jacket-M", "jacket", "coats", 120.0)
GLOVES = BundleLine("gloves-S", "gloves", "accessories", 30.0)
BUNDLE = [JACKET, GLOVES]


def promo(**kw) -> Promotion:
    base = dict(id="p", name="Winter set", item_ids=["jacket"], categories=[],
                kind="percent", value=10.0, cap=None, starts_at=T0, ends_at=T1)
    return Promotion(**{**base, **kw})


def saving(promotions, items=BUNDLE, now=T0 + timedelta(hours=1)) -> float:
    return price_bundle(promotions, items, now).saving


# --- time windows --------------------------------------------------------------------

@pytest.mark.parametrize("now, active", [
    (T0 - timedelta(microseconds=1), False),
    (T0, True),                               # starts_at is inclusive
    (T1 - timedelta(microseconds=1), True),
    (T1, False),                              # ends_at is exclusive
])
def test_a_promotion_applies_from_its_start_up_to_not_including_its_end(now, active):
    priced = price_bundle([promo()], BUNDLE, now)
    assert (priced.promotion is not None) is active
    assert priced.saving == (15.0 if active else 0.0)


def test_the_window_is_compared_in_absolute_time_whatever_the_zone():
    paris = timezone(timedelta(hours=1))
    assert price_bundle([promo()], BUNDLE, datetime(2025, 11, 1, 9, 30, tzinfo=paris)).promotion is None
    assert price_bundle([promo()], BUNDLE, datetime(2025, 11, 1, 10, 30, tzinfo=paris)).promotion


# --- amounts -------------------------------------------------------------------------

def test_percent_of_the_list_price_and_a_fixed_amount():
    assert saving([promo(kind="percent", value=10)]) == 15.0
    assert saving([promo(kind="amount", value=25)]) == 25.0


def test_the_saving_never_exceeds_the_cap():
    priced = price_bundle([promo(value=50, cap=20.0)], BUNDLE, T0)
    assert (priced.list_price, priced.saving, priced.bundle_price) == (150.0, 20.0, 130.0)


def test_the_saving_never_exceeds_the_list_price():
    priced = price_bundle([promo(kind="amount", value=500)], BUNDLE, T0)
    assert (priced.saving, priced.bundle_price) == (150.0, 0.0)


def test_money_is_rounded_to_cents_half_up():
    cheap = [BundleLine("a", "jacket", "x", 0.10), BundleLine("b", "b", "x", 0.20)]
    assert saving([promo(value=15)], cheap) == 0.05  # 0.045 -> 0.05, not banker's 0.04
    odd = [BundleLine("a", "jacket", "x", 10.01), BundleLine("b", "b", "x", 0.02)]
    priced = price_bundle([promo(value=100 / 3)], odd, T0)
    assert (priced.list_price, priced.saving, priced.bundle_price) == (10.03, 3.34, 6.69)


def test_the_result_carries_the_promotion_and_until_when_it_is_valid():
    p = promo()
    priced = price_bundle([p], BUNDLE, T0)
    assert priced.promotion is p and priced.valid_until == T1


# --- which promotion -----------------------------------------------------------------

def test_higher_priority_wins_even_with_a_smaller_saving():
    small = promo(id="small", kind="amount", value=5, priority=2)
    big = promo(id="big", kind="amount", value=40, priority=1)
    assert price_bundle([big, small], BUNDLE, T0).promotion.id == "small"


def test_among_equal_priority_the_larger_saving_wins():
    percent = promo(id="pct", kind="percent", value=20)     # 30.00
    amount = promo(id="amt", kind="amount", value=25)       # 25.00
    assert price_bundle([amount, percent], BUNDLE, T0).promotion.id == "pct"
    capped = promo(id="pct", kind="percent", value=20, cap=10.0)
    assert price_bundle([capped, amount], BUNDLE, T0).promotion.id == "amt"


def test_an_inactive_promotion_never_beats_an_active_one():
    later = promo(id="later", priority=9, starts_at=T1, ends_at=T1 + timedelta(days=1))
    now = promo(id="now", priority=0)
    assert price_bundle([later, now], BUNDLE, T0).promotion.id == "now"


@pytest.mark.parametrize("rule, applies", [
    (dict(item_ids=["jacket"]), True),           # the anchor's product
    (dict(item_ids=["jacket-M"]), True),         # the anchor's variant
    (dict(item_ids=["gloves-S"]), True),         # a complement
    (dict(item_ids=[], categories=["accessories"]), True),
    (dict(item_ids=["boots"], categories=["shoes"]), False),
])
def test_a_promotion_applies_when_a_bundle_item_or_its_category_is_named(rule, applies):
    assert (price_bundle([promo(**rule)], BUNDLE, T0).promotion is not None) is applies


def test_a_bundle_smaller_than_min_items_gets_no_discount():
    assert saving([promo(min_items=2)], [JACKET]) == 0.0
    assert saving([promo(min_items=3)]) == 0.0
    assert saving([promo(min_items=1)], [JACKET]) == 12.0


def test_no_applicable_promotion_means_the_list_price_and_no_promotion():
    priced = price_bundle([], BUNDLE, T0)
    assert (priced.list_price, priced.bundle_price, priced.saving) == (150.0, 150.0, 0.0)
    assert priced.promotion is None and priced.valid_until is None


def test_now_must_carry_a_timezone():
    with pytest.raises(ValueError, match="now"):
        price_bundle([promo()], BUNDLE, datetime(2025, 11, 1, 10))


# --- validation ----------------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    (dict(kind="bogo"), r"^kind: must be one of percent, amount"),
    (dict(value=0), r"^value: must be a number > 0"),
    (dict(kind="amount", value=-5), r"^value: must be a number > 0"),
    (dict(value=float("nan")), r"^value: must be a number > 0"),
    (dict(value=120), r"^value: a percent discount must be at most 100"),
    (dict(cap=-1.0), r"^cap: must be >= 0"),
    (dict(ends_at=T0), r"^ends_at: must be after starts_at"),
    (dict(ends_at=T0 - timedelta(days=1)), r"^ends_at: must be after starts_at"),
    (dict(starts_at=datetime(2025, 11, 1)), r"^starts_at: must be a timezone-aware"),
    (dict(item_ids=[], categories=[]), r"^item_ids, categories: name at least one"),
    (dict(min_items=0), r"^min_items: must be >= 1"),
])
def test_invalid_promotions_are_refused_naming_the_field(bad, message):
    with pytest.raises(ValueError, match=message):
        validate_promotion(promo(**bad))


def test_a_valid_promotion_passes():
    validate_promotion(promo(kind="amount", value=100, cap=0.0))  # an amount may exceed 100


# --- the book ------------------------------------------------------------------------

def test_the_book_stores_prices_and_deletes_promotions(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    with open_store(url) as store:
        book = PromotionBook(store)
        created = book.create(promo(id=""))
        assert book.list() == [created] == store.list_promotions()
        assert book.price_bundle(BUNDLE, T0).promotion == created
        assert book.delete(created.id) and not book.delete(created.id)
        assert book.price_bundle(BUNDLE, T0).promotion is None


def test_the_book_refuses_an_invalid_promotion_before_storing_it(tmp_path):
    with open_store(f"sqlite:///{tmp_path}/state.db") as store:
        with pytest.raises(ValueError, match="value"):
            PromotionBook(store).create(promo(value=0))
        assert store.list_promotions() == []


def test_a_book_refreshes_what_another_replica_created(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    with open_store(url) as s1, open_store(url) as s2:
        mine, theirs = PromotionBook(s1), PromotionBook(s2)
        created = theirs.create(promo(id=""))
        assert mine.list() == []
        mine.refresh()
        assert mine.list() == [created]
