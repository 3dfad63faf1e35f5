"""Substitutes: same category, about the same price, similar by behaviour and content,
never the anchor or its frequent complements; new products still get some."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from training.als import ALSModel
from training.data import Catalog, Interactions, Orders, build_interactions, product_table
from training.content import content_matrix
from training.substitutes import SubstitutesConfig, fit_substitutes, substitute_baselines, top_k_rows

# product_id: (category, title, price, behaviour factor)
CATALOG = {
    "red-mug": ("mugs", "Red Spotty Mug", 5.0, (1.0, 0.0)),
    "blue-mug": ("mugs", "Blue Spotty Mug", 5.0, (0.6, 0.8)),  # near-duplicate, other colour
    "white-mug": ("mugs", "Plain White Mug", 5.5, (0.8, 0.6)),
    "mug-tree": ("mugs", "Wooden Mug Tree Stand", 6.0, (1.0, 0.05)),  # bought with red-mug
    "big-red-mug": ("mugs", "Red Spotty Mug Large", 40.0, (0.9, 0.4)),  # 8x the price
    "green-mug": ("mugs", "Green Spotty Mug", 5.0, (0.0, 0.0)),  # new: never bought
    "red-teapot": ("teapots", "Red Spotty Teapot", 5.0, (1.0, 0.0)),
    "teapot": ("teapots", "Brown Teapot", 5.0, (0.9, 0.1)),
}
ORDERS = [  # (order, product): red-mug and mug-tree go together; the rest alone
    *[(f"t{i}", p) for i in range(6) for p in ("red-mug", "mug-tree")],
    *[(f"b{i}", "blue-mug") for i in range(4)], *[(f"w{i}", "white-mug") for i in range(4)],
    *[(f"l{i}", "big-red-mug") for i in range(2)], *[(f"r{i}", "red-teapot") for i in range(3)],
    ("p0", "teapot"),
]


@pytest.fixture(scope="module")
def shop() -> tuple[Interactions, pd.DataFrame, ALSModel]:
    names = list(CATALOG)
    items = pd.DataFrame({"item_id": names, "product_id": names,
                          "category": [CATALOG[n][0] for n in names], "title": [CATALOG[n][1] for n in names],
                          "brand": "", "price": [CATALOG[n][2] for n in names]})
    catalog = Catalog(items)
    orders = Orders(pd.DataFrame({
        "order_id": [o for o, _ in ORDERS], "user_id": [f"u{i % 5}" for i in range(len(ORDERS))],
        "item_id": [p for _, p in ORDERS], "product_id": [p for _, p in ORDERS],
        "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(ORDERS)), "h"),
        "quantity": 1.0, "price": np.nan,
    }))
    inter = build_interactions(orders, catalog)
    factors = np.array([CATALOG[p][3] for p in inter.product_ids], np.float32)
    als = ALSModel(item_factors=factors, user_factors=np.zeros((inter.n_users, 2), np.float32))
    return inter, product_table(catalog, inter.product_ids), als


def code(inter: Interactions, product: str) -> int:
    return int(np.flatnonzero(inter.product_ids == product)[0])


def complements(inter: Interactions, pairs: dict[str, tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(P, 1) complement lists: anchor -> (complement, support)."""
    idx = np.full((inter.n_products, 1), -1, np.int32)
    support = np.zeros((inter.n_products, 1), np.int32)
    for anchor, (other, n) in pairs.items():
        idx[code(inter, anchor), 0], support[code(inter, anchor), 0] = code(inter, other), n
    return idx, support


def substitutes(shop, cfg: SubstitutesConfig, pairs: dict[str, tuple[str, int]] | None = None) -> dict[str, list[str]]:
    inter, products, als = shop
    idx, score = fit_substitutes(inter, products, als, *complements(inter, pairs or {}), cfg)
    assert idx.shape == score.shape == (inter.n_products, cfg.top_k)
    assert idx.dtype == np.int32 and score.dtype == np.float32
    return {p: [str(inter.product_ids[j]) for j in row if j >= 0] for p, row in zip(inter.product_ids, idx)}


CFG = SubstitutesConfig(top_k=10)
MUG_TREE_IS_COMPLEMENT = {"red-mug": ("mug-tree", 6)}


def test_substitutes_stay_in_category_and_exclude_the_anchor(shop):
    subs = substitutes(shop, CFG)
    for anchor, listed in subs.items():
        assert anchor not in listed
        assert {CATALOG[p][0] for p in listed} <= {CATALOG[anchor][0]}
    assert set(subs["red-teapot"]) == {"teapot"}


def test_planted_near_duplicate_ranks_first(shop):
    assert substitutes(shop, CFG, MUG_TREE_IS_COMPLEMENT)["red-mug"][0] == "blue-mug"


