"""Offline evaluation of complements: cross-category basket completion on a time split.

Protocol (every model is scored on the same queries, with the same filtering):

* `time_split` holds out the last `holdout_fraction` of the period: the split point is
  t_min + (1 - holdout_fraction) * (t_max - t_min) over all order lines, and a whole
  order goes to test when its first line is at or after it (baskets are never cut).
* A query is one (held-out basket, product in it) where the product was bought in the
  training window (the model could know it). Its targets are the basket's other
  distinct products of a *different category*; of every other product when the
  catalog has a single category. Queries without targets are dropped; above
  `max_queries` a seeded uniform sample is scored.
* A model's list for the anchor is filtered to other-category products (and never the
  anchor itself) before it is cut at k.
* HitRate@k: share of queries with at least one target in the top k.
  Recall@k: hits / min(number of targets, k), averaged over queries (capped, so a
  perfect list scores 1 even in a 40-item basket).
  NDCG@k: binary gains, DCG = sum over hits of 1/log2(rank+1), divided by the DCG of
  min(#targets, k) hits at the top.
  Coverage@k: distinct products recommended across the scored queries (the union of
  their top-k lists), divided by the number of products in the catalog (P, bought or
  not). It grows with the number of queries, so compare it at equal `n_queries`.

Baselines (`popularity_lists`): global best sellers outside the anchor's category, and
the best sellers of the categories bought with the anchor's (what the service can
offer a product without history). Raw co-count comes from `copurchase.fit_cocount`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.category_complements import CategoryComplementsConfig, fit_category_complements
from training.data import Interactions, MetricRow
from training.popularity import PopularityConfig, fit_popularity


@dataclass
class EvalConfig:
    """max_queries bounds the cost on large shops (complete-journey has ~140k queries
    in its last 10 %) and fixes the query count that Coverage@k depends on; the sample
    is drawn with `seed`, so reruns and models are compared on the same queries."""

    holdout_fraction: float = 0.1
    k: int = 10
    max_queries: int | None = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"[eval] holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.k < 1 or (self.max_queries is not None and self.max_queries < 1):
            raise ValueError(f"[eval] k and max_queries must be >= 1, got {self.k}, {self.max_queries}")


@dataclass
class ComplementQueries:
    order: np.ndarray  # (Q,) test order code
    anchor: np.ndarray  # (Q,) product code
    n_targets: np.ndarray  # (Q,) other-category distinct products in the basket
    basket_keys: np.ndarray  # sorted order * P + product of every test basket line


def time_split(inter: Interactions, holdout_fraction: float) -> tuple[Interactions, Interactions]:
    """(train, test): test holds the orders starting in the last fraction of the period."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    if len(inter.ts) == 0 or inter.ts.min() == inter.ts.max():
        raise ValueError("cannot split by time: the orders span no time (none, or all at one instant)")
    t_min, t_max = int(inter.ts.min()), int(inter.ts.max())
    split = t_min + (1.0 - holdout_fraction) * (t_max - t_min)
    order_start = np.full(inter.n_orders, np.iinfo(np.int64).max)
    np.minimum.at(order_start, inter.order, inter.ts)
    in_test = order_start[inter.order] >= split
    return inter.subset(~in_test), inter.subset(in_test)


def complement_queries(train: Interactions, test: Interactions, cfg: EvalConfig) -> ComplementQueries:
    n_p = test.n_products
    category = test.product_category
    single = len(test.category_names) <= 1
    keys = np.unique(test.order * n_p + test.product)
    order, product = keys // n_p, (keys % n_p).astype(np.int32)
    basket_size = np.bincount(order, minlength=test.n_orders)[order]
    if single:
        n_same = np.ones_like(basket_size)
    else:
        n_cat = len(test.category_names)
        oc, oc_count = np.unique(order * n_cat + category[product], return_counts=True)
        n_same = oc_count[np.searchsorted(oc, order * n_cat + category[product])]
    n_targets = basket_size - n_same
    known = np.bincount(train.product, minlength=n_p) > 0
    q = np.flatnonzero(known[product] & (n_targets > 0))
    if cfg.max_queries is not None and len(q) > cfg.max_queries:
        q = np.sort(np.random.default_rng(cfg.seed).choice(q, cfg.max_queries, replace=False))
    return ComplementQueries(order=order[q], anchor=product[q], n_targets=n_targets[q], basket_keys=keys)


