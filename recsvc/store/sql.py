"""The SQL both backends share: schema, statements, and the retry/transaction frame.

Statements are written once with `?` placeholders (SQLite's style) and translated for
PostgreSQL; only portable SQL is used (ON CONFLICT upserts, RETURNING, BIGINT, TEXT,
DOUBLE PRECISION). A backend supplies connections and transactions (`_transaction`),
tells transient errors from bugs (`_is_transient`), and serialises schema creation.

Times are stored as integer microseconds since the epoch (UTC, `base.to_us`), the
one time type both databases compare and index the same way.
"""
from __future__ import annotations

import json
import uuid
from abc import abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from recsvc.pacing import pause
from recsvc.promotions import Promotion, promotion_from_dict, promotion_to_dict
from recsvc.store.base import PriceUpdate, RetryPolicy, StockUpdate, Store, now_us
from recsvc.store.sql_experiments import EXPERIMENT_SCHEMA, ExperimentTables

_PAGE = 2_000  # rows read between GIL hand-overs

T = TypeVar("T")
SCHEMA_VERSION = 1

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
    # One row per named sequence; UPDATE ... RETURNING takes a row lock, so stock
    # batches commit in seq order and a poller never skips a late commit.
    """CREATE TABLE IF NOT EXISTS counters (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS stock (
        item_id TEXT PRIMARY KEY,
        quantity BIGINT NOT NULL,
        seq BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS stock_seq ON stock (seq)",
    """CREATE TABLE IF NOT EXISTS prices (
        item_id TEXT PRIMARY KEY,
        price DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS promotions (
        id TEXT PRIMARY KEY,
        created_us BIGINT NOT NULL,
        body TEXT NOT NULL)""",
]


class SqlStore(ExperimentTables, Store):
    """Store methods written against a DB-API cursor; subclasses bring the database."""

    placeholder = "?"

    def __init__(self, url: str, retry: RetryPolicy) -> None:
        self.url = url
        self._retry = retry

    # --- what a backend provides ------------------------------------------------------
    @abstractmethod
    def _transaction(self, write: bool) -> AbstractContextManager[Any]:
        """A cursor inside one transaction, committed on success, rolled back on error."""

    @abstractmethod
    def _is_transient(self, e: BaseException) -> bool:
        """True for errors worth retrying: connection lost, database locked or restarting."""

    def _lock_schema(self, cur: Any) -> None:
        """Serialise concurrent schema creation (processes starting together)."""

    # --- the frame every method runs in -----------------------------------------------
    def _q(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _run(self, what: str, fn: Callable[[Any], T], write: bool = True) -> T:
        def once() -> T:
            with self._transaction(write) as cur:
                return fn(cur)
        return self._retry.call(once, self._is_transient, what)

    def _exec(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        cur.execute(self._q(sql), params)
        return cur

    def _many(self, cur: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cur.executemany(self._q(sql), rows)

    def _create_schema(self) -> None:
        def create(cur: Any) -> None:
            self._lock_schema(cur)
            for ddl in [*SCHEMA, *EXPERIMENT_SCHEMA]:
                self._exec(cur, ddl)
            self._exec(cur, "INSERT INTO counters (name, value) VALUES ('stock', 0) "
                            "ON CONFLICT (name) DO NOTHING")
            self._exec(cur, "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                            "ON CONFLICT (key) DO NOTHING", (str(SCHEMA_VERSION),))
            row = self._exec(cur, "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if int(row[0]) > SCHEMA_VERSION:
                raise RuntimeError(f"the store at {self.url} has schema version {row[0]}, newer "
                                   f"than this recsvc understands ({SCHEMA_VERSION}); upgrade recsvc")
        self._run("creating the schema", create)

    # --- stock ------------------------------------------------------------------------
    def upsert_stock(self, updates: Sequence[StockUpdate]) -> int:
        rows = [(u.item_id, int(u.quantity)) for u in updates]

        def write(cur: Any) -> int:
            if not rows:
                return int(self._exec(cur, "SELECT value FROM counters WHERE name = 'stock'")
                           .fetchone()[0])
            seq = int(self._exec(cur, "UPDATE counters SET value = value + 1 "
                                      "WHERE name = 'stock' RETURNING value").fetchall()[0][0])
            self._many(cur, "INSERT INTO stock (item_id, quantity, seq) VALUES (?, ?, ?) "
                            "ON CONFLICT (item_id) DO UPDATE SET quantity = excluded.quantity, "
                            "seq = excluded.seq", [(i, q, seq) for i, q in rows])
            return seq
        return self._run("updating stock", write, write=bool(rows))

    def all_stock(self) -> dict[str, int]:
        def read(cur: Any) -> dict[str, int]:
            return {i: int(q) for i, q in self._exec(cur, "SELECT item_id, quantity FROM stock")}
        return self._run("reading stock", read, write=False)

    def stock_changes_since(self, seq: int) -> tuple[int, list[StockUpdate]]:
        def read(cur: Any) -> tuple[int, list[StockUpdate]]:
            found = self._exec(cur, "SELECT item_id, quantity, seq FROM stock WHERE seq > ?", (int(seq),))
            latest, changes = int(seq), []
            # In pages: a new model's inventory reads every stored level (20k rows held the
            # GIL for ~70 ms in one fetchall, while the worker answered requests).
            while page := found.fetchmany(_PAGE):
                latest = max(latest, max(int(r[2]) for r in page))
                changes += [(r[0], int(r[1])) for r in page]  # plain tuples: see StockUpdate
                if len(page) == _PAGE:
                    pause()
            return latest, changes
        return self._run("reading stock changes", read, write=False)

    # --- prices -----------------------------------------------------------------------
    def upsert_prices(self, updates: Sequence[PriceUpdate]) -> None:
        rows = [(u.item_id, float(u.price)) for u in updates]

        def write(cur: Any) -> None:
            self._many(cur, "INSERT INTO prices (item_id, price) VALUES (?, ?) "
                            "ON CONFLICT (item_id) DO UPDATE SET price = excluded.price", rows)
        if rows:
            self._run("updating prices", write)

    def all_prices(self) -> dict[str, float]:
        def read(cur: Any) -> dict[str, float]:
            return {i: float(p) for i, p in self._exec(cur, "SELECT item_id, price FROM prices")}
        return self._run("reading prices", read, write=False)

    # --- promotions -------------------------------------------------------------------
    def create_promotion(self, p: Promotion) -> Promotion:
        # The id is fixed before the first attempt, so a retry after a commit whose
        # acknowledgement was lost finds its own row instead of creating a twin.
        created = Promotion(**{**p.__dict__, "id": p.id or uuid.uuid4().hex[:16]})
        body = json.dumps(promotion_to_dict(created), sort_keys=True)

        def write(cur: Any) -> Promotion:
            row = self._exec(cur, "INSERT INTO promotions (id, created_us, body) VALUES (?, ?, ?) "
                                  "ON CONFLICT (id) DO NOTHING RETURNING id",
                             (created.id, now_us(), body)).fetchall()
            if not row:
                old = self._exec(cur, "SELECT body FROM promotions WHERE id = ?",
                                 (created.id,)).fetchone()
                if old is None or old[0] != body:
                    raise ValueError(f"id: a promotion with id {created.id!r} already exists")
            return created
        return self._run("creating a promotion", write)

    def list_promotions(self) -> list[Promotion]:
        def read(cur: Any) -> list[Promotion]:
            rows = self._exec(cur, "SELECT body FROM promotions ORDER BY created_us, id")
            return [promotion_from_dict(json.loads(b)) for (b,) in rows]
        return self._run("listing promotions", read, write=False)

    def delete_promotion(self, promo_id: str) -> bool:
        def write(cur: Any) -> bool:
            return bool(self._exec(cur, "DELETE FROM promotions WHERE id = ? RETURNING id",
                                   (promo_id,)).fetchall())
        return self._run("deleting a promotion", write)

