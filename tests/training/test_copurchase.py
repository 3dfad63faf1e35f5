"""Co-purchase complements: what ranks first, what is kept, and the exact supports."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.copurchase import (CopurchaseConfig, backoff_levels, backoff_prior, cooccurrence, fit_cocount,
                                 fit_copurchase, fit_copurchase_and_cocount, order_weights, pair_scores,
                                 select_top_k)
from training.data import Interactions

from tests.training.baskets import DAY, shop


def neighbours(inter: Interactions, model, name: str) -> list[str]:
    row = model.idx[list(inter.product_ids).index(name)]
    return [str(inter.product_ids[j]) for j in row if j >= 0]


def camping_shop() -> Interactions:
    """1000 orders, all on one day (so the half-life plays no part). Milk is in 60 % of all
    orders, independently of everything else; pegs are bought with the tent in 150 of its
    200 orders and never without it."""
    baskets = []
    for i in range(1000):
        b = ["milk"] if i % 5 < 3 else []
        if i % 5 == 0 or i % 5 == 3:  # tent orders: 200 with milk, 200 without
            b.append("tent") if i < 500 else None
        if "tent" in b and i % 4 != 3:
            b.append("pegs")
        if i % 10 == 1:
            b.append("bread")
        baskets.append(b + ["filler"] if len(b) < 2 else b)
    category = {"milk": "food", "bread": "food", "filler": "misc", "tent": "camping", "pegs": "camping-parts"}
    return shop(baskets, category, days=[0] * len(baskets))


def test_planted_complement_ranks_above_a_popular_unrelated_item():
    inter = camping_shop()
    model = fit_copurchase(inter, CopurchaseConfig())
    assert neighbours(inter, model, "tent")[0] == "pegs"
    assert neighbours(inter, model, "pegs")[0] == "tent"


def test_popular_unrelated_item_does_not_bury_a_relevant_one():
    # 2000 orders, milk in 60 % of them independently of the tent (300 of its 500
    # orders); pegs only ever go with the tent (290 orders). Raw co-count puts milk
    # first; the model puts pegs first, then milk.
    baskets = []
    for i in range(2000):
        b = ["milk"] if i % 10 < 6 else []
        if i < 500:
            b += ["tent"] + (["pegs"] if i % 50 < 29 else [])
        else:
            b.append("x")
        baskets.append(b)
    inter = shop(baskets, {"tent": "camping", "pegs": "parts", "milk": "food", "x": "misc"})
    assert neighbours(inter, fit_cocount(inter, 5), "tent")[:2] == ["milk", "pegs"]
    assert neighbours(inter, fit_copurchase(inter, CopurchaseConfig()), "tent")[:2] == ["pegs", "milk"]


def test_a_relevant_popular_item_is_not_buried_by_a_rare_coincidence():
    # Butter goes with bread (popular) in 80 of its 100 orders; caviar was in 2 of them.
    baskets = ([["butter", "bread"]] * 78 + [["butter", "bread", "caviar"]] * 2 + [["butter", "x"]] * 20
               + [["bread", "y"]] * 300 + [["z", "y"]] * 100)
    inter = shop(baskets, {"butter": "dairy", "bread": "bakery", "caviar": "deli", "x": "m", "y": "n", "z": "o"})
    assert neighbours(inter, fit_copurchase(inter, CopurchaseConfig()), "butter")[0] == "bread"


def test_popular_item_does_not_dominate_every_list():
    inter = camping_shop()
    model = fit_copurchase(inter, CopurchaseConfig())
    firsts = {neighbours(inter, model, p)[0] for p in ("tent", "pegs")}
    assert "milk" not in firsts


def test_supports_are_exact_order_counts():
    baskets = [["a", "b", "c"], ["a", "b"], ["a", "c"], ["a", "b", "d"], ["a", "a", "e"], ["e", "a"]]
    inter = shop(baskets, {p: "one" for p in "abcde"})
    model = fit_copurchase(inter, CopurchaseConfig(top_k=4))
    a = 0
    got = {str(inter.product_ids[j]): int(s) for j, s in zip(model.idx[a], model.support[a]) if j >= 0}
    # a twice in one order counts once: {a, e} is in two orders, not three.
    assert got == {"b": 3, "c": 2, "d": 1, "e": 2}


def test_support_is_symmetric():
    inter = camping_shop()
    co = cooccurrence(inter, 1)
    forward = dict(zip(zip(co.rows.tolist(), co.cols.tolist()), co.support.tolist()))
    assert all(forward[(b, a)] == s for (a, b), s in forward.items())


def test_min_support_drops_rare_pairs():
    baskets = [["a", "b"]] * 3 + [["a", "c"]] * 2 + [["a", "d"]]
    inter = shop(baskets, {p: "one" for p in "abcd"})
    assert neighbours(inter, fit_copurchase(inter, CopurchaseConfig(min_support=3)), "a") == ["b"]
    assert sorted(neighbours(inter, fit_copurchase(inter, CopurchaseConfig(min_support=2)), "a")) == ["b", "c"]
    assert sorted(neighbours(inter, fit_copurchase(inter, CopurchaseConfig(min_support=1)), "a")) == ["b", "c", "d"]


def test_time_decay_favours_recent_co_purchases_and_keeps_exact_support():
    # x went with y in 5 orders a year ago, with z in 4 orders this week.
    baskets = [["x", "y"]] * 5 + [["x", "z"]] * 4
    inter = shop(baskets, {"x": "a", "y": "b", "z": "c"}, days=[0] * 5 + [365] * 4)
    plain = CopurchaseConfig(prior_orders=0.0, popularity_exponent=0.0, rarity_margin_orders=0.0, half_life_days=None)
    assert neighbours(inter, fit_copurchase(inter, plain), "x") == ["y", "z"]
    decayed = fit_copurchase(inter, CopurchaseConfig(prior_orders=0.0, popularity_exponent=0.0,
                                                     rarity_margin_orders=0.0, half_life_days=30))
    assert neighbours(inter, decayed, "x") == ["z", "y"]
    assert decayed.support[0, :2].tolist() == [4, 5]


def test_order_weights_halve_every_half_life():
    inter = shop([["a", "b"], ["a", "b"], ["a", "b"]], {"a": "x", "b": "y"}, days=[0, 30, 60])
    np.testing.assert_allclose(order_weights(inter, 30.0), [0.25, 0.5, 1.0])
    np.testing.assert_array_equal(order_weights(inter, None), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="half_life_days"):
        order_weights(inter, 0.0)
    assert CopurchaseConfig(half_life_days=0).half_life_days is None  # "off" from a TOML file
    with pytest.raises(ValueError, match="half_life_days"):
        CopurchaseConfig(half_life_days=-1)


def test_same_category_neighbours_get_limited_slots_when_others_exist():
    # Shirt's strongest mates are other shirts; the service hides those by default.
    baskets = [["shirt", "shirt2", "shirt3", "shirt4"]] * 10 + [["shirt", "belt"]] * 3 + [["shirt", "tie"]] * 2
    cat = {"shirt": "shirts", "shirt2": "shirts", "shirt3": "shirts", "shirt4": "shirts",
           "belt": "belts", "tie": "ties"}
    inter = shop(baskets, cat)
    model = fit_copurchase(inter, CopurchaseConfig(top_k=3, same_category_slots=1, prior_orders=0.0))
    got = neighbours(inter, model, "shirt")
    assert len(got) == 3 and {"belt", "tie"} <= set(got)  # one same-category slot only
    assert got[0].startswith("shirt")  # stored in score order, mixed
    # Without enough other-category mates, same-category ones fill the row.
    wide = fit_copurchase(inter, CopurchaseConfig(top_k=5, same_category_slots=1, prior_orders=0.0))
    assert len(neighbours(inter, wide, "shirt")) == 5


def test_one_category_catalog_fills_every_slot():
    baskets = [["a", "b", "c", "d", "e"]] * 3
    inter = shop(baskets, {p: "all" for p in "abcde"})
    model = fit_copurchase(inter, CopurchaseConfig(top_k=4, same_category_slots=1))
    assert (model.idx >= 0).all()


def test_rows_are_sorted_padded_and_typed():
    inter = camping_shop()
    model = fit_copurchase(inter, CopurchaseConfig(top_k=8))
    assert model.idx.shape == model.score.shape == model.support.shape == (inter.n_products, 8)
    assert (model.idx.dtype, model.score.dtype, model.support.dtype) == (np.int32, np.float32, np.int32)
    valid = model.idx >= 0
    assert (np.diff(np.where(valid, model.score, -1.0), axis=1) <= 0).all()
    assert (valid[:, 1:] <= valid[:, :-1]).all()  # padding only at the end
    assert (model.support[~valid] == 0).all()
    assert not (model.idx == np.arange(inter.n_products)[:, None]).any()  # never itself


def reference_top_k(rows, cols, score, category, n_products, top_k, slots):
    """Row by row, the rule `select_top_k` documents (slow, obviously right)."""
    out = np.full((n_products, top_k), -1)
    for a in range(n_products):
        mine = [i for i in np.flatnonzero(rows == a)]
        ranked = sorted(mine, key=lambda i: (-score[i], i))
        same = [i for i in ranked if category[cols[i]] == category[a]]
        other = [i for i in ranked if category[cols[i]] != category[a]]
        keep_same = min(len(same), max(slots, top_k - len(other)))
        kept = sorted(same[:keep_same] + other[:top_k - keep_same], key=lambda i: (-score[i], i))
        out[a, :len(kept)] = cols[kept]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_select_top_k_matches_the_row_by_row_rule(seed):
    rng = np.random.default_rng(seed)
    n, e = 40, 1500
    pairs = np.unique(rng.integers(0, n, (e, 2)), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    rows, cols = pairs[:, 0].astype(np.int32), pairs[:, 1].astype(np.int32)
    support = rng.integers(1, 6, len(rows)).astype(np.int32)
    score = (rng.random(len(rows)) * support).astype(np.float32)
    score[::7] = score[0]  # ties
    category = rng.integers(0, 3, n)
    got = select_top_k(rows, cols, score, support, category, n, top_k=8, same_category_slots=2)
    np.testing.assert_array_equal(got.idx, reference_top_k(rows, cols, score, category, n, 8, 2))


def test_thin_evidence_leans_on_the_shop_wide_basket_mix():
    # "new" sold twice: once with a one-off item, once with bread, which is in half of
    # all orders. One order each is no evidence, so the shop-wide favourite leads.
    baskets = [["new", "oneoff"], ["new", "bread"]] + [["bread", "x"]] * 50 + [["y", "x"]] * 50
    inter = shop(baskets, {"new": "a", "oneoff": "b", "bread": "c", "x": "d", "y": "e"})
    assert neighbours(inter, fit_copurchase(inter, CopurchaseConfig()), "new") == ["bread", "oneoff"]
    no_prior = fit_copurchase(inter, CopurchaseConfig(prior_orders=0.0))
    assert neighbours(inter, no_prior, "new") == ["oneoff", "bread"]


def test_top_k_below_the_same_category_slots_still_fills_rows(tmp_path):
    """A small top_k caps the same-category share instead of overflowing the row."""
    from training.data import build_interactions
    from training.demo_data import generate_shop, write_shop
    from training.io import DataReport, load_catalog, load_orders

    files = write_shop(generate_shop(seed=1, n_styles=60, n_users=200, n_orders=1500), tmp_path)
    report = DataReport()
    catalog = load_catalog(str(files["catalog"]), report)
    inter = build_interactions(load_orders(str(files["orders"]), catalog, report), catalog)
    model = fit_copurchase(inter, CopurchaseConfig(top_k=2, same_category_slots=10))
    assert model.idx.shape == (inter.n_products, 2)
    assert (model.idx[model.support[:, 0] > 0, 0] >= 0).all()


def margin_shop() -> Interactions:
    """1000 orders on one day, milk in every other one. "thin" sold 3 times: twice with milk, once
    with glaze (3 orders in all). "big" sold 400 times: 200 with milk, 100 with sauce
    (110 orders in all)."""
    baskets = []
    for i in range(1000):
        b = ["milk"] if i % 2 == 0 else []
        if i in (0, 1, 2):
            b.append("thin")
        if i in (1, 700, 701):
            b.append("glaze")
        if 100 <= i < 500:
            b.append("big")
            if i % 4 == 1:
                b.append("sauce")
        if 600 <= i < 610:
            b.append("sauce")
        baskets.append(b if len(b) >= 2 else b + ["filler"])
    cat = {"milk": "dairy", "thin": "a", "glaze": "b", "big": "c", "sauce": "d", "filler": "e"}
    return shop(baskets, cat, days=[0] * len(baskets))


def test_rarity_margin_decides_thin_evidence_and_leaves_strong_evidence_alone():
    inter = margin_shop()
    plain = fit_copurchase(inter, CopurchaseConfig(rarity_margin_orders=0.0))
    assert neighbours(inter, plain, "thin")[0] == "milk"  # 2 orders against 1: the prior favours milk
    assert neighbours(inter, plain, "big")[0] == "milk"
    margin = fit_copurchase(inter, CopurchaseConfig(rarity_margin_orders=1.0))
    # One order's lead is inside the margin (1.0 * ln(p_milk / p_glaze) ~ 5 orders) ...
    assert neighbours(inter, margin, "thin")[0] == "glaze"
    # ... a lead of 100 orders is not: the well-sold product keeps its staple first.
    assert neighbours(inter, margin, "big")[0] == "milk"
    # The supports stay exact order counts.
    thin = list(inter.product_ids).index("thin")
    got = {str(inter.product_ids[j]): int(s) for j, s in zip(margin.idx[thin], margin.support[thin]) if j >= 0}
    assert got["milk"] == 2 and got["glaze"] == 1


def test_rarity_margin_adds_its_documented_term_and_zero_is_off():
    inter = camping_shop()
    co = cooccurrence(inter, 1)
    plain = pair_scores(co, 50.0, 0.08)
    np.testing.assert_array_equal(pair_scores(co, 50.0, 0.08, 0.0), plain)
    p = co.item_weight / co.total_weight
    expected = plain + 0.5 * np.log(p.max() / p[co.cols]) / co.item_weight[co.rows]
    np.testing.assert_allclose(pair_scores(co, 50.0, 0.08, 0.5), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="rarity_margin_orders"):
        CopurchaseConfig(rarity_margin_orders=-1.0)


def test_cocount_baseline_ignores_recency_and_margin():
    # x went with y in 5 orders a year ago, with z in 4 orders this week: raw co-count
    # still ranks y first whatever the co-purchase defaults are.
    inter = shop([["x", "y"]] * 5 + [["x", "z"]] * 4, {"x": "a", "y": "b", "z": "c"}, days=[0] * 5 + [365] * 4)
    assert neighbours(inter, fit_cocount(inter, 5), "x") == ["y", "z"]


def test_cocount_from_the_models_own_counts_equals_the_separate_fit():
    """A training run gets the baseline from the co-purchase model's co-occurrence: the
    same lists, in the same order, as fitting it on its own."""
    rng = np.random.default_rng(3)
    names = [f"p{i}" for i in range(40)]
    baskets = [list(rng.choice(names, rng.integers(2, 7), replace=False)) for _ in range(600)]
    inter = shop(baskets, {n: f"c{i % 5}" for i, n in enumerate(names)}, days=rng.integers(0, 300, 600).tolist())
    model, cocount = fit_copurchase_and_cocount(inter, CopurchaseConfig(top_k=8))
    alone = fit_cocount(inter, 8)
    np.testing.assert_array_equal(cocount.idx, alone.idx)
    np.testing.assert_array_equal(cocount.support, alone.support)
    np.testing.assert_array_equal(model.idx, fit_copurchase(inter, CopurchaseConfig(top_k=8)).idx)


def pasta_shop() -> tuple[Interactions, pd.DataFrame]:
    """1000 orders on one day, milk in every other one. Five pastas (type pasta, category
    dry) go with sauce, 20 orders each; three rices (type rice, also category dry) go
    with curry, 50 orders each. "newpasta" sold twice: with milk and sauce, with milk
    and curry."""
    baskets = []
    for i in range(1000):
        b = ["milk"] if i % 2 == 0 else []
        if i < 100:
            b += [f"pasta{i // 20}", "sauce"]
        elif i < 250:
            b += [f"rice{(i - 100) // 50}", "curry"]
        baskets.append(b if len(b) >= 2 else b + ["filler"])
    baskets += [["newpasta", "milk", "sauce"], ["newpasta", "milk", "curry"]]
    cat = {"milk": "dairy", "sauce": "sauces", "curry": "spices", "filler": "misc", "newpasta": "dry"}
    cat.update({f"pasta{i}": "dry" for i in range(5)} | {f"rice{i}": "dry" for i in range(3)})
    inter = shop(baskets, cat, days=[0] * len(baskets))
    ptype = ["pasta" if n.startswith(("pasta", "newpasta")) else "rice" if n.startswith("rice") else n
             for n in inter.product_ids]
    return inter, pd.DataFrame({"product_id": inter.product_ids, "product_type": ptype})


def test_thin_evidence_backs_off_to_its_groups_basket_mix():
    inter, products = pasta_shop()
    # Own evidence: milk 2 orders, sauce 1, curry 1. Pastas go with sauce: the type
    # level picks it over the shop's staple.
    assert neighbours(inter, fit_copurchase(inter, CopurchaseConfig(), products), "newpasta")[0] == "sauce"
    # The category (dry: more rice orders than pasta ones) backs off to curry instead ...
    by_category = fit_copurchase(inter, CopurchaseConfig(backoff_column=""), products)
    assert neighbours(inter, by_category, "newpasta")[0] == "curry"
    assert neighbours(inter, fit_copurchase(inter, CopurchaseConfig()), "newpasta")[0] == "curry"  # no catalog
    # ... and without back-off the shop-wide mix and the extra order put milk first.
    no_backoff = fit_copurchase(inter, CopurchaseConfig(backoff=False), products)
    assert neighbours(inter, no_backoff, "newpasta")[0] == "milk"
    # Strong evidence is left alone: each rice's own 50 orders with curry decide.
    assert neighbours(inter, fit_copurchase(inter, CopurchaseConfig(), products), "rice0")[0] == "curry"


def test_backoff_prior_follows_its_formula_pair_by_pair():
    rng = np.random.default_rng(5)
    names = [f"p{i:02d}" for i in range(30)]
    baskets = [list(rng.choice(names, rng.integers(2, 6), replace=False)) for _ in range(300)]
    inter = shop(baskets, {n: f"c{i % 3}" for i, n in enumerate(names)}, days=rng.integers(0, 200, 300).tolist())
    products = pd.DataFrame({"t": [f"t{i % 4}" for i in range(30)]})  # shared across categories: 12 groups
    levels = backoff_levels(inter, products, "t")
    assert [len(np.unique(lv)) for lv in levels] == [3, 12]
    co = cooccurrence(inter, 1, 60.0)
    got = backoff_prior(inter, co, levels, 7.0, 60.0)
    w = order_weights(inter, 60.0)
    baskets_of = [set(inter.product[inter.order == o].tolist()) for o in range(inter.n_orders)]
    p = co.item_weight / co.total_weight
    for e in rng.choice(len(co.rows), 200, replace=False):
        a, j = int(co.rows[e]), int(co.cols[e])
        expect = p[j]
        for codes in levels:
            group = set(np.flatnonzero(codes == codes[a]).tolist())
            if j in group:
                continue
            holds = [o for o, b in enumerate(baskets_of) if b & group]
            c = sum(w[o] for o in holds if j in baskets_of[o])
            expect = (c + 7.0 * expect) / (sum(w[o] for o in holds) + 7.0)
        assert got[e] == pytest.approx(expect, rel=1e-5)


def test_one_category_shop_backs_off_to_the_shop_as_before():
    """Every neighbour is in the anchor's only category, so the back-off is the shop-wide prior."""
    rng = np.random.default_rng(2)
    names = [f"p{i}" for i in range(25)]
    baskets = [list(rng.choice(names, rng.integers(2, 6), replace=False)) for _ in range(400)]
    inter = shop(baskets, {n: "all" for n in names}, days=rng.integers(0, 200, 400).tolist())
    co = cooccurrence(inter, 1, 80.0)
    np.testing.assert_allclose(backoff_prior(inter, co, backoff_levels(inter, None, "product_type"), 50.0, 80.0),
                               (co.item_weight / co.total_weight)[co.cols], rtol=1e-6)
    a = fit_copurchase(inter, CopurchaseConfig(top_k=8))
    b = fit_copurchase(inter, CopurchaseConfig(top_k=8, backoff=False))
    np.testing.assert_array_equal(a.idx, b.idx)