def top_k_other_category(lists: np.ndarray, anchors: np.ndarray, category: np.ndarray, k: int,
                         single_category: bool) -> np.ndarray:
    """(A, k) first k entries of each anchor's list that are valid, not the anchor and
    (unless the catalog has one category) of another category; -1 padded."""
    rows = np.asarray(lists)[anchors]
    valid = (rows >= 0) & (rows != anchors[:, None])
    if not single_category:
        valid &= category[np.maximum(rows, 0)] != category[anchors][:, None]
    pos = np.argsort(~valid, axis=1, kind="stable")[:, :k]
    out = np.where(np.take_along_axis(valid, pos, axis=1), np.take_along_axis(rows, pos, axis=1), -1)
    if out.shape[1] < k:
        out = np.pad(out, ((0, 0), (0, k - out.shape[1])), constant_values=-1)
    return out.astype(np.int32)


def recommend(lists: np.ndarray, q: ComplementQueries, test: Interactions, k: int) -> np.ndarray:
    """(Q, k) each query's recommendations from a (P, K) list, filtered as in the protocol."""
    anchors, pos = np.unique(q.anchor, return_inverse=True)
    single = len(test.category_names) <= 1
    return top_k_other_category(lists, anchors, test.product_category, k, single)[pos]


def hits(recs: np.ndarray, q: ComplementQueries, n_products: int) -> np.ndarray:
    """(Q, k) bool: is the recommendation in the query's basket (hence a target)."""
    if len(q.basket_keys) == 0:
        return np.zeros(recs.shape, bool)
    keys = q.order[:, None] * n_products + np.maximum(recs, 0)
    at = np.minimum(np.searchsorted(q.basket_keys, keys), len(q.basket_keys) - 1)
    return (recs >= 0) & (q.basket_keys[at] == keys)


def query_recall(hit: np.ndarray, q: ComplementQueries) -> np.ndarray:
    """(Q,) Recall@k of each query: hits / min(targets, k)."""
    return hit.sum(axis=1) / np.minimum(q.n_targets, hit.shape[1])


def complement_metrics(recs: np.ndarray, q: ComplementQueries, n_products: int, k: int) -> dict[str, float]:
    """Metrics of (Q, k) recommendations against the queries' baskets (see module doc)."""
    if len(q.anchor) == 0:
        return {f"{m}@{k}": float("nan") for m in ("HitRate", "Recall", "NDCG", "Coverage")}
    hit = hits(recs, q, n_products)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.r_[0.0, np.cumsum(discount)][np.minimum(q.n_targets, k)]
    return {
        f"HitRate@{k}": float(hit.any(axis=1).mean()),
        f"Recall@{k}": float(query_recall(hit, q).mean()),
        f"NDCG@{k}": float(((hit * discount).sum(axis=1) / ideal).mean()),
        f"Coverage@{k}": len(np.unique(recs[recs >= 0])) / n_products,
    }


def evaluate_complements(named_lists: dict[str, np.ndarray], train: Interactions, test: Interactions,
                         cfg: EvalConfig) -> list[MetricRow]:
    """One MetricRow per model; each value of `named_lists` is a (P, K) list of product
    codes, best first, -1 padded (K may exceed k: filtering happens here)."""
    q = complement_queries(train, test, cfg)
    return [MetricRow(task="complements", model=name, n_queries=len(q.anchor),
                      metrics=complement_metrics(recommend(lists, q, test, cfg.k), q, test.n_products, cfg.k))
            for name, lists in named_lists.items()]


