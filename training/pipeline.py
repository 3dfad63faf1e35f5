"""The training job: order history + catalog -> evaluated, versioned model bundle.

Stages (each logged with its time, and shown as a progress bar on a terminal):
load+validate -> encode -> time split -> fit on the past -> evaluate against baselines
-> refit on everything -> write the bundle atomically and make it current. On two or
more cores, and for large inputs, the refit runs in a child process beside the fit on
the past and the evaluation (training/background.py).
"""
from __future__ import annotations

import hashlib
import logging
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from training import bundle as bundle_fmt
from training.als import ALSModel, fit_als, user_item_matrix
from training.background import Background, usable_cores
from training.category_complements import fit_category_complements
from training.config import TrainConfig
from training.copurchase import CopurchaseModel, fit_cocount, fit_copurchase_and_cocount
from training.data import (Catalog, Interactions, MetricRow, Orders, build_interactions,
                           fill_prices_from_orders, hashable_lines, product_table)
from training.evaluate import evaluate_complements, format_table, popularity_lists, time_split
from training.evaluate_personal import evaluate_personal
from training.evaluate_substitutes import evaluate_substitutes
from training.io import DataReport, load_inputs
from training.popularity import fit_popularity
from training.substitutes import fit_substitutes

log = logging.getLogger("recsvc.train")


@dataclass
class Models:
    """Everything fitted on one set of interactions."""

    copurchase: CopurchaseModel
    category_idx: np.ndarray
    category_score: np.ndarray
    popularity: np.ndarray
    popularity_count: np.ndarray
    als: ALSModel
    substitutes_idx: np.ndarray
    substitutes_score: np.ndarray
    cocount: CopurchaseModel | None = None  # the raw co-count baseline, when fitted for evaluation


@dataclass
class HoldOut:
    """A run's evaluation split, kept so other bundles can be scored on the same queries."""

    train: Interactions
    test: Interactions
    products: pd.DataFrame


@dataclass
class TrainResult:
    bundle_path: Path
    version: str
    rows: list[MetricRow]
    report: DataReport
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    holdout: HoldOut | None = None  # set with train(keep_holdout=True)
    refit_peak_rss_mb: float = 0.0  # the refit's child process, when it ran in one (see training/background.py)

    def table(self) -> str:
        return format_table(self.rows)


