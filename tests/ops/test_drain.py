"""SIGTERM drains: readiness fails, new calls are refused, calls in flight run to their end."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
import xml.etree.ElementTree as ET
from asyncio.subprocess import Process
from pathlib import Path

import httpx
import numpy as np

from gateway.sim.caller import place_call
from gateway.sim.script import CallerScript

#: Every call to the echo engine: these tests are about the process's lifetime, not speech.
ECHO_PLAN = """version: 1
default_route: everyone
routes:
  everyone:
    otherwise: {action: bot, engine: echo}
"""


def echo_plan(folder: Path) -> Path:
    path = folder / "echo-plan.yaml"
    path.write_text(ECHO_PLAN)
    return path


LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def speech_like(ms: int) -> bytes:
    t = np.arange(ms * 8) / 8000
    return (np.sin(2 * np.pi * 300 * t) * 9000).astype("<i2").tobytes()


async def wait_until(predicate, limit: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def start_gateway(tmp_path: Path, *options: str) -> tuple[Process, str, Path]:
    """``overtalk serve`` (echo engine) in its own process on a port the kernel chooses
    (``--port 0``, read back from its log); returns once it answers."""
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would stall the gateway
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "serve", "--port", "0",
            "--records-dir", str(tmp_path), "--dialplan", str(echo_plan(tmp_path)),
            "--engine", "echo", *options, stderr=out,
        )  # fmt: skip
    url = ""

    async def up() -> bool:
        nonlocal url
        if proc.returncode is not None:
            raise AssertionError(f"the gateway exited at start:\n{log.read_text()}")
        if not url:
            found = LISTENING.search(log.read_text())
            url = found.group(1) if found else ""
            return False
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(url + "/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(up)
    return proc, url, log


async def test_gateway_sigterm_drains_without_cutting_calls(tmp_path):
    proc, url, log = await start_gateway(tmp_path, "--log-format", "json")
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            script = (
                CallerScript()
                .say(speech_like(600), "first")
                .wait_for_bot(300, timeout_s=5)
                .say(speech_like(600), "second")
                .wait_for_bot(300, timeout_s=5)
            )
            calls = [
                asyncio.create_task(place_call(url, script, auth_token=None)) for _ in range(3)
            ]

            async def three_active() -> bool:
                return (await http.get("/healthz")).json()["active_calls"] == 3

            await wait_until(three_active)
            proc.send_signal(signal.SIGTERM)

            async def not_ready() -> bool:
                return (await http.get("/readyz")).status_code == 503

            await wait_until(not_ready)
            refused = await http.post(
                "/twilio/voice", data={"CallSid": "CA" + "1" * 32, "To": "+1"}
            )
            reject = ET.fromstring(refused.text).find("Reject")
            assert reject is not None and reject.get("reason") == "busy"
            reports = await asyncio.gather(*calls)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    for report in reports:
        # Each call ran its whole script: the caller hung up, the gateway cut nothing.
        assert report.ended_by == "caller", report.format()
        assert len(report.response_latencies_ms) == 2
        record = json.loads((tmp_path / f"{report.call_sid}.json").read_text())
        assert record["outcome"] == "completed"
    lines = log.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert entries and len(entries) == len([ln for ln in lines if ln.strip()])  # all JSON
    call_lines = [e for e in entries if e["call_id"] == reports[0].call_sid]
    assert any("streaming to engine" in e["msg"] for e in call_lines)
    assert any("draining" in e["msg"] for e in entries)


async def test_gateway_drain_limit_hangs_up_calls_left(tmp_path):
    proc, url, _ = await start_gateway(tmp_path, "--drain-limit", "0.5")
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            long_call = CallerScript().pause(30_000)  # would last 30 s
            task = asyncio.create_task(place_call(url, long_call, auth_token=None))

            async def one_active() -> bool:
                return (await http.get("/healthz")).json()["active_calls"] == 1

            await wait_until(one_active)
            proc.send_signal(signal.SIGTERM)
            report = await asyncio.wait_for(task, 20)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert report.ended_by == "gateway" and report.duration_s < 15
    record = json.loads((tmp_path / f"{report.call_sid}.json").read_text())
    assert record["outcome"] == "drained"


async def test_gateway_on_a_taken_port_says_so_and_exits(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
            "--records-dir", str(tmp_path), "--engine", "echo",
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    said = err.decode()
    assert f"overtalk: cannot listen on 127.0.0.1:{port}" in said
    assert "Traceback" not in said


async def test_gateway_whose_sip_port_is_taken_says_so_and_exits(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "serve", "--port", "0", "--engine", "echo",
            "--records-dir", str(tmp_path), "--sip", "--sip-host", "127.0.0.1",
            "--sip-port", str(port), stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    said = err.decode()
    assert f"SIP cannot listen on 127.0.0.1:{port}" in said
    assert said.rstrip().endswith("overtalk: the gateway could not start; the log above says why")
