"""Where finished calls live: one row per call, in SQLite (a file) or PostgreSQL.

Several gateways write to one PostgreSQL, each its own calls; a dialler and ``overtalk calls``
read them. A call is written once, at its end: :meth:`CallStore.save` is idempotent on the call
id, so a record replayed from the spool after an uncertain write is never doubled. Time is
passed in; nothing here reads a clock. Synchronous, one connection, callers serialise (the
gateway writes from one thread, see :mod:`gateway.callstore.writer`). Database errors are
translated at this boundary into :class:`StoreUnavailable`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from gateway.callstore.errors import StoreUnavailable
from gateway.callstore.record import CallRow, CallSummary
from gateway.callstore.schema import MIGRATIONS, VERSION_TABLE
from gateway.config import Settings
from gateway.database import is_postgres, postgres_connection, sqlite_connection, sqlite_path

__all__ = ["CallFilter", "CallStore", "CallSummary", "open_call_store", "store_dsn"]

#: Columns a listing shows (the whole record stays out of lists).
_SUMMARY = ", ".join(f.name for f in fields(CallSummary))
#: Rows one listing returns at most.
MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class CallFilter:
    """What ``calls list`` and the calls page select; empty fields select everything."""

    since: float | None = None
    route: str = ""
    outcome: str = ""
    campaign: str = ""
    caller: str = ""
    limit: int = 100


class CallStore:
    """The call store; build one with :func:`open_call_store`."""

    def __init__(self, conn: Any, *, postgres: bool) -> None:
        self._conn = conn
        self._postgres = postgres
        self._lock = threading.RLock()
        self._errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
        if postgres:
            import psycopg

            self._errors = (psycopg.Error,)
        self._migrate()

    # -- plumbing -----------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._postgres else sql

    def _q(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with self._lock, self._failures():
            cursor = self._conn.execute(self._sql(sql), params)
            if cursor.description is None:
                return []
            return [dict(r) for r in cursor.fetchall()]

    def _w(self, sql: str, *params: Any) -> int:
        with self._lock, self._failures():
            return int(self._conn.execute(self._sql(sql), params).rowcount)

    @contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise StoreUnavailable(f"call store: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                                   ) from exc  # fmt: skip

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock, self._failures():
            if self._postgres:
                with self._conn.transaction():
                    yield
                return
            self._conn.execute("BEGIN IMMEDIATE")  # the write lock up front
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        """Bring the schema to the newest version, once, whoever else starts beside us."""
        with self._transaction():
            if self._postgres:  # concurrent DDL collides on the catalog: serialise the gateways
                self._q("SELECT pg_advisory_xact_lock(7402312)")
            self._q(VERSION_TABLE)
            found = self._q("SELECT MAX(version) AS v FROM call_schema")
            version = (found[0]["v"] or 0) if found else 0
            for target, statements in MIGRATIONS:
                if target > version:
                    for statement in statements:
                        self._q(statement)
                    self._q("DELETE FROM call_schema")
                    self._q("INSERT INTO call_schema (version) VALUES (?)", target)

    def schema_version(self) -> int:
        return int(self._q("SELECT MAX(version) AS v FROM call_schema")[0]["v"])

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers."""
        self._q("SELECT 1 AS ok")

    def close(self) -> None:
        try:
            self._conn.close()
        except self._errors:
            pass

    # -- writing ------------------------------------------------------------------------------

    def save(self, row: CallRow, now: float) -> bool:
        """Store a finished call; False when it was already there (a replay), which is kept."""
        return bool(self._w(
            "INSERT INTO calls (call_id, carrier, route, caller, called, outcome, end_reason, "
            "started_at, ended_at, duration, interruptions, response_ms, clear_ms, transcript, "
            "results, record, audio_url, gateway, stored_at, campaign) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (call_id) DO NOTHING",
            row.call_id, row.carrier, row.route, row.caller, row.called, row.outcome,
            row.end_reason, row.started_at, row.ended_at, row.duration, row.interruptions,
            row.response_ms, row.clear_ms, json.dumps(row.transcript), json.dumps(row.results),
            row.record.decode(), row.audio_url, row.gateway, now, row.campaign,
        ))  # fmt: skip

    def tag_campaign(self, call_id: str, campaign: str) -> None:
        """Note the campaign a call belonged to (the dialler does, importing its results)."""
        self._w("UPDATE calls SET campaign = ? WHERE call_id = ?", campaign, call_id)

    def expire(self, ended_before: float) -> list[str]:
        """Delete the calls that ended before a time; returns their audio URLs (to delete)."""
        with self._transaction():
            rows = self._q(
                "SELECT audio_url FROM calls WHERE ended_at < ? AND audio_url IS NOT NULL",
                ended_before,
            )
            self._q("DELETE FROM calls WHERE ended_at < ?", ended_before)
        return [r["audio_url"] for r in rows]

    # -- reading ------------------------------------------------------------------------------

    def record(self, call_id: str) -> dict[str, Any] | None:
        """The whole record of one call (the ledger, with ``audio_url``), or None."""
        rows = self._q("SELECT record, audio_url, campaign FROM calls WHERE call_id = ?", call_id)
        if not rows:
            return None
        record: dict[str, Any] = json.loads(rows[0]["record"])
        record["audio_url"] = rows[0]["audio_url"]
        record["campaign"] = rows[0]["campaign"]
        return record

    def summary(self, call_id: str) -> CallSummary | None:
        rows = self._q(f"SELECT {_SUMMARY} FROM calls WHERE call_id = ?", call_id)
        return CallSummary(**rows[0]) if rows else None

    def results(
        self, call_ids: Sequence[str]
    ) -> dict[str, tuple[list[tuple[str, str]], dict[str, str]]]:
        """Transcripts and results of the calls among ``call_ids`` that are stored."""
        found: dict[str, tuple[list[tuple[str, str]], dict[str, str]]] = {}
        for start in range(0, len(call_ids), 500):
            chunk = list(call_ids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            for r in self._q(
                f"SELECT call_id, transcript, results FROM calls WHERE call_id IN ({marks})",
                *chunk,
            ):
                lines = [(str(a), str(b)) for a, b in json.loads(r["transcript"])]
                found[r["call_id"]] = (lines, json.loads(r["results"]))
        return found

    def calls(self, where: CallFilter) -> list[CallSummary]:
        """The newest calls first, filtered."""
        clauses, params = [], []
        if where.since is not None:
            clauses.append("ended_at >= ?")
            params.append(where.since)
        for column in ("route", "outcome", "campaign", "caller"):
            value = getattr(where, column)
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {_SUMMARY} FROM calls"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        limit = max(1, min(where.limit, MAX_LIST))
        sql += f" ORDER BY ended_at DESC, call_id LIMIT {limit}"
        return [CallSummary(**r) for r in self._q(sql, *params)]


def store_dsn(settings: Settings) -> str:
    """The call store the settings name: ``store``, else ``<records_dir>/calls.db``, else ''."""
    if settings.store:
        return settings.store
    return str(Path(settings.records_dir) / "calls.db") if settings.records_dir else ""


def open_call_store(dsn: str, *, connect_timeout: float | None = 5.0) -> CallStore:
    """``postgresql://...`` for PostgreSQL; ``sqlite:///path`` or a plain path for SQLite.

    Raises :class:`StoreUnavailable` when the database cannot be reached or set up.
    """
    if is_postgres(dsn):
        import psycopg

        try:
            conn = postgres_connection(dsn, connect_timeout=connect_timeout)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"call store: {str(exc).splitlines()[0]}") from exc
        return CallStore(conn, postgres=True)
    try:
        return CallStore(sqlite_connection(sqlite_path(dsn)), postgres=False)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"call store {sqlite_path(dsn)}: {exc}") from exc
