"""PostgreSQL backend: shared state for several replicas.

Connections come from a small `psycopg_pool.ConnectionPool` (default 1..8): the
gRPC server calls the store from a thread pool, and a pool bounds the connections
a replica holds while replacing ones a server restart has broken (each connection
is checked when it is handed out). Each call runs in one transaction.

The URL is passed to libpq as is, so its query options work, e.g.
`postgresql://u@host/db?options=-csearch_path%3Dshop1` keeps one shop's tables in
its own schema.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from recsvc.store.base import RetryPolicy, StoreUnavailable
from recsvc.store.sql import SqlStore

SCHEMA_LOCK_KEY = 0x7265637376  # "recsv": an advisory lock id for schema creation
EXPERIMENTS_LOCK_KEY = SCHEMA_LOCK_KEY + 1  # held while an experiment is checked and created


def mask_password(url: str) -> str:
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return url
    return url.replace(f":{info['password']}@", ":***@") if info.get("password") else url


class PostgresStore(SqlStore):
    placeholder = "%s"

    def __init__(self, url: str, *, retry: RetryPolicy = RetryPolicy(),
                 pool_size: int = 8, connect_timeout_s: float = 5.0,
                 checkout_timeout_s: float = 0.5) -> None:
        super().__init__(mask_password(url), retry)
        # A short checkout timeout: during an outage each attempt fails fast and the
        # retry policy, not the pool, decides how long to wait before UNAVAILABLE.
        self._pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, timeout=checkout_timeout_s,
            check=ConnectionPool.check_connection, name="recsvc-store",
            kwargs={"connect_timeout": max(1, round(connect_timeout_s))},
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except PoolTimeout as e:
            self._pool.close()
            raise StoreUnavailable(f"cannot connect to {self.url} within "
                                   f"{connect_timeout_s:g} s: {e}") from e
        try:
            self._create_schema()
        except BaseException:
            self._pool.close()
            raise

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[psycopg.Cursor[Any]]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _lock_schema(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))

    def _lock_experiments(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (EXPERIMENTS_LOCK_KEY,))

    def _is_transient(self, e: BaseException) -> bool:
        # OperationalError covers lost connections, server shutdown, serialisation
        # failures and deadlocks; PoolTimeout means no connection could be had.
        return isinstance(e, (psycopg.OperationalError, PoolTimeout))

    def close(self) -> None:
        self._pool.close()
