"""Category-level complements: which categories are bought together (hot dogs -> buns,
sausages; charcoal -> paper plates, sauces). The service uses them for products
without purchase history.

Score: lift shrunk toward 1 by a pseudo-count of orders,

    score(a, b) = (c_ab + prior_orders) / (E_ab + prior_orders),   E_ab = n_a n_b / N

c_ab: orders containing both categories, E_ab: the count expected if they were bought
independently. With plenty of evidence it is the lift (what goes *specifically* with a
category, not the staples every basket holds); with little, it stays near 1, so a
small category does not top the list on two coincidental orders. Only categories
bought together more often than chance (c_ab > E_ab) are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from training.copurchase import Cooccurrence, order_weights, select_top_k
from training.data import Interactions


@dataclass
class CategoryComplementsConfig:
    """top_k: categories stored per category. min_support: orders that must contain
    both. prior_orders: the pseudo-count above. half_life_days: optional recency
    weighting of orders, as for products (support stays an exact count)."""

    top_k: int = 10
    min_support: int = 2
    prior_orders: float = 50.0
    half_life_days: float | None = None

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.min_support < 1 or self.prior_orders < 0:
            raise ValueError(f"[category_complements] top_k and min_support must be >= 1, prior_orders >= 0; "
                             f"got {self.top_k}, {self.min_support}, {self.prior_orders}")


def category_cooccurrence(inter: Interactions, min_support: int, half_life_days: float | None) -> Cooccurrence:
    """Co-occurrence of categories within orders (a category counts once per order)."""
    n_cat = len(inter.category_names)
    y = sp.csr_matrix(
        (np.ones(len(inter.order), np.float32), (inter.order, inter.product_category[inter.product])),
        shape=(inter.n_orders, n_cat),
    )
    y.sum_duplicates()
    y.data[:] = 1.0
    w = order_weights(inter, half_life_days)
    counts = (y.T @ y).tocoo()
    keep = (counts.row != counts.col) & (counts.data >= min_support)
    rows, cols = counts.row[keep].astype(np.int32), counts.col[keep].astype(np.int32)
    support = counts.data[keep]
    if half_life_days is None:
        weight, item_weight = support, np.asarray(y.sum(axis=0), dtype=np.float64).ravel()
    else:
        weight = np.asarray((y.T @ sp.diags(w) @ y)[rows, cols]).ravel()
        item_weight = np.asarray(y.T @ w).ravel()
    return Cooccurrence(rows=rows, cols=cols, support=support.astype(np.int32),
                        weight=weight.astype(np.float32), item_weight=item_weight,
                        total_weight=float(w.sum()))


def fit_category_complements(inter: Interactions, cfg: CategoryComplementsConfig) -> tuple[np.ndarray, np.ndarray]:
    """(idx (C, top_k) int32 other categories best first, -1 padded; score (C, top_k)
    float32 shrunk lift)."""
    n_cat = len(inter.category_names)
    co = category_cooccurrence(inter, cfg.min_support, cfg.half_life_days)
    expected = co.item_weight[co.rows] * co.item_weight[co.cols] / max(co.total_weight, 1e-300)
    score = (co.weight + cfg.prior_orders) / (expected + cfg.prior_orders)
    pos = np.flatnonzero(co.weight > expected)
    # Each category is its own "category" here, so no slot is reserved for itself.
    top = select_top_k(co.rows[pos], co.cols[pos], score[pos], co.support[pos], np.arange(n_cat),
                       n_cat, cfg.top_k, same_category_slots=0)
    return top.idx, top.score
