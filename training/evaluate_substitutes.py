"""Offline evaluation of substitutes against two kinds of ground truth.

variant families (products carry a `family` attribute, e.g. online-retail's StockCode
  stem: 85123A ~ 85123B): every product of a family with 2+ members is a query, the
  other members are its targets. The family column must not feed the content vectors
  of the lists under test (SubstitutesConfig.content_exclude_columns leaves it out by
  default), or the answer leaks into the question.
replacements (products carry a `product_type`, e.g. complete-journey): a household that
  bought A in the training window and, in the test window, bought B of the same
  product type but not A again has replaced A by B, so B is a target of A. Queries are
  the products A with at least one such B.

Every model is scored on the same queries; lists are cut at k after removing -1 pads
and the anchor. Baselines computed here: `popularity-category` (the anchor's
category's best sellers in the training window), the floor to beat, and, given the
ALS model, `als-similar` and `content-similar` (training.substitutes.baseline_configs). Metrics: HitRate@k,
Recall@k, NDCG@k (as training.evaluate_personal.list_metrics) and Coverage@k
(distinct products in the query lists / products in the catalog).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.als import ALSModel
from training.content import FAMILY_COLUMN
from training.data import Interactions, MetricRow
from training.evaluate_personal import list_metrics, sorted_unique
from training.substitutes import SubstitutesConfig, orders_per_product, substitute_baselines

TYPE_COLUMN = "product_type"


@dataclass
class SubstituteTruth:
    """Queries with their targets, as sorted keys query * P + target product."""

    note: str
    anchors: np.ndarray  # (Q,) product codes
    target_keys: np.ndarray  # sorted int64
    n_targets: np.ndarray  # (Q,) > 0


def _group_codes(values: pd.Series) -> np.ndarray:
    """Factorised non-empty values; -1 for empty/missing."""
    text = values.fillna("").astype(str).str.strip()
    codes, _ = pd.factorize(text.where(text != ""))
    return codes


def _truth_from_pairs(note: str, anchor: np.ndarray, target: np.ndarray, n_products: int) -> SubstituteTruth | None:
    pairs = sorted_unique(anchor.astype(np.int64) * n_products + target)
    if len(pairs) == 0:
        return None
    a = pairs // n_products
    first = np.r_[True, a[1:] != a[:-1]]
    q = np.cumsum(first) - 1  # query number of each pair, pairs stay sorted
    n_targets = np.diff(np.r_[np.flatnonzero(first), len(a)])
    return SubstituteTruth(note, a[first].astype(np.int32), q * n_products + pairs % n_products, n_targets)


def family_truth(products: pd.DataFrame, column: str = FAMILY_COLUMN) -> SubstituteTruth | None:
    """Other members of the anchor's variant family."""
    if column not in products:
        return None
    fam = _group_codes(products[column])
    members = pd.DataFrame({"f": fam, "p": np.arange(len(fam))})[fam >= 0]
    pairs = members.merge(members, on="f")
    pairs = pairs[pairs.p_x != pairs.p_y]
    n_fam = int((np.bincount(members.f) >= 2).sum()) if len(members) else 0
    return _truth_from_pairs(f"variant families ({n_fam} with 2+ products)", pairs.p_x.to_numpy(), pairs.p_y.to_numpy(),
                             len(products))


def replacement_truth(products: pd.DataFrame, train: Interactions, test: Interactions,
                      column: str = TYPE_COLUMN) -> SubstituteTruth | None:
    """Same-type products that replaced the anchor in a household's later baskets."""
    if column not in products:
        return None
    n = train.n_products
    ptype = _group_codes(products[column])
    before = sorted_unique(train.user.astype(np.int64) * n + train.product)
    after = sorted_unique(test.user.astype(np.int64) * n + test.product)
    dropped = np.setdiff1d(before, after, assume_unique=True)  # bought before, not again
    adopted = np.setdiff1d(after, before, assume_unique=True)  # bought now, never before

    def frame(keys: np.ndarray) -> pd.DataFrame:
        p = keys % n
        return pd.DataFrame({"u": keys // n, "t": ptype[p], "p": p}).query("t >= 0")

    pairs = frame(dropped).merge(frame(adopted), on=["u", "t"])
    return _truth_from_pairs(f"replacements within {column}", pairs.p_x.to_numpy(), pairs.p_y.to_numpy(), n)


def first_k(rows: np.ndarray, anchors: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) first k entries of each anchor's row (Q, K) that are neither -1 nor the anchor."""
    valid = (rows >= 0) & (rows != anchors[:, None])
    pos = np.argsort(~valid, axis=1, kind="stable")[:, :k]
    out = np.where(np.take_along_axis(valid, pos, axis=1), np.take_along_axis(rows, pos, axis=1), -1)
    return np.pad(out, ((0, 0), (0, k - out.shape[1])), constant_values=-1) if out.shape[1] < k else out


def popularity_category_lists(train: Interactions, anchors: np.ndarray, k: int) -> np.ndarray:
    """(Q, k+1) best sellers of each anchor's category (ties by product code), -1 padded."""
    pop = orders_per_product(train)
    cat = train.product_category
    order = np.lexsort((np.arange(len(cat)), -pop, cat))
    start = np.searchsorted(cat[order], np.arange(len(train.category_names) + 1))
    c = cat[anchors]
    pos = start[c][:, None] + np.arange(k + 1)
    inside = pos < start[c + 1][:, None]
    return np.where(inside, order[np.minimum(pos, len(order) - 1)], -1)


def evaluate_substitutes(named_lists: dict[str, np.ndarray], products: pd.DataFrame, train: Interactions,
                         test: Interactions, k: int = 10, *, als: ALSModel | None = None,
                         cfg: SubstitutesConfig | None = None) -> list[MetricRow]:
    """One MetricRow per (ground truth, model); values of `named_lists` are (P, K)
    product-code lists, best first, -1 padded. With `als`, the one-signal baselines
    als-similar and content-similar (`substitute_baselines` under `cfg`, the config of
    the lists under test) are added, computed for the queried anchors only. No rows
    when the catalog carries neither a family nor a product-type column."""
    truths = [t for t in (family_truth(products), replacement_truth(products, train, test)) if t is not None]
    if truths and als is not None:
        anchors = np.unique(np.concatenate([t.anchors for t in truths]))
        named_lists = {**named_lists, **substitute_baselines(train, products, als, cfg, k, anchors)}
    rows = []
    for truth in truths:
        per_anchor = {name: np.asarray(full)[truth.anchors] for name, full in named_lists.items()}
        per_anchor["popularity-category"] = popularity_category_lists(train, truth.anchors, k)
        for name, rows_of_anchors in per_anchor.items():
            recs = first_k(rows_of_anchors, truth.anchors, k)
            metrics = list_metrics(recs, truth.target_keys, truth.n_targets, train.n_products, k)
            metrics[f"Coverage@{k}"] = len(np.unique(recs[recs >= 0])) / train.n_products
            rows.append(MetricRow(task="substitutes", model=name, metrics=metrics,
                                  n_queries=len(truth.anchors), note=truth.note))
    return rows
