"""Category complements: which categories go with which, other categories only."""
from __future__ import annotations

import numpy as np

from training.category_complements import CategoryComplementsConfig, fit_category_complements
from training.data import Interactions


def category_shop(baskets: list[list[str]]) -> Interactions:
    """One product per category, so a basket lists categories directly."""
    names = sorted({c for b in baskets for c in b})
    code = {c: i for i, c in enumerate(names)}
    sizes = [len(b) for b in baskets]
    product = np.array([code[c] for b in baskets for c in b], np.int32)
    return Interactions(
        product_ids=np.array(names), product_category=np.arange(len(names), dtype=np.int32),
        category_names=np.array(names), user_ids=np.array(["u"]),
        order=np.repeat(np.arange(len(baskets)), sizes).astype(np.int64), user=np.zeros(len(product), np.int32),
        product=product, ts=np.zeros(len(product), np.int64), quantity=np.ones(len(product), np.float32),
    )


def complements_of(inter: Interactions, idx: np.ndarray, name: str) -> list[str]:
    row = idx[list(inter.category_names).index(name)]
    return [str(inter.category_names[j]) for j in row if j >= 0]


def outdoor_shop() -> Interactions:
    """2000 orders. 600 hold a jacket, with trousers (400) or a belt (200); trousers
    also sell alone (200), belts less so (50). Milk is in every other block of ten
    orders: as often with a jacket as without."""
    baskets = []
    for i in range(2000):
        b = ["milk"] if (i // 10) % 2 == 0 else []
        if i % 10 < 3:
            b += ["jacket", "trousers" if i % 10 < 2 else "belt"]
        elif i % 10 == 3:
            b.append("trousers")
        elif i % 40 == 4:
            b.append("belt")
        baskets.append(b if len(b) >= 2 else b + ["bread"])
    return category_shop(baskets)


def test_planted_category_pair_is_recovered_and_unrelated_staple_left_out():
    inter = outdoor_shop()
    idx, score = fit_category_complements(inter, CategoryComplementsConfig())
    got = complements_of(inter, idx, "jacket")
    assert got[:2] == ["belt", "trousers"]  # belt: rarely without a jacket, higher lift
    assert "milk" not in got  # bought with jackets exactly as often as chance


def test_never_lists_the_category_itself_and_pads_to_top_k():
    inter = outdoor_shop()
    idx, score = fit_category_complements(inter, CategoryComplementsConfig(top_k=8))
    n_cat = len(inter.category_names)
    assert idx.shape == score.shape == (n_cat, 8)  # more slots than categories
    assert (idx.dtype, score.dtype) == (np.int32, np.float32)
    assert not (idx == np.arange(n_cat)[:, None]).any()
    assert (score[idx < 0] == 0).all() and (score[idx >= 0] > 1).all()  # shrunk lift of kept pairs > 1


def test_a_coincidence_in_a_tiny_category_does_not_top_the_list():
    # "souvenir" was in 2 orders, both with a jacket: the highest raw lift, but two
    # orders are no evidence next to the belt's 200.
    inter = outdoor_shop()
    merged = category_shop([[str(inter.category_names[p]) for p in inter.product[inter.order == o]]
                            for o in range(inter.n_orders)] + [["jacket", "souvenir"]] * 2)
    idx, _ = fit_category_complements(merged, CategoryComplementsConfig())
    got = complements_of(merged, idx, "jacket")
    assert got.index("belt") < got.index("souvenir")
    raw_lift, _ = fit_category_complements(merged, CategoryComplementsConfig(prior_orders=0.0))
    assert complements_of(merged, raw_lift, "jacket")[0] == "souvenir"


def test_min_support_drops_categories_bought_together_once():
    inter = category_shop([["a", "b"], ["a", "b"], ["a", "c"], ["d", "e"], ["d", "e"]])
    idx, _ = fit_category_complements(inter, CategoryComplementsConfig(min_support=2, prior_orders=0.0))
    assert complements_of(inter, idx, "a") == ["b"]


def test_one_category_shop_has_no_category_complements():
    inter = category_shop([["all"], ["all"]])
    idx, score = fit_category_complements(inter, CategoryComplementsConfig(top_k=3))
    assert idx.shape == (1, 3) and (idx == -1).all() and (score == 0).all()
