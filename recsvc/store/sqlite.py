"""SQLite backend: one file, the default for a single machine.

- WAL mode, so readers never block the writer and several processes can share the
  file; a busy timeout makes a writer wait for the lock instead of failing at once.
- `synchronous=FULL`: a commit is on disk before it is acknowledged (events and
  stock updates must survive a power cut, not only a crash of the process).
- One connection per thread (sqlite3 connections are not safe to share), created on
  first use and closed together by `close()`. A process forked after opening gets
  fresh connections: SQLite forbids carrying one across `fork()`.
- Writes start with BEGIN IMMEDIATE: taking the write lock up front avoids the
  deadlock of two readers both upgrading to writers.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recsvc.store.base import RetryPolicy
from recsvc.store.sql import SqlStore

TRANSIENT_MESSAGES = ("locked", "busy", "unable to open", "disk i/o")


class SqliteStore(SqlStore):
    def __init__(self, path: str | Path, *, retry: RetryPolicy = RetryPolicy(),
                 busy_timeout_s: float = 5.0) -> None:
        super().__init__(f"sqlite:///{path}", retry)
        self._path = str(path)
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._closed = False
        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._create_schema()

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError(f"the store {self.url} is closed")
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout_s,
                               isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        except BaseException:
            conn.close()
            raise
        with self._guard:
            self._conns.append(conn)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Cursor]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn.cursor()
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _is_transient(self, e: BaseException) -> bool:
        return isinstance(e, sqlite3.OperationalError) and any(
            m in str(e).lower() for m in TRANSIENT_MESSAGES)

    def close(self) -> None:
        with self._guard:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
