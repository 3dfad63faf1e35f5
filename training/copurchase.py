"""Co-purchase complements: which products are bought in the same order.

Counts come from one sparse product, C = X.T @ X over the binary orders x products
matrix X, so the cost grows with the number of co-occurring pairs, never with P².
Each pair keeps its exact support (orders containing both), which the service quotes
("bought together in 312 orders"); the ranking score is separate from it.

Score (one family covering the classic measures; see `CopurchaseConfig`)::

    score(a, j) = P~(j | a) / p_j ** popularity_exponent
    P~(j | a)   = (c_aj + prior_orders * p_j) / (n_a + prior_orders)

c_aj: orders with both, n_a: orders with a, p_j: share of orders with j. With
prior_orders = 0 the row ranking is co-count at exponent 0, cosine at 0.5, lift at 1.

Two further terms (see `CopurchaseConfig`): counts are recency-weighted (an order's
weight halves every `half_life_days`, so c_aj, n_a and p_j are decayed orders; the
support stays exact), and a rarity margin m = `rarity_margin_orders`::

    score(a, j) += m * ln(p_max / p_j) / n_a

In orders (n_a * score) this is a fixed evidence margin: a staple outranks a more
specific mate only if it leads by more than m * ln(p_staple / p_specific) expected
co-purchases. A product with thousands of orders ranks as before; one with a handful,
whose ranking is mostly noise, picks the specific mate, which is what spreads the
recommendations over the catalog. Unlike the exponent, it costs little where the
evidence is strong.

Why this default (prior_orders=50, half_life_days=80, popularity_exponent=0.08,
rarity_margin_orders=0.026, min_support=1), chosen on cross-category basket completion
(bench/complements_quality.py prints the ablation):
* Raw co-count is hard to beat on recall: it ranks by P(j | a), which is what basket
  completion rewards, and staples really are the likeliest basket mates. Cosine and
  lift rankings lose 15-90 % of its Recall@10 on both datasets (Jaccard and
  log-likelihood-ratio weightings, tried on the way, behaved like cosine).
* Where co-count goes wrong is thin evidence: a product seen in 3 orders has neighbours
  tied at one order each, picked by chance. The additive prior (Dirichlet smoothing,
  in orders, so it means the same in a small and a large shop) lets such a product
  lean on the shop-wide basket mix until its own orders outweigh it: +6 % recall on
  complete-journey, about neutral on online-retail, but more of the same staples everywhere.
* Recency is the other recall gain: basket mixes and the assortment drift, and a
  half-life of a few months adds ~0.005 Recall@10 on both datasets (all queries,
  complete-journey 0.1012 vs 0.0978 at 90 d) while concentrating lists on staples.
* The mild exponent and the rarity margin spend those gains on specific complements.
  Per unit of recall the margin buys more coverage than the exponent (it acts only on
  thin evidence); together they beat either alone.
* min_support 1 keeps rare products' only basket mates as candidates (the prior keeps
  one-off pairs low); 2 loses 60 % of the coverage on complete-journey (0.0605).
Measured (bench/complements_quality.py, 10k-query default sample; co-count in
brackets): complete-journey Recall@10 0.0959 (0.0956; paired difference +0.0002 +-
0.0007), Coverage@10 0.1510 (0.0846); online-retail Recall@10 0.2198 (0.2147; +0.0051 +-
0.0008). On complete-journey recall this is a tie with co-count, not a gain: on all
139,559 queries it is 0.0956 vs 0.0958 (-0.0002 +- 0.0002) at Coverage@10 0.461 vs
0.249, and on four other 10k samples (seeds 1-4) the difference averages -0.0009 while
coverage stays 0.153-0.155. Every setting tried (exponent, prior, half-life, margin, a
margin on list frequency, a logistic blend learned on a validation split) traces the
same frontier through about Recall 0.0956 at Coverage 0.150 on this dataset: the
targets sit on it, not inside it. The previous default (no half-life, no margin,
exponent 0.1: 0.0984 / 0.0997) is its recall end; the ablation shows the rest.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    prior_orders: strength, in orders, of the shop-wide prior P(j) in P~(j | a).
    popularity_exponent: how much the score divides out the neighbour's popularity
        (0 = confidence, 0.5 = cosine ranking, 1 = lift ranking).
    rarity_margin_orders: the margin, in (decayed) orders per e-fold of popularity, by
        which a more popular neighbour must lead in expected co-purchases to rank
        above a rarer one (see the module docstring); 0 = off.
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
    rarity_margin_orders: float = 0.026

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.min_support < 1 or self.same_category_slots < 0:
            raise ValueError(f"[copurchase] top_k and min_support must be >= 1 and same_category_slots "
                             f">= 0, got {self.top_k}, {self.min_support}, {self.same_category_slots}")
        if self.prior_orders < 0 or self.popularity_exponent < 0 or self.rarity_margin_orders < 0:
            raise ValueError(f"[copurchase] prior_orders, popularity_exponent and rarity_margin_orders must "
                             f"be >= 0, got {self.prior_orders}, {self.popularity_exponent}, "
                             f"{self.rarity_margin_orders}")
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


def pair_scores(co: Cooccurrence, prior_orders: float, popularity_exponent: float,
                rarity_margin_orders: float = 0.0) -> np.ndarray:
    """score(a, j) of every pair as float32, see the module docstring."""
    p = co.item_weight / max(co.total_weight, 1e-300)
    discount = np.maximum(p, 1e-30) ** -popularity_exponent  # per product, not per pair
    denom = co.item_weight + prior_orders  # 0 only for products in no pair
    inv = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 0)
    # In place, one pair-sized temporary at a time: these arrays are the memory peak.
    score = co.weight * discount.astype(np.float32)[co.cols]
    score += (prior_orders * p * discount).astype(np.float32)[co.cols]
    score *= inv.astype(np.float32)[co.rows]
    if rarity_margin_orders > 0:
        rarity = np.log(p.max() / np.maximum(p, 1e-30)) * rarity_margin_orders
        inv_n = np.divide(1.0, co.item_weight, out=np.zeros_like(co.item_weight), where=co.item_weight > 0)
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


def fit_copurchase(inter: Interactions, cfg: CopurchaseConfig) -> CopurchaseModel:
    return fit_copurchase_and_cocount(inter, cfg, with_cocount=False)[0]


def fit_copurchase_and_cocount(inter: Interactions, cfg: CopurchaseConfig, with_cocount: bool = True
                               ) -> tuple[CopurchaseModel, CopurchaseModel | None]:
    """The model and, from the same co-occurrence when its pairs are every pair
    (min_support 1), the raw co-count baseline of `fit_cocount`: one sparse product
    instead of two in a training run that evaluates against it."""
    co = cooccurrence(inter, cfg.min_support, cfg.half_life_days)
    score = pair_scores(co, cfg.prior_orders, cfg.popularity_exponent, cfg.rarity_margin_orders)
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
                                                  rarity_margin_orders=0.0, same_category_slots=same_category_slots))
