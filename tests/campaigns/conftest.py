"""Fixtures for the campaign tests: stores on SQLite and on PostgreSQL (``pg_dsn``, from
``tests/pgserver.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.campaigns.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same tests on both stores."""
    if request.param == "sqlite":
        dsn = str(tmp_path / "campaigns.db")
    else:
        dsn = request.getfixturevalue("pg_dsn")
    s = open_store(dsn)
    try:
        yield s
    finally:
        s.close()
