"""Offline evaluation of personal recommendations on a time split.

Protocol: a query is a user with purchases in the training window (ALS knows them)
who buys, in the test window, at least one product they had not bought before. Those
new products are the targets; products the user already bought in training are
removed from every model's ranking ("discovery": a chatbot suggesting what the user
buys anyway is no recommendation; repeat purchases are the re-order feature's job).

Models, scored on the same queries:
  als                  user factors . item factors
  popularity           products in most training orders
  popularity-category  P(category | user's training purchases) * P(product | category),
                       the popularity baseline that knows what the user shops for

Metrics (same definitions as training.evaluate): HitRate@k (a target in the top k),
Recall@k (hits / min(targets, k): a list of k can hold at most k), NDCG@k (binary gains,
ideal = min(targets, k) hits on top), Coverage@k (distinct recommended products /
products in the catalog).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from training.als import ALSModel
from training.data import Interactions, MetricRow
from training.substitutes import orders_per_product, top_k_rows

# (users x candidate products) scored at once by the popularity baselines.
_BLOCK_ENTRIES = 4_000_000


def sorted_unique(keys: np.ndarray) -> np.ndarray:
    """np.unique for large int arrays (numpy 2's hash-based unique is ~10x slower here)."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def list_metrics(recs: np.ndarray, target_keys: np.ndarray, n_targets: np.ndarray, n_columns: int,
                 k: int) -> dict[str, float]:
    """HitRate/Recall/NDCG@k of (Q, k) lists (-1 padded) against targets given as
    sorted keys `query * n_columns + product`; n_targets (Q,) > 0."""
    names = (f"HitRate@{k}", f"Recall@{k}", f"NDCG@{k}")
    if len(recs) == 0:
        return {n: float("nan") for n in names}
    recs = np.pad(recs[:, :k], ((0, 0), (0, max(0, k - recs.shape[1]))), constant_values=-1)
    keys = np.arange(len(recs))[:, None] * n_columns + np.maximum(recs, 0)
    at = np.minimum(np.searchsorted(target_keys, keys), max(len(target_keys) - 1, 0))
    hit = (recs >= 0) & (target_keys[at] == keys) if len(target_keys) else np.zeros(recs.shape, bool)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.r_[0.0, np.cumsum(discount)][np.minimum(n_targets, k)]
    return {
        names[0]: float(hit.any(axis=1).mean()),
        names[1]: float((hit.sum(axis=1) / np.minimum(n_targets, k)).mean()),
        names[2]: float(((hit * discount).sum(axis=1) / ideal).mean()),
    }


def _binary(inter: Interactions) -> sp.csr_matrix:
    """(U, P) 1 where the user bought the product; sorted indices."""
    m = sp.csr_matrix((np.ones(len(inter.user), np.float32), (inter.user, inter.product)),
                      shape=(inter.n_users, inter.n_products))
    m.sum_duplicates()
    m.data[:] = 1
    return m


