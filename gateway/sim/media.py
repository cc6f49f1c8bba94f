"""Twilio's side of one bidirectional Media Stream, sans I/O.

This module plays the carrier: it writes the messages Twilio sends to a gateway's
``/twilio/media`` websocket and consumes the messages a gateway sends back, as the Media
Streams documentation describes them (REFERENCE.md 1.4, 1.5). It owns no socket and reads no
clock: every method that depends on time takes ``now`` (seconds on any monotonic clock the
caller picks), so tests drive it with invented times and the asyncio adapter
(:mod:`gateway.sim.caller`) drives it with ``time.monotonic()``.

Playout model. Twilio buffers the gateway's ``media`` in order and plays it at 8000 samples/s.
Playback starts when audio arrives into an empty buffer and pauses when the buffer runs dry.
A ``mark`` is queued behind the audio sent before it and echoed when playback reaches it, or at
once when nothing is buffered. ``clear`` drops the buffered audio and echoes every pending mark
at once, in order. The simulator assumes no network delay between a message's arrival and its
effect: what it plays is what the gateway paced.

Garbage from the gateway never raises: each bad message is recorded in :attr:`violations` with a
reason and otherwise ignored, the way Twilio ignores it (a real call keeps going). Misuse of this
class by its own driver (``media()`` before ``start()``) raises ``RuntimeError``.

Sequence numbers increase by one over every message Twilio sends (``start`` is 1). Mark echoes
are therefore returned as :class:`MarkEcho` records and serialised by :meth:`echo_message` only
when the driver is about to write them, so numbers stay in wire order even when two tasks write.
"""

from __future__ import annotations

import abc
import binascii
import secrets
import warnings
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
import pybase64

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = [
    "FRAME_BYTES",
    "SAMPLE_RATE",
    "Inbound",
    "LogEntry",
    "LogKind",
    "MarkEcho",
    "MediaStreamSim",
    "StreamSimBase",
    "PlayedAudio",
    "Playout",
    "new_sid",
    "ulaw_to_pcm",
]

#: Twilio's media rate: 8000 mu-law bytes (samples) per second.
SAMPLE_RATE = 8000
#: One 20 ms Twilio frame of mu-law.
FRAME_BYTES = 160
#: DTMF digits Twilio reports on a Media Stream.
DTMF_DIGITS = frozenset("0123456789*#ABCD")


def ulaw_to_pcm(ulaw: bytes) -> bytes:
    """G.711 mu-law -> 16-bit little-endian linear PCM."""
    return audioop.ulaw2lin(ulaw, 2)


def new_sid(prefix: str) -> str:
    """A Twilio-shaped id: two-letter prefix and 32 lowercase hex digits (34 characters)."""
    return prefix + secrets.token_hex(16)


class LogKind(StrEnum):
    """What an entry of :attr:`MediaStreamSim.log` records."""

    MEDIA = "media"  # gateway media received (detail: bytes)
    MARK = "mark"  # gateway mark received (detail: name)
    CLEAR = "clear"  # gateway clear received (detail: bytes dropped, marks flushed)
    MARK_ECHO = "mark_echo"  # mark echoed to the gateway (detail: name, played|cleared|empty)
    DTMF = "dtmf"  # dtmf sent to the gateway (detail: digit)
    VIOLATION = "violation"  # a gateway message broke the protocol (detail: reason)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One timed event of the stream, for the call report."""

    time: float
    kind: LogKind
    detail: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """What one gateway message turned out to be, so the driver can time it.

    ``event`` is ``media``, ``mark``, ``clear``, ``invalid`` (a violation, see ``reason``) or
    ``ignored`` (arrived after ``stop``: the call is over, as on a real hang-up).
    """

    event: str
    payload: bytes = b""
    name: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MarkEcho:
    """A mark whose echo is due. ``cleared`` says it was flushed by ``clear``, not played."""

    name: str
    time: float
    cleared: bool = False


@dataclass(frozen=True, slots=True)
class PlayedAudio:
    """Bot audio as the caller heard it: mu-law bytes whose first sample played at ``time``."""

    time: float
    ulaw: bytes

    @property
    def duration(self) -> float:
        return len(self.ulaw) / SAMPLE_RATE

    def pcm(self) -> bytes:
        """The samples as 16-bit little-endian linear PCM."""
        return ulaw_to_pcm(self.ulaw)


