"""Call stores on SQLite and on PostgreSQL (``pg_dsn`` from ``tests/pgserver.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.callstore.store import CallStore, open_call_store


@pytest.fixture(params=["sqlite", "postgres"])
def store_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "calls.db")
    return str(request.getfixturevalue("pg_dsn"))


@pytest.fixture
def call_store(store_dsn: str) -> Iterator[CallStore]:
    store = open_call_store(store_dsn)
    try:
        yield store
    finally:
        store.close()
