"""Personal evaluation: metrics exact on a hand-computed toy split."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.als import ALSModel
from training.data import Catalog, Interactions, Orders, build_interactions
from training.evaluate_personal import evaluate_personal, list_metrics

PRODUCTS = {"p0": "c1", "p1": "c1", "p2": "c2", "p3": "c2", "p4": "c2"}
TRAIN = [("o1", "u0", "p0"), ("o2", "u1", "p1"), ("o2", "u1", "p2"), ("o3", "u2", "p0")]
TEST = [("o4", "u0", "p1"), ("o4", "u0", "p3"),  # u0: two new products
        ("o5", "u1", "p1"),  # u1 only re-buys: no query
        ("o6", "u3", "p4")]  # u3 is new: a cold user, skipped
DISCOUNT = 1 / np.log2(np.arange(2, 12))  # 1/log2(rank + 1), ranks 1..10


def split() -> tuple[Interactions, Interactions]:
    lines = pd.DataFrame(TRAIN + TEST, columns=["order_id", "user_id", "product_id"])
    day = np.r_[np.zeros(len(TRAIN)), np.ones(len(TEST))]
    orders = Orders(pd.DataFrame({
        "order_id": lines.order_id, "user_id": lines.user_id, "item_id": lines.product_id,
        "product_id": lines.product_id, "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(day, "D"),
        "quantity": 1.0, "price": np.nan,
    }))
    items = pd.DataFrame({"item_id": list(PRODUCTS), "product_id": list(PRODUCTS), "category": list(PRODUCTS.values()),
                          "title": "", "brand": "", "price": np.nan})
    inter = build_interactions(orders, Catalog(items))
    return inter.subset(day == 0), inter.subset(day == 1)


def als_ranking(train: Interactions, ranking: list[str]) -> ALSModel:
    """ALS whose scores for every user follow `ranking` (best first)."""
    scores = np.zeros(train.n_products, np.float32)
    for rank, p in enumerate(ranking):
        scores[list(train.product_ids).index(p)] = len(ranking) - rank
    return ALSModel(item_factors=scores[:, None], user_factors=np.ones((train.n_users, 1), np.float32))


def test_list_metrics_hand_computed():
    # query 0: targets {5, 7}, list [7, 1, 5]; query 1: target {2}, list [3, -1, -1]
    recs = np.array([[7, 1, 5], [3, -1, -1]])
    keys = np.array([0 * 10 + 5, 0 * 10 + 7, 1 * 10 + 2])
    m = list_metrics(recs, keys, np.array([2, 1]), 10, 3)
    ndcg0 = (DISCOUNT[0] + DISCOUNT[2]) / (DISCOUNT[0] + DISCOUNT[1])
    assert m == pytest.approx({"HitRate@3": 0.5, "Recall@3": 0.5, "NDCG@3": ndcg0 / 2})
    # lists narrower than k are padded: the ideal still counts min(targets, k) hits
    assert list_metrics(recs[:, :1], keys, np.array([2, 1]), 10, 3)["NDCG@3"] == pytest.approx(
        DISCOUNT[0] / (DISCOUNT[0] + DISCOUNT[1]) / 2)


def test_recall_counts_at_most_k_targets():
    # three targets {1, 2, 3}, a list of two holding two of them: as good as a list of two can be
    m = list_metrics(np.array([[1, 2]]), np.array([1, 2, 3]), np.array([3]), 10, 2)
    assert m["Recall@2"] == 1.0 and m["NDCG@2"] == pytest.approx(1.0)


def test_personal_metrics_on_a_toy_split():
    train, test = split()
    # ALS ranks p0 (already bought by u0, so skipped), p2, p3, p1, p4
    rows = evaluate_personal(als_ranking(train, ["p0", "p2", "p3", "p1", "p4"]), train, test, k=2)
    by_model = {r.model: r for r in rows}
    assert list(by_model) == ["als", "popularity", "popularity-category"]
    assert all(r.task == "personal" and r.n_queries == 1 for r in rows)  # only u0
    assert "1 cold users skipped" in rows[0].note

    # u0's targets {p1, p3}. ALS list [p2, p3]: a hit at rank 2.
    als = by_model["als"].metrics
    assert als["HitRate@2"] == 1.0 and als["Recall@2"] == 0.5
    assert als["NDCG@2"] == pytest.approx(DISCOUNT[1] / (DISCOUNT[0] + DISCOUNT[1]))
    assert als["Coverage@2"] == pytest.approx(2 / 5)  # {p2, p3} of the 5 catalog products

    # Popularity (orders): p0 2, p1 1, p2 1 -> u0 gets [p1, p2] (tie by code): a hit at rank 1.
    pop = by_model["popularity"].metrics
    assert pop["Recall@2"] == 0.5 and pop["NDCG@2"] == pytest.approx(DISCOUNT[0] / (DISCOUNT[0] + DISCOUNT[1]))
    # u0 shops only in c1: P(p1 | c1) = 1/3 ranks p1 first, then the c2 products (score 0) by code.
    cat = by_model["popularity-category"].metrics
    assert cat["HitRate@2"] == 1.0 and cat["Recall@2"] == 0.5


def test_perfect_model_scores_one():
    train, test = split()
    m = evaluate_personal(als_ranking(train, ["p1", "p3", "p0", "p2", "p4"]), train, test, k=2)[0].metrics
    assert m["HitRate@2"] == m["Recall@2"] == m["NDCG@2"] == 1.0


def test_no_returning_user_with_new_purchases_gives_no_rows():
    train, _ = split()
    nothing = train.subset(np.zeros(len(train.order), bool))
    assert evaluate_personal(als_ranking(train, list(PRODUCTS)), train, nothing) == []


def test_k_beyond_the_catalog_pads_the_lists():
    train, test = split()
    m = evaluate_personal(als_ranking(train, ["p0", "p2", "p3", "p1", "p4"]), train, test, k=10)[0].metrics
    assert m["HitRate@10"] == m["Recall@10"] == 1.0  # both targets among the 4 unseen products
    assert m["NDCG@10"] == pytest.approx((DISCOUNT[1] + DISCOUNT[2]) / (DISCOUNT[0] + DISCOUNT[1]))


def test_max_users_scores_a_seeded_sample_of_the_users():
    from training.demo_data import generate_shop
    from training.evaluate import time_split

    shop = generate_shop(seed=2, n_styles=40, n_users=300, n_orders=3000)
    orders = shop.orders[shop.orders["status"] == "paid"].merge(shop.catalog[["item_id", "product_id"]])
    orders = orders.assign(ts=pd.to_datetime(orders["ts"]), quantity=1.0, price=np.nan)
    items = shop.catalog.assign(title="", brand="", price=np.nan)
    train, test = time_split(build_interactions(Orders(orders), Catalog(items)), 0.2)
    rng = np.random.default_rng(0)
    als = ALSModel(rng.random((train.n_products, 4), np.float32), rng.random((train.n_users, 4), np.float32))
    everyone = evaluate_personal(als, train, test, k=5)
    assert everyone[0].n_queries > 10
    sampled = evaluate_personal(als, train, test, k=5, max_users=10, seed=1)
    assert all(r.n_queries == 10 and "10 users sampled" in r.note for r in sampled)
    again = evaluate_personal(als, train, test, k=5, max_users=10, seed=1)
    assert [r.metrics for r in again] == [r.metrics for r in sampled]
