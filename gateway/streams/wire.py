"""The part of a JSON-over-websocket carrier core that is the same for every carrier.

:class:`JsonStreamCore` bounds and parses each frame (size, rate, binary frames refused, JSON
object required, garbage counted per message and fatal only past ``max_violations``), keeps the
state (awaiting start, streaming, stopped) and the outbound queue with its clear rule: a clear
drops every queued frame and goes out next, so nothing of the interrupted speech follows it.
A carrier subclasses it and writes :meth:`JsonStreamCore._on_event` for its own messages,
calling :meth:`_opened` once its start is validated. Pure: time is passed in.
"""

from __future__ import annotations

import abc
import binascii
from collections import deque
from typing import Any

import orjson
import pybase64

from gateway.ops.logs import field as log_field
from gateway.streams.codec import WireCodec, WireFormat
from gateway.streams.events import (
    CLOSE_TOO_BIG,
    DTMF_DIGITS,
    DigitPressed,
    LocalProtocolError,
    PlayedUpTo,
    RatePolicer,
    RemoteProtocolError,
    StreamEvent,
    StreamOpened,
    StreamState,
    Violation,
)

__all__ = ["MAX_MARK_CHARS", "JsonStreamCore", "small_int"]

#: Our mark names are short; a longer one echoed back is not ours.
MAX_MARK_CHARS = 64


def small_int(value: object, default: int) -> int | None:
    """An integer field a carrier may send as a number or a digit string; ``default`` when
    absent, None when it is neither (or absurd), instead of an exception from ``int()``."""
    if value is None:
        return default
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**31) <= value < 2**31 else None
    if isinstance(value, str) and 0 < len(value) <= 10 and value.isascii() and value.isdigit():
        return int(value)
    return None


