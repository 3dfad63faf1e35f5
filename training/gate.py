"""The quality gate: a new bundle becomes `current` only if it is no worse than the live one.

Both bundles are scored on the same hold-out, the new run's test split, with the same
queries and code as the training evaluation; the live bundle's product and user ids
are mapped onto the new run's index (products or users it does not know get empty
lists / zero factors, as the service would treat them). What is compared is what the
service would serve: the published arrays of each bundle. With the default
`refit_full` both have seen (most of) the hold-out window, so neither is favoured;
the new run's honest out-of-sample scores are its training evaluation, which is
where the baseline check looks.

Checks (each reported with its numbers; any failure rejects the bundle):
  rejected rows      share of malformed order lines <= max_rejected_share
  order volume       new orders >= min_order_ratio x the live bundle's orders
  catalog size       new products >= min_product_ratio x the live bundle's products
  data period        newest order not older than the live bundle's (a stale export)
  guarded metrics    each "task/model/metric" falls by at most its relative tolerance
  baselines          metrics in `beat_baselines` >= the best baseline of their task
                     (every guarded metric's standing against the baselines is noted)
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.als import ALSModel
from training.bundle import Bundle
from training.config import ConfigError
from training.data import MetricRow
from training.evaluate import EvalConfig, evaluate_complements
from training.evaluate_personal import evaluate_personal
from training.evaluate_substitutes import evaluate_substitutes
from training.pipeline import HoldOut

REPORT = "gate.json"  # written beside the manifest of every gated bundle
BASELINES = ("popularity", "popularity-category")
# The lists each task scores in a bundle, and the model name they carry in MetricRows.
BUNDLE_LISTS = {"complements": ("complements_idx", "copurchase"), "substitutes": ("substitutes_idx", "substitutes")}


def default_tolerances() -> dict[str, float]:
    # Ranking quality of what the chatbot shows most (complements) is guarded tighter
    # than ALS and substitutes, whose scores move more between nightly refits.
    return {"complements/copurchase/NDCG@10": 0.05, "complements/copurchase/HitRate@10": 0.05,
            "personal/als/NDCG@10": 0.10, "substitutes/substitutes/NDCG@10": 0.10}


@dataclass
class GateConfig:
    """[gate] of the retrain config. Tolerances are relative drops (0.05 = 5 % worse)."""

    tolerances: dict[str, float] = field(default_factory=default_tolerances)
    # Opt-in: on grocery data (complete-journey) best sellers beat co-purchase lists out of
    # sample, so a default requirement would reject every night. Always reported as notes.
    beat_baselines: list[str] = field(default_factory=list)
    baseline_tolerance: float = 0.0
    max_rejected_share: float = 0.05
    min_order_ratio: float = 0.5
    min_product_ratio: float = 0.5
    allow_older_data: bool = False

    def validate(self, where: str = "[gate]") -> None:
        if not isinstance(self.tolerances, dict):
            raise ConfigError(f"{where} tolerances: expected a table of \"task/model/metric\" = max drop")
        if not isinstance(self.beat_baselines, list):
            raise ConfigError(f"{where} beat_baselines: expected a list of \"task/model/metric\" names")
        for key in [*self.tolerances, *self.beat_baselines]:
            if not isinstance(key, str) or len(key.split("/")) != 3:
                raise ConfigError(f"{where}: metric {key!r} must read task/model/metric, "
                                  "e.g. 'complements/copurchase/NDCG@10'")
        for key, tol in self.tolerances.items():
            if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol <= 1:
                raise ConfigError(f"{where} tolerances {key!r}: expected a relative drop in [0, 1], got {tol!r}")
        for name in ("baseline_tolerance", "max_rejected_share", "min_order_ratio", "min_product_ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{where} {name}: expected a value in [0, 1], got {getattr(self, name)!r}")


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class GateReport:
    version: str
    live_version: str | None
    checks: list[Check]
    new_rows: list[MetricRow] = field(default_factory=list)  # new bundle on the hold-out
    live_rows: list[MetricRow] = field(default_factory=list)  # live bundle on the same hold-out
    notes: list[str] = field(default_factory=list)
    forced: bool = False

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def verdict(self) -> str:
        return "passed" if self.passed else ("forced" if self.forced else "rejected")

    def reasons(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]

    def format(self) -> str:
        against = f"live {self.live_version}" if self.live_version else "no live bundle"
        out = [f"quality gate for {self.version} vs {against}: {self.verdict.upper()}"]
        out += [f"  {'ok  ' if c.passed else 'FAIL'}  {c.name}: {c.detail}" for c in self.checks]
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(passed=self.passed, verdict=self.verdict, reasons=self.reasons())
        return d


# ------------------------------------------------------------------ scoring a bundle

def remap_bundle(arrays: dict[str, np.ndarray], product_ids: np.ndarray, user_ids: np.ndarray) -> dict[str, np.ndarray]:
    """A bundle's lists and factors re-indexed onto another run's products and users."""
    old_products = pd.Index(np.asarray(arrays["product_ids"], dtype=str))
    new_of_old = pd.Index(product_ids).get_indexer(old_products)  # -1: product gone
    old_of_new = old_products.get_indexer(pd.Index(product_ids))  # -1: product new
    out: dict[str, np.ndarray] = {}
    for name, _ in BUNDLE_LISTS.values():
        old = np.asarray(arrays[name])
        rows = np.where(old_of_new[:, None] >= 0, old[np.maximum(old_of_new, 0)], -1)
        out[name] = np.where(rows >= 0, new_of_old[np.maximum(rows, 0)], -1).astype(np.int32)
    out["item_factors"] = _take_rows(np.asarray(arrays["item_factors"]), old_of_new)
    old_users = pd.Index(np.asarray(arrays["user_ids"], dtype=str)).get_indexer(pd.Index(user_ids))
    out["user_factors"] = _take_rows(np.asarray(arrays["user_factors"]), old_users)
    return out


def _take_rows(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """matrix[rows] with zero rows where rows == -1 (unknown: no behaviour, score 0)."""
    out = np.zeros((len(rows), matrix.shape[1]), np.float32)
    known = rows >= 0
    out[known] = matrix[rows[known]]
    return out


def score_bundle(arrays: dict[str, np.ndarray], holdout: HoldOut, cfg: EvalConfig) -> list[MetricRow]:
    """The bundle's complements, ALS and substitutes on the hold-out (baselines left out)."""
    train, test = holdout.train, holdout.test
    mapped = remap_bundle(arrays, train.product_ids, train.user_ids)
    rows = evaluate_complements({"copurchase": mapped["complements_idx"]}, train, test, cfg)
    als = ALSModel(item_factors=mapped["item_factors"], user_factors=mapped["user_factors"])
    rows += [r for r in evaluate_personal(als, train, test, k=cfg.k) if r.model == "als"]
    rows += [r for r in evaluate_substitutes({"substitutes": mapped["substitutes_idx"]}, holdout.products,
                                             train, test, k=cfg.k) if r.model == "substitutes"]
    return rows


