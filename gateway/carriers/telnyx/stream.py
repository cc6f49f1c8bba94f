"""Telnyx Media Streaming over WebSockets (bidirectional, RTP mode), sans-I/O.

Wire format, from Telnyx's "Stream call media over WebSocket" AsyncAPI page
(developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket) and its
"Media Streaming" guide (developers.telnyx.com/docs/voice/programmable-voice/media-streaming):

- Telnyx -> us: ``connected``; ``start`` with ``stream_id`` and ``start.call_control_id``,
  ``start.from``/``to``, ``start.custom_parameters`` and ``start.media_format``
  (``encoding`` PCMU/PCMA/L16..., ``sample_rate``, ``channels``); ``media`` with
  ``media.payload`` (base64 RTP payload, no header), ``media.track``, ``chunk``,
  ``timestamp``; ``dtmf`` with ``dtmf.digit``; ``mark`` with ``mark.name`` once the audio
  sent before it has played; ``error`` with ``payload.code``/``title``; ``stop``.
- us -> Telnyx (``stream_bidirectional_mode: rtp``): ``media`` with ``media.payload`` (RTP
  payload in the bidirectional codec, "20 milliseconds to 30 seconds of audio" per message),
  ``mark`` with ``mark.name``, and ``clear``, which drops the audio queued for playback.

Telnyx's L16 is an RTP payload, so network byte order (RFC 3551 section 4.5.11).
"""

from __future__ import annotations

from typing import Any

import orjson
import pybase64

from gateway.ids import is_telnyx_call_control_id, is_uuid
from gateway.ops.logs import field as log_field
from gateway.streams.codec import Encoding, WireFormat
from gateway.streams.events import (
    CallerAudio,
    RemoteProtocolError,
    StreamEnded,
    StreamOpened,
    StreamState,
    bounded_parameters,
)
from gateway.streams.wire import JsonStreamCore, small_int

__all__ = ["CODECS", "TelnyxStream"]

#: The ``media_format.encoding`` names the gateway takes, with their wire formats. G.722, Opus
#: and AMR-WB (also offered by Telnyx) would need decoders the gateway does not carry.
CODECS: dict[str, tuple[Encoding, tuple[int, ...]]] = {
    "PCMU": (Encoding.ULAW, (8000,)),
    "PCMA": (Encoding.ALAW, (8000,)),
    "L16": (Encoding.L16, (8000, 16000)),
}
#: Our mark names are ``generation:position``; an echo longer than this is not one of ours.
_CLEAR = '{"event":"clear"}'