class JsonStreamCore(abc.ABC):
    """Shared mechanics of a JSON media-stream core; see the module docstring.

    Limits are constructor arguments: ``max_message_bytes`` bounds one frame,
    ``max_payload_bytes`` one audio payload once decoded (the default is four 20 ms frames of
    16 kHz L16), ``max_rate``/``burst`` the messages per second (a carrier sends 50 media
    messages plus its echoes), ``max_violations`` the garbage a call may send before it ends.
    """

    #: Subclasses say whether the carrier echoes marks (exact heard position).
    exact_heard = True
    #: The key that names the stream in the carrier's call messages; None: they do not.
    stream_key: str | None = None

    def __init__(
        self,
        *,
        max_message_bytes: int = 16384,
        max_payload_bytes: int = 2560,
        max_rate: float = 150.0,
        burst: float = 300.0,
        max_violations: int = 100,
    ) -> None:
        self.state = StreamState.AWAITING_START
        self.max_message_bytes = max_message_bytes
        self.max_payload_bytes = max_payload_bytes
        self.max_violations = max_violations
        self.violations = 0
        self.messages_received = 0
        self.codec: WireCodec | None = None
        #: The stream the carrier's ``start`` named; call messages for another are refused.
        self._stream: str | None = None
        self._policer = RatePolicer(max_rate, burst)
        self._events: list[StreamEvent] = []
        self._out: deque[str | bytes] = deque()
        self._clear_message: str | bytes = ""

    @property
    def streaming(self) -> bool:
        return self.state is StreamState.STREAMING

    # -- receiving ---------------------------------------------------------------------------

    def receive_message(self, message: str | bytes, now: float) -> None:
        """Parse one websocket frame. Raises RemoteProtocolError if the call must end."""
        self.messages_received += 1
        self._policer.take(now)
        if len(message) > self.max_message_bytes:
            raise RemoteProtocolError(
                f"message of {len(message)} bytes exceeds {self.max_message_bytes}",
                CLOSE_TOO_BIG,
                "oversize",
            )
        if isinstance(message, bytes):
            self._violation("binary-frame", "binary frame; this carrier sends JSON text")
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
        if not isinstance(event, str):
            self._violation("unknown-event", "message without an event name")
            return
        self._on_event(event, msg)

    def events_received(self) -> list[StreamEvent]:
        """Events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    @abc.abstractmethod
    def _on_event(self, event: str, msg: dict[str, Any]) -> None:
        """Handle one parsed message of the carrier's (``event`` is its name)."""

    def _payload(self, payload: object, event: str = "media") -> bytes | None:
        """A base64 audio payload decoded, or None (a violation) when it is missing, too
        large for ``max_payload_bytes`` or not base64."""
        if not isinstance(payload, str) or not payload:
            self._violation("bad-media", f"{event!r} without a payload")
            return None
        if len(payload) > self.max_payload_bytes * 4 // 3 + 4:
            self._violation(
                "bad-media", f"{event!r} payload of {len(payload)} base64 characters is too large"
            )
            return None
        try:
            return pybase64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            self._violation("bad-media", f"{event!r} payload is not valid base64")
            return None

    def _violation(self, kind: str, reason: str) -> None:
        self.violations += 1
        if self.violations > self.max_violations:
            raise RemoteProtocolError(f"{self.violations} bad messages; last: {reason}")
        self._events.append(Violation(reason, kind))

    def _played_up_to(self, name: object, what: str) -> None:
        """A carrier's played-position echo naming one of our marks (``what``: its message)."""
        if not isinstance(name, str) or len(name) > MAX_MARK_CHARS:
            self._violation("bad-mark", f"{what} without a mark of ours")
            return
        self._events.append(PlayedUpTo(name))

    def _digit_pressed(
        self, digit: object, what: str, digits: frozenset[str] = DTMF_DIGITS
    ) -> None:
        """A key the caller pressed, from the carrier's DTMF message ``what``."""
        if not isinstance(digit, str) or digit not in digits:
            self._violation("bad-dtmf", f"{what} with digit {log_field(digit, 10)}")
            return
        self._events.append(DigitPressed(digit))

    def _in_call(self, event: str) -> bool:
        """True when a call message may arrive now; a violation otherwise."""
        if self.state is StreamState.AWAITING_START:
            self._violation("out-of-order", f"{event!r} before start")
            return False
        if self.state is StreamState.STOPPED:
            self._violation("out-of-order", f"{event!r} after stop")
            return False
        return True

    def _in_call_of(self, msg: dict[str, Any], event: str) -> bool:
        """True when a call message may arrive now and names this stream, if it names one."""
        if not self._in_call(event):
            return False
        sid = msg.get(self.stream_key) if self.stream_key is not None else None
        if sid is not None and sid != self._stream:
            self._violation("wrong-stream", f"{event!r} for stream {log_field(sid, 40)}")
            return False
        return True

    def _opened(self, opened: StreamOpened, wire: WireFormat, clear_message: str | bytes) -> None:
        self._stream = opened.stream_id
        self.codec = WireCodec(wire)
        self._clear_message = clear_message
        self.state = StreamState.STREAMING
        self._events.append(opened)

    # -- sending -----------------------------------------------------------------------------

    def _require_streaming(self) -> WireCodec:
        codec = self.codec
        if self.state is not StreamState.STREAMING or codec is None:
            raise LocalProtocolError(f"cannot send while the stream is {self.state.value}")
        return codec

    def _queue(self, message: str | bytes) -> None:
        self._out.append(message)

    def send_clear(self) -> None:
        """Put the clear ahead of everything not yet written, and drop queued media and marks:
        what is still queued here never reached the carrier."""
        codec = self._require_streaming()
        codec.cleared()
        self._out.clear()
        self._out.append(self._clear_message)

    def next_message(self) -> str | bytes | None:
        """The next frame to write, or None (one at a time, so a clear queued while the writer
        awaits the socket goes out next)."""
        out = self._out
        return out.popleft() if out else None

    def messages_to_send(self) -> list[str | bytes]:
        """All frames to write, in order (for tests and simple pumps)."""
        out = list(self._out)
        self._out.clear()
        return out

    def is_clear(self, message: str | bytes) -> bool:
        return message is self._clear_message
