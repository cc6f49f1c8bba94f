"""A real SIP gateway on 127.0.0.1 (free ports), engines the tests can look into, and runners
for the real SIP peers from Debian's packages (``sip-tester``'s sipp, ``baresip``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from engine.base import CallContext, EngineSession
from engine.echo import EchoEngine, EchoSession
from gateway.call.ledger import CallLedger
from gateway.call.registry import CallRegistry
from gateway.carriers.sip import SipGateway, SipSettings
from gateway.engines import EngineSet

SCENARIOS = Path(__file__).parent / "scenarios"
DEADLINE = 20.0


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(
            f"{binary} is not installed (Debian: apt-get install -y sip-tester baresip); "
            "the real-peer SIP tests need it"
        )
    return path


class RecordingEcho(EchoEngine):
    """The echo engine, keeping its sessions so tests can read what each call heard."""

    name = "echo"

    def __init__(self, *, open_delay: float = 0.0, **options: Any) -> None:
        super().__init__(**options)
        self.sessions: list[EchoSession] = []
        self.contexts: list[CallContext] = []
        self.open_delay = open_delay

    async def open(self, context: CallContext) -> EngineSession:
        if self.open_delay:
            await asyncio.sleep(self.open_delay)  # a slow engine: the call rings meanwhile
        session = await super().open(context)
        assert isinstance(session, EchoSession)
        self.sessions.append(session)
        self.contexts.append(context)
        return session


class RecordingRegistry(CallRegistry):
    """The call registry, keeping every ended call's ledger for the test to read."""

    def __init__(self) -> None:
        super().__init__()
        self.ledgers: list[CallLedger] = []
        self.on_end.append(self.ledgers.append)


async def until(predicate: Callable[[], bool], what: str, limit: float = DEADLINE) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def udp_bound(port: int, what: str, limit: float = DEADLINE) -> None:
    """Wait until another process (SIPp) has bound UDP ``port`` on 127.0.0.1."""
    deadline = time.monotonic() + limit
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return  # taken: the peer is listening
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} to listen on {port}")
        await asyncio.sleep(0.02)


StartGateway = Callable[..., Awaitable[tuple[SipGateway, RecordingEcho, RecordingRegistry]]]


@pytest.fixture
async def start_gateway() -> AsyncIterator[StartGateway]:
    """Start a SIP gateway with a :class:`RecordingEcho` engine; stopped after the test."""
    started: list[SipGateway] = []

    async def start(
        *, engine: RecordingEcho | None = None, plans: Any = None, **settings: Any
    ) -> tuple[SipGateway, RecordingEcho, RecordingRegistry]:
        engine = engine or RecordingEcho(rate=8000)
        engines = EngineSet("echo", prebuilt=engine)
        registry = RecordingRegistry()
        options: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "enabled": True}
        options.update(settings)
        gateway = SipGateway(SipSettings(**options), engines, registry, plans)
        await gateway.start()
        started.append(gateway)
        return gateway, engine, registry

    yield start
    for gateway in started:
        await gateway.stop()


async def run_tool(*args: str, cwd: Path, limit: float = 60.0) -> tuple[int, str]:
    """Run a peer program to completion; returns its exit status and output."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -9, out.decode(errors="replace")
    return proc.returncode or 0, out.decode(errors="replace")


def _error_logs(cwd: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in cwd.glob("*_errors.log"))


async def sipp(
    gateway: SipGateway, cwd: Path, *scenario: str, transport: str = "u1", limit: float = 60.0
) -> tuple[int, str]:
    """Run one SIPp call against ``gateway``; ``scenario`` is ``-sf file`` or ``-sn name``."""
    need("sipp")
    rc, out = await run_tool(
        "sipp", *scenario, f"127.0.0.1:{gateway.port}", "-i", "127.0.0.1", "-p", "0",
        "-t", transport, "-m", "1", "-nostdin", "-trace_err", "-trace_msg",
        "-timeout", f"{int(limit) - 5}s", "-timeout_error", "-max_recv_loops", "1000",
        cwd=cwd, limit=limit,
    )  # fmt: skip
    if rc != 0:
        out += "\n--- sipp errors ---\n" + await asyncio.to_thread(_error_logs, cwd)
    return rc, out
