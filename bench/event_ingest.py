"""Event ingestion throughput: concurrent client processes writing through the service's
own ingestion code (`recsvc.events.EventIngestor`, durable commit per batch), on
SQLite and on PostgreSQL, then a check that every event was stored exactly once.

Each client process opens its own store (as a server replica would), waits for the
start signal, and sends its events in batches; one batch in ten is sent twice (a
client retry), which must be reported as duplicates and not stored again. The rate
is all events over the wall time from the start signal to the last client done.

Run:  .venv/bin/python -m bench.event_ingest [--clients 4] [--events 10000] [--batch 200]
      [--postgres postgresql://postgres@127.0.0.1:5432/test]   (a scratch schema is
      created there and dropped afterwards; PostgreSQL is skipped when unreachable)
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone

from recsvc.events import EVENT_KINDS, Event, EventIngestor
from recsvc.experiments import Exposure
from recsvc.store import open_store

EXPOSURES = 1000


def client(url: str, worker: int, n_events: int, batch: int, start: mp.Event,
           out: mp.Queue) -> None:
    now = datetime.now(timezone.utc)
    events = [Event(f"w{worker}-{i}", EVENT_KINDS[i % 4], now, exposure_id=f"x{(worker * 7919 + i) % EXPOSURES}")
              for i in range(n_events)]
    accepted = duplicates = 0
    with open_store(url) as store:
        ingest = EventIngestor(store).ingest
        start.wait()
        t0 = time.time()
        for b, i in enumerate(range(0, n_events, batch)):
            r = ingest(events[i:i + batch])
            accepted += r.accepted
            if b % 10 == 0:  # a retried batch
                duplicates += ingest(events[i:i + batch]).duplicates
        out.put((t0, time.time(), accepted, duplicates))


def run(url: str, clients: int, n_events: int, batch: int) -> dict[str, float]:
    with open_store(url) as store:
        now = datetime.now(timezone.utc)
        store.record_exposures([Exposure(f"x{i}", "bench", "test", f"p{i % 10}", "complements",
                                         3, f"u:{i}", now) for i in range(EXPOSURES)])
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=client, args=(url, w, n_events, batch, start, out))
             for w in range(clients)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # let every client import and connect before the clock starts
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    with open_store(url) as store:
        stored = sum(store.event_counts("bench").values())
    total = clients * n_events
    return {"events": total, "seconds": wall, "rate": total / wall, "stored": stored,
            "accepted": sum(r[2] for r in results), "duplicates": sum(r[3] for r in results)}


def postgres_schema(base: str) -> tuple[str, str] | None:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as e:
        print(f"PostgreSQL at {base} unreachable ({e}); skipped")
        return None
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--events", type=int, default=10_000, help="per client")
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("sqlite", run(f"sqlite:///{tmp}/state.db", args.clients, args.events, args.batch)))
    pg = postgres_schema(args.postgres)
    if pg:
        try:
            rows.append(("postgresql", run(pg[0], args.clients, args.events, args.batch)))
        finally:
            drop_schema(args.postgres, pg[1])

    print(f"\n{args.clients} client processes x {args.events:,} events, batches of "
          f"{args.batch}, one batch in ten retried; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'store':<11}{'events':>9}{'seconds':>9}{'events/s':>10}{'stored':>9}"
          f"{'lost':>6}{'retried dupes':>15}")
    for name, r in rows:
        lost = r["events"] - r["stored"]
        print(f"{name:<11}{r['events']:>9,}{r['seconds']:>9.2f}{r['rate']:>10,.0f}"
              f"{r['stored']:>9,}{lost:>6}{r['duplicates']:>15,}")
        if lost or r["accepted"] != r["events"]:
            raise SystemExit(f"{name}: {lost} events lost, {r['accepted']} accepted")


if __name__ == "__main__":
    main()
