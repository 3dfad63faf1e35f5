"""Order (or catalog) rows from a PostgreSQL table or query named by a URL.

    postgresql://user:pass@host:5432/shop?table=orders
    postgresql://user@host/shop?table=sales.order_lines&chunk_rows=50000
    postgresql://user@host/shop?query=SELECT%20id%20AS%20order_id%2C...%20FROM%20...

`table` (optionally schema-qualified) is read whole; `query` is any SELECT, which is
how columns are renamed to the standard names (order_id, user_id, item_id, ts,
quantity, price, ...) or a window of days is chosen. Every other URL parameter goes
to libpq unchanged (sslmode, options, connect_timeout, ...).

Rows come through a server-side cursor `chunk_rows` at a time, so the database never
materialises the whole result for us and the client holds one chunk of Python
objects at once before it becomes a compact DataFrame. The result goes through the
same validation as a file (training.io), so types can stay as the database has them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd

from training.io import InputError

SCHEMES = ("postgresql", "postgres")
DEFAULT_CHUNK_ROWS = 100_000
CONNECT_ATTEMPTS = 3  # a database restarting for a minute should not cost a night's model
CONNECT_BACKOFF_S = 0.5  # doubled after each failed attempt
_OUR_PARAMS = ("table", "query", "chunk_rows")


class SourceUnavailable(InputError):
    """The database could not be reached or dropped the connection: retry later."""


@dataclass(frozen=True)
class PostgresSource:
    conninfo: str  # the URL without our parameters, for libpq
    table: str | None
    query: str | None
    chunk_rows: int
    display: str  # the URL with any password masked, for messages


def is_postgres_url(src: str) -> bool:
    return urlsplit(str(src)).scheme in SCHEMES


def parse_postgres_url(url: str, *, what: str = "orders") -> PostgresSource:
    """Split a source URL into libpq's part and ours; refuses ambiguous or empty requests."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InputError(f"{what} source {url!r} is not a postgresql:// URL")
    params = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in params if k in _OUR_PARAMS}
    libpq = [(k, v) for k, v in params if k not in _OUR_PARAMS]
    display = _mask_password(url)
    table, query = ours.get("table") or None, ours.get("query") or None
    if (table is None) == (query is None):
        raise InputError(f"{what} source {display} needs exactly one of ?table=NAME or ?query=SELECT...; "
                         f"e.g. postgresql://user@host/db?table=orders")
    try:
        chunk_rows = int(ours.get("chunk_rows", DEFAULT_CHUNK_ROWS))
        if chunk_rows <= 0:
            raise ValueError
    except ValueError:
        raise InputError(f"{what} source {display}: chunk_rows must be a positive integer, "
                         f"got {ours['chunk_rows']!r}") from None
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(libpq), ""))
    return PostgresSource(conninfo, table, query, chunk_rows, display)


def read_postgres(url: str, *, what: str = "orders") -> pd.DataFrame:
    """All rows of the URL's table or query, with the database's column names.

    Raises SourceUnavailable when the server cannot be reached (after a few attempts)
    or the connection drops mid-read, InputError for a missing table or a bad query.
    """
    import psycopg
    from psycopg import sql
    from psycopg.types.numeric import FloatLoader

    src = parse_postgres_url(url, what=what)
    if src.table is not None:
        statement: sql.Composable = sql.SQL("SELECT * FROM {}").format(sql.Identifier(*src.table.split(".")))
    else:
        statement = sql.SQL(src.query)  # the operator's own SQL, run with their credentials
    conn = _connect(src, what)
    try:
        # numeric -> float: Decimal objects are slow and validation wants floats anyway.
        conn.adapters.register_loader("numeric", FloatLoader)
        with conn.transaction():
            conn.execute("SET LOCAL TimeZone = 'UTC'")  # timestamptz arrive as UTC datetimes
            with conn.cursor(name="recsvc_source") as cur:
                cur.itersize = src.chunk_rows
                cur.execute(statement)
                columns = [d.name for d in cur.description or ()]
                chunks = []
                while rows := cur.fetchmany(src.chunk_rows):
                    chunks.append(pd.DataFrame.from_records(rows, columns=columns, coerce_float=True))
    except psycopg.OperationalError as e:
        raise SourceUnavailable(f"{what} source {src.display}: the database connection failed while "
                                f"reading ({_first_line(e)}); retry when the database is back") from e
    except psycopg.errors.UndefinedTable as e:
        raise InputError(f"{what} source {src.display}: {_first_line(e)}; check ?table= (schema.table "
                         "if it is not on the search_path)") from e
    except psycopg.Error as e:
        raise InputError(f"{what} source {src.display}: the query failed: {_first_line(e)}") from e
    finally:
        conn.close()
    if not chunks:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def _connect(src: PostgresSource, what: str):  # -> psycopg.Connection
    import psycopg

    kwargs = {} if "connect_timeout" in src.conninfo else {"connect_timeout": 10}
    delay = CONNECT_BACKOFF_S
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return psycopg.connect(src.conninfo, **kwargs)
        except psycopg.OperationalError as e:
            if attempt == CONNECT_ATTEMPTS:
                raise SourceUnavailable(
                    f"{what} source {src.display}: cannot connect to PostgreSQL after {attempt} attempts "
                    f"({_first_line(e)}); check that the server is up and the URL's host, port, user, "
                    "password and database, then retry") from e
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _mask_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
