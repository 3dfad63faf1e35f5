"""Complement evaluation: the time split, the queries, and metrics worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from training.data import Interactions, MetricRow
from training.evaluate import (EvalConfig, complement_queries, evaluate_complements, format_table,
                               popularity_lists, time_split)

from tests.training.baskets import DAY, shop


def lists(inter: Interactions, rows: dict[str, list[str]], width: int = 3) -> np.ndarray:
    code = {p: i for i, p in enumerate(inter.product_ids)}
    out = np.full((inter.n_products, width), -1, np.int32)
    for anchor, items in rows.items():
        out[code[anchor], :len(items)] = [code[p] for p in items]
    return out


# A, E: category x; B, C: y; D, F: z. F is new in the test period (no model knows it).
CATEGORY = {"A": "x", "B": "y", "C": "y", "D": "z", "E": "x", "F": "z"}
TRAIN = [["A", "B"], ["C", "D"], ["E", "A"], ["B", "D"]]
TEST = [["A", "B", "D"], ["B", "E", "F"], ["C"]]


def toy() -> tuple[Interactions, Interactions]:
    inter = shop(TRAIN + TEST, CATEGORY, days=[0, 1, 2, 3, 10, 11, 12])
    days = inter.ts // DAY
    return inter.subset(days < 10), inter.subset(days >= 10)


def test_time_split_holds_out_the_last_fraction_of_the_period():
    days = list(range(100))
    inter = shop([["a", "b"]] * 100, {"a": "x", "b": "y"}, days)
    train, test = time_split(inter, 0.1)  # split at day 0 + 0.9 * 99 = 89.1
    assert (train.n_orders, test.n_orders) == (90, 10)
    assert test.ts.min() == 90 * DAY and train.ts.max() == 89 * DAY


def test_time_split_keeps_an_order_whole_by_its_first_line():
    inter = shop([["a"], ["a", "b"], ["b"]], {"a": "x", "b": "y"}, days=[0, 0, 10])
    inter.ts[2] = 10 * DAY  # order 1's second line lands after the split point
    train, test = time_split(inter, 0.5)
    assert (train.n_orders, test.n_orders) == (2, 1) and len(train.order) == 3
    with pytest.raises(ValueError, match="holdout_fraction"):
        time_split(inter, 1.0)
    with pytest.raises(ValueError, match="span no time"):
        time_split(shop([["a"], ["b"]], {"a": "x", "b": "y"}, days=[3, 3]), 0.1)


def test_queries_are_known_anchors_with_other_category_targets():
    train, test = toy()
    q = complement_queries(train, test, EvalConfig())
    got = sorted((int(o), str(test.product_ids[a]), int(n)) for o, a, n in zip(q.order, q.anchor, q.n_targets))
    # F is unknown (no query of its own, still a target); the one-item basket has none.
    assert got == [(0, "A", 2), (0, "B", 2), (0, "D", 2), (1, "B", 2), (1, "E", 2)]


def test_metrics_by_hand():
    train, test = toy()
    model = lists(test, {"A": ["E", "D", "B"],  # E is A's own category: dropped -> D, B
                         "B": ["C", "A", "F"],  # C dropped -> A, F
                         "D": ["F", "C"],  # F dropped -> C
                         "E": ["B"]})
    [row] = evaluate_complements({"m": model}, train, test, EvalConfig(k=2))
    # Per query (hits at rank 1, 2; min(targets, k) = 2 for all; ideal DCG = 1 + 1/log2 3):
    #   A in basket 0: D, B both in it  -> recall 1,   NDCG 1
    #   B in basket 0: A hit, F not     -> recall 1/2, NDCG 1 / (1 + 1/log2 3)
    #   D in basket 0: C not in it      -> 0, 0
    #   B in basket 1: A not, F hit     -> recall 1/2, NDCG (1/log2 3) / (1 + 1/log2 3)
    #   E in basket 1: B hit            -> recall 1/2, NDCG 1 / (1 + 1/log2 3)
    ideal = 1 + 1 / np.log2(3)
    assert row.n_queries == 5 and (row.task, row.model) == ("complements", "m")
    assert row.metrics["HitRate@2"] == pytest.approx(4 / 5)
    assert row.metrics["Recall@2"] == pytest.approx((1 + 0.5 + 0 + 0.5 + 0.5) / 5)
    assert row.metrics["NDCG@2"] == pytest.approx((1 + 1 / ideal + 0 + (1 / np.log2(3)) / ideal + 1 / ideal) / 5)
    # Recommended across the queries: D, B, A, F, C -> 5 of the 6 catalog products.
    assert row.metrics["Coverage@2"] == pytest.approx(5 / 6)


def test_same_category_mates_are_no_targets_and_recall_caps_at_k():
    inter = shop(TRAIN + [["A", "E", "B"], ["D", "A", "B", "C"]], CATEGORY, days=[0, 1, 2, 3, 10, 11])
    train, test = inter.subset(inter.ts < 5 * DAY), inter.subset(inter.ts >= 5 * DAY)
    model = lists(test, {"A": ["D", "B"], "B": ["A", "F"], "D": ["C"], "E": ["B"]})
    [row] = evaluate_complements({"m": model}, train, test, EvalConfig(k=2))
    # basket {A, E, B}: A -> D, B: B hit at rank 2; A's only target is B (E is its
    #   category), so recall 1/1 and NDCG (1/log2 3) / 1.  E -> B: hit, 1/1, NDCG 1.
    #   B -> A, F: A hit; targets A, E: recall 1/2, NDCG 1/ideal.
    # basket {D, A, B, C}: D -> C: hit; 3 targets but k = 2: recall 1/2, NDCG 1/ideal.
    #   A -> D, B: both hit, recall 2/2, NDCG 1.  B -> A, F: 1/2, 1/ideal.  C -> nothing: 0.
    ideal = 1 + 1 / np.log2(3)
    assert row.n_queries == 7
    assert row.metrics["HitRate@2"] == pytest.approx(6 / 7)
    assert row.metrics["Recall@2"] == pytest.approx((1 + 1 + 0.5 + 0.5 + 1 + 0.5 + 0) / 7)
    assert row.metrics["NDCG@2"] == pytest.approx((1 / np.log2(3) + 1 + 3 / ideal + 1 + 0) / 7)


def test_one_category_catalog_counts_every_other_basket_item():
    inter = shop([["a", "b"], ["a", "b", "c"]], {p: "all" for p in "abc"}, days=[0, 10])
    train, test = inter.subset(inter.ts < 5 * DAY), inter.subset(inter.ts >= 5 * DAY)
    model = lists(test, {"a": ["a", "b", "c"], "b": ["a"]})  # the anchor itself never counts
    [row] = evaluate_complements({"m": model}, train, test, EvalConfig(k=2))
    # Queries: a (targets b, c), b (targets a, c); c is unknown. a -> b, c: 2/2; b -> a: 1/2.
    assert row.n_queries == 2
    assert row.metrics["Recall@2"] == pytest.approx((1 + 0.5) / 2)


def test_every_model_is_scored_on_the_same_queries():
    train, test = toy()
    rows = evaluate_complements({"m": lists(test, {}), "n": lists(test, {"A": ["B"]})}, train, test, EvalConfig(k=2))
    assert [r.n_queries for r in rows] == [5, 5]
    assert rows[0].metrics["Recall@2"] == 0 and rows[1].metrics["Recall@2"] > 0


def test_query_sample_is_capped_and_seeded():
    train, test = toy()
    a = complement_queries(train, test, EvalConfig(max_queries=3, seed=7))
    b = complement_queries(train, test, EvalConfig(max_queries=3, seed=7))
    assert len(a.anchor) == 3 and np.array_equal(a.anchor, b.anchor) and np.array_equal(a.order, b.order)


def test_popularity_baselines_skip_the_anchors_category():
    # Orders per product: milk 7, bread 4, beer 3, chips 2 (only ever with beer), soap 1.
    baskets = ([["milk", "bread"]] * 4 + [["milk", "soap"]] + [["milk", "beer", "chips"]] * 2 + [["beer", "x"]])
    category = {"milk": "dairy", "bread": "bakery", "beer": "drinks", "chips": "snacks", "soap": "home", "x": "misc"}
    inter = shop(baskets, category, days=list(range(len(baskets))))
    got = popularity_lists(inter, k=2)
    code = {str(p): i for i, p in enumerate(inter.product_ids)}
    name = inter.product_ids

    def row(model: str, anchor: str) -> list[str]:
        return [str(name[j]) for j in got[model][code[anchor]] if j >= 0]

    assert row("popularity", "bread")[:3] == ["milk", "beer", "chips"]  # k+1, bread's own category left out
    assert row("popularity", "milk")[:3] == ["bread", "beer", "chips"]
    assert row("popularity-category", "beer")[0] == "chips"  # snacks: the category bought with drinks
    assert all(got[m].shape[0] == inter.n_products and got[m].shape[1] >= 3 for m in got)  # >= k+1


def test_format_table_groups_by_task_with_metrics_side_by_side():
    rows = [MetricRow("complements", "copurchase", {"HitRate@10": 0.5, "Recall@10": 0.25}, 100),
            MetricRow("complements", "cocount", {"HitRate@10": 0.4, "Recall@10": 0.2}, 100, note="baseline"),
            MetricRow("personal", "als", {"NDCG@10": 0.1}, 50)]
    text = format_table(rows)
    blocks = text.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["[complements]", "[personal]"]
    header, _, first, second = blocks[0].splitlines()[1:]
    assert header.split()[:3] == ["model", "HitRate@10", "Recall@10"]
    assert first.split()[:4] == ["copurchase", "0.5000", "0.2500", "100"]
    assert second.split() == ["cocount", "0.4000", "0.2000", "100", "baseline"]
    assert header.index("Recall@10") + len("Recall@10") == first.index("0.2500") + len("0.2500")  # right-aligned
