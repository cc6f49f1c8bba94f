"""Plivo Audio Streams (bidirectional), sans-I/O.

Wire format, from Plivo's "Audio Streaming" documentation (plivo.com/docs/voice/concepts/
audio-streaming and the ``<Stream>`` XML element) and the schemas of Plivo's own stream SDK
(github.com/plivo/plivo-stream-sdk-node, ``src/types.ts``):

- Plivo -> us: ``start`` (``sequenceNumber``, ``start.callId`` and ``start.streamId``, both
  UUIDs, ``start.accountId``, ``start.tracks``, ``start.mediaFormat`` {``encoding``,
  ``sampleRate``}, ``extra_headers``); ``media`` (``streamId``, ``media.track``,
  ``media.timestamp``, ``media.chunk``, ``media.payload`` base64); ``dtmf`` (``dtmf.digit``);
  ``playedStream`` (``streamId``, ``name``) once the audio before a checkpoint has played;
  ``clearedAudio`` once a clear is done. There is no ``connected`` and no ``stop``: the
  stream ends when the socket closes.
- us -> Plivo: ``playAudio`` (``media`` {``contentType``, ``sampleRate``, ``payload``}),
  ``checkpoint`` (``streamId``, ``name``), ``clearAudio`` (``streamId``).

Encodings: ``audio/x-mulaw`` at 8 kHz, ``audio/x-l16`` (raw little-endian PCM) at 8 or
16 kHz, as the answer's ``contentType`` asked. The stream's other parameters (dial-plan route,
stream token) travel in the stream URL's query string, which Plivo's V3 signature on the
websocket upgrade covers; the adapter hands them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pybase64

from gateway.ids import is_uuid
from gateway.ops.logs import field as log_field
from gateway.streams.codec import Encoding, WireFormat
from gateway.streams.events import (
    CallerAudio,
    RemoteProtocolError,
    StreamOpened,
    StreamState,
)
from gateway.streams.wire import JsonStreamCore, small_int

__all__ = ["CONTENT_TYPES", "PlivoStream", "content_type"]

#: ``<Stream contentType>`` values -> wire format (the ones Plivo documents for streams).
CONTENT_TYPES: dict[str, WireFormat] = {
    "audio/x-mulaw;rate=8000": WireFormat(Encoding.ULAW, 8000),
    "audio/x-l16;rate=8000": WireFormat(Encoding.L16, 8000),
    "audio/x-l16;rate=16000": WireFormat(Encoding.L16, 16000),
}
_ENCODINGS = {"audio/x-mulaw": Encoding.ULAW, "audio/x-l16": Encoding.L16}


def content_type(wire: WireFormat) -> tuple[str, int]:
    """The ``playAudio`` ``contentType`` and ``sampleRate`` of a wire format."""
    return ("audio/x-mulaw" if wire.encoding is Encoding.ULAW else "audio/x-l16"), wire.rate


class PlivoStream(JsonStreamCore):
    """One bidirectional Plivo audio stream, from the gateway's side.

    ``parameters`` are the stream URL's query parameters (bounded by the adapter). The
    ``start`` must name its call and stream with UUIDs (``gateway.ids``), or the stream is
    refused with RemoteProtocolError.
    """

    exact_heard = True
    stream_key = "streamId"

    def __init__(self, parameters: Mapping[str, str] | None = None, **limits: Any) -> None:
        super().__init__(**limits)
        self.parameters = dict(parameters or {})
        self.stream_id: str | None = None
        self.call_id: str | None = None
        self._media_prefix = ""

    def _on_event(self, event: str, msg: dict[str, Any]) -> None:
        if event == "media":
            self._receive_media(msg)
        elif event == "playedStream":
            if self._in_call_of(msg, event):
                self._played_up_to(msg.get("name"), "'playedStream'")
        elif event == "clearedAudio":
            self._in_call_of(msg, event)  # the clear's confirmation: nothing more to do
        elif event == "dtmf":
            self._receive_dtmf(msg)
        elif event == "start":
            self._receive_start(msg)
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
        call_id, stream_id = start.get("callId"), start.get("streamId")
        if not is_uuid(call_id):
            raise RemoteProtocolError(
                f"'start' with callId {log_field(call_id, 40)}", kind="bad-identifier"
            )
        if not is_uuid(stream_id):
            raise RemoteProtocolError(
                f"'start' with streamId {log_field(stream_id, 40)}", kind="bad-identifier"
            )
        assert isinstance(call_id, str) and isinstance(stream_id, str)
        fmt = start.get("mediaFormat")
        fmt = fmt if isinstance(fmt, dict) else {}
        encoding = _ENCODINGS.get(fmt.get("encoding", "audio/x-mulaw"))
        rate = small_int(fmt.get("sampleRate"), 8000)
        try:
            wire = WireFormat(encoding, rate) if encoding is not None and rate else None
        except ValueError:
            wire = None
        if wire is None:
            raise RemoteProtocolError(
                f"unsupported mediaFormat {log_field(fmt, 80)}", kind="bad-format"
            )
        self.stream_id, self.call_id = stream_id, call_id
        kind, rate = content_type(wire)
        sid = orjson.dumps(stream_id).decode()
        self._media_prefix = (
            '{"event":"playAudio","media":{"contentType":"'
            + kind
            + '","sampleRate":'
            + str(rate)
            + ',"payload":"'
        )
        self._checkpoint_prefix = '{"event":"checkpoint","streamId":' + sid + ',"name":'
        self._opened(
            StreamOpened(
                call_id=call_id,
                stream_id=stream_id,
                control_id=call_id,
                parameters=self.parameters,
                media_format=f"plivo {kind}@{rate}",
            ),
            wire,
            '{"event":"clearAudio","streamId":' + sid + "}",
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
        self._events.append(CallerAudio(self.codec.to_core(audio)))

    def _receive_dtmf(self, msg: dict[str, Any]) -> None:
        if not self._in_call_of(msg, "dtmf"):
            return
        dtmf = msg.get("dtmf")
        self._digit_pressed(dtmf.get("digit") if isinstance(dtmf, dict) else None, "'dtmf'")

    # -- sending -----------------------------------------------------------------------------

    def send_audio(self, ulaw: bytes) -> None:
        """Queue a ``playAudio`` with one frame in the stream's content type."""
        codec = self._require_streaming()
        payload = pybase64.b64encode_as_string(codec.from_core(ulaw))
        self._queue(self._media_prefix + payload + '"}}')

    def send_mark(self, name: str) -> None:
        """Queue a ``checkpoint``: Plivo answers ``playedStream`` once it has played."""
        self._require_streaming()
        self._queue(self._checkpoint_prefix + orjson.dumps(name).decode() + "}")