def test_a_shop_without_pairs_fits_empty_rows():
    inter = shop([["a"], ["b"], ["a"]], {"a": "x", "b": "y"})
    products = pd.DataFrame({"product_type": ["t", "t"]})
    model = fit_copurchase(inter, CopurchaseConfig(top_k=3), products)
    assert (model.idx == -1).all() and (model.support == 0).all()


def test_backoff_and_margin_power_keys_round_trip_and_validate(tmp_path):
    from training.config import ConfigError, TrainConfig

    path = tmp_path / "train.toml"
    path.write_text('[copurchase]\nbackoff = false\nbackoff_column = "department"\nrarity_margin_power = 1\n')
    cfg = TrainConfig.from_toml(path)
    assert (cfg.copurchase.backoff, cfg.copurchase.backoff_column, cfg.copurchase.rarity_margin_power) == \
        (False, "department", 1.0)
    assert TrainConfig.from_dict(cfg.to_dict()).copurchase == cfg.copurchase
    defaults = CopurchaseConfig()
    assert (defaults.backoff, defaults.backoff_column, defaults.rarity_margin_power) == (True, "product_type", 0.5)
    with pytest.raises(ConfigError, match="backoff_column"):
        TrainConfig.from_dict({"copurchase": {"backoff_column": 3}})
    with pytest.raises(ConfigError, match="backoff"):
        TrainConfig.from_dict({"copurchase": {"backoff": "yes"}})
    with pytest.raises(ValueError, match="rarity_margin_power"):
        TrainConfig.from_dict({"copurchase": {"rarity_margin_power": 2}})
    with pytest.raises(ConfigError, match="unknown key 'backof'"):
        TrainConfig.from_dict({"copurchase": {"backof": True}})