def test_frequent_complement_is_excluded(shop):
    assert "mug-tree" in substitutes(shop, CFG)["red-mug"]  # behaviour alone likes it
    assert "mug-tree" not in substitutes(shop, CFG, MUG_TREE_IS_COMPLEMENT)["red-mug"]
    rare = replace(CFG, complement_min_support=7)  # bought together in 6 orders only
    assert "mug-tree" in substitutes(shop, rare, MUG_TREE_IS_COMPLEMENT)["red-mug"]


def test_co_purchased_variant_is_not_treated_as_a_complement(shop):
    both = {"red-mug": ("blue-mug", 6)}  # two colours bought together
    assert substitutes(shop, CFG, both)["red-mug"][0] == "blue-mug"


def test_hard_price_band_drops_items_outside_it(shop):
    subs = substitutes(shop, replace(CFG, price_mode="hard"))
    assert "big-red-mug" not in subs["red-mug"]
    assert "white-mug" in subs["red-mug"]  # 5.5 is within ±30 % of 5
    assert subs["big-red-mug"] == []  # nothing else costs about 40


def test_soft_price_band_ranks_in_band_look_alikes_first(shop):
    soft = substitutes(shop, CFG)["red-mug"]
    no_band = substitutes(shop, replace(CFG, price_band=None))["red-mug"]
    assert no_band.index("big-red-mug") < no_band.index("white-mug")  # its title is closer...
    assert soft.index("big-red-mug") > soft.index("white-mug")  # ...but it costs 8x as much


def test_new_product_without_history_gets_content_substitutes(shop):
    inter, _, als = shop
    assert not als.item_factors[code(inter, "green-mug")].any()
    listed = substitutes(shop, CFG)["green-mug"]
    assert set(listed[:2]) == {"red-mug", "blue-mug"}  # "... Spotty Mug"
    assert "red-teapot" not in listed


def test_category_map_opens_another_category(shop):
    subs = substitutes(shop, replace(CFG, category_map={"mugs": ["teapots"]}))
    assert "red-teapot" in subs["red-mug"]
    assert {CATALOG[p][0] for p in subs["red-teapot"]} == {"teapots"}  # the map is one-way


def test_block_size_bounds_memory_without_changing_the_result(shop):
    inter, products, als = shop
    comp = complements(inter, MUG_TREE_IS_COMPLEMENT)
    whole = fit_substitutes(inter, products, als, *comp, CFG)
    blocked = fit_substitutes(inter, products, als, *comp, replace(CFG, block_size=3))
    np.testing.assert_array_equal(whole[0], blocked[0])
    np.testing.assert_allclose(whole[1], blocked[1])


def test_short_lists_are_padded(shop):
    inter, products, als = shop
    idx, score = fit_substitutes(inter, products, als, *complements(inter, {}), CFG)
    row = code(inter, "red-teapot")
    assert list(idx[row, 1:]) == [-1] * (CFG.top_k - 1) and not score[row, 1:].any()
    assert (np.diff(score, axis=1) <= 0).all()  # best first


def test_baselines_use_one_signal_each(shop):
    inter, products, als = shop
    lists = substitute_baselines(inter, products, als, CFG, k=3)
    names = {name: [str(inter.product_ids[j]) for j in rows[code(inter, "red-mug")] if j >= 0]
             for name, rows in lists.items()}
    assert names["als-similar"][0] == "mug-tree"  # factor (1, .05) is nearly red-mug's
    assert names["content-similar"][0] == "big-red-mug"  # "Red Spotty Mug" + "Large"
    assert (lists["als-similar"][code(inter, "green-mug")] == -1).all()  # no factors, no neighbours


def test_top_k_rows_breaks_ties_by_product_code():
    score = np.array([[1.0, 2.0, 2.0, 2.0, -np.inf]], np.float32)
    idx, val = top_k_rows(score, np.array([10, 11, 12, 13, 14]), 2)
    assert idx.tolist() == [[11, 12]] and val.tolist() == [[2.0, 2.0]]
    idx, _ = top_k_rows(score, np.array([10, 11, 12, 13, 14]), 6)
    assert idx.tolist() == [[11, 12, 13, 10, -1, -1]]


def test_variant_family_ground_truth_is_not_a_content_feature_by_default():
    products = pd.DataFrame({"product_id": ["a", "b", "c"], "category": "all", "title": "Mug", "brand": "",
                             "price": 1.0, "n_variants": 1, "family": ["f1", "f1", "f2"], "size": ["S", "S", "S"]})
    default = content_matrix(products, SubstitutesConfig().content_config()).toarray()
    assert np.allclose(default[0], default[2])  # only the family tells a/b from c
    with_family = content_matrix(products, replace(SubstitutesConfig(), content_exclude_columns=[]).content_config())
    sim = (with_family @ with_family.T).toarray()
    assert sim[0, 1] > sim[0, 2]


