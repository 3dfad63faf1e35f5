"""ALS: confidences from distinct orders, planted taste groups recovered, deterministic."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.als import ALSConfig, fit_als, user_item_matrix
from training.data import Catalog, Interactions, Orders, build_interactions

GROUP_A = [f"a{i}" for i in range(6)]
GROUP_B = [f"b{i}" for i in range(6)]
NEVER_BOUGHT = "z0"
FAST = ALSConfig(factors=8, iterations=10, num_threads=1)


def interactions(lines: list[tuple[str, str, str]], products: list[str]) -> Interactions:
    """(order_id, user_id, product_id) lines, one day apart, over a one-category catalog."""
    df = pd.DataFrame(lines, columns=["order_id", "user_id", "product_id"])
    orders = Orders(pd.DataFrame({
        "order_id": df.order_id, "user_id": df.user_id, "item_id": df.product_id, "product_id": df.product_id,
        "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(df)), "D"),
        "quantity": 1.0, "price": np.nan,
    }))
    items = pd.DataFrame({"item_id": products, "product_id": products, "category": "all",
                          "title": products, "brand": "", "price": np.nan})
    return build_interactions(orders, Catalog(items))


@pytest.fixture(scope="module")
def two_groups() -> Interactions:
    """20 users shop only group A's products, 20 only group B's, 3 products an order."""
    rng = np.random.default_rng(0)
    lines = []
    for g, (prefix, products) in enumerate((("ua", GROUP_A), ("ub", GROUP_B))):
        for u in range(20):
            for o in range(6):
                for p in rng.choice(products, 3, replace=False):
                    lines.append((f"{prefix}{u}-{o}", f"{prefix}{u}", p))
    return interactions(lines, GROUP_A + GROUP_B + [NEVER_BOUGHT])


@pytest.fixture(scope="module")
def model(two_groups):
    return fit_als(two_groups, FAST)


def codes(inter: Interactions, products: list[str]) -> np.ndarray:
    return pd.Index(inter.product_ids).get_indexer(products)


def test_confidence_is_log_of_distinct_orders():
    # u1 buys p twice in order o1 (one order) and again in o2; q once.
    inter = interactions([("o1", "u1", "p"), ("o1", "u1", "p"), ("o2", "u1", "p"), ("o2", "u1", "q")], ["p", "q", "r"])
    m = user_item_matrix(inter).toarray()
    p, q, r = codes(inter, ["p", "q", "r"])
    assert m.shape == (1, 3)
    assert m[0, p] == pytest.approx(np.log1p(2))
    assert m[0, q] == pytest.approx(np.log1p(1))
    assert m[0, r] == 0


def test_items_are_closer_within_a_taste_group_than_across(two_groups, model):
    f = model.item_factors[codes(two_groups, GROUP_A + GROUP_B)]
    unit = f / np.linalg.norm(f, axis=1, keepdims=True)
    sim = unit @ unit.T
    n = len(GROUP_A)
    within = np.r_[sim[:n, :n][~np.eye(n, dtype=bool)], sim[n:, n:][~np.eye(n, dtype=bool)]]
    across = sim[:n, n:].ravel()
    assert within.min() > across.max()


def test_personal_scores_of_a_group_a_user_rank_group_a_first(two_groups, model):
    user = int(np.flatnonzero(two_groups.user_ids == "ua3")[0])
    scores = model.user_scores(np.array([user]))[0]
    top = set(two_groups.product_ids[np.argsort(-scores)[:len(GROUP_A)]])
    assert top == set(GROUP_A)


def test_never_bought_product_has_zero_factors(two_groups, model):
    assert not model.item_factors[codes(two_groups, [NEVER_BOUGHT])[0]].any()
    assert model.item_factors.dtype == np.float32 and model.user_factors.dtype == np.float32
    assert model.item_factors.shape == (two_groups.n_products, FAST.factors)
    assert model.user_factors.shape == (two_groups.n_users, FAST.factors)


def test_same_seed_same_model_whatever_the_thread_count(two_groups, model):
    again = fit_als(two_groups, ALSConfig(factors=8, iterations=10, num_threads=2))
    np.testing.assert_array_equal(again.item_factors, model.item_factors)
    other_seed = fit_als(two_groups, ALSConfig(factors=8, iterations=10, num_threads=1, seed=1))
    assert not np.array_equal(other_seed.item_factors, model.item_factors)


def test_no_interactions_is_an_error():
    inter = interactions([("o1", "u1", "p")], ["p"]).subset(np.zeros(1, bool))
    with pytest.raises(ValueError, match="no interactions"):
        fit_als(inter, FAST)
