"""Shared fixtures: real PostgreSQL/Redis when present, the shared datasets when present.

Tests that need a service skip with a clear message on a machine without it; CI sets
RECSVC_REQUIRE_SERVICES=1, which turns that skip into a failure.
"""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"
DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _require_services() -> bool:
    return os.environ.get("RECSVC_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def _service_missing(what: str) -> None:
    msg = f"{what} is not reachable on this machine"
    if _require_services():
        pytest.fail(f"{msg}, and RECSVC_REQUIRE_SERVICES=1 demands it (CI runs against real services)")
    pytest.skip(f"{msg}; start it to run this test (see README, 'Tests')")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def postgres_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not _port_open(PG_HOST, PG_PORT):
        _service_missing(f"PostgreSQL at {PG_HOST}:{PG_PORT}")
    import psycopg

    base = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{PG_DB}"
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as e:
        _service_missing(f"PostgreSQL database {PG_DB!r} ({e})")
    yield f"{base}?options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def redis_url():
    if not _port_open("127.0.0.1", 6379):
        _service_missing("Redis at 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """../shared/datasets; tests using it skip when it is absent (a user's fresh clone)."""
    if not DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {DATASETS}; they sit beside the project in CI only")
    return DATASETS
