"""Vonage Voice API WebSocket (the NCCO ``connect`` action to a ``websocket`` endpoint), sans-I/O.

:class:`VonageStream` takes websocket frames in (:meth:`VonageStream.receive_message`) and
gives typed events out (:meth:`VonageStream.events_received`); the gateway's audio, marks and
clears go in through ``send_*`` and come out of :meth:`VonageStream.next_message` as the frames
to write. It never touches a socket or reads a clock: time is passed in.

The protocol, from Vonage's guide "WebSockets in the Vonage Voice API"
(https://developer.vonage.com/en/voice/voice-api/concepts/websockets):

- Vonage opens the socket and its first message is a text frame
  ``{"event": "websocket:connected", "content-type": "audio/l16;rate=16000", ...}``; the
  ``headers`` the NCCO gave the endpoint arrive as further top-level fields of that message
  (that is how our stream token and call id reach us).
- Audio both ways is binary frames of 16-bit signed little-endian linear PCM, mono, at the rate
  of the content-type, one 20 ms frame per message (640 bytes at 16 kHz, 320 at 8 kHz).
- Key presses arrive as ``{"event": "websocket:dtmf", "digit": "5", "duration": 260}``.
- ``{"action": "clear"}`` empties Vonage's playback buffer; it answers
  ``{"event": "websocket:cleared"}``.
- ``{"action": "notify", "payload": {...}}`` is queued behind the audio sent before it; when that
  audio has played Vonage sends ``{"event": "websocket:notify", "payload": {...}}`` back: our
  marks ride in it as ``{"mark": "<generation>:<position>"}``, so the heard position is exact,
  as with Twilio's marks.
- There is no stop message: the call's end closes the socket.

Garbage is handled per message: a malformed frame becomes a :class:`ProtocolViolation` event
and is otherwise ignored; only abuse that threatens the process (oversized frames, floods, a
flood of garbage) ends the call, and then only this call.

Errors::

    VonageStreamError
    ├── LocalProtocolError    we misused the stream (audio before ``websocket:connected``)
    └── RemoteProtocolError   the peer broke the protocol badly enough to end the call;
                              carries the websocket close code to send
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

import orjson

from gateway.ops.logs import field as log_field

__all__ = [
    "AudioChunk",
    "Cleared",
    "Dtmf",
    "LocalProtocolError",
    "MarkReached",
    "ProtocolViolation",
    "RATES",
    "RemoteProtocolError",
    "StreamStarted",
    "StreamState",
    "VonageStream",
    "VonageStreamError",
    "content_type",
    "frame_bytes",
]

#: RFC 6455 close codes used when the peer is at fault.
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
#: The linear PCM rates an NCCO websocket endpoint may ask for (NCCO reference, ``connect``
#: endpoint ``content-type``: ``audio/l16;rate=8000``, ``16000`` or ``24000``; the ``vonage``
#: SDK's ``WebsocketEndpoint`` model allows exactly these).
RATES = (8000, 16000, 24000)
#: Most the gateway reads of NCCO ``headers`` (each name and value) in ``websocket:connected``.
MAX_HEADERS = 32
MAX_HEADER_CHARS = 500
#: The gateway's own mark names are ``generation:position``; an echo longer than this is not one.
MAX_MARK_CHARS = 64
_DTMF_DIGITS = frozenset("0123456789*#ABCD")


def content_type(rate: int) -> str:
    """The NCCO ``content-type`` for linear PCM at ``rate``."""
    if rate not in RATES:
        raise ValueError(f"Vonage streams L16 at {RATES}, not {rate}")
    return f"audio/l16;rate={rate}"


def frame_bytes(rate: int) -> int:
    """One 20 ms frame of 16-bit mono PCM at ``rate``."""
    return rate // 50 * 2


def _rate_of(value: object) -> int | None:
    """The rate of an ``audio/l16;rate=N`` content-type; None for anything else."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    kind, _, params = value.replace(" ", "").lower().partition(";")
    if kind != "audio/l16" or not params.startswith("rate="):
        return None
    digits = params[5:]
    if not (digits.isascii() and digits.isdigit()) or int(digits) not in RATES:
        return None
    return int(digits)


class VonageStreamError(Exception):
    """Base of this module's errors."""


