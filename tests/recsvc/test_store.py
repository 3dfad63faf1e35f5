"""The state store: one suite, run against SQLite and PostgreSQL alike."""
from __future__ import annotations

import gc
import socket
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from recsvc.promotions import Promotion
from recsvc.store import (PriceUpdate, RetryPolicy, StockUpdate, StoreUnavailable,
                          open_store)
from recsvc.store.postgres import PostgresStore
from recsvc.store.sqlite import SqliteStore
from tests.conftest import PG_PORT
from tests.recsvc.netproxy import TcpProxy
from tests.recsvc.stores import store, store_url  # noqa: F401 — fixtures

T0 = datetime(2025, 11, 1, 9, 0, tzinfo=timezone.utc)
QUICK = RetryPolicy(attempts=2, first_delay_s=0.01)


def promo(**kw) -> Promotion:
    base = dict(id="", name="Winter set", item_ids=["jacket"], categories=["gloves"],
                kind="percent", value=20.0, cap=15.0, starts_at=T0,
                ends_at=T0 + timedelta(days=7), priority=1, min_items=2)
    return Promotion(**{**base, **kw})


# --- opening -------------------------------------------------------------------------

def test_unknown_scheme_is_refused_with_the_schemes_that_work():
    with pytest.raises(ValueError, match=r"unknown scheme 'redis'.*sqlite:///.*postgresql://"):
        open_store("redis://localhost/0")


def test_sqlite_in_memory_is_refused_because_threads_share_the_store():
    with pytest.raises(ValueError, match="file path"):
        open_store("sqlite:///:memory:")


def test_opening_twice_keeps_the_data_and_the_schema(store_url):
    with open_store(store_url) as s:
        s.upsert_stock([StockUpdate("a", 3)])
    with open_store(store_url) as s:
        assert s.all_stock() == {"a": 3}


# --- stock ---------------------------------------------------------------------------

def test_stock_upsert_returns_increasing_seq_and_last_value_wins(store):
    s1 = store.upsert_stock([StockUpdate("a", 5), StockUpdate("b", 0)])
    s2 = store.upsert_stock([StockUpdate("a", 2), StockUpdate("c", 7), StockUpdate("c", 1)])
    assert s2 == s1 + 1
    assert store.all_stock() == {"a": 2, "b": 0, "c": 1}


def test_empty_stock_batch_changes_nothing_and_returns_the_current_seq(store):
    seq = store.upsert_stock([StockUpdate("a", 5)])
    assert store.upsert_stock([]) == seq
    assert store.stock_changes_since(seq) == (seq, [])


def test_stock_changes_since_returns_only_later_records_with_their_latest_value(store):
    assert store.stock_changes_since(0) == (0, [])
    first = store.upsert_stock([StockUpdate("a", 5), StockUpdate("b", 1)])
    second = store.upsert_stock([StockUpdate("b", 0)])
    latest, changes = store.stock_changes_since(first)
    assert latest == second and changes == [StockUpdate("b", 0)]
    latest, changes = store.stock_changes_since(0)
    assert latest == second
    assert sorted(changes) == [StockUpdate("a", 5), StockUpdate("b", 0)]


def test_a_full_stock_read_leaves_the_cyclic_gc_nothing_to_walk(store):
    """A new model's inventory reads every stored level: as objects the GC tracks, 60k
    of them set off gen-2 collections of ~18 ms in a worker answering requests."""
    store.upsert_stock([StockUpdate(f"v{i}", i % 3) for i in range(3000)])
    _, changes = store.stock_changes_since(0)
    gc.collect()
    assert len(changes) == 3000 and not any(gc.is_tracked(u) for u in changes)


def test_concurrent_stock_writers_get_distinct_seqs_and_lose_nothing(store):
    seqs: list[int] = []

    def writer(w: int) -> None:
        for i in range(10):
            seqs.append(store.upsert_stock([StockUpdate(f"w{w}-{i}", i)]))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(1, 41))
    assert len(store.all_stock()) == 40


# --- prices --------------------------------------------------------------------------

def test_prices_upsert_and_read(store):
    store.upsert_prices([PriceUpdate("a", 19.99), PriceUpdate("b", 5.0)])
    store.upsert_prices([PriceUpdate("a", 17.5)])
    assert store.all_prices() == {"a": 17.5, "b": 5.0}