class TelnyxStream(JsonStreamCore):
    """One bidirectional Telnyx media stream, from the gateway's side.

    The ``start`` must name its call with a Telnyx call control id and its stream with a
    UUID (``gateway.ids``): a stream that names them otherwise is refused with
    RemoteProtocolError, since such ids go into REST paths, file names and log lines.
    """

    exact_heard = True
    stream_key = "stream_id"

    def __init__(self, **limits: Any) -> None:
        super().__init__(**limits)
        self.stream_id: str | None = None
        self.call_control_id: str | None = None
        self._media_prefix = '{"event":"media","media":{"payload":"'

    def _on_event(self, event: str, msg: dict[str, Any]) -> None:
        if event == "media":
            self._receive_media(msg)
        elif event == "mark":
            self._receive_mark(msg)
        elif event == "dtmf":
            self._receive_dtmf(msg)
        elif event == "start":
            self._receive_start(msg)
        elif event == "stop":
            if self._in_call_of(msg, "stop"):
                self.state = StreamState.STOPPED
                self._events.append(StreamEnded())
        elif event == "error":
            payload = msg.get("payload")
            title = payload.get("title") if isinstance(payload, dict) else None
            self._violation("carrier-error", f"Telnyx reported an error: {log_field(title, 80)}")
        elif event == "connected":
            if self.state is not StreamState.AWAITING_START:
                self._violation("out-of-order", "'connected' after 'start'")
        else:
            self._violation("unknown-event", f"unknown event {log_field(event, 40)}")

    def _receive_start(self, msg: dict[str, Any]) -> None:
        if self.state is not StreamState.AWAITING_START:
            self._violation("out-of-order", "second 'start' ignored")
            return
        start = msg.get("start")
        if not isinstance(start, dict):
            self._violation("bad-start", "'start' without a start object")
            return
        stream_id = msg.get("stream_id")
        control_id = start.get("call_control_id")
        if not is_uuid(stream_id):
            raise RemoteProtocolError(
                f"'start' with stream_id {log_field(stream_id, 40)}", kind="bad-identifier"
            )
        if not is_telnyx_call_control_id(control_id):
            raise RemoteProtocolError(
                f"'start' with call_control_id {log_field(control_id, 40)}", kind="bad-identifier"
            )
        assert isinstance(stream_id, str) and isinstance(control_id, str)
        fmt = start.get("media_format")
        fmt = fmt if isinstance(fmt, dict) else {}
        name = fmt.get("encoding", "PCMU")
        rate = small_int(fmt.get("sample_rate"), 8000)
        codec = CODECS.get(name) if isinstance(name, str) else None
        if codec is None or rate not in codec[1] or small_int(fmt.get("channels"), 1) != 1:
            raise RemoteProtocolError(
                f"unsupported media_format {log_field(fmt, 80)}", kind="bad-format"
            )
        assert rate is not None
        wire = WireFormat(codec[0], rate, big_endian=True)
        params, dropped = bounded_parameters(start.get("custom_parameters"))
        if dropped:
            self._violation("bad-start", "custom_parameters too many, too long or not strings")
        for key, field in (("from", "from"), ("to", "to")):
            value = start.get(field)
            if isinstance(value, str) and key not in params:
                params[key] = value[:100]
        self.stream_id = stream_id
        self.call_control_id = control_id
        self._opened(
            StreamOpened(
                call_id=control_id,
                stream_id=stream_id,
                control_id=control_id,
                parameters=params,
                media_format=f"telnyx {name}@{rate}",
            ),
            wire,
            _CLEAR,
        )

    def _receive_media(self, msg: dict[str, Any]) -> None:
        if not self._in_call_of(msg, "media"):
            return
        media = msg.get("media")
        if not isinstance(media, dict):
            self._violation("bad-media", "'media' without a media object")
            return
        if media.get("track", "inbound") != "inbound":
            return  # only the caller's track feeds the engine
        audio = self._payload(media.get("payload"))
        if audio is None:
            return
        assert self.codec is not None
        # No timestamp is passed on: the docs do not give media.timestamp's unit, and a wrong
        # guess would fill phantom gaps with silence.
        self._events.append(CallerAudio(self.codec.to_core(audio)))

    def _receive_mark(self, msg: dict[str, Any]) -> None:
        if not self._in_call_of(msg, "mark"):
            return
        mark = msg.get("mark")
        self._played_up_to(mark.get("name") if isinstance(mark, dict) else None, "'mark'")

    def _receive_dtmf(self, msg: dict[str, Any]) -> None:
        if not self._in_call_of(msg, "dtmf"):
            return
        dtmf = msg.get("dtmf")
        self._digit_pressed(dtmf.get("digit") if isinstance(dtmf, dict) else None, "'dtmf'")

    # -- sending -----------------------------------------------------------------------------

    def send_audio(self, ulaw: bytes) -> None:
        """Queue a ``media`` message with one frame in the stream's codec."""
        codec = self._require_streaming()
        payload = pybase64.b64encode_as_string(codec.from_core(ulaw))
        self._queue(self._media_prefix + payload + '"}}')

    def send_mark(self, name: str) -> None:
        self._require_streaming()
        self._queue('{"event":"mark","mark":{"name":' + orjson.dumps(name).decode() + "}}")
