"""Experiments, exposures and events in SQL, mixed into `SqlStore` (see sql.py).

Tables:
- experiments: the definition as JSON plus its status (changed by pause/stop);
- exposures: one row per placed test-slot item (or control's organic item);
- events: one row per event id, with its exposure's experiment, item and arm copied
  in, so the report's counts are one GROUP BY over one indexed table;
- rejected_events: events whose exposure was unknown, once per event id.

Idempotency is the primary key: INSERT ... ON CONFLICT DO NOTHING, counted with the
statement's row count, so a retried batch (or two replicas given the same batch)
stores each event once and reports the rest as duplicates.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from recsvc.events import ArmItemStats, Event, IngestResult, Rejected
from recsvc.experiments import Experiment, Exposure, customer_key
from recsvc.store.base import now_us, to_us

EXPERIMENT_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS experiments (
        id TEXT PRIMARY KEY,
        created_us BIGINT NOT NULL,
        status TEXT NOT NULL,
        body TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS exposures (
        exposure_id TEXT PRIMARY KEY,
        experiment_id TEXT NOT NULL,
        arm TEXT NOT NULL,
        item_id TEXT NOT NULL,
        rpc TEXT NOT NULL,
        slot INTEGER NOT NULL,
        customer TEXT NOT NULL,
        at_us BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS exposures_experiment ON exposures (experiment_id, item_id, arm)",
    "CREATE INDEX IF NOT EXISTS exposures_customer ON exposures (customer, item_id, at_us)",
    """CREATE TABLE IF NOT EXISTS events (
        event_id TEXT PRIMARY KEY,
        exposure_id TEXT NOT NULL,
        experiment_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        arm TEXT NOT NULL,
        kind TEXT NOT NULL,
        at_us BIGINT NOT NULL,
        received_us BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_experiment ON events (experiment_id, kind)",
    """CREATE TABLE IF NOT EXISTS rejected_events (
        event_id TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        received_us BIGINT NOT NULL)""",
]
CHUNK = 500  # ids per IN (...) list, well below both databases' parameter limits
KIND_FIELD = {"impression": "impressions", "click": "clicks",
              "add_to_cart": "add_to_carts", "purchase": "purchases"}
UNKNOWN_EXPOSURE = "unknown exposure"
INSERT_EVENT = ("INSERT INTO events (event_id, exposure_id, experiment_id, item_id, arm, kind, "
                "at_us, received_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING")


