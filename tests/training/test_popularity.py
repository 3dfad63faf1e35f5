"""Popularity: orders per product, and the recency-weighted ranking the service falls back on."""
from __future__ import annotations

import numpy as np

from training.data import Interactions
from training.popularity import PopularityConfig, fit_popularity

DAY = 86_400


def orders_on_days(baskets: list[tuple[float, list[int]]], n_products: int) -> Interactions:
    """(day, product codes) per order."""
    sizes = [len(b) for _, b in baskets]
    product = np.array([p for _, b in baskets for p in b], np.int32)
    return Interactions(
        product_ids=np.array([f"p{i}" for i in range(n_products)]), product_category=np.zeros(n_products, np.int32),
        category_names=np.array(["all"]), user_ids=np.array(["u"]),
        order=np.repeat(np.arange(len(baskets)), sizes).astype(np.int64), user=np.zeros(len(product), np.int32),
        product=product, ts=(np.repeat([d for d, _ in baskets], sizes) * DAY).astype(np.int64),
        quantity=np.ones(len(product), np.float32),
    )


def test_counts_orders_not_lines_and_zero_for_unsold_products():
    inter = orders_on_days([(0, [0, 0, 1]), (1, [0]), (2, [1, 0])], n_products=3)
    _, count = fit_popularity(inter, PopularityConfig())
    assert count.tolist() == [3, 2, 0] and count.dtype == np.int32


def test_recent_sellers_outrank_last_years_bestseller():
    # p0: 10 orders a year ago; p1: 5 orders this week.
    inter = orders_on_days([(0, [0])] * 10 + [(365, [1])] * 5, n_products=2)
    weighted, count = fit_popularity(inter, PopularityConfig(half_life_days=30))
    assert count[0] > count[1]
    assert weighted[1] > weighted[0] and weighted.dtype == np.float32


def test_an_order_counts_half_per_half_life_of_age():
    inter = orders_on_days([(0, [0]), (30, [1]), (60, [2])], n_products=3)
    weighted, _ = fit_popularity(inter, PopularityConfig(half_life_days=30))
    np.testing.assert_allclose(weighted, [0.25, 0.5, 1.0], rtol=1e-6)
