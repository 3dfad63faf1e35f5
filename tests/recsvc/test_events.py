"""Event ingestion: exposures out, events in, each event counted once — on both stores."""
from __future__ import annotations

import multiprocessing
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest

from recsvc.events import Event, EventIngestor, ExposureLog
from recsvc.experiments import Exposure
from recsvc.store import RetryPolicy, StoreUnavailable, open_store
from recsvc.store.sqlite import SqliteStore
from tests.recsvc.stores import store, store_url  # noqa: F401 — fixtures

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=1)


def exposure(n: int, item: str = "p1", arm: str = "test", customer: str = "u:ann",
             at: datetime = NOW, experiment_id: str = "exp1") -> Exposure:
    return Exposure(f"x{n}", experiment_id, arm, item, "complements", 3, customer, at)


def event(n: int, kind: str = "click", exposure_id: str | None = "x1", **kw) -> Event:
    return Event(f"e{n}", kind, NOW + timedelta(minutes=1), exposure_id=exposure_id, **kw)


def test_events_are_stored_once_and_a_retried_batch_counts_as_duplicates(store):
    store.record_exposures([exposure(1)])
    ingest = EventIngestor(store).ingest
    batch = [event(1, "impression"), event(2, "click"), event(3, "add_to_cart")]
    first = ingest(batch)
    assert (first.accepted, first.duplicates, first.rejected) == (3, 0, [])
    again = ingest(batch + [event(4, "purchase")])
    assert (again.accepted, again.duplicates) == (1, 3)
    assert store.event_counts("exp1") == {"impression": 1, "click": 1, "add_to_cart": 1,
                                          "purchase": 1}


def test_a_repeated_event_id_within_one_batch_is_stored_once(store):
    store.record_exposures([exposure(1)])
    result = EventIngestor(store).ingest([event(1), event(1)])
    assert (result.accepted, result.duplicates) == (1, 1)
    assert store.event_counts("exp1") == {"click": 1}


def test_events_for_unknown_exposures_are_rejected_counted_and_reported(store):
    store.record_exposures([exposure(1)])
    ingest = EventIngestor(store).ingest
    batch = [event(1), event(2, exposure_id="nope"), event(3, exposure_id="gone")]
    result = ingest(batch)
    assert result.accepted == 1
    assert [(r.event_id, r.reason) for r in result.rejected] == [("e2", "unknown exposure"),
                                                                 ("e3", "unknown exposure")]
    ingest(batch)  # retried: rejected again, counted once
    assert store.rejected_event_count() == 2
    assert store.event_counts("exp1") == {"click": 1}


def test_malformed_events_are_reported_back_and_not_stored(store):
    store.record_exposures([exposure(1)])
    result = EventIngestor(store).ingest([
        event(1, kind="like"),
        Event("e2", "click", datetime(2025, 3, 2, 10, 0), exposure_id="x1"),
        Event("e3", "click", NOW),                       # no exposure, no customer
        Event("e4", "click", NOW, user_id="ann"),        # a customer but no item
        Event("", "click", NOW, exposure_id="x1"),
        event(6),
    ])
    reasons = {r.event_id: r.reason for r in result.rejected}
    assert reasons["e1"].startswith("kind: one of impression, click, add_to_cart, purchase")
    assert reasons["e2"].startswith("at: a timezone-aware time")
    assert reasons["e3"].startswith("exposure_id, or user_id/session_id and item_id")
    assert reasons["e4"].startswith("exposure_id, or user_id/session_id and item_id")
    assert reasons[""].startswith("event_id: required")
    assert result.accepted == 1 and store.event_counts("exp1") == {"click": 1}
    assert store.rejected_event_count() == 0  # only unknown exposures are kept


def test_an_oversized_batch_is_refused_whole(store):
    with pytest.raises(ValueError, match="events: at most 2 per batch, got 3"):
        EventIngestor(store, max_batch=2).ingest([event(1), event(2), event(3)])