class LocalProtocolError(VonageStreamError, RuntimeError):
    """The gateway used the stream wrongly."""


class RemoteProtocolError(VonageStreamError):
    """The peer broke the protocol; the call must end with ``close_code``."""

    def __init__(
        self, reason: str, close_code: int = CLOSE_POLICY_VIOLATION, kind: str = "garbage"
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.close_code = close_code
        #: The class of fault, for metrics: "flood", "oversize" or "garbage".
        self.kind = kind


class StreamState(enum.Enum):
    AWAITING_CONNECTED = "awaiting-connected"
    STREAMING = "streaming"


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """``websocket:connected``: the audio rate and the NCCO's headers (strings only)."""

    rate: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Caller audio: 16-bit little-endian PCM at the stream's rate."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class MarkReached:
    """A ``websocket:notify`` carrying one of our marks: played up to it."""

    name: str


@dataclass(frozen=True, slots=True)
class Cleared:
    """``websocket:cleared``: Vonage emptied its playback buffer."""


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """A message was ignored; ``reason`` says why, ``kind`` names the class of fault."""

    reason: str
    kind: str = "other"


StreamEvent = StreamStarted | AudioChunk | Dtmf | MarkReached | Cleared | ProtocolViolation

_CLEAR = '{"action":"clear"}'


class VonageStream:
    """One Vonage websocket call leg, from the gateway's side.

    Limits are constructor arguments: ``max_message_bytes`` bounds one frame (a 20 ms frame at
    24 kHz is 960 bytes), ``max_audio_bytes`` one audio message (four frames at the stream's
    rate, decided at ``websocket:connected``), ``max_rate`` the sustained messages per second
    (Vonage sends 50 audio frames plus notify echoes, about 75, so 150 is twice a real call)
    with a burst of ``burst`` messages (a second of catch-up after a stall), and
    ``max_violations`` how much garbage a call may send before it is ended.
    """

    def __init__(
        self,
        *,
        max_message_bytes: int = 8192,
        max_rate: float = 150.0,
        burst: float = 300.0,
        max_violations: int = 100,
    ) -> None:
        self.state = StreamState.AWAITING_CONNECTED
        self.rate = 0
        self.max_message_bytes = max_message_bytes
        self.max_audio_bytes = 0
        self.max_rate = max_rate
        self.burst = burst
        self.max_violations = max_violations
        self.violations = 0
        self.messages_received = 0
        self._tokens = burst
        self._tokens_at: float | None = None
        self._events: list[StreamEvent] = []
        self._out: deque[str | bytes] = deque()

    # -- receiving ---------------------------------------------------------------------------

    def receive_message(self, message: str | bytes, now: float) -> None:
        """Parse one websocket frame from Vonage (``bytes`` for a binary frame, ``str`` for a
        text one). Raises RemoteProtocolError if fatal."""
        self.messages_received += 1
        self._police_rate(now)
        if len(message) > self.max_message_bytes:
            raise RemoteProtocolError(
                f"message of {len(message)} bytes exceeds {self.max_message_bytes}",
                CLOSE_TOO_BIG,
                "oversize",
            )
        if isinstance(message, bytes):
            self._receive_audio(message)
            return
        try:
            msg = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            self._violation("malformed-json", f"malformed JSON: {log_field(str(exc))}")
            return
        if not isinstance(msg, dict):
            self._violation("malformed-json", "message is not a JSON object")
            return
        event = msg.get("event")
        if event == "websocket:connected":
            self._receive_connected(msg)
        elif self.state is StreamState.AWAITING_CONNECTED:
            self._violation("out-of-order", f"{log_field(event, 40)} before websocket:connected")
        elif event == "websocket:notify":
            self._receive_notify(msg)
        elif event == "websocket:dtmf":
            self._receive_dtmf(msg)
        elif event == "websocket:cleared":
            self._events.append(Cleared())
        else:
            self._violation("unknown-event", f"unknown event {log_field(event, 40)}")

    def events_received(self) -> list[StreamEvent]:
        """Events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    def _police_rate(self, now: float) -> None:
        last = self._tokens_at
        self._tokens_at = now
        if last is not None:
            self._tokens = min(self.burst, self._tokens + (now - last) * self.max_rate)
        self._tokens -= 1.0
        if self._tokens < 0:
            raise RemoteProtocolError(
                f"message flood: over {self.max_rate:.0f} messages/s sustained", kind="flood"
            )

    def _violation(self, kind: str, reason: str) -> None:
        self.violations += 1
        if self.violations > self.max_violations:
            raise RemoteProtocolError(f"{self.violations} bad messages; last: {reason}")
        self._events.append(ProtocolViolation(reason, kind))

    def _receive_connected(self, msg: dict[str, object]) -> None:
        if self.state is not StreamState.AWAITING_CONNECTED:
            self._violation("out-of-order", "second websocket:connected ignored")
            return
        rate = _rate_of(msg.get("content-type"))
        if rate is None:
            # Nothing of the call can be decoded without its rate: refuse the stream.
            raise RemoteProtocolError(
                f"websocket:connected with content-type {log_field(msg.get('content-type'), 40)}"
            )
        headers: dict[str, str] = {}
        for name, value in msg.items():
            if name in ("event", "content-type"):
                continue
            if (
                len(headers) >= MAX_HEADERS
                or not isinstance(value, str)
                or len(name) + len(value) > MAX_HEADER_CHARS
            ):
                self._violation("bad-connected", f"header {log_field(name, 40)} ignored")
                continue
            headers[name] = value
        self.rate = rate
        self.max_audio_bytes = 4 * frame_bytes(rate)
        self.state = StreamState.STREAMING
        self._events.append(StreamStarted(rate, headers))

    def _receive_audio(self, pcm: bytes) -> None:
        if self.state is StreamState.AWAITING_CONNECTED:
            self._violation("out-of-order", "audio before websocket:connected")
            return
        if not pcm or len(pcm) % 2 or len(pcm) > self.max_audio_bytes:
            self._violation("bad-media", f"audio frame of {len(pcm)} bytes")
            return
        self._events.append(AudioChunk(pcm))

    def _receive_notify(self, msg: dict[str, object]) -> None:
        payload = msg.get("payload")
        name = payload.get("mark") if isinstance(payload, dict) else None
        if not isinstance(name, str) or len(name) > MAX_MARK_CHARS:
            self._violation("bad-mark", "websocket:notify without a mark of ours")
            return
        self._events.append(MarkReached(name))

    def _receive_dtmf(self, msg: dict[str, object]) -> None:
        digit = msg.get("digit")
        if not isinstance(digit, str) or digit not in _DTMF_DIGITS:
            self._violation("bad-dtmf", f"websocket:dtmf with digit {log_field(digit, 10)}")
            return
        self._events.append(Dtmf(digit))

    # -- sending -----------------------------------------------------------------------------

    def _require_streaming(self) -> None:
        if self.state is not StreamState.STREAMING:
            raise LocalProtocolError(f"cannot send while the stream is {self.state.value}")

    def send_audio(self, pcm: bytes) -> None:
        """Queue one binary frame of 16-bit little-endian PCM at the stream's rate."""
        self._require_streaming()
        self._out.append(pcm)

    def send_mark(self, name: str) -> None:
        """Queue a ``notify`` whose echo says the audio before it has played."""
        self._require_streaming()
        self._out.append(
            '{"action":"notify","payload":{"mark":' + orjson.dumps(name).decode() + "}}"
        )

    def send_clear(self) -> None:
        """Put ``clear`` ahead of everything not yet written, and drop queued audio and marks:
        they never reached Vonage, so nothing of the interrupted speech goes out after it."""
        self._require_streaming()
        self._out.clear()
        self._out.append(_CLEAR)

    def next_message(self) -> str | bytes | None:
        """The next frame to write (bytes: binary, str: text), or None.

        One at a time, so that a ``clear`` queued while the writer awaits the socket goes out
        next, ahead of audio the writer had not yet started to write.
        """
        out = self._out
        return out.popleft() if out else None

    def messages_to_send(self) -> list[str | bytes]:
        """All frames to write, in order (for tests and simple pumps)."""
        out = list(self._out)
        self._out.clear()
        return out

    @staticmethod
    def is_clear(message: str | bytes) -> bool:
        return message is _CLEAR
