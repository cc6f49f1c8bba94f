"""Twilio Media Streams (bidirectional), sans-I/O.

:class:`TwilioStream` takes websocket text frames in (:meth:`TwilioStream.receive_message`) and
gives typed events out (:meth:`TwilioStream.events_received`); the gateway's outbound audio,
marks and clears go in through ``send_*`` and come out as text frames from
:meth:`TwilioStream.messages_to_send`. It never touches a socket or a clock: time is passed in.
The FastAPI endpoint in ``aio.py`` only pumps.

Message formats: REFERENCE.md section 1.4 (Twilio -> us) and 1.5 (us -> Twilio).

Garbage is handled per message: a malformed frame becomes a :class:`ProtocolViolation` event
carrying the reason and is otherwise ignored; only abuse that threatens the process (oversized
frames, floods, a flood of garbage) is fatal to the call, and then only to that call.

Errors::

    TwilioStreamError
    ├── LocalProtocolError    we misused the stream (e.g. sent audio before ``start``): our bug
    └── RemoteProtocolError   the peer broke the protocol badly enough to end the call;
                              carries the websocket close code to send
"""

from __future__ import annotations

import binascii
import enum
from collections import deque
from dataclasses import dataclass, field

import orjson
import pybase64

from gateway.ids import ACCOUNT_SID, CALL_SID, STREAM_SID, is_twilio_sid
from gateway.ops.logs import field as log_field

__all__ = [
    "AudioChunk",
    "Dtmf",
    "LocalProtocolError",
    "MarkReached",
    "ProtocolViolation",
    "RemoteProtocolError",
    "StreamStarted",
    "StreamState",
    "StreamStopped",
    "TwilioStream",
    "TwilioStreamError",
]

#: RFC 6455 close codes used when the peer is at fault.
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009


class TwilioStreamError(Exception):
    """Base of this module's errors."""


class LocalProtocolError(TwilioStreamError, RuntimeError):
    """The gateway used the stream wrongly."""


