"""The scripted conversation every carrier's end-to-end test holds, interruption included.

One script, one check, whatever the carrier: the caller asks a question (a second of
speech-like tone), the echo engine answers with it; 200 ms into the answer the caller talks
over the bot, which must stop (the carrier's clear reaches the stand-in and the engine is told
what was heard); the bot answers the interruption and the caller hangs up. The checks read the
simulator's report (what the caller heard, on the wire) and the gateway's call record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from engine.base import Hangup, SendDtmf, Transfer
from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.config import Settings
from gateway.ops.server import serve
from gateway.sim.report import CallReport
from gateway.sim.script import CallerScript

__all__ = [
    "BOT_DIGITS",
    "TRANSFER_TO",
    "EchoRecorder",
    "check_conversation",
    "conversation",
    "gateway",
    "CallsEnded",
    "speech_like",
]


TRANSFER_TO = "+15005550009"
#: What the bot keys when the caller presses ``5``: keys and a half-second pause.
BOT_DIGITS = "1w2#"


def speech_like(ms: int, freq: float = 300.0) -> bytes:
    """A tone loud enough for the echo engine's energy detector, as 8 kHz int16."""
    t = np.arange(ms * 8) / 8000
    return (np.sin(2 * np.pi * freq * t) * 9000).astype("<i2").tobytes()


def conversation() -> CallerScript:
    """Question, answer, interruption 200 ms into the answer, answer to it, goodbye."""
    return (
        CallerScript()
        .pause(100)
        .say(speech_like(1000), "question")
        .barge_in(after_ms=200, pcm=speech_like(300, 660), label="interruption")
        .wait_for_bot(silence_ms=300, timeout_s=5)
        .hang_up()
    )


class EchoRecorder(EchoEngine):
    """The echo engine, keeping its sessions so a test can read what it was told. A caller
    pressing ``#`` makes the bot hang up, ``0`` transfer to :data:`TRANSFER_TO` (call control
    over the carrier's REST API), ``5`` key :data:`BOT_DIGITS` (DTMF out)."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[Any] = []

    async def open(self, context):  # type: ignore[no-untyped-def]
        session = await super().open(context)
        self.sessions.append(session)
        plain = session.dtmf

        def dtmf(digit: str) -> None:
            plain(digit)
            if digit == "#":
                session.channel.put(Hangup("caller pressed #"))
            elif digit == "0":
                session.channel.put(Transfer(TRANSFER_TO))
            elif digit == "5":
                session.channel.put(SendDtmf(BOT_DIGITS))

        session.dtmf = dtmf
        return session


@contextlib.asynccontextmanager
async def gateway(settings: Settings, engine: EchoEngine) -> AsyncIterator[tuple[str, CallsEnded]]:
    """A real gateway (``create_app``) on 127.0.0.1 on a free port; yields its URL and the
    records of the calls it ends."""
    app = create_app(settings, engine)
    ended = CallsEnded(app)
    async with serve(app) as url:
        yield url, ended


class CallsEnded:
    """The call records of a gateway, as it files them (its registry's ``on_end``)."""

    def __init__(self, app: Any) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Event()
        app.state.calls.on_end.append(self._ended)

    def _ended(self, ledger: Any) -> None:
        self.records[ledger.call_id] = ledger.to_dict()
        self._changed.set()

    async def record(self, call_id: str) -> dict[str, Any]:
        """``call_id``'s record, once the call has closed (just after the caller hung up)."""
        async with asyncio.timeout(5):
            while call_id not in self.records:
                self._changed.clear()
                await self._changed.wait()
        return self.records[call_id]


def check_conversation(report: CallReport, record: dict[str, Any], engine: EchoRecorder) -> None:
    """What every carrier must show for :func:`conversation`."""
    assert report.ok and report.streamed and report.ended_by == "caller", report.format()
    assert report.violations == [], report.violations
    question, interruption = report.turns[0], report.turns[1]
    # The bot answered the question, on the wire.
    assert question.response_ms is not None, report.format()
    # The interruption cut the bot: the clear reached the carrier's stand-in...
    assert report.clears_received >= 1, report.format()
    assert interruption.barge_in_ms is not None, report.format()
    assert report.bot_audio_cleared_s > 0, report.format()
    # Less was heard than the two answers in full (1 s + 0.3 s): the first was cut.
    assert report.bot_audio_played_s < 1.2, report.format()
    # ...and was answered in turn.
    assert interruption.response_ms is not None, report.format()
    # The gateway's record: one clear, the heard position reported to the engine.
    assert record["clears"] >= 1 and record["heard_at_clear"], record
    assert record["violations"] == {}, record["violations"]
    (session,) = engine.sessions
    assert session.heard and 0 < session.heard[0] < 1000, session.heard
