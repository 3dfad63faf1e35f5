"""Co-purchase complements: which products are bought in the same order.

Counts come from one sparse product, C = X.T @ X over the binary orders x products
matrix X, so the cost grows with the number of co-occurring pairs, never with P².
Each pair keeps its exact support (orders containing both), which the service quotes
("bought together in 312 orders"); the ranking score is separate from it.

Score (see `CopurchaseConfig`; b = prior_orders, m = rarity_margin_orders)::

    score(a, j) = P~(j | a) / p_j ** popularity_exponent + m * ln(p_max / p_j) / n_a ** rarity_margin_power
    P~(j | a)   = (c_aj + b * P~(j | g1)) / (n_a + b)               anchor -> its group
    P~(j | g1)  = (c_g1j + b * P~(j | g2)) / (n_g1 + b)              group -> its category
    P~(j | g2)  = (c_g2j + b * p_j) / (n_g2 + b)                     category -> shop

c_aj: orders with both, n_a: orders with a, p_j: share of orders with j; c_gj: orders
holding some product of group g and j, n_g: orders holding group g. The levels nest:
g2 is the anchor's category (every shop has one), g1 the products of its category with
the same `backoff_column` value (complete-journey: product_type, 3,867 groups in 304
categories); without that column the category is the only level. A j inside the
group backs off to the next level (P~(j | g) = P~(j | parent)): every order of j holds
g, so g's counts say nothing about j, and a one-category shop backs off straight to the
shop, as before. All counts are recency-weighted (an order's weight halves every
`half_life_days`; the support stays exact). With b = 0 (no prior), the margin off and
exponents 0 / 0.5 / 1, the row ranking is co-count / cosine / lift.

This is hierarchical Dirichlet (Katz-style) smoothing. A product seen in 3 orders has
neighbours tied at one order each, picked by chance; the prior, in orders (so it means
the same in a small and a large shop), lets it lean on its group's basket mix until its
own orders outweigh it. The previous prior was the shop-wide mix: the same staples for
every thin product. The group's mix is both more accurate and different per group.

The rarity margin: in orders (n_a * score) a staple outranks a more specific mate
only if it leads by more than m * n_a ** (1 - power) * ln(p_staple / p_specific)
expected co-purchases. power = 1 is a fixed margin in orders; the default 0.5 makes
it a margin in standard errors of the anchor's counts (Poisson noise grows as
sqrt(n_a)), so it reaches further into moderate evidence. The back-off already
settles the thinnest rows, which a fixed margin would otherwise hit hardest. A product
with thousands of orders ranks as before. The margin is what spreads the
recommendations over the catalog.

How the default was chosen (backoff on, backoff_column product_type, prior_orders=50,
half_life_days=80, popularity_exponent=0.08, rarity_margin_power=0.5,
rarity_margin_orders=0.027, min_support=1). The measure is cross-category basket
completion (`python -m bench.complements_quality`, 10k-query samples, seeds 0-4,
Recall@10 minus raw co-count's):
* Raw co-count is hard to beat on recall: it ranks by P(j | a), which basket completion
  rewards. Cosine and lift rankings lose 15-90 % of its Recall@10 (Jaccard and
  log-likelihood ratio behaved like cosine). Recency (the half-life) is kept from the
  previous default.
* Every setting of the previous score (shop-wide prior, exponent, half-life, margin, a
  logistic blend) traced one recall/coverage frontier on complete-journey through
  about +-0 recall at Coverage@10 0.150. The previous default sat on it at a tie:
  -0.0007 mean over the five samples, coverage 0.151.
* Back-off moves that frontier up by about 0.001 at coverage 0.15 (five-sample means,
  coverage on seed 0): +0.0004 at 0.1506, against -0.0007 at 0.151. With the old margin
  in orders (power 1), recall is +0.0065 at coverage 0.099 (seed 0); the old score's
  recall end is +0.0027 at 0.0997. The gain is in thin rows: in an early variant (type
  -> shop, old margin, seed 0), anchors with 3-10 orders go from 0.049 (co-count) to
  0.060, and 10-30 orders from 0.082 to 0.097.
* Most of the shift comes from backing off to the category at all. Category only gives
  +0.0002 at coverage 0.1506 (margin 0.025) against +0.0004 with the type level, a
  difference within noise. type -> shop without the category sits at +0.0001 at 0.152.
  The type level is kept because it is the finer prior and costs ~0.5 s.
* Adding each group's top 50-100 mates as candidates, with c_aj = 0, raised recall
  but cost coverage. Along the frontier that nets nothing (+0.0013 at coverage 0.144;
  with a larger margin -0.0002 at 0.155), for 2.4-5M extra pairs, so only the anchor's
  own basket mates are ranked. Other changes also stayed on the new frontier:
  leave-one-out group counts, a third level (manufacturer), prior 30 / 80, exponent
  0 / 0.12, a margin on the group lift.
* Margin power 0.5 against 1 with back-off: +0.0004 against about +-0 at coverage
  0.15 (power 1: +0.0005 at 0.146, +0.0015 at 0.138), which is within noise. 0.75 was
  slightly worse; 0.35 tied. Without back-off, power 0.5 alone stays on the old
  frontier (-0.0018 at 0.161).
* rarity_margin_orders = 0.027 is the one constant set on this evaluation: the smallest
  margin that keeps complete-journey's Coverage@10 >= 0.15 (0.026: 0.147).
Measured (bench, co-count in brackets): complete-journey Recall@10 0.0967 (0.0956),
+0.0010 +- 0.0007 on seed 0, seeds 1-4 -0.0006 / +0.0013 / -0.0001 / +0.0002.
Mean over the five +0.0004: still a tie within noise, only no longer below.
Coverage@10 0.1506 (0.0846). online-retail (one category, no type column: the back-off
is the shop-wide prior, as before) Recall@10 0.2195 (0.2147; +0.0048 +- 0.0008, mean
over five +0.0041), Coverage@10 0.607 (previous default 0.521). The back-off costs ~2 s
per complete-journey fit: two groups x products sparse products and one pass over
the pairs. Peak memory is unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.data import Interactions

SECONDS_PER_DAY = 86_400.0


@dataclass
class CopurchaseConfig:
    """Parameters of the co-purchase model.

    top_k: neighbours stored per product.
    min_support: pairs bought together in fewer orders are dropped. 1 keeps every
        basket mate as a candidate (the prior already keeps one-off pairs from ranking
        high); raise it when the shop does not want to quote thin evidence.
    half_life_days: when set, an order's weight halves every this many days before the
        newest order, so recent co-purchases count more in the score (the support
        stays an exact order count). None or 0: every order counts fully.
    prior_orders: strength, in orders, of the prior at each level of the back-off (anchor
        toward its group, group toward its category, category toward the shop; the
        shop-wide P(j) alone when `backoff` is off). 0: no prior and no back-off.
    popularity_exponent: how much the score divides out the neighbour's popularity
        (0 = confidence, 0.5 = cosine ranking, 1 = lift ranking).
    rarity_margin_orders: the margin per e-fold of popularity by which a more popular
        neighbour must lead in expected co-purchases to rank above a rarer one: in
        (decayed) orders at rarity_margin_power 1, scaled by sqrt(n_a) at 0.5 (see the
        module docstring); 0 = off.
    backoff: smooth each anchor toward its groups' basket mix (anchor -> group ->
        category -> shop, see the module docstring) instead of straight toward the shop's.
        False: the shop-wide prior alone (the score before back-off).
    backoff_column: the catalog column whose values group products inside a category for
        the back-off (complete-journey: product_type). Absent from the catalog or "":
        the category is the only group level, which every shop has.
    rarity_margin_power: the margin term is divided by n_a ** this power. 1: a fixed
        margin in orders; 0.5 (default): a margin in standard errors of the anchor's
        counts, so it reaches further into moderate evidence (see the module docstring).
    same_category_slots: at most this many of the top_k slots go to neighbours of the
        anchor's own category while other-category neighbours remain; the service hides
        same-category items by default, so the rest of the row is kept for those. A
        one-category catalog fills every slot with its (same-category) neighbours.
    """

    top_k: int = 50
    min_support: int = 1
    half_life_days: float | None = 80.0
    prior_orders: float = 50.0
    popularity_exponent: float = 0.08
    same_category_slots: int = 10
    rarity_margin_orders: float = 0.027
    rarity_margin_power: float = 0.5
    backoff: bool = True
    backoff_column: str = "product_type"

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.min_support < 1 or self.same_category_slots < 0:
            raise ValueError(f"[copurchase] top_k and min_support must be >= 1 and same_category_slots "
                             f">= 0, got {self.top_k}, {self.min_support}, {self.same_category_slots}")
        if self.prior_orders < 0 or self.popularity_exponent < 0 or self.rarity_margin_orders < 0:
            raise ValueError(f"[copurchase] prior_orders, popularity_exponent and rarity_margin_orders must "
                             f"be >= 0, got {self.prior_orders}, {self.popularity_exponent}, "
                             f"{self.rarity_margin_orders}")
        if not 0.0 <= self.rarity_margin_power <= 1.0:
            raise ValueError(f"[copurchase] rarity_margin_power must be in [0, 1], got {self.rarity_margin_power}")
        if not isinstance(self.backoff_column, str):
            raise ValueError(f"[copurchase] backoff_column must be a catalog column name (\"\": none), "
                             f"got {self.backoff_column!r}")
        if self.half_life_days == 0:  # "off" in a TOML file, which has no null
            self.half_life_days = None
        if self.half_life_days is not None and self.half_life_days < 0:
            raise ValueError(f"[copurchase] half_life_days must be positive (0: off), got {self.half_life_days}")


@dataclass
class CopurchaseModel:
    idx: np.ndarray  # (P, K) int32 neighbour product codes, -1 padded, best first
    score: np.ndarray  # (P, K) float32
    support: np.ndarray  # (P, K) int32 orders containing both products


@dataclass
class Cooccurrence:
    """Off-diagonal co-occurring pairs (both directions, grouped by anchor) with the
    totals the scores need. Per-pair arrays are 32-bit: they are the memory peak."""

    rows: np.ndarray  # (E,) int32 anchor, ascending
    cols: np.ndarray  # (E,) int32 neighbour
    support: np.ndarray  # (E,) int32 orders containing both
    weight: np.ndarray  # (E,) float32 decayed co-count (== support without decay)
    item_weight: np.ndarray  # (P,) float64 decayed orders containing each product
    total_weight: float  # decayed number of orders


def order_weights(inter: Interactions, half_life_days: float | None) -> np.ndarray:
    """Per-order weight 0.5 ** (age / half-life), age counted from the newest order."""
    n = inter.n_orders
    if half_life_days is None or n == 0:
        return np.ones(n)
    if half_life_days <= 0:
        raise ValueError(f"half_life_days must be positive, got {half_life_days}")
    order_ts = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(order_ts, inter.order, inter.ts)
    age_days = (order_ts.max() - order_ts) / SECONDS_PER_DAY
    # Floor keeps very old orders in the sparsity pattern (weight 0 would drop pairs).
    return np.maximum(np.exp2(-age_days / half_life_days), 1e-30)


def order_matrix(inter: Interactions) -> sp.csr_matrix:
    """Binary orders x products CSR; repeated lines of one product in an order count once."""
    x = sp.csr_matrix(
        (np.ones(len(inter.order), np.float32), (inter.order, inter.product)),
        shape=(inter.n_orders, inter.n_products),
    )
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


def cooccurrence(inter: Interactions, min_support: int, half_life_days: float | None = None) -> Cooccurrence:
    x = order_matrix(inter)
    w = order_weights(inter, half_life_days)
    item_weight = np.asarray(x.T @ w).ravel()
    if min_support > 1:
        # A product in fewer orders than min_support is in no kept pair: leave it out
        # of the product (the apriori prune), which is most of the work at high supports.
        frequent = np.asarray(x.sum(axis=0)).ravel() >= min_support
        x = (x @ sp.diags(frequent.astype(np.float32))).tocsr()
        x.eliminate_zeros()
    xt = x.T.tocsr()
    if half_life_days is None:
        counts = xt @ x  # float32 is exact for counts below 2**24 orders
        count_data = weight_data = counts.data
    else:
        # Counts and decayed counts from one product: the left factor holds 1 + i*w_o,
        # so each entry is (orders with both) + i*(their decayed weight), the same
        # float32 sums as two real products, at ~2/3 of their time.
        xc = xt.astype(np.complex64)
        xc.data += 1j * w.astype(np.float32)[xc.indices]
        counts = xc @ x.astype(np.complex64)
        count_data, weight_data = counts.data.real, counts.data.imag
    rows = np.repeat(np.arange(counts.shape[0], dtype=np.int32), np.diff(counts.indptr))
    keep = rows != counts.indices
    if min_support > 1:
        keep &= count_data >= min_support
    support = count_data[keep]
    weight = weight_data[keep]
    return Cooccurrence(rows[keep], counts.indices[keep].astype(np.int32, copy=False),
                        support.astype(np.int32), weight.astype(np.float32, copy=False),
                        item_weight, float(w.sum()))


def backoff_levels(inter: Interactions, products: pd.DataFrame | None, column: str) -> list[np.ndarray]:
    """Nested group codes of every product for the back-off, coarsest first.

    Always the category; then, when `products` (rows aligned with `inter.product_ids`,
    e.g. `data.product_table`) has `column`, the groups of equal `column` value inside
    each category (a value shared by two categories makes two groups, so the levels
    nest; products without a value form their category's own group)."""
    levels = [inter.product_category.astype(np.int32)]
    if not column or products is None or column not in products.columns:
        return levels
    if len(products) != inter.n_products:
        raise ValueError(f"products has {len(products)} rows for {inter.n_products} products")
    values, _ = pd.factorize(products[column].fillna("").astype(str).to_numpy())
    if len(values) == 0:
        return levels
    pair = levels[0].astype(np.int64) * (int(values.max()) + 1) + values
    _, fine = np.unique(pair, return_inverse=True)
    levels.append(fine.astype(np.int32))
    return levels


def group_cooccurrence(x: sp.csr_matrix, w: np.ndarray, codes: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """(groups x products CSR of decayed orders holding some product of the group and
    the product, decayed orders holding the group): one sparse product, far smaller
    than X.T @ X since an order holds fewer groups than products."""
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    member = sp.csr_matrix((np.ones(len(codes), np.float32), (np.arange(len(codes)), codes)),
                           shape=(len(codes), n_groups))
    xg = (x @ member).tocsr()
    xg.data[:] = 1.0  # an order with two products of a group holds the group once
    xgt = xg.T.tocsr()
    counts = (xgt @ (sp.diags(w.astype(np.float32)) @ x)).tocsr()
    return counts, np.asarray(xgt @ w).ravel()


def _ranges(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for each (s, n), vectorised."""
    total = int(length.sum())
    offset = np.repeat(start - (np.cumsum(length) - length), length)
    return offset + np.arange(total)


def backoff_prior(inter: Interactions, co: Cooccurrence, levels: list[np.ndarray], prior_orders: float,
                  half_life_days: float | None) -> np.ndarray:
    """P~(j | anchor's groups) of every pair (float32), see the module docstring:

        P_0(j) = p_j,   P_l(j) = (c_gj + prior_orders * P_{l-1}(j)) / (n_g + prior_orders)

    for the anchor's group g at each level l (coarsest first), and P_l(j) = P_{l-1}(j)
    when j is itself in g (every order of j holds g, so g's counts say nothing about j).

    Pairs are visited one block of anchors at a time (same group at every level; with
    nested levels, one finest group): each group's row of counts is scattered into a
    dense buffer when its block starts and read at its anchors' neighbours, and a
    coarse row stays loaded across its finer groups, so the cost is one pass over the
    pairs plus the groups' rows."""
    p = (co.item_weight / max(co.total_weight, 1e-300)).astype(np.float32)
    # A level with one group holds every neighbour: it backs off to its parent unchanged
    # (a one-category shop's category), so it is skipped.
    levels = [codes for codes in levels if len(codes) and codes.min() != codes.max()]
    if not levels:
        return p[co.cols]
    x = order_matrix(inter)
    w = order_weights(inter, half_life_days)
    tables = [group_cooccurrence(x, w, codes) for codes in levels]
    del x
    out = np.empty(len(co.rows), np.float32)
    per_anchor = np.bincount(co.rows, minlength=inter.n_products)
    first_pair = np.cumsum(per_anchor) - per_anchor
    anchors = np.lexsort(levels[::-1])  # by coarsest group, then finer ones
    anchors = anchors[per_anchor[anchors] > 0]
    if len(anchors) == 0:
        return out
    new_block = np.zeros(len(anchors) - 1, bool)  # a block: anchors sharing every level's group
    for codes in levels:
        new_block |= codes[anchors][1:] != codes[anchors][:-1]
    bounds = np.flatnonzero(np.r_[True, new_block, True])
    buffers = [np.zeros(inter.n_products, np.float32) for _ in levels]
    loaded = [-1] * len(levels)
    b = np.float32(prior_orders)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        members = anchors[lo:hi]
        idx = _ranges(first_pair[members], per_anchor[members])
        cols = co.cols[idx]
        prior = p[cols]
        for level, (codes, (counts, n_group), buf) in enumerate(zip(levels, tables, buffers)):
            g = int(codes[members[0]])
            if loaded[level] != g:  # coarse rows are loaded once per run of their finer groups
                if loaded[level] >= 0:
                    buf[counts.indices[counts.indptr[loaded[level]]:counts.indptr[loaded[level] + 1]]] = 0.0
                row = slice(counts.indptr[g], counts.indptr[g + 1])
                buf[counts.indices[row]] = counts.data[row]
                loaded[level] = g
            smoothed = (buf[cols] + b * prior) / np.float32(n_group[g] + prior_orders)
            prior = np.where(codes[cols] == g, prior, smoothed)
        out[idx] = prior
    return out


def pair_scores(co: Cooccurrence, prior_orders: float, popularity_exponent: float,
                rarity_margin_orders: float = 0.0, rarity_margin_power: float = 1.0,
                prior: np.ndarray | None = None) -> np.ndarray:
    """score(a, j) of every pair as float32, see the module docstring. `prior`: the
    per-pair P~(j | anchor's groups) of `backoff_prior`; None: the shop-wide p_j."""
    p = co.item_weight / max(co.total_weight, 1e-300)
    discount = np.maximum(p, 1e-30) ** -popularity_exponent  # per product, not per pair
    denom = co.item_weight + prior_orders  # 0 only for products in no pair
    inv = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 0)
    # In place, one pair-sized temporary at a time: these arrays are the memory peak.
    score = co.weight * discount.astype(np.float32)[co.cols]
    if prior is None:
        score += (prior_orders * p * discount).astype(np.float32)[co.cols]
    else:
        term = prior * np.float32(prior_orders)
        term *= discount.astype(np.float32)[co.cols]
        score += term
        del term
    score *= inv.astype(np.float32)[co.rows]
    if rarity_margin_orders > 0:
        rarity = np.log(p.max() / np.maximum(p, 1e-30)) * rarity_margin_orders
        scale = co.item_weight ** rarity_margin_power
        inv_n = np.divide(1.0, scale, out=np.zeros_like(scale), where=co.item_weight > 0)
        bonus = rarity.astype(np.float32)[co.cols]
        bonus *= inv_n.astype(np.float32)[co.rows]
        score += bonus
    return score


def _prune(group: np.ndarray, score: np.ndarray, top_k: int, n_groups: int, n_bins: int = 32) -> np.ndarray:
    """Indices of the pairs that can still make their group's top_k, found without sorting.

    Most pairs of a popular product are one-off basket mates far below its top_k. For
    each group larger than top_k, a histogram of log-scores gives the highest bin edge
    with at least top_k pairs at or above it: a lower bound of the top_k-th best score,
    so everything under it is dropped and only the survivors get sorted."""
    size = np.bincount(group, minlength=n_groups)
    big = size > top_k
    in_big = np.flatnonzero(big[group]).astype(np.int32 if len(score) < 2**31 else np.int64)
    if len(in_big) == 0:
        return np.arange(len(score))
    dense = (np.cumsum(big) - 1).astype(np.int32)[group[in_big]]  # big groups numbered 0..G-1
    log_s = np.log(np.maximum(score[in_big], 1e-30))
    lo, hi = float(log_s.min()), float(log_s.max())
    b = np.minimum(((log_s - lo) / (max(hi - lo, 1e-12) / n_bins)).astype(np.int32), n_bins - 1)
    del log_s
    hist = np.bincount(dense * n_bins + b, minlength=int(big.sum()) * n_bins).reshape(-1, n_bins)
    enough = np.cumsum(hist[:, ::-1], axis=1) >= top_k  # reversed: pairs in bin >= edge
    first_bin = n_bins - 1 - np.argmax(enough, axis=1)
    keep = np.ones(len(score), bool)
    keep[in_big] = b >= first_bin[dense]
    return np.flatnonzero(keep)


def _order_by_row_then_score(rows: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Stable argsort by (row ascending, score descending) for non-negative scores.

    The float32 bit pattern of a non-negative number orders like the number, so both
    keys pack exactly into one int64: one timsort pass over nearly sorted keys, several
    times faster than np.lexsort. Ties keep their input order (deterministic)."""
    bits = np.maximum(score, 0).astype(np.float32).view(np.uint32)
    key = (rows.astype(np.int64) << 32) | (np.uint32(0xFFFFFFFF) - bits).astype(np.int64)
    return np.argsort(key, kind="stable")


def _position_in_row(sorted_rows: np.ndarray, n_rows: int) -> np.ndarray:
    """0-based position of each entry among the entries of its row (rows ascending)."""
    counts = np.bincount(sorted_rows, minlength=n_rows)
    return np.arange(len(sorted_rows)) - (np.cumsum(counts) - counts)[sorted_rows]


def select_top_k(
    rows: np.ndarray,
    cols: np.ndarray,
    score: np.ndarray,
    support: np.ndarray,
    category: np.ndarray,
    n_products: int,
    top_k: int,
    same_category_slots: int,
) -> CopurchaseModel:
    """Each anchor's best `top_k` neighbours, best first.

    Same-category neighbours get at most `same_category_slots` slots while
    other-category ones are left to fill the rest, and every slot when there are no
    other-category ones (a one-category catalog). The kept neighbours are stored mixed,
    ordered by score.
    """
    same = category[rows] == category[cols]
    group = rows * 2 + same  # int32: (anchor, same-category?) groups
    cand = _prune(group, score, top_k, 2 * n_products)
    srt = cand[_order_by_row_then_score(rows[cand], score[cand])]
    r, s = rows[srt], same[srt]
    pos_in_row = _position_in_row(r, n_products)
    row_start = np.arange(len(r)) - pos_in_row
    same_before = np.cumsum(s) - s  # same-category entries ahead of each, over all rows
    rank_same = same_before - same_before[row_start]
    rank_other = pos_in_row - rank_same

    n_same = np.bincount(r[s], minlength=n_products)
    n_other = np.bincount(r[~s], minlength=n_products)
    keep_same = np.minimum(n_same, np.maximum(min(same_category_slots, top_k), top_k - n_other))
    keep_other = np.minimum(n_other, top_k - keep_same)
    kept = srt[np.where(s, rank_same < keep_same[r], rank_other < keep_other[r])]

    kr = rows[kept]
    slot = _position_in_row(kr, n_products)
    idx = np.full((n_products, top_k), -1, np.int32)
    out_score = np.zeros((n_products, top_k), np.float32)
    out_support = np.zeros((n_products, top_k), np.int32)
    idx[kr, slot] = cols[kept]
    out_score[kr, slot] = score[kept]
    out_support[kr, slot] = support[kept]
    return CopurchaseModel(idx=idx, score=out_score, support=out_support)


def fit_copurchase(inter: Interactions, cfg: CopurchaseConfig, products: pd.DataFrame | None = None
                   ) -> CopurchaseModel:
    """`products`: catalog attributes aligned with `inter.product_ids` (`data.product_table`),
    where `cfg.backoff_column` is looked up; None: the back-off uses the category alone."""
    return fit_copurchase_and_cocount(inter, cfg, with_cocount=False, products=products)[0]


def fit_copurchase_and_cocount(inter: Interactions, cfg: CopurchaseConfig, with_cocount: bool = True,
                               products: pd.DataFrame | None = None
                               ) -> tuple[CopurchaseModel, CopurchaseModel | None]:
    """The model and, from the same co-occurrence when its pairs are every pair
    (min_support 1), the raw co-count baseline of `fit_cocount`: one sparse product
    instead of two in a training run that evaluates against it."""
    co = cooccurrence(inter, cfg.min_support, cfg.half_life_days)
    prior = None
    if cfg.backoff and cfg.prior_orders > 0:
        levels = backoff_levels(inter, products, cfg.backoff_column)
        prior = backoff_prior(inter, co, levels, cfg.prior_orders, cfg.half_life_days)
    score = pair_scores(co, cfg.prior_orders, cfg.popularity_exponent, cfg.rarity_margin_orders,
                        cfg.rarity_margin_power, prior)
    del prior
    model = select_top_k(co.rows, co.cols, score, co.support, inter.product_category,
                         inter.n_products, cfg.top_k, cfg.same_category_slots)
    if not with_cocount:
        return model, None
    if cfg.min_support != 1:
        return model, fit_cocount(inter, cfg.top_k, cfg.same_category_slots)
    # Within a row, support / n_a (fit_cocount's score) ranks as the support itself.
    cocount = select_top_k(co.rows, co.cols, co.support.astype(np.float32), co.support, inter.product_category,
                           inter.n_products, cfg.top_k, cfg.same_category_slots)
    return model, cocount


def fit_cocount(inter: Interactions, top_k: int, same_category_slots: int = 10) -> CopurchaseModel:
    """Baseline: neighbours ranked by raw co-count (every pair, no prior, no discount).

    Stored with the same category quota as `fit_copurchase`, so a comparison of the two
    measures the score alone."""
    return fit_copurchase(inter, CopurchaseConfig(top_k=top_k, min_support=1, half_life_days=None,
                                                  prior_orders=0.0, popularity_exponent=0.0,
                                                  rarity_margin_orders=0.0, backoff=False,
                                                  same_category_slots=same_category_slots))
