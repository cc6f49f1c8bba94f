"""Two gateway processes on one PostgreSQL: a call taken by each is listed, shown and exported
to the campaign that placed it; an opt-out said on one replica's call is honoured by all."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import signal
import sys
from asyncio.subprocess import Process
from pathlib import Path

import httpx
import numpy as np
from callkit import MONDAY, NoCarrier, StillClock, campaign_over_calls, dial_as, finished_call

from gateway.callstore.spool import Spool
from gateway.callstore.store import CallFilter, open_call_store
from gateway.callstore.writer import RecordWriter
from gateway.campaigns.dialler import Dialler
from gateway.campaigns.export import export_csv
from gateway.campaigns.store import open_store
from gateway.cli import main
from gateway.sim.caller import place_call
from gateway.sim.script import CallerScript

ECHO_PLAN = "version: 1\ndefault_route: everyone\nroutes:\n  everyone:\n" \
    "    otherwise: {action: bot, engine: echo}\n"  # fmt: skip
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def speech_like(ms: int) -> bytes:
    t = np.arange(ms * 8) / 8000
    return (np.sin(2 * np.pi * 300 * t) * 9000).astype("<i2").tobytes()


def prepare(folder: Path) -> Path:
    """The gateway's folder with its dial plan; its log file."""
    folder.mkdir()
    (folder / "plan.yaml").write_text(ECHO_PLAN)
    return folder / "gateway.log"


async def start_gateway(folder: Path, store: str) -> tuple[Process, str]:
    """``overtalk serve`` (echo engine) on a kernel-chosen port, writing to ``store``."""
    log = prepare(folder)
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "serve", "--port", "0", "--engine", "echo",
            "--records-dir", str(folder / "records"), "--dialplan", str(folder / "plan.yaml"),
            "--store", store, stderr=out,
        )  # fmt: skip
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        assert proc.returncode is None, log.read_text()
        assert asyncio.get_running_loop().time() < deadline, log.read_text()
        found = LISTENING.search(log.read_text())
        if found:
            try:
                async with httpx.AsyncClient() as http:
                    if (await http.get(found.group(1) + "/healthz")).status_code == 200:
                        return proc, found.group(1)
            except httpx.TransportError:
                pass
        await asyncio.sleep(0.1)


async def stop(proc: Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_two_gateways_one_postgres_calls_listed_shown_and_exported(
    pg_dsn: str, tmp_path: Path, capsys
) -> None:
    gateways = [await start_gateway(tmp_path / name, pg_dsn) for name in ("gw-a", "gw-b")]
    try:
        script = CallerScript().say(speech_like(600), "hello").wait_for_bot(300, timeout_s=10)
        reports = await asyncio.gather(*(
            place_call(url, script, auth_token=None, caller=caller)
            for (_, url), caller in zip(gateways, ("+13125550001", "+13125550002"), strict=True)
        ))  # fmt: skip
    finally:
        for proc, _ in gateways:
            await stop(proc)  # at SIGTERM each writes what it still holds
    sids = [r.call_sid for r in reports]
    assert all(r.ended_by == "caller" for r in reports), [r.format() for r in reports]

    calls = open_call_store(pg_dsn)
    try:
        stored = {c.call_id: c for c in calls.calls(CallFilter())}
    finally:
        calls.close()
    assert set(stored) == set(sids)
    assert len({c.gateway for c in stored.values()}) == 2  # one written by each process
    assert [stored[s].caller for s in sids] == ["+13125550001", "+13125550002"]

    # The dialler that placed them imports what each replica recorded.
    campaigns = open_store(pg_dsn)
    try:
        campaign_over_calls(campaigns, tmp_path / "spring", "spring",
                            ["+13125550001", "+13125550002"])  # fmt: skip
        now = dial_as(campaigns, "spring", dict(zip(["+13125550001", "+13125550002"], sids,
                                                    strict=True)))  # fmt: skip
        dialler = Dialler(campaigns, "spring", NoCarrier(), public_url="https://gw.example.com",
                          clock=StillClock(now), call_store=pg_dsn)  # fmt: skip
        await dialler.tick()
        assert campaigns.untranscribed("spring") == []
        table = list(csv.DictReader(io.StringIO(export_csv(campaigns, "spring"))))
    finally:
        campaigns.close()
    assert {r["call_sid"] for r in table} == set(sids)
    assert all("caller: <" in r["transcript"] for r in table)  # the echo engine's transcript

    assert main(["calls", "list", "--store", pg_dsn, "--campaign", "spring"]) == 0
    listing = capsys.readouterr().out
    assert all(sid in listing for sid in sids) and "2 calls" in listing
    for sid in sids:
        out = tmp_path / f"{sid}.html"
        assert main(["calls", "show", sid, "--store", pg_dsn, "--out", str(out)]) == 0
        assert sid in out.read_text() and "<svg" in out.read_text()


async def test_opt_out_on_one_replicas_call_is_honoured_by_every_campaign(
    pg_dsn: str, tmp_path: Path
) -> None:
    """Replica A records "stop calling me", replica B a plain call; the dialler imports both
    from the store, and a later campaign never dials the person who opted out."""
    phones = ["+13125550001", "+13125550002"]
    ledgers = [
        finished_call(caller=phones[0], results={"outcome": "opted-out", "do_not_call": "yes"}),
        finished_call(caller=phones[1], results={"outcome": "confirmed"}),
    ]
    for i, (name, ledger) in enumerate(zip(("gw-a", "gw-b"), ledgers, strict=True)):
        writer = RecordWriter(lambda: open_call_store(pg_dsn), Spool(tmp_path / f"spool{i}"),
                              gateway=name)  # fmt: skip
        writer.start()
        writer.submit(ledger)
        writer.close()
    campaigns = open_store(pg_dsn)
    try:
        campaign_over_calls(campaigns, tmp_path / "spring", "spring", phones)
        now = dial_as(campaigns, "spring", {p: ledger.call_id for p, ledger in
                                            zip(phones, ledgers, strict=True)})  # fmt: skip
        dialler = Dialler(campaigns, "spring", NoCarrier(), public_url="https://gw.example.com",
                          clock=StillClock(now), call_store=pg_dsn)  # fmt: skip
        await dialler.tick()
        rows = {r["phone"]: r for r in csv.DictReader(io.StringIO(export_csv(campaigns, "spring")))}
        assert rows[phones[0]]["result.do_not_call"] == "yes"
        assert rows[phones[1]]["result.outcome"] == "confirmed"
        campaign_over_calls(campaigns, tmp_path / "autumn", "autumn", phones)
        claimed = campaigns.claim("autumn", "test", MONDAY, 60.0)
        assert claimed.attempt.phone == phones[1]  # the opted-out number is never claimed
        outcomes = {c["phone"]: c["outcome"] for c in campaigns.contacts("autumn")}
        assert outcomes[phones[0]] == "dnc"
    finally:
        campaigns.close()
