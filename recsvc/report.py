"""The winner report: which test items convert best, how sure that is, and when to stop.

Built from the store's counts (`Store.experiment_stats`), so it can be read while the
experiment runs. For each test item: exposures, impressions, clicks, add-to-carts,
purchases; the conversion rate on the experiment's metric (exposures with at least
one such event / exposures) with a 95 % Wilson interval; and the probability of being
among the top N, by Monte Carlo over Beta(1 + conversions, 1 + misses) posteriors.

The slot effect compares the slot's conversion with a test item in it against the
control group's organic item in the same slot: the difference with a 95 % Newcombe
interval (built from the two Wilson intervals) and P(test better).

Stopping rule: the top N are *settled* when, under the posteriors, the current pick
is exactly the top N with probability >= `confidence` (default 0.95). Otherwise the
report projects how many more test exposures that likely takes: it scales every
item's counts by 1.25x, 1.5x, 2x ... (the observed rates held, traffic split as so
far) and reports the first scale at which the pick would be settled.

>>> report = build_report(exp, store.experiment_stats(exp.id))     # doctest: +SKIP
>>> print(format_report(report)); write_csv(report, open("out.csv", "w"))   # doctest: +SKIP
"""
from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO

import numpy as np

from recsvc.allocation import counts_for
from recsvc.events import ArmItemStats
from recsvc.experiments import Experiment

