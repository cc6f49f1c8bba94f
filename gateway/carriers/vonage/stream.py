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

The core speaks the shared media-stream events (:mod:`gateway.streams.events`): the call's
8 kHz mu-law is transcoded to and from the wire's L16 by :class:`~gateway.streams.WireCodec`.
Garbage is handled per message (a :class:`~gateway.streams.Violation` event); only abuse that
threatens the process (oversized frames, floods, a flood of garbage, a call id that is not a
Vonage UUID) raises :class:`~gateway.streams.RemoteProtocolError` and ends this call only.
"""

from __future__ import annotations

from collections import deque

import orjson

from gateway.ids import is_uuid
from gateway.ops.logs import field as log_field
from gateway.streams.codec import Encoding, WireCodec, WireFormat
from gateway.streams.events import (
    CLOSE_TOO_BIG,
    DTMF_DIGITS,
    CallerAudio,
    DigitPressed,
    LocalProtocolError,
    PlayedUpTo,
    RatePolicer,
    RemoteProtocolError,
    StreamEvent,
    StreamOpened,
    StreamState,
    Violation,
    bounded_parameters,
)

__all__ = ["CALL_HEADER", "RATES", "VonageStream", "content_type", "frame_bytes"]

#: The linear PCM rates the gateway asks for in the NCCO (the NCCO reference also allows
#: ``audio/l16;rate=24000``, which the call core's codecs do not take).
RATES = (8000, 16000)
#: The NCCO header naming the call leg the socket carries (its UUID, from the answer webhook).
CALL_HEADER = "call_uuid"
#: The gateway's own mark names are ``generation:position``; an echo longer than this is not one.
MAX_MARK_CHARS = 64
_CLEAR = '{"action":"clear"}'


def content_type(rate: int) -> str:
    """The NCCO ``content-type`` for linear PCM at ``rate``."""
    if rate not in RATES:
        raise ValueError(f"the gateway streams Vonage L16 at {RATES}, not {rate}")
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
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 6:
        return None
    return int(digits)


class VonageStream:
    """One Vonage websocket call leg, from the gateway's side (a
    :class:`~gateway.streams.MediaStream`).

    ``rate`` is the rate the gateway's NCCO asked for; a socket announcing another is refused.
    Limits are constructor arguments: ``max_message_bytes`` bounds one frame (a 20 ms frame at
    16 kHz is 640 bytes), one audio message may hold up to four frames, ``max_rate`` is the
    sustained messages per second (Vonage sends 50 audio frames plus notify echoes, about 75,
    so 150 is twice a real call) with a burst of ``burst`` messages (a second of catch-up after
    a stall), and ``max_violations`` how much garbage a call may send before it is ended.
    """

    #: Vonage echoes our ``notify`` once the audio before it has played.
    exact_heard = True

    def __init__(
        self,
        rate: int = 8000,
        *,
        max_message_bytes: int = 8192,
        max_rate: float = 150.0,
        burst: float = 300.0,
        max_violations: int = 100,
    ) -> None:
        if rate not in RATES:
            raise ValueError(f"the gateway streams Vonage L16 at {RATES}, not {rate}")
        self.state = StreamState.AWAITING_START
        self.rate = rate
        self.codec = WireCodec(WireFormat(Encoding.L16, rate))
        self.max_message_bytes = max_message_bytes
        self.max_audio_bytes = 4 * frame_bytes(rate)
        self.max_violations = max_violations
        self.violations = 0
        self.messages_received = 0
        self.call_uuid: str | None = None
        self._policer = RatePolicer(max_rate, burst)
        self._events: list[StreamEvent] = []
        self._out: deque[str | bytes] = deque()
        self._frame_bytes = frame_bytes(rate)
        self._pending = b""

    @property
    def streaming(self) -> bool:
        return self.state is StreamState.STREAMING

    # -- receiving ---------------------------------------------------------------------------

    def receive_message(self, message: str | bytes, now: float) -> None:
        """Parse one websocket frame from Vonage (``bytes`` for a binary frame, ``str`` for a
        text one). Raises RemoteProtocolError if fatal."""
        self.messages_received += 1
        self._policer.take(now)
        if len(message) > self.max_message_bytes:
            raise RemoteProtocolError(
                f"message of {len(message)} bytes exceeds {self.max_message_bytes}",
                CLOSE_TOO_BIG,
                "oversize",
            )
        if isinstance(message, bytes):
            self._receive_audio(message)
            return
        if not message:
            return  # an empty text frame says nothing (the simulator's last word: see there)
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
        elif self.state is StreamState.AWAITING_START:
            self._violation("out-of-order", f"{log_field(event, 40)} before websocket:connected")
        elif event == "websocket:notify":
            self._receive_notify(msg)
        elif event == "websocket:dtmf":
            self._receive_dtmf(msg)
        elif event == "websocket:cleared":
            pass  # the answer to our clear: the audio before it was dropped, nothing to do
        else:
            self._violation("unknown-event", f"unknown event {log_field(event, 40)}")

    def events_received(self) -> list[StreamEvent]:
        """Events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    def _violation(self, kind: str, reason: str) -> None:
        self.violations += 1
        if self.violations > self.max_violations:
            raise RemoteProtocolError(f"{self.violations} bad messages; last: {reason}")
        self._events.append(Violation(reason, kind))

    def _receive_connected(self, msg: dict[str, object]) -> None:
        if self.state is not StreamState.AWAITING_START:
            self._violation("out-of-order", "second websocket:connected ignored")
            return
        rate = _rate_of(msg.get("content-type"))
        if rate != self.rate:
            # Nothing of the call can be decoded at another rate: refuse the stream.
            raise RemoteProtocolError(
                f"websocket:connected with content-type {log_field(msg.get('content-type'), 40)}"
                f", not audio/l16;rate={self.rate}"
            )
        headers, dropped = bounded_parameters(
            {k: v for k, v in msg.items() if k not in ("event", "content-type")}, 32
        )
        call = headers.get(CALL_HEADER)
        if not is_uuid(call):
            # It names a file, a REST URL and log lines: nothing else may stand in for it.
            raise RemoteProtocolError(
                f"websocket:connected without a Vonage call uuid ({log_field(call, 40)})",
                kind="bad-identifier",
            )
        assert isinstance(call, str)
        if dropped:
            self._violation("bad-start", "headers too many, too long or not strings; dropped")
        self.call_uuid = call
        self.state = StreamState.STREAMING
        self._events.append(
            StreamOpened(
                call_id=call,
                stream_id=call,
                control_id=call,
                parameters=headers,
                media_format=str(self.codec.format),
            )
        )

    def _receive_audio(self, pcm: bytes) -> None:
        if self.state is StreamState.AWAITING_START:
            self._violation("out-of-order", "audio before websocket:connected")
            return
        if not pcm or len(pcm) % 2 or len(pcm) > self.max_audio_bytes:
            self._violation("bad-media", f"audio frame of {len(pcm)} bytes")
            return
        self._events.append(CallerAudio(self.codec.to_core(pcm)))

    def _receive_notify(self, msg: dict[str, object]) -> None:
        payload = msg.get("payload")
        name = payload.get("mark") if isinstance(payload, dict) else None
        if not isinstance(name, str) or len(name) > MAX_MARK_CHARS:
            self._violation("bad-mark", "websocket:notify without a mark of ours")
            return
        self._events.append(PlayedUpTo(name))

    def _receive_dtmf(self, msg: dict[str, object]) -> None:
        digit = msg.get("digit")
        if not isinstance(digit, str) or digit not in DTMF_DIGITS:
            self._violation("bad-dtmf", f"websocket:dtmf with digit {log_field(digit, 10)}")
            return
        self._events.append(DigitPressed(digit))

    # -- sending -----------------------------------------------------------------------------

    def _require_streaming(self) -> None:
        if self.state is not StreamState.STREAMING:
            raise LocalProtocolError(f"cannot send while the stream is {self.state.value}")

    def send_audio(self, ulaw: bytes) -> None:
        """Queue 20 ms of the call's mu-law as L16 at the stream's rate, in whole 20 ms binary
        frames: the 16 kHz resampler holds a few samples back, so its output is re-framed
        here (what remains waits for the next frame)."""
        self._require_streaming()
        pcm = self.codec.from_core(ulaw)
        size = self._frame_bytes
        if self._pending:
            pcm = self._pending + pcm
        whole = len(pcm) - len(pcm) % size
        for start in range(0, whole, size):
            self._out.append(pcm[start : start + size])
        self._pending = pcm[whole:]

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
        self._pending = b""
        self.codec.cleared()

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

    def is_clear(self, message: str | bytes) -> bool:
        return message is _CLEAR
