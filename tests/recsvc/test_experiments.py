"""A/B slots: definitions, assignment, placement of test items, allocation.

Catalog used here: products p0..p9 are the test items (category 1, "trousers"),
o0..o9 organic items (category 0, "jackets").
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from recsvc.allocation import thompson_weights
from recsvc.experiments import (Experiment, ExperimentBook, assign, bind, customer_key,
                                place_test_item, validate_experiment)
from tests.recsvc.stores import store, store_url  # noqa: F401 — fixtures

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
T1 = T0 + timedelta(days=14)
NOW = T0 + timedelta(days=1)
TEST_ITEMS = [f"p{i}" for i in range(10)]
PRODUCT_IDS = np.array(TEST_ITEMS + [f"o{i}" for i in range(10)])
INDEX = {p: i for i, p in enumerate(PRODUCT_IDS)}
CATEGORY = np.array([1] * 10 + [0] * 10, dtype=np.int32)
ORGANIC = [INDEX[f"o{i}"] for i in range(5)]
ALL_IN_STOCK = np.ones(len(PRODUCT_IDS), dtype=bool)
ROOT = Path(__file__).resolve().parents[2]


def experiment(**kw) -> Experiment:
    base = dict(id="exp1", name="Spring styles", item_ids=list(TEST_ITEMS), rpcs=["complements"],
                slot=3, share_pct=100.0, starts_at=T0, ends_at=T1, control_pct=20.0)
    return Experiment(**{**base, **kw})


def place(e: Experiment, user: str, organic=ORGANIC, in_stock=ALL_IN_STOCK, rpc="complements",
          now=NOW, weights=None, **kw):
    live = bind(e, PRODUCT_IDS, INDEX, CATEGORY, weights)
    return place_test_item(live, rpc, organic, in_stock, user_id=user, session_id=None,
                           now=now, **kw)


# --- validation ----------------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    (dict(item_ids=["p1", "ghost"]), r"^item_ids: unknown items ghost; use product ids"),
    (dict(item_ids=["p1", "p1"]), r"^item_ids: listed twice: p1"),
    (dict(item_ids=[]), r"^item_ids: name at least one"),
    (dict(share_pct=0), r"^share_pct: .*more than 0 and at most 100"),
    (dict(share_pct=100.5), r"^share_pct: "),
    (dict(share_pct=-10), r"^share_pct: "),
    (dict(ends_at=T0 - timedelta(hours=1)), r"^ends_at: .* is not after starts_at"),
    (dict(ends_at=T0), r"^ends_at: "),
    (dict(rpcs=["checkout"]), r"^rpcs: choose from complements, substitutes, recommend"),
    (dict(slot=0), r"^slot: a position from 1"),
    (dict(floor_pct=15.0), r"^floor_pct: between 0 and 10 for 10 items"),
    (dict(top_n=11), r"^top_n: between 1 and the number of items \(10\)"),
    (dict(control_pct=100), r"^control_pct: "),
    (dict(allocation="greedy"), r"^allocation: one of even, thompson"),
    (dict(starts_at=datetime(2025, 3, 1)), r"^starts_at: a time with a timezone"),
])
def test_invalid_definitions_are_refused_saying_what_to_fix(bad, message):
    with pytest.raises(ValueError, match=message):
        validate_experiment(experiment(**bad), set(PRODUCT_IDS))


def test_an_overlapping_experiment_on_the_same_rpc_and_slot_is_refused():
    running = experiment(id="old", name="Autumn", rpcs=["complements", "recommend"])
    clash = experiment(id="new", rpcs=["recommend"], starts_at=T1 - timedelta(days=1),
                       ends_at=T1 + timedelta(days=7))
    with pytest.raises(ValueError, match=r"^slot: experiment 'Autumn' \(old\) already uses "
                                         r"slot 3 of recommend .* choose another slot"):
        validate_experiment(clash, set(PRODUCT_IDS), [running])


@pytest.mark.parametrize("change", [
    dict(slot=4),                                         # another slot
    dict(rpcs=["substitutes"]),                           # another RPC
    dict(starts_at=T1, ends_at=T1 + timedelta(days=7)),   # right after (windows are half-open)
])
def test_experiments_that_do_not_share_rpc_slot_and_time_coexist(change):
    validate_experiment(experiment(id="new", **change), set(PRODUCT_IDS), [experiment(id="old")])


def test_a_stopped_experiment_frees_its_slot():
    validate_experiment(experiment(id="new"), set(PRODUCT_IDS),
                        [experiment(id="old", status="stopped")])


def test_definitions_load_from_json_with_iso_times_and_unknown_fields_are_named():
    d = json.loads('{"name": "Spring", "item_ids": ["p1", "p2"], "rpcs": ["complements"],'
                   '"slot": 3, "share_pct": 20, "starts_at": "2025-03-01T00:00:00Z",'
                   '"ends_at": "2025-03-15T00:00:00Z", "allocation": "thompson"}')
    e = Experiment.from_dict(d)
    assert e.starts_at == T0 and e.allocation == "thompson" and e.id == ""
    assert Experiment.from_dict(e.to_dict()) == e
    with pytest.raises(ValueError, match="^shares: unknown field"):
        Experiment.from_dict({**d, "shares": 20})
    with pytest.raises(ValueError, match="^slot: required"):
        Experiment.from_dict({k: v for k, v in d.items() if k != "slot"})


# --- assignment ----------------------------------------------------------------------

def test_the_customer_is_the_user_else_the_session():
    assert customer_key("u1", "s1") == "u:u1"
    assert customer_key(None, "s1") == customer_key("", "s1") == "s:s1"
    assert customer_key(None, None) is None
    assert assign(experiment(), None) is None


def test_share_and_control_split_customers_in_the_stated_proportions():
    e = experiment(share_pct=30.0, control_pct=20.0)
    arms = [assign(e, f"u:{i}") for i in range(20_000)]
    taking_part = sum(a is not None for a in arms) / len(arms)
    control = arms.count("control") / max(1, sum(a is not None for a in arms))
    assert 0.28 < taking_part < 0.32
    assert 0.18 < control < 0.22


def test_assignment_is_salted_per_experiment():
    a, b = experiment(id="a", share_pct=50.0), experiment(id="b", share_pct=50.0)
    both = sum(assign(a, f"u:{i}") is not None and assign(b, f"u:{i}") is not None
               for i in range(10_000)) / 10_000
    assert 0.22 < both < 0.28  # independent: about 50 % x 50 %


def test_raising_the_share_keeps_participants_and_their_arms():
    small, large = experiment(share_pct=10.0), experiment(share_pct=60.0)
    for i in range(5_000):
        arm = assign(small, f"u:{i}")
        if arm is not None:
            assert assign(large, f"u:{i}") == arm


def test_assignment_is_the_same_in_another_process_with_another_hash_seed():
    customers = [f"u:{i}" for i in range(300)]
    here = [assign(experiment(share_pct=50.0), c) for c in customers]
    code = ("import json, sys; from tests.recsvc.test_experiments import experiment; "
            "from recsvc.experiments import assign; "
            "print(json.dumps([assign(experiment(share_pct=50.0), f'u:{i}') for i in range(300)]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    assert json.loads(out) == here


# --- placement -----------------------------------------------------------------------

def users_in(arm: str, e: Experiment, n: int = 50) -> list[str]:
    return [u for u in (f"user{i}" for i in range(5000)) if assign(e, customer_key(u, None)) == arm][:n]


def test_a_test_customer_gets_a_test_item_in_the_slot_with_an_exposure():
    e = experiment()
    p = place(e, users_in("test", e)[0])
    assert p.is_test and p.position == 2
    assert p.exposure.item_id in TEST_ITEMS and PRODUCT_IDS[p.item_code] == p.exposure.item_id
    assert (p.exposure.experiment_id, p.exposure.rpc, p.exposure.slot) == ("exp1", "complements", 3)
    assert len(p.exposure_id) == 32


def test_a_control_customer_keeps_the_organic_item_of_the_slot_as_the_exposure():
    e = experiment()
    p = place(e, users_in("control", e)[0])
    assert not p.is_test and p.item_code == ORGANIC[2] and p.exposure.item_id == "o2"


def test_only_test_items_in_stock_and_not_already_shown_are_placed():
    e = experiment()
    in_stock = ALL_IN_STOCK.copy()
    in_stock[[INDEX["p0"], INDEX["p1"], INDEX["p2"]]] = False
    organic = [INDEX["p3"], INDEX["o0"], INDEX["p4"], INDEX["o1"]]
    placed = {place(e, u, organic=organic, in_stock=in_stock).exposure.item_id
              for u in users_in("test", e, 200)}
    assert placed == {"p5", "p6", "p7", "p8", "p9"}


def test_no_eligible_test_item_means_no_exposure_in_either_arm():
    e = experiment(item_ids=["p0", "p1"])
    in_stock = ALL_IN_STOCK.copy()
    in_stock[INDEX["p0"]] = False
    organic = [INDEX["p1"], INDEX["o0"], INDEX["o1"]]
    for u in users_in("test", e, 5) + users_in("control", e, 5):
        assert place(e, u, organic=organic, in_stock=in_stock) is None


@pytest.mark.parametrize("why, kw", [
    ("another RPC", dict(rpc="substitutes")),
    ("before the start", dict(now=T0 - timedelta(seconds=1))),
    ("at the end", dict(now=T1)),
    ("an answer shorter than the slot", dict(organic=ORGANIC[:2])),
])
def test_no_exposure_outside_the_experiments_scope(why, kw):
    e = experiment()
    assert place(e, users_in("test", e)[0], **kw) is None, why


def test_a_paused_experiment_places_nothing_and_customers_outside_the_share_neither():
    e = experiment()
    assert place(replace(e, status="paused"), users_in("test", e)[0]) is None
    partial = experiment(share_pct=10.0)
    outside = [u for u in (f"user{i}" for i in range(200)) if assign(partial, f"u:{u}") is None]
    assert all(place(partial, u) is None for u in outside)


def test_targeting_places_only_test_items_whose_category_fits_the_request():
    e = experiment(targeting=True)
    u = users_in("test", e)[0]
    assert place(e, u, allowed_categories={0}) is None  # trousers do not fit here
    assert place(e, u, allowed_categories={1}).is_test
    assert place(replace(e, targeting=False), u, allowed_categories={0}).is_test


def test_even_split_shows_every_test_item_about_equally():
    e = experiment()
    counts = {i: 0 for i in TEST_ITEMS}
    for u in users_in("test", e, 3000):
        for _ in range(2):
            counts[place(e, u).exposure.item_id] += 1
    n = sum(counts.values())
    assert all(abs(c / n - 0.1) < 0.02 for c in counts.values()), counts


def test_placement_follows_the_allocation_weights():
    e = experiment(item_ids=["p0", "p1", "p2", "p3"])
    weights = np.array([0.7, 0.1, 0.1, 0.1])
    shown = [place(e, u, weights=weights).exposure.item_id for u in users_in("test", e, 3000)]
    assert 0.66 < shown.count("p0") / len(shown) < 0.74


# --- thompson allocation -------------------------------------------------------------

def test_thompson_sends_traffic_to_the_undecided_edge_of_the_top_n_and_keeps_the_floor():
    exposures = np.full(6, 2000.0)
    conversions = exposures * np.array([0.30, 0.20, 0.105, 0.10, 0.02, 0.01])
    w = thompson_weights(conversions, exposures, top_n=2, floor=0.05,
                         rng=np.random.default_rng(0), draws=4000)
    assert w.sum() == pytest.approx(1.0) and (w >= 0.05 - 1e-12).all()
    # top 2 = items 0 and 1 is clear; the edge is item 1 against items 2 and 3
    assert w[1] > 0.3 and w[2] + w[3] > 0.3
    assert w[0] == pytest.approx(0.05, abs=0.01) and w[4] == pytest.approx(0.05, abs=0.01)


def test_thompson_without_data_spreads_traffic():
    w = thompson_weights(np.zeros(10), np.zeros(10), top_n=3, floor=0.02,
                         rng=np.random.default_rng(0))
    assert (w > 0.05).all() and (w < 0.15).all()


# --- the book, on both stores --------------------------------------------------------

def test_the_book_stores_validates_and_changes_status(store):
    book = ExperimentBook(store)
    created = book.create(experiment(id=""), set(PRODUCT_IDS))
    assert created.id and ExperimentBook(store).list() == [created]
    with pytest.raises(ValueError, match="^slot: experiment 'Spring styles'"):
        book.create(experiment(id="", name="Clash"), set(PRODUCT_IDS))
    assert book.running("complements", NOW) == [created]
    assert book.set_status(created.id, "paused").status == "paused"
    assert book.running("complements", NOW) == []
    assert book.set_status(created.id, "active").status == "active"
    book.set_status(created.id, "stopped")
    with pytest.raises(ValueError, match="is stopped; create a new one"):
        book.set_status(created.id, "active")
    assert [e.status for e in store.list_experiments()] == ["stopped"]
    assert book.create(experiment(id="", name="Next"), set(PRODUCT_IDS)).name == "Next"


def test_a_book_sees_experiments_created_elsewhere_after_refresh(store_url):
    from recsvc.store import open_store
    with open_store(store_url) as s1, open_store(store_url) as s2:
        mine, theirs = ExperimentBook(s1), ExperimentBook(s2)
        created = theirs.create(experiment(id=""), set(PRODUCT_IDS))
        assert mine.get(created.id) is None
        mine.refresh()
        assert mine.get(created.id) == created


def test_two_replicas_creating_clashing_experiments_at_once_store_only_one(store_url):
    """The check and the insert are one locked transaction: the second replica's check
    waits for the first's insert and then refuses the clash (without the lock, both
    checks see no experiment during the pause and both are stored)."""
    import threading
    import time

    from recsvc.experiments import validate_experiment
    from recsvc.store import open_store

    def slow_check(e: Experiment):
        def check(existing):
            validate_experiment(e, set(PRODUCT_IDS), existing)
            time.sleep(0.3)  # widen the window between check and insert
        return check

    outcomes: list[str] = []
    with open_store(store_url) as s1, open_store(store_url) as s2:
        def create(s, name):
            e = experiment(id="", name=name)
            try:
                s.create_experiment(e, check=slow_check(e))
                outcomes.append("stored")
            except ValueError as err:
                outcomes.append(str(err))

        threads = [threading.Thread(target=create, args=(s, n)) for s, n in ((s1, "A"), (s2, "B"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes)[-1] == "stored" and sorted(outcomes)[0].startswith("slot: experiment "), outcomes
        assert len(s1.list_experiments()) == 1


def test_in_simulation_thompson_finds_the_top_3_with_fewer_exposures_than_an_even_split():
    from bench.ab_simulation import simulate  # the figure's own code, at a smaller scale

    even = simulate("even", [15_000], reps=150, seed=3)[15_000]
    adaptive = simulate("thompson", [15_000], reps=150, seed=3)[15_000]
    assert adaptive >= 0.9 and adaptive > even + 0.05, (even, adaptive)
