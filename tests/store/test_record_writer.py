"""Records written while the database is down are spooled, replayed when it returns, and
neither lost nor doubled, on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from callkit import finished_call

from gateway.callstore.record import row_from_record
from gateway.callstore.spool import Spool
from gateway.callstore.store import CallFilter, CallStore, open_call_store
from gateway.callstore.writer import RecordWriter


def wait_for(condition: Callable[[], bool], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture(params=["sqlite", "postgres"])
def down_db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """A database DSN that cannot be reached yet, and how to bring it up."""
    if request.param == "sqlite":
        folder = tmp_path / "not-yet"
        return str(folder / "calls.db"), lambda: folder.mkdir()
    import psycopg

    server = request.getfixturevalue("postgres")
    name = f"t_{uuid.uuid4().hex[:12]}"

    def bring_up() -> None:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")

    return server.replace("/postgres?", f"/{name}?"), bring_up


def test_writer_spools_while_down_replays_on_return_without_doubles(
    down_db: tuple[str, Callable[[], None]], tmp_path: Path
) -> None:
    dsn, bring_up = down_db
    spool = Spool(tmp_path / "spool")
    writer = RecordWriter(lambda: open_call_store(dsn, connect_timeout=2), spool, gateway="gw",
                          retry_s=0.05)  # fmt: skip
    writer.start()
    calls = [finished_call(ended_at=1_770_000_000.0 + i) for i in range(3)]
    try:
        for ledger in calls:
            writer.submit(ledger)
        wait_for(lambda: writer.spooled == 3)
        assert len(spool) == 3  # on disk, not in memory: a restart would replay them
        bring_up()
        wait_for(lambda: writer.replayed == 3)
        writer.submit(finished_call())  # straight in, now that it is up
        wait_for(lambda: writer.written == 1)
    finally:
        writer.close()
    assert len(spool) == 0
    store = open_call_store(dsn)
    try:
        listed = [c.call_id for c in store.calls(CallFilter(limit=10))]
        assert len(listed) == 4 and set(listed) >= {c.call_id for c in calls}
    finally:
        store.close()


def test_writer_replay_after_a_crash_mid_replay_doubles_nothing(
    store_dsn: str, tmp_path: Path
) -> None:
    """The record reached the database but the process died before removing it from the
    spool: the next start writes it again, and it is still there once."""
    ledger = finished_call()
    record = ledger.to_dict()
    store = open_call_store(store_dsn)
    store.save(row_from_record(record, audio_url=None, gateway="gw"), 1.0)
    spool = Spool(tmp_path / "spool")
    spool.put(ledger.call_id, orjson.dumps(record))
    writer = RecordWriter(lambda: open_call_store(store_dsn), spool, gateway="gw", retry_s=0.05)
    writer.start()
    try:
        wait_for(lambda: len(spool) == 0)
    finally:
        writer.close()
    try:
        assert [c.call_id for c in store.calls(CallFilter())] == [ledger.call_id]
    finally:
        store.close()


def test_writer_survives_a_dropped_connection(pg_dsn: str, tmp_path: Path) -> None:
    """PostgreSQL restarts under a gateway: the write that fails is spooled, the writer
    reconnects and replays it."""
    import psycopg

    opened: list[CallStore] = []

    def opener() -> CallStore:
        opened.append(open_call_store(pg_dsn))
        return opened[-1]

    spool = Spool(tmp_path / "spool")
    writer = RecordWriter(opener, spool, gateway="gw", retry_s=0.05)
    writer.start()
    try:
        writer.submit(finished_call())
        wait_for(lambda: writer.written == 1)
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        second = finished_call()
        writer.submit(second)
        wait_for(lambda: writer.spooled + writer.written == 2)
        wait_for(lambda: len(spool) == 0)
    finally:
        writer.close()
    assert len(opened) >= 2  # it reconnected
    check = open_call_store(pg_dsn)
    try:
        assert check.record(second.call_id) is not None
        assert len(check.calls(CallFilter())) == 2
    finally:
        check.close()


def test_writer_while_down_spools_without_waiting_on_each_connect(tmp_path: Path) -> None:
    """One connection attempt per retry period, not per call: a burst of calls ending while
    the database is away goes straight to disk."""
    attempts: list[float] = []

    def unreachable() -> CallStore:
        attempts.append(time.monotonic())
        return open_call_store(str(tmp_path / "missing" / "calls.db"))

    spool = Spool(tmp_path / "spool")
    writer = RecordWriter(unreachable, spool, gateway="gw", retry_s=3600)
    writer.start()
    try:
        for _ in range(5):
            writer.submit(finished_call())
        wait_for(lambda: writer.spooled == 5)
    finally:
        writer.close()
    assert len(attempts) == 1 and len(spool) == 5