def _top_k(items: np.ndarray, queries: np.ndarray, exclude: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k items per query by dot product, skipping each query's `exclude` row.
    implicit's blocked C top-k: no dense (queries x items) matrix, no full sort."""
    from implicit.cpu.topk import topk  # import is slow; only when evaluating

    n = min(k, len(items))
    with threadpool_limits(limits=1, user_api="blas"):
        ids, scores = topk(np.ascontiguousarray(items, dtype=np.float32),
                           np.ascontiguousarray(queries, dtype=np.float32), n,
                           filter_query_items=exclude.astype(np.float32), num_threads=0)
    ids = np.where(scores > -np.finfo(np.float32).max, ids, -1).astype(np.int64)  # filtered: none left
    return np.pad(ids, ((0, 0), (0, k - n)), constant_values=-1), scores


def _category_popularity_top_k(share: sp.csr_matrix, category: np.ndarray, p_in_category: np.ndarray,
                               exclude: sp.csr_matrix, k: int) -> np.ndarray:
    """Exact top k of share[u, category[i]] * p_in_category[i] over unseen items i.

    A user's best k unseen items of category c are among c's first k + (items of c
    the user has seen), so only those candidates are scored: a few thousand columns
    instead of the whole catalog."""
    n_cat = share.shape[1]
    onehot = sp.csr_matrix((np.ones(len(category), np.float32), (np.arange(len(category)), category)),
                           shape=(len(category), n_cat))
    seen_max = (exclude @ onehot).max(axis=0).toarray().ravel().astype(np.int64)
    order = np.lexsort((np.arange(len(category)), -p_in_category, category))
    start = np.searchsorted(category[order], np.arange(n_cat))
    rank = np.empty(len(category), np.int64)
    rank[order] = np.arange(len(category)) - start[category[order]]
    cand = np.flatnonzero(rank < k + seen_max[category])
    step = max(1, _BLOCK_ENTRIES // max(len(cand), 1))
    out = np.empty((share.shape[0], k), np.int64)
    for lo in range(0, share.shape[0], step):
        scores = share[lo:lo + step].toarray()[:, category[cand]] * p_in_category[cand]
        bought = exclude[lo:lo + step][:, cand].tocoo()
        scores[bought.row, bought.col] = -np.inf
        out[lo:lo + step] = top_k_rows(scores, cand, k)[0]
    return out


def evaluate_personal(als: ALSModel, train: Interactions, test: Interactions, k: int = 10,
                      max_users: int | None = None, seed: int = 0) -> list[MetricRow]:
    """One MetricRow per model (als, popularity, popularity-category); see module doc.

    `max_users` caps the evaluated users with a seeded sample: scoring every user
    against every product grows with users x products, the sample keeps it linear."""
    seen = _binary(train)
    future = _binary(test)
    new = (future - future.multiply(seen)).tocsr()  # test purchases not made in training
    new.eliminate_zeros()
    has_history = np.diff(seen.indptr) > 0
    users = np.flatnonzero(has_history & (np.diff(new.indptr) > 0))
    cold = int(((np.diff(future.indptr) > 0) & ~has_history).sum())
    note = f"new purchases of returning users; {cold} cold users skipped"
    if len(users) == 0:
        return []
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
        note += f"; {max_users:,} users sampled"

    q = new[users].tocoo()  # rows are query positions
    target_keys = np.sort(q.row.astype(np.int64) * train.n_products + q.col)
    n_targets = np.diff(new[users].indptr)

    pop = orders_per_product(train).astype(np.float32)
    cat = train.product_category
    n_cat = len(train.category_names)
    cat_total = np.bincount(cat, weights=pop, minlength=n_cat)
    p_item_given_cat = (pop / np.maximum(cat_total[cat], 1)).astype(np.float32)
    seen_rows = np.repeat(np.arange(train.n_users), np.diff(seen.indptr))
    user_cat = sp.csr_matrix((seen.data, (seen_rows, cat[seen.indices])), shape=(train.n_users, n_cat))
    user_cat = sp.csr_matrix(sp.diags_array(1.0 / np.maximum(user_cat.sum(axis=1).A.ravel(), 1)) @ user_cat)

    lists = {
        "als": _top_k(als.item_factors, als.user_factors[users], seen[users], k)[0],
        "popularity": _category_popularity_top_k(sp.csr_matrix(np.ones((len(users), 1), np.float32)),
                                                 np.zeros_like(cat), pop / max(pop.sum(), 1), seen[users], k),
        "popularity-category": _category_popularity_top_k(user_cat[users], cat, p_item_given_cat,
                                                          seen[users], k),
    }
    rows = []
    for name, recs in lists.items():
        metrics = list_metrics(recs, target_keys, n_targets, train.n_products, k)
        metrics[f"Coverage@{k}"] = len(np.unique(recs[recs >= 0])) / max(train.n_products, 1)
        rows.append(MetricRow(task="personal", model=name, metrics=metrics, n_queries=len(users), note=note))
    return rows
