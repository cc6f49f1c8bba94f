"""Connections to the gateway's databases: a SQLite file by default, PostgreSQL by URL.

The campaign store and the call store open their connections here, so both speak to the same
engines with the same settings: SQLite in WAL mode (a gateway and a dialler share one file),
PostgreSQL through psycopg 3 in autocommit mode with rows as dicts (transactions are explicit).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["is_postgres", "postgres_connection", "sqlite_connection", "sqlite_path"]


def is_postgres(dsn: str) -> bool:
    return dsn.startswith(("postgresql://", "postgres://"))


def sqlite_path(dsn: str) -> str:
    """``sqlite:///path`` or a plain path: the file's path."""
    return dsn.removeprefix("sqlite:///").removeprefix("sqlite://")


def sqlite_connection(path: str | Path) -> sqlite3.Connection:
    """A connection any thread may use (callers serialise), in WAL mode, rows by name."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def postgres_connection(dsn: str, *, connect_timeout: float | None = None) -> Any:
    """A psycopg connection in autocommit mode with dict rows (psycopg is imported lazily:
    a SQLite-only install never loads it)."""
    import psycopg
    from psycopg.rows import dict_row

    options: dict[str, Any] = {}
    if connect_timeout is not None:
        options["connect_timeout"] = max(1, int(connect_timeout))
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row, **options)
