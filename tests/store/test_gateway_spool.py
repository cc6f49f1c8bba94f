"""A gateway process whose PostgreSQL is away: the call's record goes to the spool, and when
the database appears the gateway replays it, once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import psycopg
from test_two_gateways import speech_like, start_gateway, stop

from gateway.callstore.store import CallFilter, open_call_store
from gateway.sim.caller import place_call
from gateway.sim.script import CallerScript


def stored_calls(dsn: str) -> list[str]:
    store = open_call_store(dsn)
    try:
        return [c.call_id for c in store.calls(CallFilter())]
    finally:
        store.close()


async def test_gateway_spools_while_postgres_is_away_and_replays_once(
    postgres: str, tmp_path: Path
) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = postgres.replace("/postgres?", f"/{name}?")  # no such database yet
    proc, url = await start_gateway(tmp_path / "gw", dsn)
    spool = tmp_path / "gw" / "records" / "spool"
    try:
        script = CallerScript().say(speech_like(400), "hi").wait_for_bot(200, timeout_s=10)
        report = await place_call(url, script, auth_token=None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not (spool / f"{report.call_sid}.json").exists():
            assert loop.time() < deadline, "the record was not spooled"
            await asyncio.sleep(0.05)
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        deadline = loop.time() + 60  # the writer retries every 5 s
        while (spool / f"{report.call_sid}.json").exists():
            assert loop.time() < deadline, "the spool was not replayed"
            await asyncio.sleep(0.1)
    finally:
        await stop(proc)
    assert stored_calls(dsn) == [report.call_sid]
    assert list(spool.glob("*.json")) == []