# ------------------------------------------------------------------------ the checks

def run_gate(new: Bundle, live: Bundle | None, holdout: HoldOut, train_rows: list[MetricRow],
             cfg: GateConfig, eval_cfg: EvalConfig, *, live_problem: str | None = None) -> GateReport:
    """All checks of the new bundle against the live one (None: first run or unreadable,
    `live_problem` says which); `train_rows` is the new run's own evaluation."""
    report = GateReport(version=new.version, live_version=live.version if live else None, checks=[])
    if live_problem:
        report.notes.append(live_problem)
    report.checks += data_checks(new.manifest, live.manifest if live else None, cfg)
    if live is not None:  # (a first run has nothing to be compared with)
        report.new_rows = score_bundle(new.arrays, holdout, eval_cfg)
        report.live_rows = score_bundle(live.arrays, holdout, eval_cfg)
        report.checks += metric_checks(report.new_rows, report.live_rows, cfg.tolerances, report.notes)
    report.checks += baseline_checks(train_rows, cfg, report.notes)
    return report


def data_checks(new: dict[str, Any], live: dict[str, Any] | None, cfg: GateConfig) -> list[Check]:
    """Sanity of the new run's data report, and its volume against the live bundle's."""
    share = float(new.get("data_report", {}).get("rejected_share", 0.0))
    checks = [Check("rejected rows", share <= cfg.max_rejected_share,
                    f"{share:.2%} of order lines malformed (max {cfg.max_rejected_share:.2%})")]
    if live is None:
        return checks
    new_counts, live_counts = new.get("counts", {}), live.get("counts", {})
    for name, key, ratio in (("order volume", "orders", cfg.min_order_ratio),
                             ("catalog size", "products", cfg.min_product_ratio)):
        n, n_live = new_counts.get(key), live_counts.get(key)
        if n is None or not n_live:
            continue
        checks.append(Check(name, n >= ratio * n_live,
                            f"{n:,} {key} vs {n_live:,} in the live bundle ({n / n_live:.1%}; min {ratio:.0%})"))
    end, live_end = new.get("period", {}).get("end"), live.get("period", {}).get("end")
    if end and live_end and not cfg.allow_older_data:
        checks.append(Check("data period", pd.Timestamp(end) >= pd.Timestamp(live_end),
                            f"newest order {end} (live bundle: {live_end})"))
    return checks


