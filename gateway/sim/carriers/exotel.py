"""Exotel's side of one Voicebot applet stream, sans I/O: the stand-in.

It writes what the applet sends a bot's websocket and judges what the bot sends back, as
Exotel documents them. Every rule cites its source:

- [PROTO] "WebSocket protocol", https://developer.exotel.com/docs/agentstream/websocket-protocol
- [APPLET] "Working with the Stream and Voicebot Applet",
  https://developer.exotel.com/docs/agentstream/stream-voicebot-applet

Garbage from the gateway never raises: each bad message is recorded in :attr:`violations` with
its reason and otherwise ignored. Time is passed in to every method that depends on it.
"""

from __future__ import annotations

import binascii
import secrets
from dataclasses import dataclass, field

import orjson
import pybase64

from gateway.sim.carriers.playback import DueMark, PcmPlayback, PlayedPcm

__all__ = ["ExotelMediaSim", "Inbound", "new_sid"]

#: [APPLET] "raw/slin (16-bit, 8kHz, mono PCM little-endian) encoded in base64".
SAMPLE_RATE = 8000
#: [APPLET] a chunk "must be a multiple of 320 bytes" and at most 100 KB.
CHUNK_UNIT = 320
MAX_CHUNK = 100_000
#: [APPLET] a chunk of less than 100 ms "risks audio distortion": counted, not refused.
MIN_CHUNK = SAMPLE_RATE * 2 // 10
DTMF_DIGITS = frozenset("0123456789*#")


def new_sid() -> str:
    """An opaque Exotel-like SID: 32 lowercase hex digits."""
    return secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class Inbound:
    """What one gateway message was: ``media``, ``mark``, ``clear`` or ``invalid``."""

    event: str
    reason: str = ""


@dataclass
class ExotelMediaSim:
    """The Exotel end of one Voicebot stream."""

    call_sid: str
    caller: str
    called: str
    custom_parameters: dict[str, str] = field(default_factory=dict)
    account_sid: str = "overtalksim"
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stream_sid = new_sid()
        self.playback = PcmPlayback(SAMPLE_RATE)
        self._seq = 0
        self._chunk = 0
        self._t_start = 0.0
        self.started = False
        self.stopped = False
        self.received = 0
        self.chunks_received = 0
        self.short_chunks = 0
        self.marks_received = 0
        self.marks_echoed = 0
        self.clears_received = 0

    # ------------------------------------------------------------------ Exotel -> gateway

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)  # [PROTO] numbers travel as strings

    def connected(self) -> str:
        """[PROTO] ``{"event": "connected"}``."""
        return '{"event":"connected"}'

    def start(self, now: float) -> str:
        """[PROTO] ``start``; ``now`` is time zero of the media timestamps."""
        self.started = True
        self._t_start = now
        return orjson.dumps(
            {
                "event": "start",
                "sequence_number": self._next_seq(),
                "stream_sid": self.stream_sid,
                "start": {
                    "stream_sid": self.stream_sid,
                    "call_sid": self.call_sid,
                    "account_sid": self.account_sid,
                    "from": self.caller,
                    "to": self.called,
                    "custom_parameters": self.custom_parameters,
                    "media_format": {
                        "encoding": "audio/x-raw",
                        "sample_rate": str(SAMPLE_RATE),
                        "bit_rate": "16",
                    },
                },
            }
        ).decode()

    def media(self, pcm: bytes, now: float) -> str:
        """[PROTO] one ``media`` message of caller audio (base64 16-bit PCM)."""
        self._chunk += 1
        return orjson.dumps(
            {
                "event": "media",
                "sequence_number": self._next_seq(),
                "stream_sid": self.stream_sid,
                "media": {
                    "chunk": str(self._chunk),
                    "timestamp": str(round((now - self._t_start) * 1000)),
                    "payload": pybase64.b64encode_as_string(pcm),
                },
            }
        ).decode()

    def dtmf(self, digit: str) -> str:
        """[PROTO] a key press."""
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        return orjson.dumps(
            {
                "event": "dtmf",
                "sequence_number": self._next_seq(),
                "stream_sid": self.stream_sid,
                "dtmf": {"digit": digit, "duration": "100"},
            }
        ).decode()

    def stop(self, now: float, reason: str = "callended") -> str:
        """[PROTO] ``stop``; the gateway's messages after it are ignored."""
        self.playback.play_until(now)
        self.stopped = True
        return orjson.dumps(
            {
                "event": "stop",
                "sequence_number": self._next_seq(),
                "stream_sid": self.stream_sid,
                "stop": {
                    "call_sid": self.call_sid,
                    "account_sid": self.account_sid,
                    "reason": reason,
                },
            }
        ).decode()

    # ------------------------------------------------------------------ gateway -> Exotel

    def receive(self, message: str | bytes, now: float) -> Inbound:
        """Take one message from the gateway (bytes: a binary frame)."""
        self.received += 1
        if self.stopped:
            return Inbound("ignored")
        if isinstance(message, bytes):
            return self._violation("binary frame ([PROTO] messages are JSON text)")
        try:
            msg = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            return self._violation(f"not JSON: {exc}")
        if not isinstance(msg, dict):
            return self._violation("not a JSON object")
        event = msg.get("event")
        if event not in ("media", "mark", "clear"):
            return self._violation(f"unknown event {event!r} ([PROTO] media, mark, clear)")
        if not self.started:
            return self._violation(f"{event} before start")
        if msg.get("stream_sid") != self.stream_sid:
            return self._violation(f"{event} without this stream_sid ([PROTO])")
        if event == "media":
            return self._on_media(msg, now)
        if event == "mark":
            mark = msg.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                return self._violation("mark without mark.name")
            self.marks_received += 1
            self.playback.mark(name, now)
            return Inbound("mark")
        # [PROTO] clear drops the audio not yet played. Exotel documents no echo of the marks
        # queued behind it, so the stand-in sends none: a gateway must not wait for them.
        self.clears_received += 1
        self.playback.clear(now)
        return Inbound("clear")

    def _on_media(self, msg: dict[str, object], now: float) -> Inbound:
        media = msg.get("media")
        payload = media.get("payload") if isinstance(media, dict) else None
        if not isinstance(payload, str):
            return self._violation("media without media.payload")
        try:
            pcm = pybase64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return self._violation("media payload is not base64")
        if not pcm or len(pcm) % CHUNK_UNIT or len(pcm) > MAX_CHUNK:
            # [APPLET] "non-compliant sizes create gaps in audio playback": not played.
            return self._violation(f"chunk of {len(pcm)} bytes: not a multiple of 320 up to 100 KB")
        if len(pcm) < MIN_CHUNK:
            self.short_chunks += 1
        self.chunks_received += 1
        self.playback.audio(pcm, now)
        return Inbound("media")

    def advance(self, now: float) -> tuple[list[PlayedPcm], list[str]]:
        """Play up to ``now``: what played, and the ``mark`` echoes now due."""
        if self.stopped:
            return [], []
        played, due = self.playback.take(now)
        return played, [self._echo(mark) for mark in due]

    def _echo(self, mark: DueMark) -> str:
        self.marks_echoed += 1
        return orjson.dumps(
            {
                "event": "mark",
                "sequence_number": self._next_seq(),
                "stream_sid": self.stream_sid,
                "mark": {"name": mark.name},
            }
        ).decode()

    def _violation(self, reason: str) -> Inbound:
        self.violations.append(f"#{self.received}: {reason}")
        return Inbound("invalid", reason)
