"""What the JSON-text carriers' stand-ins share: framing checks and the audio codec.

:class:`WireSim` is a :class:`~gateway.sim.media.StreamSimBase` whose messages are JSON text
frames and whose audio is G.711 or L16 at 8 or 16 kHz on the wire (the stand-in converts to
8 kHz mu-law for its playout buffer, and the caller's mu-law to the wire). The stand-in is
the carrier, so it describes and converts audio itself (``audioop``) rather than borrow the
gateway's codecs: the simulator meets the gateway on the wire only.
"""

from __future__ import annotations

import abc
import binascii
import warnings
from dataclasses import dataclass
from typing import Any

import orjson
import pybase64

from gateway.sim.media import DTMF_DIGITS, Inbound, LogEntry, LogKind, StreamSimBase

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["ALAW", "L16", "ULAW", "Wire", "WireSim"]

ULAW, ALAW, L16 = "ulaw", "alaw", "l16"


@dataclass(frozen=True, slots=True)
class Wire:
    """A carrier's audio on the wire: ``encoding`` (:data:`ULAW`, :data:`ALAW`, :data:`L16`),
    rate, and for L16 the byte order."""

    encoding: str
    rate: int = 8000
    big_endian: bool = False

    @property
    def bytes_per_second(self) -> int:
        return self.rate * (2 if self.encoding == L16 else 1)


class WireSim(StreamSimBase):
    """A JSON-text carrier's end of a stream; subclasses write the messages."""

    def __init__(self, wire: Wire, *, keep_media_log: bool = True) -> None:
        super().__init__(keep_media_log=keep_media_log)
        self.wire = wire
        self._up: Any = None  # ratecv states, 8 -> 16 kHz and back
        self._down: Any = None

    # -- audio --------------------------------------------------------------------------------

    def _to_wire(self, ulaw: bytes) -> bytes:
        wire = self.wire
        if wire.encoding == ULAW:
            return ulaw
        if wire.encoding == ALAW:
            return audioop.lin2alaw(audioop.ulaw2lin(ulaw, 2), 2)
        pcm = audioop.ulaw2lin(ulaw, 2)
        if wire.rate != 8000:
            pcm, self._up = audioop.ratecv(pcm, 2, 1, 8000, wire.rate, self._up)
        return audioop.byteswap(pcm, 2) if wire.big_endian else pcm

    def _to_core(self, payload: bytes) -> bytes:
        wire = self.wire
        if wire.encoding == ULAW:
            return payload
        if wire.encoding == ALAW:
            return audioop.lin2ulaw(audioop.alaw2lin(payload, 2), 2)
        pcm = audioop.byteswap(payload, 2) if wire.big_endian else payload
        if wire.rate != 8000:
            pcm, self._down = audioop.ratecv(pcm, 2, 1, wire.rate, 8000, self._down)
        return audioop.lin2ulaw(pcm, 2)

    # -- lifecycle ----------------------------------------------------------------------------

    def _begin(self, now: float) -> None:
        if self.started:
            raise RuntimeError("open_messages() called twice: one start per stream")
        self.started = True

    def _end(self, now: float) -> None:
        self._require_open("stop")
        self._play_until(now)
        self.stopped = True

    def _require_open(self, what: str) -> None:
        if not self.started:
            raise RuntimeError(f"{what}() before the stream started")
        if self.stopped:
            raise RuntimeError(f"{what}() after stop(): the stream is over")

    def _check_digit(self, digit: str, now: float) -> None:
        self._require_open("dtmf")
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self.log.append(LogEntry(now, LogKind.DTMF, digit))

    # -- gateway -> carrier -------------------------------------------------------------------

    def receive(self, message: str | bytes, now: float, *, binary: bool = False) -> Inbound:
        """Take one gateway message; violations are recorded, never raised."""
        self.received += 1
        if self.stopped:
            return Inbound("ignored")
        self._play_until(now)
        if binary:
            return self._violation(now, "?", "binary frame (this carrier expects JSON text)")
        try:
            msg = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            return self._violation(now, "?", f"not JSON: {exc}")
        if not isinstance(msg, dict):
            return self._violation(now, "?", f"not a JSON object: {type(msg).__name__}")
        if not self.started:
            return self._violation(now, str(msg.get("event")), "sent before start")
        return self._on_message(msg, now)

    @abc.abstractmethod
    def _on_message(self, msg: dict[str, Any], now: float) -> Inbound:
        """One parsed gateway message, by the carrier's rules."""

    def _decode(self, payload: object, now: float, event: str = "media") -> bytes | Inbound:
        """A base64 payload's bytes, or the violation it is."""
        if not isinstance(payload, str):
            return self._violation(now, event, "missing payload string")
        try:
            audio = pybase64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            return self._violation(now, event, f"payload is not valid base64 ({exc})")
        if audio[:4] == b"RIFF":
            return self._violation(now, event, "payload has a WAV header: played as noise")
        if self.wire.encoding == L16 and len(audio) % 2:
            return self._violation(now, event, "L16 payload of an odd number of bytes")
        return audio