class RemoteProtocolError(TwilioStreamError):
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
    AWAITING_START = "awaiting-start"
    STREAMING = "streaming"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class StreamStarted:
    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Caller audio: raw mu-law bytes, ``timestamp`` in ms since the stream started."""

    payload: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class MarkReached:
    """Twilio echoed a mark: played up to it, or discarded by a ``clear``."""

    name: str


@dataclass(frozen=True, slots=True)
class StreamStopped:
    pass


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """A message was ignored; ``reason`` says why, ``kind`` names the class of fault."""

    reason: str
    kind: str = "other"


StreamEvent = StreamStarted | AudioChunk | Dtmf | MarkReached | StreamStopped | ProtocolViolation

_DTMF_DIGITS = frozenset("0123456789*#ABCD")
#: Twilio caps one ``<Parameter>``'s name + value at 500 characters, and the gateway sets a
#: handful; more, or longer, did not come from a TwiML document.
MAX_PARAMETERS = 64
MAX_PARAMETER_CHARS = 500
#: The gateway's own mark names are ``generation:position``; an echo longer than this is not one.
MAX_MARK_CHARS = 64
#: A 20 ms frame is 160 bytes of mu-law; the default payload bound leaves 4x slack (Twilio
#: sends 20 ms frames; REFERENCE.md 1.4).
FRAME_BYTES = 160


def _small_int(value: object, default: int) -> int | None:
    """An integer field that Twilio may send as a number or a string; None when it is neither
    (or absurd), instead of an exception from ``int()``."""
    if value is None:
        return default
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**31) <= value < 2**31 else None
    if isinstance(value, str) and 0 < len(value) <= 10 and value.isascii() and value.isdigit():
        return int(value)
    return None


class TwilioStream:
    """One bidirectional Media Stream, from the gateway's side.

    Limits are constructor arguments: ``max_message_bytes`` bounds one frame (Twilio's 20 ms
    frame is ~400 bytes of JSON), ``max_payload_bytes`` one audio chunk (four 20 ms frames),
    ``max_rate`` the sustained messages per second (Twilio sends 50 media messages plus mark
    echoes, about 75, so 150 is twice a real call) with a burst of ``burst`` messages (a
    second of catch-up after a network stall), and ``max_violations`` how much garbage a call
    may send before it is ended.

    Identifiers in ``start`` must have Twilio's format (``gateway.ids``); a ``start`` that
    names its call otherwise is refused with :class:`RemoteProtocolError`, since nothing
    about such a stream can be trusted to name a file, a REST resource or a log line.
    """

    def __init__(
        self,
        *,
        max_message_bytes: int = 8192,
        max_payload_bytes: int = 4 * FRAME_BYTES,
        max_rate: float = 150.0,
        burst: float = 300.0,
        max_violations: int = 100,
    ) -> None:
        self.state = StreamState.AWAITING_START
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.max_message_bytes = max_message_bytes
        self.max_payload_bytes = max_payload_bytes
        self.max_rate = max_rate
        self.burst = burst
        self.max_violations = max_violations
        self.violations = 0
        self.messages_received = 0
        self._tokens = burst
        self._tokens_at: float | None = None
        self._events: list[StreamEvent] = []
        self._out: deque[str] = deque()
        self._media_prefix = ""
        self._mark_prefix = ""
        self._clear_message = ""

    # -- receiving ---------------------------------------------------------------------------

    def receive_message(self, message: str | bytes, now: float) -> None:
        """Parse one websocket frame from Twilio. Raises RemoteProtocolError if fatal."""
        self.messages_received += 1
        self._police_rate(now)
        if len(message) > self.max_message_bytes:
            raise RemoteProtocolError(
                f"message of {len(message)} bytes exceeds {self.max_message_bytes}",
                CLOSE_TOO_BIG,
                "oversize",
            )
        if isinstance(message, bytes):
            self._violation("binary-frame", "binary frame; Media Streams sends JSON text")
            return
        try:
            msg = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            # orjson also refuses lone surrogates, which a text frame decoded leniently holds.
            self._violation("malformed-json", f"malformed JSON: {log_field(str(exc))}")
            return
        if not isinstance(msg, dict):
            self._violation("malformed-json", "message is not a JSON object")
            return
        event = msg.get("event")
        if event == "media":
            self._receive_media(msg)
        elif event == "mark":
            self._receive_mark(msg)
        elif event == "dtmf":
            self._receive_dtmf(msg)
        elif event == "start":
            self._receive_start(msg)
        elif event == "stop":
            self._receive_stop(msg)
        elif event == "connected":
            if self.state is not StreamState.AWAITING_START:
                self._violation("out-of-order", "'connected' after 'start'")
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

    def _check_sid(self, msg: dict[str, object], event: str) -> bool:
        if self.state is StreamState.AWAITING_START:
            self._violation("out-of-order", f"{event!r} before 'start'")
            return False
        if self.state is StreamState.STOPPED:
            self._violation("out-of-order", f"{event!r} after 'stop'")
            return False
        sid = msg.get("streamSid")
        if sid is not None and sid != self.stream_sid:
            self._violation(
                "wrong-stream", f"{event!r} for stream {log_field(sid, 40)}, not {self.stream_sid}"
            )
            return False
        return True

    def _receive_start(self, msg: dict[str, object]) -> None:
        if self.state is not StreamState.AWAITING_START:
            self._violation("out-of-order", "second 'start' ignored")
            return
        start = msg.get("start")
        if not isinstance(start, dict):
            self._violation("bad-start", "'start' without a start object")
            return
        stream_sid = start.get("streamSid") or msg.get("streamSid")
        call_sid = start.get("callSid")
        account_sid = start.get("accountSid")
        if not is_twilio_sid(stream_sid, STREAM_SID):
            raise RemoteProtocolError(
                f"'start' with streamSid {log_field(stream_sid, 40)}", kind="bad-identifier"
            )
        if not is_twilio_sid(call_sid, CALL_SID):
            raise RemoteProtocolError(
                f"'start' with callSid {log_field(call_sid, 40)}", kind="bad-identifier"
            )
        if account_sid is not None and not is_twilio_sid(account_sid, ACCOUNT_SID):
            raise RemoteProtocolError(
                f"'start' with accountSid {log_field(account_sid, 40)}", kind="bad-identifier"
            )
        assert isinstance(stream_sid, str) and isinstance(call_sid, str)
        fmt = start.get("mediaFormat")
        if isinstance(fmt, dict) and (
            fmt.get("encoding", "audio/x-mulaw") != "audio/x-mulaw"
            or _small_int(fmt.get("sampleRate"), 8000) != 8000
            or _small_int(fmt.get("channels"), 1) != 1
        ):
            self._violation("bad-start", f"unsupported mediaFormat {log_field(fmt)}")
            return
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            self._violation("bad-start", "customParameters is not an object; ignored")
            params = {}
        if len(params) > MAX_PARAMETERS or any(
            not isinstance(v, str) or len(k) + len(v) > MAX_PARAMETER_CHARS
            for k, v in params.items()
        ):
            self._violation("bad-start", "customParameters too many, too long or not strings")
            params = {
                k: v
                for k, v in list(params.items())[:MAX_PARAMETERS]
                if isinstance(v, str) and len(k) + len(v) <= MAX_PARAMETER_CHARS
            }
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.state = StreamState.STREAMING
        # Outbound frames are assembled from prefixes: one JSON encode per call, not per frame.
        sid = orjson.dumps(stream_sid).decode()
        self._media_prefix = '{"event":"media","streamSid":' + sid + ',"media":{"payload":"'
        self._mark_prefix = '{"event":"mark","streamSid":' + sid + ',"mark":{"name":'
        self._clear_message = '{"event":"clear","streamSid":' + sid + "}"
        self._events.append(
            StreamStarted(
                stream_sid=stream_sid,
                call_sid=call_sid,
                account_sid=account_sid or "",
                custom_parameters=params,
            )
        )

    def _receive_media(self, msg: dict[str, object]) -> None:
        if not self._check_sid(msg, "media"):
            return
        media = msg.get("media")
        if not isinstance(media, dict):
            self._violation("bad-media", "'media' without a media object")
            return
        if media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return  # only the caller's track feeds the engine
        payload = media.get("payload")
        if not isinstance(payload, str) or not payload:
            self._violation("bad-media", "'media' without a payload")
            return
        if len(payload) > self.max_payload_bytes * 4 // 3 + 4:
            self._violation(
                "bad-media", f"'media' payload of {len(payload)} base64 characters is too large"
            )
            return
        try:
            audio = pybase64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            self._violation("bad-media", "'media' payload is not valid base64")
            return
        timestamp = _small_int(media.get("timestamp"), -1)  # a string on the wire
        if timestamp is None:
            timestamp = -1
        self._events.append(AudioChunk(audio, timestamp))

    def _receive_mark(self, msg: dict[str, object]) -> None:
        if not self._check_sid(msg, "mark"):
            return
        mark = msg.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str) or len(name) > MAX_MARK_CHARS:
            self._violation("bad-mark", "'mark' without a name of ours")
            return
        self._events.append(MarkReached(name))

    def _receive_dtmf(self, msg: dict[str, object]) -> None:
        if not self._check_sid(msg, "dtmf"):
            return
        dtmf = msg.get("dtmf")
        digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
        if not isinstance(digit, str) or digit not in _DTMF_DIGITS:
            self._violation("bad-dtmf", f"'dtmf' with digit {log_field(digit, 10)}")
            return
        self._events.append(Dtmf(digit))

    def _receive_stop(self, msg: dict[str, object]) -> None:
        if not self._check_sid(msg, "stop"):
            return
        self.state = StreamState.STOPPED
        self._events.append(StreamStopped())

    # -- sending -----------------------------------------------------------------------------

    def _require_streaming(self) -> None:
        if self.state is not StreamState.STREAMING:
            raise LocalProtocolError(f"cannot send while the stream is {self.state.value}")

    def send_audio(self, ulaw: bytes) -> None:
        """Queue a ``media`` message carrying raw mu-law 8 kHz bytes (no header)."""
        self._require_streaming()
        self._out.append(self._media_prefix + pybase64.b64encode_as_string(ulaw) + '"}}')

    def send_mark(self, name: str) -> None:
        """Queue a ``mark`` named ``name``."""
        self._require_streaming()
        self._out.append(self._mark_prefix + orjson.dumps(name).decode() + "}}")

    def send_clear(self) -> None:
        """Put ``clear`` ahead of everything not yet written, and drop queued media and marks.

        What is still queued here never reached Twilio, so it is simply discarded: nothing of
        the interrupted speech can go out after the ``clear``.
        """
        self._require_streaming()
        self._out.clear()
        self._out.append(self._clear_message)

    def next_message(self) -> str | None:
        """The next text frame to write, or None.

        One at a time, so that a ``clear`` queued while the writer awaits the socket goes out
        next, ahead of media the writer had not yet started to write.
        """
        out = self._out
        return out.popleft() if out else None

    def messages_to_send(self) -> list[str]:
        """All text frames to write, in order (for tests and simple pumps)."""
        out = list(self._out)
        self._out.clear()
        return out

    def is_clear(self, message: str) -> bool:
        return message is self._clear_message