def test_backoff_prior_is_exact_for_levels_that_do_not_nest():
    """A finer group spanning two coarser ones is visited once per coarse group."""
    rng = np.random.default_rng(8)
    names = [f"p{i:02d}" for i in range(12)]
    baskets = [list(rng.choice(names, rng.integers(2, 5), replace=False)) for _ in range(80)]
    inter = shop(baskets, {n: "one" for n in names})
    co = cooccurrence(inter, 1)
    coarse, fine = np.arange(12) % 2, np.arange(12) // 4  # fine group 0 holds p00-p03, both coarse groups
    got = backoff_prior(inter, co, [coarse.astype(np.int32), fine.astype(np.int32)], 3.0, None)
    baskets_of = [set(inter.product[inter.order == o].tolist()) for o in range(inter.n_orders)]
    p = co.item_weight / co.total_weight
    for e in range(len(co.rows)):
        a, j = int(co.rows[e]), int(co.cols[e])
        expect = p[j]
        for codes in (coarse, fine):
            group = set(np.flatnonzero(codes == codes[a]).tolist())
            if j not in group:
                holds = [b for b in baskets_of if b & group]
                expect = (sum(j in b for b in holds) + 3.0 * expect) / (len(holds) + 3.0)
        assert got[e] == pytest.approx(expect, rel=1e-5)
