"""The synthetic shop: deterministic, standard format, and its planted structure is in the orders."""
from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from training.demo_data import CATEGORIES, generate_order_lines, generate_shop, write_shop
from training.io import load_inputs


@pytest.fixture(scope="module")
def shop():
    return generate_shop(seed=3, n_styles=200, n_users=1500, n_orders=12_000)


def basket_pair_counts(orders: pd.DataFrame, catalog: pd.DataFrame) -> pd.Series:
    """Orders in which each unordered pair of styles was bought together (returns excluded)."""
    lines = orders[orders["quantity"] > 0].merge(catalog[["item_id", "product_id"]], on="item_id")
    b = lines[["order_id", "product_id"]].drop_duplicates()
    pairs = b.merge(b, on="order_id")
    pairs = pairs[pairs["product_id_x"] < pairs["product_id_y"]]
    return pairs.groupby(["product_id_x", "product_id_y"]).size()


def together(counts: pd.Series, a: str, b: str) -> int:
    return int(counts.get((min(a, b), max(a, b)), 0))


def test_same_seed_same_shop_other_seed_other_shop(shop):
    again = generate_shop(seed=3, n_styles=200, n_users=1500, n_orders=12_000)
    pd.testing.assert_frame_equal(shop.orders, again.orders)
    pd.testing.assert_frame_equal(shop.catalog, again.catalog)
    pd.testing.assert_frame_equal(shop.stock, again.stock)
    assert shop.truth == again.truth
    other = generate_shop(seed=4, n_styles=200, n_users=1500, n_orders=12_000)
    assert not shop.orders["item_id"].equals(other.orders["item_id"])


def test_catalog_is_an_apparel_shop_of_variants(shop):
    cat = shop.catalog
    assert cat["item_id"].is_unique and cat["product_id"].nunique() == 200
    assert set(cat["category"]) == set(CATEGORIES)
    for name, spec in CATEGORIES.items():
        rows = cat[cat["category"] == name]
        assert set(rows["size"]) <= set(spec.sizes)
        assert rows["price"].between(spec.price[0] * 0.9 - 1, spec.price[1] * 1.1).all()
    assert set(cat.loc[cat["category"] == "shoes", "size"]) <= {str(s) for s in range(38, 47)}
    assert (cat.groupby("product_id")[["category", "title", "brand", "price"]].nunique() == 1).all().all()
    assert set(shop.orders["item_id"]) <= set(cat["item_id"])


def test_planted_complement_pairs_co_occur_far_more_than_random_pairs_of_their_categories(shop):
    counts = basket_pair_counts(shop.orders, shop.catalog)
    category = shop.catalog.drop_duplicates("product_id").set_index("product_id")["category"]
    rng = np.random.default_rng(0)
    planted, baseline = [], []
    for a, b in shop.truth.complement_pairs:
        planted.append(together(counts, a, b))
        same_category = category.index[(category == category[b]) & (category.index != b)]
        baseline.append(together(counts, a, rng.choice(same_category)))
    assert np.mean(planted) > 8 * np.mean(baseline)
    for a, b in shop.truth.complement_pairs:
        assert category[b] in shop.truth.category_complements[category[a]]


def test_substitute_groups_are_near_identical_styles_that_customers_pick_one_of(shop):
    products = shop.catalog.drop_duplicates("product_id").set_index("product_id")
    counts = basket_pair_counts(shop.orders, shop.catalog)
    lines = shop.orders.merge(shop.catalog[["item_id", "product_id"]], on="item_id")
    bought = lines["product_id"].value_counts()
    assert len(shop.truth.substitute_groups) >= 10
    for group in shop.truth.substitute_groups:
        g = products.loc[group]
        assert g["category"].nunique() == 1 and g["brand"].nunique() == 1
        assert g["price"].max() / g["price"].min() < 1.2
        assert all(bought.get(s, 0) > 0 for s in group)
        assert all(together(counts, a, b) == 0 for a, b in combinations(group, 2))
    # a customer sticks with their own pick: few buy two members of a group, ever
    member_group = {s: i for i, g in enumerate(shop.truth.substitute_groups) for s in g}
    grouped = lines[lines["product_id"].isin(member_group)].assign(group=lambda d: d["product_id"].map(member_group))
    per_user = grouped.groupby(["user_id", "group"])["product_id"].nunique()
    assert (per_user > 1).mean() < 0.25


def test_new_products_have_no_orders_and_sold_out_items_have_no_stock(shop):
    lines = shop.orders.merge(shop.catalog[["item_id", "product_id"]], on="item_id")
    stock = shop.stock.set_index("item_id")["quantity"]
    assert shop.truth.new_products and not lines["product_id"].isin(shop.truth.new_products).any()
    new_items = shop.catalog.loc[shop.catalog["product_id"].isin(shop.truth.new_products), "item_id"]
    assert (stock[new_items] > 0).all()
    assert shop.truth.sold_out_items == sorted(stock.index[stock == 0])
    assert shop.truth.sold_out_products
    for style in shop.truth.sold_out_products:
        items = shop.catalog.loc[shop.catalog["product_id"] == style, "item_id"]
        assert (stock[items] == 0).all() and lines["product_id"].eq(style).any()
    assert 0 < (stock == 0).mean() < 0.3


def test_written_shop_loads_and_the_report_shows_returns_and_messy_rows(tmp_path):
    shop = generate_shop(seed=1, n_styles=60, n_users=300, n_orders=2_000, messy=True)
    paths = write_shop(shop, tmp_path / "shop")
    assert {p.name for p in paths.values()} == {"orders.csv", "catalog.csv", "stock.csv", "truth.json"}
    assert json.loads(paths["truth"].read_text())["new_products"] == shop.truth.new_products
    orders, catalog, report = load_inputs(str(paths["orders"]), str(paths["catalog"]))
    f = report.files["orders"]
    assert f.returns == int((shop.orders["status"] != "paid").sum())
    assert set(f.skipped) >= {"missing user_id", "unparseable timestamp", "item not in catalog",
                              "non-numeric price", "zero quantity"}
    assert set(report.files["catalog"].skipped) == {"duplicate item_id", "missing category"}
    assert f.rows_read == len(shop.orders) == f.rows_kept + f.rows_skipped + f.returns
    assert (orders.lines["product_id"] != orders.lines["item_id"]).all()  # lines roll up to styles


def test_bulk_order_lines_have_zipf_popularity_and_co_purchase_clusters():
    orders, catalog = generate_order_lines(200_000, 5_000, 20_000, seed=7)
    assert len(orders) == 200_000 and catalog["item_id"].is_unique
    assert orders["item_id"].isin(catalog["item_id"]).all() and orders["user_id"].between(0, 19_999).all()
    again, _ = generate_order_lines(200_000, 5_000, 20_000, seed=7)
    pd.testing.assert_frame_equal(orders, again)
    pop = orders["item_id"].value_counts()
    assert pop.iloc[0] > 50 * pop.median()
    # co-purchase: products have partners bought with them far above their base rate (lift)
    base = pop / len(orders)
    for product in pop.index[[10, 100]]:
        baskets = orders.loc[orders["item_id"] == product, "order_id"]
        same_basket = orders["order_id"].isin(baskets) & (orders["item_id"] != product)
        partners = orders.loc[same_basket, "item_id"].value_counts()
        lift = (partners / partners.sum()) / base[partners.index]
        assert (lift[partners >= 20] > 5).sum() >= 5
