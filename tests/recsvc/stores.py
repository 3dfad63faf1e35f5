"""The `store_url` / `store` fixtures: every store test runs on SQLite and PostgreSQL.

Test modules import them (`from tests.recsvc.stores import store, store_url`).
SQLite lives in the test's tmp dir; PostgreSQL in a fresh schema (tests/conftest.py),
skipped on a machine without it, required in CI.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from recsvc.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()