Z95 = 1.959963984540054
SCALES = (1.25, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
CSV_COLUMNS = ("item_id", "arm", "exposures", "impressions", "clicks", "add_to_carts",
               "purchases", "rate", "ci_low", "ci_high", "p_top_n", "in_top_n")


@dataclass
class ItemRow:
    item_id: str
    arm: str  # "test", or "control" for the organic items the control group saw
    exposures: int
    impressions: int
    clicks: int
    add_to_carts: int
    purchases: int
    rate: float  # on the experiment's metric; NaN without exposures
    ci_low: float
    ci_high: float
    p_top_n: float  # NaN for the control row
    in_top_n: bool  # the current pick


@dataclass
class SlotEffect:
    test_exposures: int
    test_conversions: int
    control_exposures: int
    control_conversions: int
    test_rate: float
    control_rate: float
    difference: float  # test - control, absolute
    ci_low: float
    ci_high: float
    p_test_better: float


@dataclass
class Stopping:
    confidence: float
    p_settled: float  # P(the current pick is exactly the top N)
    settled: bool
    more_exposures: int | None  # likely extra test exposures; 0 when settled, None: > 63x so far


@dataclass
class Report:
    experiment: Experiment
    items: list[ItemRow]  # test items, best first
    control: ItemRow
    effect: SlotEffect
    stopping: Stopping
    generated_at: datetime
    rejected_events: int | None = None


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(s1: float, n1: float, s2: float, n2: float) -> tuple[float, float]:
    """95 % interval for p1 - p2 (Newcombe's hybrid score method)."""
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan
    p1, p2 = s1 / n1, s2 / n2
    (l1, u1), (l2, u2) = wilson(s1, n1), wilson(s2, n2)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def posterior_draws(conv: np.ndarray, expo: np.ndarray, draws: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(..., n, draws) samples of each item's rate from Beta(1 + conversions, 1 + misses).

    These functions take leading batch dimensions, so the simulation (bench/) runs many
    experiments at once through the report's own code."""
    return rng.beta(1 + conv[..., None], 1 + np.maximum(expo - conv, 0)[..., None],
                    size=(*conv.shape, draws))


def top_n_membership(theta: np.ndarray, top_n: int) -> np.ndarray:
    """(..., n, draws) bool: item in the top N of each draw."""
    ranks = np.argsort(np.argsort(-theta, axis=-2), axis=-2)
    return ranks < top_n


def rank_items(conv: np.ndarray, expo: np.ndarray, top_n: int, draws: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(item order, best first; P(top N) per item). The pick is the first `top_n`:
    highest P(top N), ties (e.g. several at 1.0) broken by the posterior mean."""
    p_top = top_n_membership(posterior_draws(conv, expo, draws, rng), top_n).mean(axis=-1)
    mean = (1 + conv) / (2 + expo)
    return np.lexsort((-mean, -p_top), axis=-1), p_top


def p_pick_settled(conv: np.ndarray, expo: np.ndarray, pick: np.ndarray, top_n: int,
                   draws: int, rng: np.random.Generator) -> float:
    member = top_n_membership(posterior_draws(conv, expo, draws, rng), top_n)
    return float(np.mean(np.all(member == pick[..., None], axis=-2)))


def stopping_advice(conv: np.ndarray, expo: np.ndarray, pick: np.ndarray, top_n: int,
                    confidence: float, draws: int, rng: np.random.Generator) -> Stopping:
    p = p_pick_settled(conv, expo, pick, top_n, draws, rng)
    if p >= confidence:
        return Stopping(confidence, p, True, 0)
    total = float(expo.sum())
    if total > 0:
        for m in SCALES:  # fewer draws: only the crossing point matters
            if p_pick_settled(conv * m, expo * m, pick, top_n, max(draws // 4, 1000), rng) >= confidence:
                return Stopping(confidence, p, False, int(math.ceil((m - 1) * total)))
    return Stopping(confidence, p, False, None)


def _row(item_id: str, arm: str, stats: Sequence[ArmItemStats], metric: str,
         p_top: float, in_top: bool) -> ItemRow:
    mine = [s for s in stats if s.arm == arm and (arm == "control" or s.item_id == item_id)]
    total = {f: sum(getattr(s, f) for s in mine) for f in
             ("exposures", "impressions", "clicks", "add_to_carts", "purchases")}
    conv = sum(s.converted(metric) for s in mine)
    n = total["exposures"]
    lo, hi = wilson(conv, n)
    return ItemRow(item_id, arm, rate=conv / n if n else math.nan, ci_low=lo, ci_high=hi,
                   p_top_n=p_top, in_top_n=in_top, **total)


def build_report(e: Experiment, stats: Sequence[ArmItemStats], *, confidence: float = 0.95,
                 draws: int = 20_000, seed: int = 0, rejected_events: int | None = None,
                 now: datetime | None = None) -> Report:
    """The report for `e` from its counts; deterministic for a given `seed`."""
    rng = np.random.default_rng(seed)
    conv, expo = counts_for(e, stats)
    top_n = min(e.top_n, len(e.item_ids))
    order, p_top = rank_items(conv, expo, top_n, draws, rng)
    pick = np.zeros(len(e.item_ids), dtype=bool)
    pick[order[:top_n]] = True
    items = [_row(e.item_ids[k], "test", stats, e.metric, float(p_top[k]), bool(pick[k]))
             for k in order]
    control = _row("(organic)", "control", stats, e.metric, math.nan, False)

    c_conv = sum(s.converted(e.metric) for s in stats if s.arm == "control")
    c_expo = sum(s.exposures for s in stats if s.arm == "control")
    t_conv, t_expo = float(conv.sum()), float(expo.sum())
    lo, hi = newcombe(t_conv, t_expo, c_conv, c_expo)
    both = posterior_draws(np.array([t_conv, c_conv], float), np.array([t_expo, c_expo], float),
                           draws, rng)
    effect = SlotEffect(int(t_expo), int(t_conv), int(c_expo), int(c_conv),
                        t_conv / t_expo if t_expo else math.nan,
                        c_conv / c_expo if c_expo else math.nan,
                        (t_conv / t_expo - c_conv / c_expo) if t_expo and c_expo else math.nan,
                        lo, hi, float(np.mean(both[0] > both[1])))
    stopping = stopping_advice(conv, expo, pick, top_n, confidence, draws, rng)
    return Report(e, items, control, effect, stopping, now or datetime.now(timezone.utc),
                  rejected_events)


# --- output -------------------------------------------------------------------------

def _pct(x: float, digits: int = 2) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.{digits}f}%"


def format_report(r: Report) -> str:
    e = r.experiment
    lines = [f"Experiment {e.name!r} ({e.id}) — {e.status}, {', '.join(e.rpcs)} slot {e.slot}, "
             f"{e.share_pct:g}% of customers, {e.allocation} allocation",
             f"Metric: {e.metric} per exposure; top {e.top_n} of {len(e.item_ids)}; "
             f"as of {r.generated_at:%Y-%m-%d %H:%M:%S} UTC", ""]
    head = (f"{'':2}{'item':<20}{'exposures':>10}{'clicks':>8}{'carts':>7}{'buys':>6}"
            f"{'rate':>8}  {'95% interval':<17}{'P(top ' + str(e.top_n) + ')':>10}")
    lines += [head, "-" * len(head)]
    for row in [*r.items, r.control]:
        mark = "* " if row.in_top_n else "  "
        interval = "–" if math.isnan(row.ci_low) else f"{_pct(row.ci_low)}–{_pct(row.ci_high)}"
        ptop = "" if math.isnan(row.p_top_n) else f"{row.p_top_n:.3f}"
        label = "control (organic)" if row.arm == "control" else row.item_id
        lines.append(f"{mark}{label[:19]:<20}{row.exposures:>10}{row.clicks:>8}"
                     f"{row.add_to_carts:>7}{row.purchases:>6}{_pct(row.rate):>8}  "
                     f"{interval:<17}{ptop:>10}")
    f = r.effect
    lines += ["", f"Slot effect: test {_pct(f.test_rate)} vs control {_pct(f.control_rate)}: "
                  f"{'–' if math.isnan(f.difference) else f'{100 * f.difference:+.2f}'} points "
                  f"(95% {'–' if math.isnan(f.ci_low) else f'{100 * f.ci_low:+.2f} to {100 * f.ci_high:+.2f}'}), "
                  f"P(test better) {f.p_test_better:.3f}"]
    s = r.stopping
    if s.settled:
        verdict = f"SETTLED: the top {e.top_n} (*) hold with probability {s.p_settled:.3f} >= {s.confidence}"
    elif s.more_exposures is None:
        verdict = (f"NOT SETTLED (probability {s.p_settled:.3f}); more than 63x the exposures so "
                   "far would be needed — the items may be too close to separate")
    else:
        verdict = (f"NOT SETTLED (probability {s.p_settled:.3f} < {s.confidence}); likely about "
                   f"{s.more_exposures:,} more test exposures")
    lines.append(f"Stopping rule: {verdict}")
    if r.rejected_events:
        lines.append(f"Rejected events (unknown exposure, all experiments): {r.rejected_events}")
    return "\n".join(lines)


def write_csv(r: Report, out: IO[str]) -> None:
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for row in [*r.items, r.control]:
        w.writerow([row.item_id, row.arm, row.exposures, row.impressions, row.clicks,
                    row.add_to_carts, row.purchases, _num(row.rate), _num(row.ci_low),
                    _num(row.ci_high), _num(row.p_top_n), int(row.in_top_n)])


def _num(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.6g}"
