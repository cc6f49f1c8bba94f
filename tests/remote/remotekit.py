"""Helpers for the remote engines' tests and benchmarks: a real gateway, caller voices, and
reading back what the simulated caller heard.

A call runs the full path: ``create_app(Settings(...), engine=...)`` under
``gateway.ops.server.serve`` (a real uvicorn on a free loopback port) and ``place_call`` (the
simulated Twilio, over the wire).
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from engine.base import Engine
from gateway.app import create_app
from gateway.config import Settings
from gateway.ops.server import serve
from gateway.sim.media import LogKind
from gateway.sim.report import CallReport

__all__ = [
    "clear_times",
    "gateway",
    "level_samples",
    "plan_file",
    "settle",
    "tone8k",
    "voice_track",
]

SILENCE = b"\xff" * 160


def tone8k(ms: int, freq: float = 400.0, level: float = 0.3) -> bytes:
    """Caller 'speech': a sine at 8 kHz as int16 bytes, well above any speech threshold."""
    t = np.arange(ms * 8) / 8000
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype("<i2").tobytes()


#: The name the engine under test serves under. ``create_app(settings, engine=...)`` registers
#: the given engine as the settings' default engine, and dial plans may only name engines the
#: registry knows, so plans name the default's name and reach the engine under test.
ENGINE_SLOT = "echo"


def plan_file(tmp_path: Path, options: dict[str, object], greeting: str = "") -> Path:
    """A dial plan answering every number with the engine under test and these bot options."""
    lines = "\n".join(
        f"        {k}: {v!r}" if isinstance(v, str) else f"        {k}: {v}"
        for k, v in options.items()
    )
    greet = f"      greeting: {greeting!r}\n" if greeting else ""
    text = (
        textwrap.dedent(
            """\
        version: 1
        timezone: UTC
        default_route: everyone
        routes:
          everyone:
            otherwise:
              action: bot
              engine: {slot}
        """
        ).format(slot=ENGINE_SLOT)
        + greet
        + ("      options:\n" + lines + "\n" if options else "")
    )
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


@contextlib.asynccontextmanager
async def gateway(engine: Engine, tmp_path: Path, plan: Path | None = None) -> AsyncIterator[str]:
    """A real gateway serving ``engine`` (as its default engine); yields its base URL."""
    settings = Settings(
        engine=ENGINE_SLOT, dialplan=str(plan) if plan else "", records_dir=str(tmp_path)
    )
    app = create_app(settings, engine=engine)
    async with serve(app) as url:
        yield url


def voice_track(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The call recording's two tracks (caller as sent, bot as heard), int16 at 8 kHz."""
    audio, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    assert rate == 8000
    return audio[:, 0], audio[:, 1]


def level_samples(track: np.ndarray, level: int) -> np.ndarray:
    """Indices of the samples whose magnitude is exactly ``level`` (one reply's square wave)."""
    return np.flatnonzero(np.abs(track.astype(np.int32)) == level)


def clear_times(report: CallReport) -> list[float]:
    """When each ``clear`` reached the simulated Twilio, in seconds from the stream's start."""
    return [e.time for e in report.events if e.kind is LogKind.CLEAR]


async def settle(standin: Any, connections: int = 1) -> None:
    """Wait (5 s at most) until the stand-in saw the engine close every connection it opened:
    the gateway has torn the call down and everything the engine sent has arrived."""
    for _ in range(250):
        if len(standin.connections) >= connections and all(c.closed for c in standin.connections):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the engine did not close its connections")