# --- promotions ----------------------------------------------------------------------

def test_create_assigns_an_id_and_lists_the_promotion_unchanged(store):
    created = store.create_promotion(promo())
    assert created.id
    assert store.list_promotions() == [created]
    assert created.starts_at == T0 and created.starts_at.tzinfo is not None


def test_promotions_list_oldest_first_and_delete_reports_whether_one_existed(store):
    a = store.create_promotion(promo(name="a"))
    b = store.create_promotion(promo(name="b", cap=None, kind="amount", value=5.0))
    assert [p.name for p in store.list_promotions()] == ["a", "b"]
    assert store.delete_promotion(a.id) is True
    assert store.delete_promotion(a.id) is False
    assert store.list_promotions() == [b]


def test_a_given_id_is_kept_and_a_different_promotion_with_it_is_refused(store):
    p = store.create_promotion(promo(id="winter-2025"))
    assert p.id == "winter-2025"
    assert store.create_promotion(promo(id="winter-2025")) == p  # a retried create
    with pytest.raises(ValueError, match="winter-2025.*already exists"):
        store.create_promotion(promo(id="winter-2025", value=30.0))
    assert len(store.list_promotions()) == 1


def test_everything_survives_closing_and_reopening(store_url):
    with open_store(store_url) as s:
        s.upsert_stock([StockUpdate("a", 0)])
        s.upsert_prices([PriceUpdate("a", 9.5)])
        p = s.create_promotion(promo())
    with open_store(store_url) as s:
        assert s.all_stock() == {"a": 0}
        assert s.all_prices() == {"a": 9.5}
        assert s.list_promotions() == [p]
        assert s.stock_changes_since(0)[0] == 1


# --- outages -------------------------------------------------------------------------

def test_sqlite_write_against_a_held_lock_is_refused_not_lost(tmp_path):
    path = tmp_path / "state.db"
    store = SqliteStore(path, retry=QUICK, busy_timeout_s=0.05)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreUnavailable, match="updating stock failed after 2 attempts"):
        store.upsert_stock([StockUpdate("a", 1)])
    holder.execute("ROLLBACK")
    assert store.all_stock() == {}
    store.close()


def test_sqlite_write_rides_out_a_lock_released_during_the_retries(tmp_path):
    path = tmp_path / "state.db"
    store = SqliteStore(path, retry=RetryPolicy(attempts=4, first_delay_s=0.05),
                        busy_timeout_s=0.01)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.1, lambda: holder.execute("ROLLBACK"))
    release.start()
    assert store.upsert_stock([StockUpdate("a", 1)]) == 1
    release.join()
    assert store.all_stock() == {"a": 1}
    store.close()


def test_postgres_that_is_not_there_raises_store_unavailable():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreUnavailable, match="cannot connect"):
        PostgresStore(f"postgresql://postgres@127.0.0.1:{port}/test", retry=QUICK,
                      connect_timeout_s=0.5)


def test_postgres_outage_refuses_writes_then_the_store_recovers(postgres_url):
    with TcpProxy(PG_PORT) as proxy:
        url = postgres_url.replace(f":{PG_PORT}/", f":{proxy.port}/")
        store = PostgresStore(url, retry=QUICK, connect_timeout_s=2)
        store.upsert_stock([StockUpdate("a", 1)])
        proxy.cut()  # the database becomes unreachable
        with pytest.raises(StoreUnavailable, match="updating stock failed"):
            store.upsert_stock([StockUpdate("a", 2)])
        proxy.restore()
        deadline = time.monotonic() + 10
        while True:  # the pool reconnects in the background, with backoff
            try:
                store.upsert_stock([StockUpdate("a", 3)])
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the store did not recover within 10 s"
        assert store.all_stock() == {"a": 3}
        store.close()


def test_postgres_reconnects_after_its_connections_are_killed(postgres_url):
    url = f"{postgres_url}&application_name=recsvc_reconnect_test"
    with open_store(url) as store:
        store.upsert_stock([StockUpdate("a", 1)])
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'recsvc_reconnect_test'").fetchone()[0]
        assert killed >= 1
        assert store.upsert_stock([StockUpdate("a", 2)]) == 2
        assert store.all_stock() == {"a": 2}