class ExperimentTables:
    """Mixin for SqlStore: relies on its `_run`, `_exec` and `_many`."""

    _run: Any
    _exec: Any
    _many: Any
    _q: Any

    # --- definitions ------------------------------------------------------------------
    def create_experiment(self, e: Experiment, check: Callable[[list[Experiment]], None] | None = None
                          ) -> tuple[Experiment, list[Experiment]]:
        created = Experiment(**{**e.__dict__, "id": e.id or uuid.uuid4().hex[:16]})
        body = json.dumps(created.to_dict(), sort_keys=True)

        def write(cur: Any) -> tuple[Experiment, list[Experiment]]:
            # Read, check and insert under one lock: two replicas creating overlapping
            # experiments at the same instant must not both see the other missing.
            self._lock_experiments(cur)
            existing = [e for e in self._experiments_in(cur) if e.id != created.id]
            if check is not None:
                check(existing)
            rows = self._exec(cur, "INSERT INTO experiments (id, created_us, status, body) "
                                   "VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id",
                              (created.id, now_us(), created.status, body)).fetchall()
            if not rows:
                old = self._exec(cur, "SELECT body FROM experiments WHERE id = ?",
                                 (created.id,)).fetchone()
                if old is None or old[0] != body:  # else: our own retried create
                    raise ValueError(f"id: an experiment with id {created.id!r} already exists")
            return created, existing
        return self._run("creating an experiment", write)

    def _lock_experiments(self, cur: Any) -> None:
        """Serialise experiment creation across replicas (SQLite: BEGIN IMMEDIATE already does)."""

    def _experiments_in(self, cur: Any) -> list[Experiment]:
        rows = self._exec(cur, "SELECT status, body FROM experiments ORDER BY created_us, id")
        return [Experiment.from_dict({**json.loads(body), "status": status}) for status, body in rows]

    def list_experiments(self) -> list[Experiment]:
        return self._run("listing experiments", self._experiments_in, write=False)

    def set_experiment_status(self, experiment_id: str, status: str) -> bool:
        def write(cur: Any) -> bool:
            return bool(self._exec(cur, "UPDATE experiments SET status = ? WHERE id = ? "
                                        "RETURNING id", (status, experiment_id)).fetchall())
        return self._run("changing an experiment's status", write)

    # --- traffic ----------------------------------------------------------------------
    def record_exposures(self, exposures: Sequence[Exposure]) -> None:
        rows = [(x.exposure_id, x.experiment_id, x.arm, x.item_id, x.rpc, x.slot, x.customer,
                 to_us(x.at)) for x in exposures]

        def write(cur: Any) -> None:
            self._many(cur, "INSERT INTO exposures (exposure_id, experiment_id, arm, item_id, "
                            "rpc, slot, customer, at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (exposure_id) DO NOTHING", rows)
        if rows:
            self._run("recording exposures", write)

    def ingest_events(self, events: Sequence[Event]) -> IngestResult:
        def write(cur: Any) -> IngestResult:
            received = now_us()
            known = self._exposures_by_id(cur, {e.exposure_id for e in events if e.exposure_id})
            stored: list[tuple[Any, ...]] = []
            rejected: list[Rejected] = []
            for e in events:
                if e.exposure_id:
                    x = known.get(e.exposure_id)
                else:
                    x = self._latest_exposure(cur, customer_key(e.user_id, e.session_id), e.item_id)
                if x is None:
                    rejected.append(Rejected(e.event_id, UNKNOWN_EXPOSURE))
                else:
                    stored.append((e.event_id, *x, e.kind, to_us(e.at), received))
            accepted = 0
            if stored:
                cur.executemany(self._q(INSERT_EVENT), stored)
                accepted = cur.rowcount
            self._many(cur, "INSERT INTO rejected_events (event_id, reason, received_us) "
                            "VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                       [(r.event_id, r.reason, received) for r in rejected])
            return IngestResult(accepted, len(stored) - accepted, rejected)
        return self._run("storing events", write)

    def _exposures_by_id(self, cur: Any, ids: set[str]) -> dict[str, tuple[str, str, str, str]]:
        found: dict[str, tuple[str, str, str, str]] = {}
        todo = sorted(ids)
        for i in range(0, len(todo), CHUNK):
            chunk = todo[i:i + CHUNK]
            marks = ", ".join("?" * len(chunk))
            for row in self._exec(cur, "SELECT exposure_id, experiment_id, item_id, arm "
                                       f"FROM exposures WHERE exposure_id IN ({marks})", chunk):
                found[row[0]] = (row[0], row[1], row[2], row[3])
        return found

    def _latest_exposure(self, cur: Any, customer: str | None,
                         item_id: str | None) -> tuple[str, str, str, str] | None:
        row = self._exec(cur, "SELECT exposure_id, experiment_id, item_id, arm FROM exposures "
                              "WHERE customer = ? AND item_id = ? ORDER BY at_us DESC LIMIT 1",
                         (customer, item_id)).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    # --- counts -----------------------------------------------------------------------
    def experiment_stats(self, experiment_id: str) -> list[ArmItemStats]:
        def read(cur: Any) -> list[ArmItemStats]:
            counts: dict[tuple[str, str], dict[str, int]] = {}
            for item, arm, n in self._exec(cur, "SELECT item_id, arm, COUNT(*) FROM exposures "
                                                "WHERE experiment_id = ? GROUP BY item_id, arm",
                                           (experiment_id,)):
                counts[(item, arm)] = {"exposures": int(n)}
            for item, arm, kind, n in self._exec(
                    cur, "SELECT item_id, arm, kind, COUNT(DISTINCT exposure_id) FROM events "
                         "WHERE experiment_id = ? GROUP BY item_id, arm, kind", (experiment_id,)):
                counts.setdefault((item, arm), {"exposures": 0})[KIND_FIELD[kind]] = int(n)
            return [ArmItemStats(item, arm, **c) for (item, arm), c in sorted(counts.items())]
        return self._run("reading experiment counts", read, write=False)

    def event_counts(self, experiment_id: str) -> dict[str, int]:
        def read(cur: Any) -> dict[str, int]:
            rows = self._exec(cur, "SELECT kind, COUNT(*) FROM events WHERE experiment_id = ? "
                                   "GROUP BY kind", (experiment_id,))
            return {kind: int(n) for kind, n in rows}
        return self._run("counting events", read, write=False)

    def rejected_event_count(self) -> int:
        def read(cur: Any) -> int:
            return int(self._exec(cur, "SELECT COUNT(*) FROM rejected_events").fetchone()[0])
        return self._run("counting rejected events", read, write=False)
