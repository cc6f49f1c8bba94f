"""What every vendor stand-in shares: a websocket server on loopback, a VAD, test voices.

The stand-ins answer as the vendors' servers do, message for message, but their "model" is a
script: it hears speech with an energy VAD and answers with square waves whose amplitude (or
frequency) names the reply, so a test can tell from the audio the caller heard which reply each
sample came from and how much of it was heard.
"""

from __future__ import annotations

import contextlib
import secrets
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = [
    "EnergyVad",
    "audioop",
    "mulaw_level",
    "new_id",
    "run_server",
    "square_mulaw",
    "square_pcm",
    "tone_pcm",
]

#: Linear amplitudes of successive replies. Each maps to its own mu-law code, so a reply's
#: samples keep a level of their own after the telephone's encoding (see :func:`mulaw_level`).
LEVELS = (2500, 3500, 4500, 5500, 6500, 7500, 8500, 9500, 10500, 11500, 12500, 13500)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def mulaw_level(amplitude: int) -> int:
    """The magnitude a square wave of ``amplitude`` has after mu-law encoding and decoding."""
    sample = amplitude.to_bytes(2, "little", signed=True)
    decoded = audioop.ulaw2lin(audioop.lin2ulaw(sample, 2), 2)
    return abs(int.from_bytes(decoded, "little", signed=True))


def square_pcm(ms: float, amplitude: int, rate: int, period_ms: float = 4.0) -> bytes:
    """A square wave as int16 LE: loud enough to count as speech, exact to identify."""
    n = int(round(ms * rate / 1000))
    half = max(1, int(round(period_ms * rate / 2000)))
    signs = np.where((np.arange(n) // half) % 2 == 0, 1, -1)
    return (signs * amplitude).astype("<i2").tobytes()


def square_mulaw(ms: float, amplitude: int) -> bytes:
    return audioop.lin2ulaw(square_pcm(ms, amplitude, 8000), 2)


def tone_pcm(ms: float, freq: float, rate: int, level: float = 0.3, phase: int = 0) -> bytes:
    """A sine as int16 LE, starting at sample ``phase`` (so chunks join without clicks)."""
    t = (np.arange(int(round(ms * rate / 1000))) + phase) / rate
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype("<i2").tobytes()


class EnergyVad:
    """Speech onset/offset on the input timeline from frame RMS: the stand-ins' turn-taking.

    ``feed`` takes one chunk's RMS and duration and returns ``"start"``, ``"stop"`` or None.
    Onset after ``start_ms`` above ``threshold``; offset after ``stop_ms`` below it.
    """

    def __init__(self, threshold: float = 600.0, start_ms: float = 60.0, stop_ms: float = 500.0):
        self.threshold = threshold
        self.start_ms = start_ms
        self.stop_ms = stop_ms
        self.speaking = False
        self.position_ms = 0.0
        self.onset_ms = 0.0
        self._run_ms = 0.0  # how long the level has been on the other side

    def feed(self, rms: float, ms: float) -> str | None:
        self.position_ms += ms
        loud = rms > self.threshold
        if loud != self.speaking:
            self._run_ms += ms
        else:
            self._run_ms = 0.0
        if not self.speaking and self._run_ms >= self.start_ms:
            self.speaking, self._run_ms = True, 0.0
            self.onset_ms = self.position_ms - self.start_ms
            return "start"
        if self.speaking and self._run_ms >= self.stop_ms:
            self.speaking, self._run_ms = False, 0.0
            return "stop"
        return None


Handler = Callable[[ServerConnection], Awaitable[None]]


@contextlib.asynccontextmanager
async def run_server(handler: Handler, **options: Any) -> AsyncIterator[str]:
    """Serve ``handler`` on 127.0.0.1 and a free port; yields ``ws://127.0.0.1:PORT``."""
    async with serve(
        handler, "127.0.0.1", 0, compression=None, max_size=2**24, **options
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"