class _Stages:
    """Times each stage, logs it, and advances one progress bar over the job."""

    def __init__(self, names: list[str], progress: bool) -> None:
        self.timings: dict[str, float] = {}
        self.bar = tqdm(total=len(names), desc="training", unit="stage", disable=not progress, leave=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.bar.set_description(f"training: {name}")
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.timings[name] = dt
        self.bar.update(1)
        log.info("stage %-22s %7.2f s   peak RSS %6.0f MB", name, dt, peak_rss_mb())

    def close(self) -> None:
        self.bar.set_description("training: done")
        self.bar.close()


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fingerprint(orders: Orders, catalog: Catalog) -> str:
    """Content hash of the validated inputs: same data -> same fingerprint."""
    h = hashlib.sha256()
    for df in (hashable_lines(orders, catalog), catalog.items):
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
        h.update(",".join(df.columns).encode())
    return h.hexdigest()


def fit_models(inter: Interactions, products: pd.DataFrame, cfg: TrainConfig, with_baselines: bool = False) -> Models:
    """`with_baselines`: also the raw co-count baseline (for `evaluate_models`), from the
    co-purchase model's own co-occurrence counts. `products` (`product_table`) also gives
    the co-purchase back-off its group column (`[copurchase] backoff_column`)."""
    cop, cocount = fit_copurchase_and_cocount(inter, cfg.copurchase, with_cocount=with_baselines, products=products)
    cat_idx, cat_score = fit_category_complements(inter, cfg.category_complements)
    pop, pop_count = fit_popularity(inter, cfg.popularity)
    als = fit_als(inter, cfg.als)
    sub_idx, sub_score = fit_substitutes(inter, products, als, cop.idx, cop.support, cfg.substitutes)
    return Models(cop, cat_idx, cat_score, pop, pop_count, als, sub_idx, sub_score, cocount)


def evaluate_models(models: Models, train: Interactions, test: Interactions, products: pd.DataFrame,
                    cfg: TrainConfig) -> list[MetricRow]:
    k = cfg.eval.k
    cocount = models.cocount if models.cocount is not None else \
        fit_cocount(train, cfg.copurchase.top_k, cfg.copurchase.same_category_slots)
    lists = {"copurchase": models.copurchase.idx, "cocount": cocount.idx}
    lists.update(popularity_lists(train, k))
    rows = evaluate_complements(lists, train, test, cfg.eval)
    rows += evaluate_personal(models.als, train, test, k=k, max_users=cfg.eval.max_queries, seed=cfg.eval.seed)
    # Adds the one-signal baselines (ALS-similar, content-similar, popularity in category).
    rows += evaluate_substitutes({"substitutes": models.substitutes_idx}, products, train, test, k=k,
                                 als=models.als, cfg=cfg.substitutes)
    return rows


def bundle_arrays(models: Models, inter: Interactions) -> dict[str, np.ndarray]:
    ui = user_item_matrix(inter).tocsr()
    return {
        "product_ids": inter.product_ids.astype(str),
        "product_category": inter.product_category.astype(np.int32),
        "category_names": inter.category_names.astype(str),
        "popularity": models.popularity.astype(np.float32),
        "popularity_count": models.popularity_count.astype(np.int32),
        "complements_idx": models.copurchase.idx.astype(np.int32),
        "complements_score": models.copurchase.score.astype(np.float32),
        "complements_support": models.copurchase.support.astype(np.int32),
        "category_complements_idx": models.category_idx.astype(np.int32),
        "category_complements_score": models.category_score.astype(np.float32),
        "substitutes_idx": models.substitutes_idx.astype(np.int32),
        "substitutes_score": models.substitutes_score.astype(np.float32),
        "item_factors": models.als.item_factors.astype(np.float32),
        "user_factors": models.als.user_factors.astype(np.float32),
        "user_ids": inter.user_ids.astype(str),
        "user_items_indptr": ui.indptr.astype(np.int64),
        "user_items_indices": ui.indices.astype(np.int32),
    }


def train(
    orders: str | Path,
    catalog: str | Path | None,
    model_dir: str | Path,
    *,
    fmt: str = "standard",
    cfg: TrainConfig | None = None,
    make_current: bool = True,
    progress: bool = True,
    keep_holdout: bool = False,
) -> TrainResult:
    """Run the whole job and publish a bundle under `model_dir`.

    `keep_holdout` returns the train/test split on the result (the quality gate scores
    the live bundle on it); the arrays are alive during the job anyway.
    """
    cfg = cfg or TrainConfig()
    names = ["load+validate", "encode", "split", "fit (train split)", "evaluate"]
    names += ["fit (all orders)"] if cfg.refit_full else []
    names += ["write bundle"]
    st = _Stages(names, progress)
    child_peak_mb = 0.0
    try:
        with st.stage("load+validate"):
            order_data, catalog_data, report = load_inputs(str(orders), None if catalog is None else str(catalog), fmt)
            if order_data.lines.empty:
                raise ValueError(f"no usable order lines in {orders}: every row was skipped; "
                                 f"see the data report:\n{report.format()}")
        with st.stage("encode"):
            catalog_data = fill_prices_from_orders(catalog_data, order_data)
            inter = build_interactions(order_data, catalog_data)
            products = product_table(catalog_data, inter.product_ids)
            fp = fingerprint(order_data, catalog_data)
            del order_data  # encoded: free the lines (~0.9 GB at 10M) before the fits
        with st.stage("split"):
            train_i, test_i = time_split(inter, cfg.eval.holdout_fraction)
        refit = _refit_beside(inter, products, cfg)
        try:
            with st.stage("fit (train split)"):
                split_models = fit_models(train_i, products, cfg, with_baselines=True)
            with st.stage("evaluate"):
                rows = evaluate_models(split_models, train_i, test_i, products, cfg)
        except BaseException:
            if refit is not None:
                refit.cancel()
            raise
        final = split_models
        if cfg.refit_full:
            with st.stage("fit (all orders)"):
                if refit is None:
                    final = fit_models(inter, products, cfg)
                else:
                    done = refit.result()
                    final, child_peak_mb = done.value, done.child_peak_rss_mb
                    if done.in_child:
                        log.info("refit on all orders ran in a child process beside the fit and the evaluation "
                                 "(peak RSS %.0f MB)", child_peak_mb)
                    else:
                        log.warning("refit on all orders: %s; refitted here instead", done.why)
        with st.stage("write bundle"):
            manifest: dict[str, Any] = {
                "fingerprint": fp,
                "inputs": {"orders": str(orders), "catalog": None if catalog is None else str(catalog), "format": fmt},
                "params": cfg.to_dict(),
                "metrics": [r.__dict__ for r in rows],
                "data_report": report.to_dict(),
                "counts": {"products": inter.n_products, "users": inter.n_users, "orders": inter.n_orders,
                           "lines": int(len(inter.order)), "categories": int(len(inter.category_names))},
                "period": {"start": _iso(inter.ts.min()), "end": _iso(inter.ts.max()),
                           "holdout_start": _iso(test_i.ts.min()) if len(test_i.ts) else None},
            }
            catalog_table = catalog_data.items.reset_index(drop=True)
            path = bundle_fmt.write_bundle(model_dir, bundle_arrays(final, inter), {"catalog": catalog_table},
                                           manifest, make_current=make_current)
    finally:
        st.close()
    result = TrainResult(path, path.name, rows, report, st.timings, peak_rss_mb(),
                         HoldOut(train_i, test_i, products) if keep_holdout else None, child_peak_mb)
    log.info("published bundle %s (%s)", result.version, "current" if make_current else "not current")
    return result


def _refit_beside(inter: Interactions, products: pd.DataFrame, cfg: TrainConfig) -> Background[Models] | None:
    """Start the refit on all orders in a child process, when that pays (see
    `TrainConfig.parallel_refit_min_lines`); None: it runs in turn, here."""
    if not cfg.refit_full or usable_cores() < 2 or len(inter.order) < cfg.parallel_refit_min_lines:
        return None
    try:
        return Background(fit_models, inter, products, cfg)
    except (OSError, RuntimeError) as e:  # no process could be started (limits, sandbox)
        log.warning("refit on all orders: cannot start a child process (%s); it runs in turn", e)
        return None


def _iso(ts: Any) -> str | None:
    if ts is None:
        return None
    return pd.Timestamp(int(ts), unit="s", tz="UTC").isoformat()