def _first_unique(rows: np.ndarray) -> np.ndarray:
    """Each row with -1s and repeated values removed, survivors moved left, -1 padded."""
    order = np.argsort(rows, axis=1, kind="stable")
    sorted_rows = np.take_along_axis(rows, order, axis=1)
    repeat = np.zeros(rows.shape, bool)
    np.put_along_axis(repeat, order[:, 1:], sorted_rows[:, 1:] == sorted_rows[:, :-1], axis=1)
    keep = (rows >= 0) & ~repeat
    pos = np.argsort(~keep, axis=1, kind="stable")
    return np.where(np.take_along_axis(keep, pos, axis=1), np.take_along_axis(rows, pos, axis=1), -1)


def popularity_lists(train: Interactions, k: int) -> dict[str, np.ndarray]:
    """Baseline lists for `evaluate_complements`, (P, k+1) and (P, 2k+1).

    popularity: the k+1 best sellers of the training window (recency-weighted, as the
        service ranks them) outside the anchor's category (k+1, so k survive dropping the
        anchor itself in a one-category catalog).
    popularity-category: the best seller of each category that is bought with the
        anchor's category (`fit_category_complements`, best category first), then the
        second best of each, ...; topped up from `popularity`. This is what the service
        can offer for a product without purchase history.
    """
    pop, _ = fit_popularity(train, PopularityConfig())
    category, n_cat = train.product_category, len(train.category_names)
    by_pop = np.lexsort((np.arange(len(pop)), -pop))
    by_pop = by_pop[pop[by_pop] > 0]

    # Global: for each category, the first k+1 sellers of other categories. They lie in
    # a head of the ranking long enough that even its commonest category leaves k+1.
    head = min(len(by_pop), k + 1)
    while n_cat > 1 and head < len(by_pop):
        longer = min(len(by_pop), k + 1 + int(np.bincount(category[by_pop[:head]]).max()))
        if longer == head:
            break
        head = longer
    top = by_pop[:head]
    other = (category[top][None, :] != np.arange(n_cat)[:, None]) | (n_cat == 1)
    pos = np.argsort(~other, axis=1, kind="stable")[:, :k + 1]
    glob = np.where(np.take_along_axis(other, pos, axis=1), top[pos], -1)
    glob = np.pad(glob, ((0, 0), (0, k + 1 - glob.shape[1])), constant_values=-1)

    # Per category: its k best sellers, (C, k).
    cat_sorted = category[by_pop]
    grouped = by_pop[np.argsort(cat_sorted, kind="stable")]
    g_cat = category[grouped]
    rank = np.arange(len(grouped)) - np.searchsorted(g_cat, g_cat)
    top_in_cat = np.full((n_cat, k), -1, np.int64)
    sel = rank < k
    top_in_cat[g_cat[sel], rank[sel]] = grouped[sel]

    comp_idx, _ = fit_category_complements(train, CategoryComplementsConfig(top_k=k))
    round_robin = np.where(comp_idx[:, :, None] >= 0, top_in_cat[np.maximum(comp_idx, 0)], -1)
    round_robin = round_robin.transpose(0, 2, 1).reshape(n_cat, -1)
    by_category = _first_unique(np.concatenate([round_robin, glob], axis=1))[:, :2 * k + 1]
    return {
        "popularity": glob[category].astype(np.int32),
        "popularity-category": by_category[category].astype(np.int32),
    }


def format_table(rows: list[MetricRow]) -> str:
    """Plain-text table, one block per task, the metrics side by side per model."""
    blocks = []
    for task in dict.fromkeys(r.task for r in rows):
        task_rows = [r for r in rows if r.task == task]
        names = list(dict.fromkeys(m for r in task_rows for m in r.metrics))
        header = ["model", *names, "queries", "note"]
        body = [[r.model, *(f"{r.metrics[m]:.4f}" if m in r.metrics else "-" for m in names),
                 str(r.n_queries), r.note] for r in task_rows]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i in (0, len(cells) - 1) else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        blocks.append("\n".join([f"[{task}]", line(header), line(["-" * w for w in widths]),
                                 *map(line, body)]))
    return "\n\n".join(blocks)
