"""Complement quality on the shared datasets: co-purchase against its baselines.

For each dataset: time split (last 10 % of the period held out), fit on the past, and
score cross-category basket completion with training.evaluate (same queries for every
model): the shipped co-purchase model, raw co-count, popularity (global and via the
category complements), and an ablation of the co-purchase score. Targets at k=10:
  complete-journey  Recall >= co-count's, Coverage >= 0.15 and >= co-count's
  online-retail     Recall >= co-count's (one category: every basket mate counts)
The note column gives each model's Recall minus co-count's on the same queries, with
its paired standard error: differences inside ~2 SE are noise.

Run:  OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.complements_quality [--dataset NAME] [--no-ablation]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
MIN_COVERAGE = 0.15  # complete-journey Coverage@10 target


@dataclass
class Dataset:
    name: str
    orders: Path  # file or folder handed to training.io.load_inputs
    coverage_target: bool


def ablation() -> dict[str, dict]:
    """CopurchaseConfig overrides: each isolates one choice of the default score."""
    return {
        "  prior only (exponent 0)": {"popularity_exponent": 0.0},
        "  exponent only (prior 0)": {"prior_orders": 0.0},
        "  exponent 0.2": {"popularity_exponent": 0.2},
        "  cosine ranking (ms 2)": {"prior_orders": 0.0, "popularity_exponent": 0.5, "min_support": 2},
        "  lift ranking (ms 2)": {"prior_orders": 0.0, "popularity_exponent": 1.0, "min_support": 2},
        "  min_support 2": {"min_support": 2},
        "  half-life 90 d": {"half_life_days": 90.0},
    }


def paired_delta(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of a - b over the same queries and its standard error."""
    d = a - b
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")


def run(ds: Dataset, k: int, max_queries: int | None, with_ablation: bool):
    from training.copurchase import CopurchaseConfig, fit_cocount, fit_copurchase
    from training.data import build_interactions
    from training.evaluate import (EvalConfig, complement_metrics, complement_queries, hits,
                                   popularity_lists, query_recall, recommend, time_split)
    from training.data import MetricRow
    from training.io import load_inputs

    t0 = time.perf_counter()
    orders, catalog, _ = load_inputs(str(ds.orders), None, ds.name)
    train, test = time_split(build_interactions(orders, catalog), 0.1)
    timings = {"load": time.perf_counter() - t0}

    t0 = time.perf_counter()
    default = CopurchaseConfig()
    lists = {"copurchase": fit_copurchase(train, default).idx}
    timings["fit copurchase"] = time.perf_counter() - t0
    lists["cocount"] = fit_cocount(train, default.top_k).idx
    lists.update(popularity_lists(train, k))
    if with_ablation:
        for name, changes in ablation().items():
            lists[name] = fit_copurchase(train, dataclasses.replace(default, **changes)).idx

    t0 = time.perf_counter()
    q = complement_queries(train, test, EvalConfig(k=k, max_queries=max_queries))
    recs = {name: recommend(lst, q, test, k) for name, lst in lists.items()}
    recall = {name: query_recall(hits(r, q, test.n_products), q) for name, r in recs.items()}
    rows = []
    for name, r in recs.items():
        delta, se = paired_delta(recall[name], recall["cocount"])
        note = "" if name == "cocount" else f"{delta:+.4f} ± {se:.4f}"
        rows.append(MetricRow("complements", name, complement_metrics(r, q, test.n_products, k), len(q.anchor), note))
    timings["evaluate"] = time.perf_counter() - t0
    return rows, timings


def check(ds: Dataset, rows: list, k: int) -> list[tuple[str, bool]]:
    by = {r.model: r.metrics for r in rows}
    cop, co = by["copurchase"], by["cocount"]
    delta = next(r.note for r in rows if r.model == "copurchase")
    out = [(f"Recall@{k} {cop[f'Recall@{k}']:.4f} >= co-count {co[f'Recall@{k}']:.4f} (difference {delta})",
            cop[f"Recall@{k}"] >= co[f"Recall@{k}"])]
    if ds.coverage_target:
        need = max(MIN_COVERAGE, co[f"Coverage@{k}"])
        out.append((f"Coverage@{k} {cop[f'Coverage@{k}']:.4f} >= max({MIN_COVERAGE}, co-count "
                    f"{co[f'Coverage@{k}']:.4f})", cop[f"Coverage@{k}"] >= need))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["all", "complete-journey", "online-retail"], default="all")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--max-queries", type=int, default=10_000, help="seeded query sample (0: all queries)")
    p.add_argument("--no-ablation", action="store_true", help="skip the score ablation rows")
    p.add_argument("--datasets", type=Path, default=DATASETS)
    args = p.parse_args(argv)
    if not args.datasets.is_dir():
        print(f"skipped: shared datasets not found at {args.datasets} (they sit beside the project in CI)")
        return 0
    from training.evaluate import format_table

    sets = [Dataset("complete-journey", args.datasets / "complete-journey", coverage_target=True),
            Dataset("online-retail", args.datasets / "online-retail" / "online_retail.parquet", coverage_target=False)]
    status = 0
    for ds in sets:
        if args.dataset not in ("all", ds.name):
            continue
        if not ds.orders.exists():
            print(f"skipped {ds.name}: {ds.orders} not found\n")
            continue
        rows, timings = run(ds, args.k, args.max_queries or None, not args.no_ablation)
        print(f"== {ds.name} (last 10 % held out, k={args.k}; note: Recall@{args.k} minus co-count's ± paired SE)")
        print(format_table(rows))
        print("timings: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in timings.items()))
        for text, ok in check(ds, rows, args.k):
            status |= 0 if ok else 1
            print(f"target {'met   ' if ok else 'MISSED'}  {text}")
        print()
    return status


if __name__ == "__main__":
    sys.exit(main())