def _value(row: MetricRow, metric: str) -> float:
    v = row.metrics.get(metric, float("nan"))
    return float("nan") if v is None else float(v)


def metric_checks(new_rows: list[MetricRow], live_rows: list[MetricRow], tolerances: dict[str, float],
                  notes: list[str]) -> list[Check]:
    """Each guarded metric of the new bundle against the live one, row by row (task, model, note)."""
    live = {(r.task, r.model, r.note): r for r in live_rows}
    checks = []
    for key, tol in tolerances.items():
        task, model, metric = key.split("/")
        rows = [r for r in new_rows if r.task == task and r.model == model]
        if not rows:
            notes.append(f"{key} not measured on this hold-out (no queries of that kind)")
        for row in rows:
            other = live.get((row.task, row.model, row.note))
            new_v = _value(row, metric)
            live_v = _value(other, metric) if other else float("nan")
            name = key + (f" [{row.note}]" if task == "substitutes" and row.note else "")
            if math.isnan(new_v) or math.isnan(live_v):
                notes.append(f"{name} not comparable (new {new_v:.4f}, live {live_v:.4f})")
                continue
            drop = (live_v - new_v) / live_v if live_v > 0 else 0.0
            checks.append(Check(name, drop <= tol + 1e-12,
                                f"{new_v:.4f} vs live {live_v:.4f} ({-drop:+.1%}; max drop {tol:.0%})"))
    return checks


def baseline_checks(train_rows: list[MetricRow], cfg: GateConfig, notes: list[str]) -> list[Check]:
    """Guarded models against the simple baselines in the new run's out-of-sample evaluation:
    a check for the metrics in `beat_baselines`, a note for the other guarded ones."""
    checks = []
    for key in dict.fromkeys([*cfg.beat_baselines, *cfg.tolerances]):
        task, model, metric = key.split("/")
        enforced = key in cfg.beat_baselines
        for row in (r for r in train_rows if r.task == task and r.model == model):
            base = [(b.model, _value(b, metric)) for b in train_rows
                    if b.task == task and b.note == row.note and b.model in BASELINES]
            base = [(m, v) for m, v in base if not math.isnan(v)]
            v = _value(row, metric)
            if not base or math.isnan(v):
                notes.append(f"{key} vs baselines not measurable")
                continue
            best_name, best = max(base, key=lambda mv: mv[1])
            detail = f"{v:.4f} vs {best_name} {best:.4f} on the run's own hold-out"
            if enforced:
                checks.append(Check(f"{key} vs baselines", v >= best * (1 - cfg.baseline_tolerance), detail))
            else:
                notes.append(f"{key} vs baselines (not enforced): {detail}")
    return checks


# ------------------------------------------------------------------ report on disk

def write_report(bundle_path: str | Path, report: GateReport) -> Path:
    """gate.json beside the manifest (written atomically; not part of the checksummed files)."""
    path = Path(bundle_path) / REPORT
    tmp = path.with_name(f".{REPORT}.tmp")
    with open(tmp, "w") as f:
        json.dump(report.to_dict(), f, indent=2, default=float)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_verdict(bundle_path: str | Path) -> str | None:
    """'passed', 'rejected' or 'forced' for a gated bundle; None when it was never gated."""
    try:
        with open(Path(bundle_path) / REPORT) as f:
            return str(json.load(f).get("verdict"))
    except (OSError, ValueError):
        return None