def test_user_and_item_resolve_to_the_customers_latest_exposure_of_that_item(store):
    store.record_exposures([
        exposure(1, item="p1", customer="u:ann", at=NOW),
        exposure(2, item="p1", customer="u:ann", at=NOW + timedelta(minutes=5)),
        exposure(3, item="p1", customer="s:chat-9", arm="control"),
    ])
    result = EventIngestor(store).ingest([
        Event("e1", "click", NOW, user_id="ann", item_id="p1"),
        Event("e2", "purchase", NOW, session_id="chat-9", item_id="p1"),
        Event("e3", "click", NOW, user_id="ann", item_id="p2"),   # never shown to ann
        Event("e4", "click", NOW, user_id="bob", item_id="p1"),
    ])
    assert result.accepted == 2 and [r.event_id for r in result.rejected] == ["e3", "e4"]
    stats = {(s.item_id, s.arm): s for s in store.experiment_stats("exp1")}
    assert stats[("p1", "test")].clicks == 1 and stats[("p1", "control")].purchases == 1


def test_stats_count_exposures_and_exposures_with_each_kind_of_event(store):
    store.record_exposures([exposure(1, "p1"), exposure(2, "p1"), exposure(3, "p2"),
                            exposure(4, "o5", arm="control"),
                            exposure(5, "p1", experiment_id="other")])
    EventIngestor(store).ingest([
        event(1, "click", "x1"), event(2, "click", "x1"), event(3, "add_to_cart", "x1"),
        event(4, "click", "x2"), event(5, "purchase", "x4"), event(6, "click", "x5"),
    ])
    stats = {(s.item_id, s.arm): s for s in store.experiment_stats("exp1")}
    p1 = stats[("p1", "test")]
    assert (p1.exposures, p1.clicks, p1.add_to_carts, p1.purchases) == (2, 2, 1, 0)
    assert (stats[("p2", "test")].exposures, stats[("p2", "test")].clicks) == (1, 0)
    assert stats[("o5", "control")].purchases == 1
    assert store.event_counts("exp1") == {"click": 3, "add_to_cart": 1, "purchase": 1}


def test_events_are_durable_when_ingest_returns(store_url):
    with open_store(store_url) as s:
        s.record_exposures([exposure(1)])
        EventIngestor(s).ingest([event(1)])
    with open_store(store_url) as s:
        assert s.event_counts("exp1") == {"click": 1}


# --- exposures log -------------------------------------------------------------------

def test_ingesting_first_writes_this_processs_pending_exposures(store):
    log = ExposureLog(store)  # not started: only explicit flushes write
    log.record(exposure(1))
    assert EventIngestor(store, log).ingest([event(1)]).accepted == 1


def test_the_exposure_log_writes_in_the_background(store):
    log = ExposureLog(store, interval_s=0.02).start()
    log.record(exposure(1))
    deadline = time.monotonic() + 5
    while not store.experiment_stats("exp1"):
        assert time.monotonic() < deadline, "exposure not written within 5 s"
        time.sleep(0.01)
    log.close()
    assert store.experiment_stats("exp1")[0].exposures == 1


def test_exposures_wait_in_memory_while_the_store_is_down(tmp_path):
    path = tmp_path / "state.db"
    store = SqliteStore(path, retry=RetryPolicy(attempts=1), busy_timeout_s=0.01)
    log = ExposureLog(store)
    log.record(exposure(1))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreUnavailable):
        log.flush()
    holder.execute("ROLLBACK")
    assert log.flush() == 1 and store.experiment_stats("exp1")[0].exposures == 1
    store.close()


# --- several processes at once -------------------------------------------------------

PROCESSES, EVENTS_EACH, BATCH = 4, 300, 50
KINDS = ("impression", "click", "add_to_cart", "purchase")


def _client(url: str, worker: int) -> None:
    """One chatbot replica: sends its events in batches and retries every third batch."""
    with open_store(url) as s:
        ingest = EventIngestor(s).ingest
        events = [Event(f"w{worker}-{i}", KINDS[i % 4], NOW, exposure_id=f"x{i % 20}")
                  for i in range(EVENTS_EACH)]
        for b, start in enumerate(range(0, EVENTS_EACH, BATCH)):
            batch = events[start:start + BATCH]
            ingest(batch)
            if b % 3 == 0:
                assert ingest(batch).duplicates == len(batch)


def test_concurrent_processes_lose_and_double_count_nothing(store, store_url):
    store.record_exposures([exposure(i) for i in range(20)])
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_client, args=(store_url, w))
             for w in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    per_kind = PROCESSES * EVENTS_EACH // 4
    assert store.event_counts("exp1") == {k: per_kind for k in KINDS}