@dataclass(frozen=True, slots=True)
class Playout:
    """What :meth:`MediaStreamSim.advance` produced since its previous call."""

    audio: list[PlayedAudio]
    echoes: list[MarkEcho]


class _Mark:
    """A mark waiting in the playout buffer behind the audio sent before it."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_CONNECTED = orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


class StreamSimBase(abc.ABC):
    """A carrier's playout buffer and bookkeeping, whatever its wire: the part of a stand-in
    that plays the gateway's audio in real time and says when each mark was reached.

    A carrier's stand-in subclasses it, parses its own messages and feeds
    :meth:`_accept_audio`, :meth:`_accept_mark` and :meth:`_accept_clear`; the pump
    (:class:`gateway.sim.caller.CallPump`) calls :meth:`open_messages`, ``media``, ``dtmf``,
    ``receive``, :meth:`advance`, ``echo_message`` and ``stop``. ``binary_media`` says caller
    audio goes out as binary websocket frames (every other message is text).
    """

    binary_media = False

    def __init__(self, *, keep_media_log: bool = True) -> None:
        #: False for load generation: one log entry per media message adds up over many calls.
        self.keep_media_log = keep_media_log
        self.started = False
        self.stopped = False

        # Playout buffer: mu-law bytes and marks, in arrival order.
        self._queue: deque[bytes | _Mark] = deque()
        self._head_offset = 0  # bytes of queue[0] already played
        self._buffered = 0  # unplayed audio bytes in the queue
        self._run_start: float | None = None  # when the current playback run began; None: dry
        self._run_played = 0  # samples played in the current run
        self._played: list[PlayedAudio] = []
        self._echoes: list[MarkEcho] = []

        #: Reasons, one per bad gateway message ("#n event: why").
        self.violations: list[str] = []
        #: Timed events for the report.
        self.log: list[LogEntry] = []
        self.received = 0
        self.media_received = 0
        self.marks_received = 0
        self.clears_received = 0
        self.marks_echoed = 0
        self.bytes_received = 0
        self.bytes_played = 0
        self.bytes_cleared = 0

    @abc.abstractmethod
    def open_messages(self, now: float) -> list[bytes]:
        """What the carrier sends as the socket opens (``now`` is the stream's time zero)."""

    @abc.abstractmethod
    def media(self, ulaw: bytes, now: float) -> bytes:
        """One frame of caller audio (8 kHz mu-law) in the carrier's framing."""

    @abc.abstractmethod
    def dtmf(self, digit: str, now: float) -> bytes:
        """The carrier's message for one key press."""

    @abc.abstractmethod
    def echo_message(self, echo: MarkEcho) -> bytes:
        """The carrier's message saying a mark was reached; serialised right before sending."""

    @abc.abstractmethod
    def stop(self, now: float) -> bytes | None:
        """The carrier's last message (None for a carrier that just closes): the call is
        over."""

    @abc.abstractmethod
    def receive(self, message: str | bytes, now: float, *, binary: bool = False) -> Inbound:
        """Take one gateway message; violations are recorded, never raised."""

    def advance(self, now: float) -> Playout:
        """Play buffered audio up to ``now``; return what played and the mark echoes now due."""
        if self.started and not self.stopped:
            self._play_until(now)
        played, echoes = self._played, self._echoes
        self._played, self._echoes = [], []
        return Playout(played, echoes)

    @property
    def buffered_seconds(self) -> float:
        """Audio received but not yet played."""
        return self._buffered / SAMPLE_RATE

    @property
    def pending_marks(self) -> int:
        return sum(1 for item in self._queue if isinstance(item, _Mark))

    def _violation(self, now: float, event: str, reason: str) -> Inbound:
        text = f"#{self.received} {event}: {reason}"
        self.violations.append(text)
        self.log.append(LogEntry(now, LogKind.VIOLATION, text))
        return Inbound("invalid", reason=reason)

    def _accept_audio(self, audio: bytes, now: float) -> Inbound:
        """Queue gateway audio (8 kHz mu-law) behind what is buffered."""
        self.media_received += 1
        self.bytes_received += len(audio)
        if self.keep_media_log:
            self.log.append(LogEntry(now, LogKind.MEDIA, str(len(audio))))
        if audio:
            if self._run_start is None:
                self._run_start, self._run_played = now, 0
            self._queue.append(audio)
            self._buffered += len(audio)
        return Inbound("media", payload=audio)

    def _accept_mark(self, name: str, now: float) -> Inbound:
        """Queue a mark behind the buffered audio; echoed at once when nothing is buffered."""
        self.marks_received += 1
        self.log.append(LogEntry(now, LogKind.MARK, name))
        if self._queue:
            self._queue.append(_Mark(name))
        else:
            self._echo(name, now, "empty")
        return Inbound("mark", name=name)

    def _accept_clear(self, now: float, *, echo_pending: bool = True) -> Inbound:
        """Drop the buffered audio; pending marks are echoed at once when ``echo_pending``
        (Twilio's rule), else dropped silently."""
        self.clears_received += 1
        dropped, flushed = self._buffered, 0
        for item in self._queue:
            if isinstance(item, _Mark) and echo_pending:
                self._echo(item.name, now, "cleared")
                flushed += 1
        self._queue.clear()
        self._head_offset = self._buffered = 0
        self._run_start = None
        self.bytes_cleared += dropped
        self.log.append(LogEntry(now, LogKind.CLEAR, f"dropped={dropped} flushed={flushed}"))
        return Inbound("clear")

    def _echo(self, name: str, when: float, how: str) -> None:
        self._echoes.append(MarkEcho(name, when, cleared=how == "cleared"))
        self.log.append(LogEntry(when, LogKind.MARK_ECHO, f"{name} {how}"))

    def _play_until(self, now: float) -> None:
        """Move the playout clock to ``now``: play audio, echo the marks playback reaches."""
        start = self._run_start
        if start is None:
            return
        # Samples due since the run began, minus those already played; integer arithmetic
        # from the run's start keeps long runs free of cumulative rounding drift.
        budget = int((now - start) * SAMPLE_RATE + 1e-6) - self._run_played
        queue = self._queue
        while queue:
            head = queue[0]
            t = start + self._run_played / SAMPLE_RATE
            if isinstance(head, _Mark):
                queue.popleft()
                self._echo(head.name, t, "played")
                continue
            if budget <= 0:
                return
            offset = self._head_offset
            take = min(budget, len(head) - offset)
            self._played.append(PlayedAudio(t, head[offset : offset + take]))
            budget -= take
            self._run_played += take
            self._buffered -= take
            self.bytes_played += take
            if offset + take == len(head):
                queue.popleft()
                self._head_offset = 0
            else:
                self._head_offset = offset + take
        # Dry: the clock waits for the next audio to arrive.
        self._run_start = None


class MediaStreamSim(StreamSimBase):
    """Twilio's end of one ``<Connect><Stream>``: messages out, gateway messages in, playout.

    Call contract: :meth:`connected` then :meth:`start` first; then any mix of :meth:`media`,
    :meth:`dtmf`, :meth:`receive` and :meth:`advance` with non-decreasing ``now``; :meth:`stop`
    last. Messages are returned as UTF-8 JSON bytes, to be sent as websocket *text* frames.
    """

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        custom_parameters: dict[str, str] | None = None,
        keep_media_log: bool = True,
    ) -> None:
        super().__init__(keep_media_log=keep_media_log)
        self.account_sid = account_sid or new_sid("AC")
        self.call_sid = call_sid or new_sid("CA")
        self.stream_sid = stream_sid or new_sid("MZ")
        self.custom_parameters = dict(custom_parameters or {})
        self._seq = 0
        self._chunk = 0
        self._t_start = 0.0

    def open_messages(self, now: float) -> list[bytes]:
        """``connected`` then ``start``."""
        return [self.connected(), self.start(now)]

    # ------------------------------------------------------------------ Twilio -> gateway

    def connected(self) -> bytes:
        """The first message on the socket (it carries no sequence number)."""
        return _CONNECTED

    def start(self, now: float) -> bytes:
        """The ``start`` message; ``now`` is the stream's time zero for media timestamps."""
        if self.started:
            raise RuntimeError("start() called twice: Twilio sends one start per stream")
        self.started = True
        self._t_start = now
        return orjson.dumps(
            {
                "event": "start",
                "sequenceNumber": self._next_seq(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {
                        "encoding": "audio/x-mulaw",
                        "sampleRate": SAMPLE_RATE,
                        "channels": 1,
                    },
                    "customParameters": self.custom_parameters,
                },
                "streamSid": self.stream_sid,
            }
        )

    def media(self, ulaw: bytes, now: float) -> bytes:
        """One inbound ``media`` message carrying ``ulaw``.

        ``now`` is the frame's media time: pass its scheduled send time, so timestamps advance
        20 ms per frame like Twilio's media clock even when a send runs late.
        """
        self._require_open("media")
        self._chunk += 1
        return orjson.dumps(
            {
                "event": "media",
                "sequenceNumber": self._next_seq(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str(round((now - self._t_start) * 1000)),
                    "payload": pybase64.b64encode(ulaw).decode("ascii"),
                },
                "streamSid": self.stream_sid,
            }
        )

    def dtmf(self, digit: str, now: float) -> bytes:
        """A ``dtmf`` message for one key press (inbound only, as on a real stream)."""
        self._require_open("dtmf")
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self.log.append(LogEntry(now, LogKind.DTMF, digit))
        return orjson.dumps(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    def echo_message(self, echo: MarkEcho) -> bytes:
        """Serialise a due mark echo; call it right before writing it (see module doc)."""
        self.marks_echoed += 1
        return orjson.dumps(
            {
                "event": "mark",
                "sequenceNumber": self._next_seq(),
                "streamSid": self.stream_sid,
                "mark": {"name": echo.name},
            }
        )

    def stop(self, now: float) -> bytes:
        """The ``stop`` message; after it, gateway messages are ignored (the call is over)."""
        self._require_open("stop")
        self._play_until(now)
        self.stopped = True
        return orjson.dumps(
            {
                "event": "stop",
                "sequenceNumber": self._next_seq(),
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                "streamSid": self.stream_sid,
            }
        )

    # ------------------------------------------------------------------ gateway -> Twilio

    def receive(self, message: str | bytes, now: float, *, binary: bool = False) -> Inbound:
        """Take one websocket message from the gateway, arrived at ``now``.

        ``binary`` says it came as a binary frame, which Twilio does not accept. Returns what
        the message was; protocol violations are recorded, never raised.
        """
        self.received += 1
        if self.stopped:
            return Inbound("ignored")
        self._play_until(now)
        if binary:
            return self._violation(now, "?", "binary frame (Twilio expects JSON text frames)")
        try:
            msg = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            return self._violation(now, "?", f"not JSON: {exc}")
        if not isinstance(msg, dict):
            return self._violation(now, "?", f"not a JSON object: {type(msg).__name__}")
        event = msg.get("event")
        if event not in ("media", "mark", "clear"):
            return self._violation(now, str(event), "unknown event (expected media, mark, clear)")
        if not self.started:
            return self._violation(now, event, "sent before start (no streamSid yet)")
        sid = msg.get("streamSid")
        if sid is None:
            return self._violation(now, event, "missing streamSid")
        if sid != self.stream_sid:
            return self._violation(now, event, f"wrong streamSid {sid!r}")
        match event:
            case "media":
                return self._on_media(msg, now)
            case "mark":
                return self._on_mark(msg, now)
            case _:
                return self._on_clear(now)

    # ------------------------------------------------------------------ internals

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    def _require_open(self, what: str) -> None:
        if not self.started:
            raise RuntimeError(f"{what}() before start(): Twilio sends start first")
        if self.stopped:
            raise RuntimeError(f"{what}() after stop(): the stream is over")

    def _on_media(self, msg: dict[str, Any], now: float) -> Inbound:
        media = msg.get("media")
        payload = media.get("payload") if isinstance(media, dict) else None
        if not isinstance(payload, str):
            return self._violation(now, "media", "missing media.payload string")
        try:
            audio = pybase64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            return self._violation(now, "media", f"payload is not valid base64 ({exc})")
        if audio[:4] == b"RIFF":
            return self._violation(
                now, "media", "payload starts with a WAV header (RIFF): Twilio plays it as noise"
            )
        return self._accept_audio(audio, now)

    def _on_mark(self, msg: dict[str, Any], now: float) -> Inbound:
        mark = msg.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str):
            return self._violation(now, "mark", "missing mark.name string")
        return self._accept_mark(name, now)

    def _on_clear(self, now: float) -> Inbound:
        return self._accept_clear(now)
