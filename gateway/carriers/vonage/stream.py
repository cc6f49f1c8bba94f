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

from typing import Any

import orjson

from gateway.ids import is_uuid
from gateway.ops.logs import field as log_field
from gateway.streams.codec import Encoding, WireFormat
from gateway.streams.events import (
    CLOSE_TOO_BIG,
    CallerAudio,
    RemoteProtocolError,
    StreamOpened,
    StreamState,
    bounded_parameters,
)
from gateway.streams.wire import JsonStreamCore

__all__ = ["CALL_HEADER", "RATES", "VonageStream", "content_type", "frame_bytes"]

#: The linear PCM rates the gateway asks for in the NCCO (the NCCO reference also allows
#: ``audio/l16;rate=24000``, which the call core's codecs do not take).
RATES = (8000, 16000)
#: The NCCO header naming the call leg the socket carries (its UUID, from the answer webhook).
CALL_HEADER = "call_uuid"
#: The gateway's own mark names are ``generation:position``; an echo longer than this is not one.
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


class VonageStream(JsonStreamCore):
    """One Vonage websocket call leg, from the gateway's side (a
    :class:`~gateway.streams.MediaStream` on the shared :class:`JsonStreamCore`, which takes
    its text frames; the binary ones, audio, are taken here).

    ``rate`` is the rate the gateway's NCCO asked for; a socket announcing another is refused.
    Limits are constructor arguments (see :class:`JsonStreamCore`): ``max_message_bytes``
    bounds one frame (a 20 ms frame at 16 kHz is 640 bytes), one audio message may hold up to
    four frames, ``max_rate`` is the sustained messages per second (Vonage sends 50 audio
    frames plus notify echoes, about 75, so 150 is twice a real call) with a burst of ``burst``.
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
        super().__init__(
            max_message_bytes=max_message_bytes,
            max_payload_bytes=4 * frame_bytes(rate),
            max_rate=max_rate,
            burst=burst,
            max_violations=max_violations,
        )
        self.rate = rate
        self.call_uuid: str | None = None
        self._frame_bytes = frame_bytes(rate)
        self._pending = b""

    # -- receiving ---------------------------------------------------------------------------

    def receive_message(self, message: str | bytes, now: float) -> None:
        """Parse one websocket frame from Vonage (``bytes`` for a binary frame, ``str`` for a
        text one). Raises RemoteProtocolError if fatal."""
        if isinstance(message, str):
            if message:  # an empty text frame says nothing (the simulator's last word)
                super().receive_message(message, now)
            return
        self.messages_received += 1
        self._policer.take(now)
        if len(message) > self.max_message_bytes:
            raise RemoteProtocolError(
                f"message of {len(message)} bytes exceeds {self.max_message_bytes}",
                CLOSE_TOO_BIG,
                "oversize",
            )
        if self.state is StreamState.AWAITING_START:
            self._violation("out-of-order", "audio before websocket:connected")
            return
        if not message or len(message) % 2 or len(message) > self.max_payload_bytes:
            self._violation("bad-media", f"audio frame of {len(message)} bytes")
            return
        assert self.codec is not None
        self._events.append(CallerAudio(self.codec.to_core(message)))

    def _on_event(self, event: str, msg: dict[str, Any]) -> None:
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

    def _receive_connected(self, msg: dict[str, Any]) -> None:
        if self.state is not StreamState.AWAITING_START:
            self._violation("out-of-order", "second websocket:connected ignored")
            return
        rate = _rate_of(msg.get("content-type"))
        if rate != self.rate:
            # Nothing of the call can be decoded at another rate: refuse the stream.
            raise RemoteProtocolError(
                f"websocket:connected with content-type {log_field(msg.get('content-type'), 40)}"
                f", not audio/l16;rate={self.rate}",
                kind="bad-format",
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
        wire = WireFormat(Encoding.L16, self.rate)
        self._opened(
            StreamOpened(
                call_id=call,
                stream_id=call,
                control_id=call,
                parameters=headers,
                media_format=f"vonage l16-le@{self.rate}",
            ),
            wire,
            _CLEAR,
        )

    def _receive_notify(self, msg: dict[str, Any]) -> None:
        payload = msg.get("payload")
        name = payload.get("mark") if isinstance(payload, dict) else None
        self._played_up_to(name, "websocket:notify")

    def _receive_dtmf(self, msg: dict[str, Any]) -> None:
        self._digit_pressed(msg.get("digit"), "websocket:dtmf")

    # -- sending -----------------------------------------------------------------------------

    def send_audio(self, ulaw: bytes) -> None:
        """Queue 20 ms of the call's mu-law as L16 at the stream's rate, in whole 20 ms binary
        frames (Vonage plays 20 ms messages; what a resampler holds back waits for the next)."""
        codec = self._require_streaming()
        pcm = codec.from_core(ulaw)
        size = self._frame_bytes
        if self._pending:
            pcm = self._pending + pcm
        whole = len(pcm) - len(pcm) % size
        for start in range(0, whole, size):
            self._queue(pcm[start : start + size])
        self._pending = pcm[whole:]

    def send_mark(self, name: str) -> None:
        """Queue a ``notify`` whose echo says the audio before it has played."""
        self._require_streaming()
        self._queue('{"action":"notify","payload":{"mark":' + orjson.dumps(name).decode() + "}}")

    def send_clear(self) -> None:
        """The shared clear (ahead of everything not yet written), and the part-frame held
        back, which never reached Vonage, dropped with the rest."""
        self._pending = b""
        super().send_clear()
