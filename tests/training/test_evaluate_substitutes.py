"""Substitute evaluation: both ground truths and the metrics, exact on toy cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.als import ALSModel
from training.data import Catalog, Interactions, Orders, build_interactions, product_table
from training.evaluate_substitutes import evaluate_substitutes, family_truth, replacement_truth

DISCOUNT = 1 / np.log2(np.arange(2, 12))


def shop(products: dict[str, dict[str, str]], train: list[tuple[str, str, str]],
         test: list[tuple[str, str, str]], attributes: list[str]) -> tuple[pd.DataFrame, Interactions, Interactions]:
    """products: id -> {category, <attribute>: value}; lines (order, user, product)."""
    lines = pd.DataFrame(train + test, columns=["order_id", "user_id", "product_id"])
    day = np.r_[np.zeros(len(train)), np.ones(len(test))]
    orders = Orders(pd.DataFrame({
        "order_id": lines.order_id, "user_id": lines.user_id, "item_id": lines.product_id,
        "product_id": lines.product_id, "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(day, "D"),
        "quantity": 1.0, "price": np.nan,
    }))
    items = pd.DataFrame([{"item_id": p, "product_id": p, "title": p, "brand": "", "price": np.nan, **v}
                          for p, v in products.items()])
    catalog = Catalog(items, attributes)
    inter = build_interactions(orders, catalog)
    return product_table(catalog, inter.product_ids), inter.subset(day == 0), inter.subset(day == 1)


def lists(inter: Interactions, rows: dict[str, list[str]], width: int = 4) -> np.ndarray:
    out = np.full((inter.n_products, width), -1, np.int32)
    ids = list(inter.product_ids)
    for anchor, listed in rows.items():
        out[ids.index(anchor), :len(listed)] = [ids.index(p) for p in listed]
    return out


FAMILIES = {"A1": "A", "A2": "A", "A3": "A", "B1": "B", "B2": "B", "C1": "C"}


@pytest.fixture
def families():
    products = {p: {"category": "all", "family": f} for p, f in FAMILIES.items()}
    # popularity in training: C1 3 orders, B1 2, A1 1
    train = [("o1", "u1", "C1"), ("o2", "u1", "C1"), ("o3", "u2", "C1"), ("o4", "u2", "B1"), ("o5", "u3", "B1"),
             ("o6", "u3", "A1")]
    return shop(products, train, [("o7", "u1", "A2")], ["family"])


def test_family_truth_pairs_every_member_with_the_others(families):
    products, train, _ = families
    truth = family_truth(products)
    ids = train.product_ids
    got = {ids[a]: sorted(ids[k % train.n_products] for k in truth.target_keys if k // train.n_products == q)
           for q, a in enumerate(truth.anchors)}
    assert got == {"A1": ["A2", "A3"], "A2": ["A1", "A3"], "A3": ["A1", "A2"], "B1": ["B2"], "B2": ["B1"]}
    assert truth.n_targets.tolist() == [2, 2, 2, 1, 1]  # C1 has no family: no query
    assert family_truth(products.drop(columns="family")) is None


def test_family_metrics_hand_computed(families):
    products, train, test = families
    model = lists(train, {
        "A1": ["A1", "C1", "A3"],  # the anchor itself is skipped: [C1, A3] -> hit at rank 2
        "A2": ["A1", "A3"],  # both targets at ranks 1, 2
        "A3": ["B1"],  # miss
        "B1": ["B2"],  # hit at rank 1
        # B2: empty list, a miss
    })
    rows = evaluate_substitutes({"model": model}, products, train, test, k=2)
    by_model = {r.model: r for r in rows}
    assert set(by_model) == {"model", "popularity-category"}
    m = by_model["model"].metrics
    assert by_model["model"].n_queries == 5 and by_model["model"].task == "substitutes"
    assert m["HitRate@2"] == pytest.approx(3 / 5)
    assert m["Recall@2"] == pytest.approx((1 / 2 + 1 + 0 + 1 + 0) / 5)
    ideal2 = DISCOUNT[0] + DISCOUNT[1]
    assert m["NDCG@2"] == pytest.approx((DISCOUNT[1] / ideal2 + 1 + 0 + 1 + 0) / 5)
    assert m["Coverage@2"] == pytest.approx(5 / 6)  # C1, A3, A1, B1, B2 of 6 products


def test_popularity_category_baseline_skips_the_anchor(families):
    products, train, test = families
    rows = evaluate_substitutes({}, products, train, test, k=2)
    # best sellers C1, B1, A1: A1 -> [C1, B1] miss; A2, A3 -> [C1, B1] miss; B1 -> [C1, A1] miss; B2 -> [C1, B1] hit
    assert rows[0].model == "popularity-category"
    assert rows[0].metrics["HitRate@2"] == pytest.approx(1 / 5)
    assert rows[0].metrics["NDCG@2"] == pytest.approx(DISCOUNT[1] / DISCOUNT[0] / 5)


def test_one_signal_baselines_are_added_given_the_als_model():
    products = {p: {"category": "all", "family": f} for p, f in FAMILIES.items()}
    train = [(f"o{i}", "u1", p) for i, p in enumerate(FAMILIES)]  # every product bought once
    products, train, test = shop(products, train, [("o9", "u2", "A1")], ["family"])
    direction = {"A": (1.0, 0.0), "B": (0.0, 1.0), "C": (0.6, 0.8)}  # families share a taste
    als = ALSModel(np.array([direction[FAMILIES[p]] for p in train.product_ids], np.float32),
                   np.zeros((train.n_users, 2), np.float32))
    rows = evaluate_substitutes({}, products, train, test, k=1, als=als)
    m = {r.model: r.metrics for r in rows}
    assert set(m) == {"als-similar", "content-similar", "popularity-category"}
    assert m["als-similar"]["HitRate@1"] == 1.0
    # titles "A1", "A2"... share no word or 3-gram: content finds nothing
    assert m["content-similar"]["HitRate@1"] == 0.0 and m["content-similar"]["Coverage@1"] == 0.0


TYPES = {"X": "milk", "Y": "milk", "Z": "milk", "W": "bread", "V": "bread"}


@pytest.fixture
def replacements():
    products = {p: {"category": "dairy" if t == "milk" else "bakery", "product_type": t} for p, t in TYPES.items()}
    train = [("o1", "h1", "X"), ("o2", "h2", "X"), ("o3", "h3", "W"), ("o4", "h4", "Z")]
    test = [("o5", "h1", "Y"),  # h1 switched X -> Y: a replacement
            ("o6", "h2", "X"), ("o6", "h2", "Z"),  # h2 still buys X: Z was added, not a replacement
            ("o7", "h3", "Y"),  # h3's Y is another type than W
            ("o8", "h4", "Z"), ("o8", "h4", "V")]  # h4 keeps Z
    return shop(products, train, test, ["product_type"])


def test_replacement_truth_is_same_type_switches(replacements):
    products, train, test = replacements
    truth = replacement_truth(products, train, test)
    ids = train.product_ids
    assert [ids[a] for a in truth.anchors] == ["X"]
    assert [ids[k % train.n_products] for k in truth.target_keys] == ["Y"]
    assert "product_type" in truth.note


def test_replacement_metrics(replacements):
    products, train, test = replacements
    rows = evaluate_substitutes({"good": lists(train, {"X": ["Z", "Y"]}), "bad": lists(train, {"X": ["Z"]})},
                                products, train, test, k=2)
    m = {r.model: r.metrics for r in rows}
    assert m["good"]["HitRate@2"] == 1.0 and m["good"]["NDCG@2"] == pytest.approx(DISCOUNT[1])
    assert m["bad"]["HitRate@2"] == 0.0


def test_no_ground_truth_columns_gives_no_rows(replacements):
    products, train, test = replacements
    assert evaluate_substitutes({"m": lists(train, {})}, products.drop(columns="product_type"), train, test) == []
