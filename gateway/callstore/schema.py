"""The call store's schema, one list of migrations for SQLite and PostgreSQL alike.

Each migration is a version and the statements that bring the schema to it. A store applies,
in one transaction, those above the version it finds in ``call_schema``, so a database made by
an earlier release is upgraded in place and one made by a later release is left alone. Types are
those both engines accept (``TEXT``, ``INTEGER``, ``DOUBLE PRECISION``).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MIGRATIONS", "VERSION_TABLE"]

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS call_schema (version INTEGER NOT NULL)"

MIGRATIONS: Sequence[tuple[int, Sequence[str]]] = (
    (
        1,
        (
            """CREATE TABLE calls (
                call_id TEXT PRIMARY KEY,
                carrier TEXT NOT NULL,
                route TEXT NOT NULL,
                caller TEXT NOT NULL,
                called TEXT NOT NULL,
                outcome TEXT NOT NULL,
                end_reason TEXT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                ended_at DOUBLE PRECISION NOT NULL,
                duration DOUBLE PRECISION NOT NULL,
                interruptions INTEGER NOT NULL,
                response_ms DOUBLE PRECISION,
                clear_ms DOUBLE PRECISION,
                transcript TEXT NOT NULL,
                results TEXT NOT NULL,
                record TEXT NOT NULL,
                audio_url TEXT,
                gateway TEXT NOT NULL,
                stored_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX calls_ended ON calls (ended_at)",
        ),
    ),
    (
        2,
        (
            # The campaign a call belonged to, set when the dialler imports its results.
            "ALTER TABLE calls ADD COLUMN campaign TEXT",
            "CREATE INDEX calls_campaign ON calls (campaign)",
        ),
    ),
)
