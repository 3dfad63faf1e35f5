"""The winner report: rates and intervals, top-N probabilities, slot effect, stopping rule."""
from __future__ import annotations

import csv
import io
import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from recsvc.events import ArmItemStats, Event, EventIngestor
from recsvc.experiments import Experiment, Exposure
from recsvc.report import build_report, format_report, newcombe, wilson, write_csv
from recsvc.store import open_store

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
ITEMS = ["a", "b", "c", "d", "e"]


def experiment(**kw) -> Experiment:
    base = dict(id="exp1", name="Spring", item_ids=ITEMS, rpcs=["complements"], slot=3,
                share_pct=50.0, starts_at=T0, ends_at=T0 + timedelta(days=14), top_n=2,
                metric="add_to_cart")
    return Experiment(**{**base, **kw})


def stats(rates: dict[str, float], n: int, control: tuple[int, int] = (1000, 20)) -> list[ArmItemStats]:
    rows = [ArmItemStats(item, "test", n, impressions=n, clicks=round(2 * r * n),
                         add_to_carts=round(r * n)) for item, r in rates.items()]
    return rows + [ArmItemStats("o1", "control", control[0], add_to_carts=control[1])]


CLEAR = {"a": 0.20, "b": 0.15, "c": 0.05, "d": 0.04, "e": 0.03}
CLOSE = {"a": 0.20, "b": 0.105, "c": 0.10, "d": 0.04, "e": 0.03}


# --- intervals -----------------------------------------------------------------------

@pytest.mark.parametrize("s, n, low, high", [
    (5, 10, 0.2366, 0.7634),     # textbook values
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),   # Newcombe (1998), example
])
def test_wilson_interval(s, n, low, high):
    assert wilson(s, n) == pytest.approx((low, high), abs=1e-4)


def test_wilson_without_exposures_is_undefined():
    assert all(math.isnan(x) for x in wilson(0, 0))


def test_newcombe_interval_for_a_difference_matches_the_published_example():
    assert newcombe(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=1e-4)


# --- the report ----------------------------------------------------------------------

def test_rows_carry_counts_rates_and_intervals_best_first():
    r = build_report(experiment(), stats(CLEAR, 2000))
    assert [row.item_id for row in r.items] == ["a", "b", "c", "d", "e"]
    a = r.items[0]
    assert (a.exposures, a.impressions, a.clicks, a.add_to_carts) == (2000, 2000, 800, 400)
    assert a.rate == 0.2 and (a.ci_low, a.ci_high) == pytest.approx(wilson(400, 2000))


def test_clear_winners_are_settled_with_their_top_n_probability_near_one():
    r = build_report(experiment(), stats(CLEAR, 2000))
    assert [row.item_id for row in r.items if row.in_top_n] == ["a", "b"]
    assert r.items[0].p_top_n > 0.999 and r.items[1].p_top_n > 0.999
    assert r.items[2].p_top_n < 0.001
    assert r.stopping.settled and r.stopping.more_exposures == 0
    assert r.stopping.p_settled >= 0.95


def test_close_rivals_are_not_settled_and_the_report_says_how_many_more_exposures():
    r = build_report(experiment(), stats(CLOSE, 2000))
    assert not r.stopping.settled and r.stopping.p_settled < 0.95
    assert 0.3 < r.items[1].p_top_n < 0.8
    more = r.stopping.more_exposures
    assert more is not None and more > 0
    # the projection holds: with that many more exposures at the same rates, it settles
    scale = (10_000 + more) / 10_000
    later = build_report(experiment(), stats(CLOSE, round(2000 * scale * 1.2)))
    assert later.stopping.settled


def test_items_that_cannot_be_told_apart_report_no_likely_end():
    tied = {"a": 0.2, "b": 0.1, "c": 0.1, "d": 0.04, "e": 0.03}
    r = build_report(experiment(), stats(tied, 2000))
    assert not r.stopping.settled and r.stopping.more_exposures is None
    assert "may be too close to separate" in format_report(r)


def test_a_report_before_any_exposure_has_no_rates_and_no_verdict():
    r = build_report(experiment(), [])
    assert all(row.exposures == 0 and math.isnan(row.rate) for row in r.items)
    assert not r.stopping.settled and r.stopping.more_exposures is None
    assert "–" in format_report(r)


def test_slot_effect_compares_test_items_with_the_controls_organic_item():
    r = build_report(experiment(), stats(CLEAR, 2000, control=(4000, 120)))
    f = r.effect
    assert (f.test_exposures, f.test_conversions) == (10_000, 940)
    assert (f.control_exposures, f.control_conversions) == (4000, 120)
    assert f.difference == pytest.approx(0.094 - 0.03)
    assert (f.ci_low, f.ci_high) == pytest.approx(newcombe(940, 10_000, 120, 4000))
    assert f.p_test_better > 0.999


def test_the_metric_decides_which_events_count_as_conversions():
    r = build_report(experiment(metric="click"), stats(CLEAR, 2000))
    assert r.items[0].rate == 0.4


def test_the_report_is_reproducible_for_a_seed():
    a = build_report(experiment(), stats(CLOSE, 2000), seed=7)
    b = build_report(experiment(), stats(CLOSE, 2000), seed=7)
    assert [row.p_top_n for row in a.items] == [row.p_top_n for row in b.items]


# --- output --------------------------------------------------------------------------

def test_the_terminal_table_shows_items_control_effect_and_verdict():
    text = format_report(build_report(experiment(), stats(CLEAR, 2000), rejected_events=3))
    lines = text.splitlines()
    assert any(line.startswith("* a ") and "20.00%" in line for line in lines)
    assert any(line.startswith("  control (organic)") for line in lines)
    assert "Slot effect: test 9.40% vs control 2.00%" in text
    assert "Stopping rule: SETTLED: the top 2 (*)" in text
    assert "Rejected events (unknown exposure, all experiments): 3" in text


def test_csv_export_has_one_row_per_item_and_the_control():
    out = io.StringIO()
    write_csv(build_report(experiment(), stats(CLEAR, 2000)), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["item_id"] for r in rows] == ["a", "b", "c", "d", "e", "(organic)"]
    assert rows[0]["arm"] == "test" and rows[-1]["arm"] == "control"
    assert float(rows[0]["rate"]) == 0.2 and rows[0]["in_top_n"] == "1"
    assert rows[-1]["p_top_n"] == ""


def test_the_report_reads_a_running_experiments_counts_from_the_store(tmp_path):
    e = experiment()
    with open_store(f"sqlite:///{tmp_path}/state.db") as store:
        store.record_exposures([Exposure(f"x{i}", e.id, "test", ITEMS[i % 5], "complements", 3,
                                         f"u:{i}", T0) for i in range(50)])
        EventIngestor(store).ingest([Event(f"e{i}", "add_to_cart", T0, exposure_id=f"x{i}")
                                     for i in range(0, 50, 5)])  # item a converts every time
        r = build_report(replace(e, status="active"), store.experiment_stats(e.id))
    assert r.items[0].item_id == "a" and (r.items[0].exposures, r.items[0].add_to_carts) == (10, 10)
