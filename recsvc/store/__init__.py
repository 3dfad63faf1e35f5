"""State stores chosen by URL.

    open_store("sqlite:///state.db")              # relative to the working directory
    open_store("sqlite:////var/lib/recsvc/state.db")   # absolute path (four slashes)
    open_store("postgresql://user@host:5432/db")  # several replicas share one database

Tables are created on open (idempotent, safe when processes start together).
"""
from __future__ import annotations

from recsvc.store.base import PriceUpdate, RetryPolicy, StockUpdate, Store, StoreUnavailable

DEFAULT_URL = "sqlite:///state.db"
SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")

__all__ = ["DEFAULT_URL", "PriceUpdate", "RetryPolicy", "StockUpdate", "Store",
           "StoreUnavailable", "open_store"]


def open_store(url: str = DEFAULT_URL, *, retry: RetryPolicy = RetryPolicy()) -> Store:
    """Open (and create if needed) the store at `url`; ValueError for an unusable URL."""
    if url.startswith(SQLITE_PREFIX):
        from recsvc.store.sqlite import SqliteStore

        path = url[len(SQLITE_PREFIX):]
        if not path or path.startswith(":memory:") or "?" in path:
            raise ValueError(f"store URL {url!r}: give a file path, e.g. sqlite:///state.db "
                             "(several threads and processes share the store, so no :memory:)")
        return SqliteStore(path, retry=retry)
    if url.startswith(POSTGRES_PREFIXES):
        from recsvc.store.postgres import PostgresStore

        return PostgresStore(url, retry=retry)
    scheme = url.split("://", 1)[0] if "://" in url else "(none)"
    raise ValueError(f"store URL {url!r}: unknown scheme {scheme!r}; use sqlite:///PATH "
                     "or postgresql://USER@HOST:PORT/DB")