def _big_category(n: int = 600, twins: int = 40, seed: int = 0):
    """One category of `n` products with random three-word titles; the first `twins`
    products each have a planted twin (same title plus 'XL', about the same price)."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(300)])
    titles = [" ".join(rng.choice(words, 3, replace=False)) for _ in range(n - twins)]
    titles += [f"{t} XL" for t in titles[:twins]]
    price = np.round(rng.uniform(5, 50, n - twins), 2)
    price = np.r_[price, price[:twins] * 1.05]
    names = [f"p{i:04d}" for i in range(n)]
    items = pd.DataFrame({"item_id": names, "product_id": names, "category": "vases", "title": titles,
                          "brand": "", "price": price})
    orders = Orders(pd.DataFrame({"order_id": [f"o{i}" for i in range(n)], "user_id": "u0", "item_id": names,
                                  "product_id": names, "ts": pd.Timestamp("2024-01-01"), "quantity": 1.0,
                                  "price": np.nan}))
    inter = build_interactions(orders, Catalog(items))
    als = ALSModel(item_factors=rng.standard_normal((n, 4)).astype(np.float32),
                   user_factors=np.zeros((1, 4), np.float32))
    return inter, product_table(Catalog(items), inter.product_ids), als, n - twins


def test_bounded_candidates_still_find_planted_twins():
    from training.substitutes import _candidate_groups, _signals

    inter, products, als, first_twin = _big_category()
    none = np.full((inter.n_products, 1), -1, np.int32)
    cfg = replace(CFG, max_candidates=60)  # a tenth of the category
    s = _signals(inter, products, als, none, np.zeros_like(none), cfg.content_config())
    whole, windows = _candidate_groups(inter, s, cfg)
    assert whole == [] and windows is not None
    assert windows.cands.shape[1] * windows.n_cuts <= 60  # pairs per anchor, not per category
    assert (np.sort(windows.anchors[windows.anchors >= 0]) == np.repeat(np.arange(600), windows.n_cuts)).all()
    bounded, _ = fit_substitutes(inter, products, als, none, np.zeros_like(none), cfg)
    exact, _ = fit_substitutes(inter, products, als, none, np.zeros_like(none), replace(CFG, max_candidates=None))
    twin = np.arange(40) + first_twin
    assert (exact[:40, 0] == twin).all()  # the planted twin is the best substitute...
    assert (bounded[:40, 0] == twin).mean() >= 0.95  # ...and bounded candidates still find it
    assert (bounded[twin, 0] == np.arange(40)).mean() >= 0.95
    assert all(len(set(row[row >= 0])) == len(row[row >= 0]) for row in bounded)  # merged lists: distinct


def test_categories_within_max_candidates_compare_every_pair(shop):
    inter, products, als = shop
    comp = complements(inter, MUG_TREE_IS_COMPLEMENT)
    every = fit_substitutes(inter, products, als, *comp, replace(CFG, max_candidates=None))
    bounded = fit_substitutes(inter, products, als, *comp, replace(CFG, max_candidates=6))  # mugs: 6 products
    np.testing.assert_array_equal(every[0], bounded[0])
    np.testing.assert_array_equal(every[1], bounded[1])


def test_merging_cuts_keeps_each_product_once_best_first():
    from training.substitutes import _merge_cuts

    idx = np.array([[[5, 3, -1], [3, 7, 9]]], np.int32)  # one anchor, two cuts
    score = np.array([[[0.9, 0.5, 0.0], [0.5, 0.9, 0.1]]], np.float32)
    merged, val = _merge_cuts(idx, score, 4)
    assert merged.tolist() == [[5, 7, 3, 9]] and np.allclose(val, [[0.9, 0.9, 0.5, 0.1]])
    merged, _ = _merge_cuts(idx, score, 6)
    assert merged.tolist() == [[5, 7, 3, 9, -1, -1]]


def test_sorted_windows_cover_each_anchor_once_with_its_neighbours():
    from training.substitutes import sorted_windows

    ordered = np.array([9, 2, 7, 4, 0, 5, 1, 8, 3, 6])
    anchors, cands = sorted_windows(ordered, ordered != 4, window=4)
    assert sorted(anchors[anchors >= 0].tolist()) == [0, 1, 2, 3, 5, 6, 7, 8, 9]  # 4 is no anchor here
    assert cands.shape == (5, 4) and (np.diff(cands, axis=1) > 0).all()
    pos = {p: i for i, p in enumerate(ordered)}
    for a_row, c_row in zip(anchors, cands):
        for a in a_row[a_row >= 0]:
            near = ordered[max(0, pos[a] - 1):pos[a] + 2]  # window / 4 on either side
            assert set(near) <= set(c_row)
