"""Exotel's Voicebot applet (bidirectional stream), sans-I/O.

:class:`ExotelStream` takes websocket text frames in (:meth:`ExotelStream.receive_message`) and
gives typed events out (:meth:`ExotelStream.events_received`); the gateway's audio, marks and
clears go in through ``send_*`` and come out of :meth:`ExotelStream.next_message`. It never
touches a socket or reads a clock: time is passed in.

The protocol, from Exotel's "WebSocket protocol" page
(https://developer.exotel.com/docs/agentstream/websocket-protocol) and "Working with the Stream
and Voicebot Applet" (https://developer.exotel.com/docs/agentstream/stream-voicebot-applet):

- Exotel sends ``connected``, then ``start`` (``stream_sid``; ``start.call_sid``,
  ``account_sid``, ``from``, ``to``, ``custom_parameters``, ``media_format``), then ``media``
  (``media.chunk``, ``media.timestamp``, ``media.payload``), ``dtmf`` (``dtmf.digit``),
  ``mark`` (an echo, "sent when audio you previously sent has finished playing") and ``stop``.
  Every message carries ``sequence_number`` and ``stream_sid``, numbers as strings.
- Audio is "raw/slin (16-bit, 8kHz, mono PCM little-endian) encoded in base64".
- The bot sends ``media``, ``mark`` and ``clear``, each with ``stream_sid``. A media chunk must
  be a multiple of 320 bytes and at most 100 KB; Exotel asks for at least 100 ms ("smaller
  chunks risk audio distortion"). This core therefore gathers the 20 ms frames it is given into
  one chunk and sends it when a mark closes it (the call's playout puts a mark every
  ``mark_every`` frames and after the last frame of an utterance) or when it reaches
  ``max_chunk_frames``: a chunk is as long as the mark interval the gateway picks
  (``OVERTALK_MARK_EVERY``: 2 frames by default, so 40 ms chunks; 5 gives Exotel's 100 ms).
  Exotel echoes marks as they play, so the heard position is exact.

The core speaks the shared media-stream events (:mod:`gateway.streams.events`): the call's
8 kHz mu-law is transcoded to and from the wire's L16 by :class:`~gateway.streams.WireCodec`.
Garbage is handled per message (a :class:`~gateway.streams.Violation` event); only abuse that
threatens the process (oversized frames, floods, a flood of garbage, identifiers that are not
Exotel's) raises :class:`~gateway.streams.RemoteProtocolError` and ends this call only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pybase64

from gateway.ids import is_exotel_sid
from gateway.ops.logs import field as log_field
from gateway.streams.codec import Encoding, WireFormat
from gateway.streams.events import (
    CallerAudio,
    LocalProtocolError,
    RemoteProtocolError,
    StreamEnded,
    StreamOpened,
    StreamState,
    bounded_parameters,
)
from gateway.streams.wire import JsonStreamCore, small_int

__all__ = [
    "FRAME_BYTES",
    "MAX_CHUNK_BYTES",
    "ROUTE_PARAMETER",
    "SAMPLE_RATE",
    "ExotelStream",
    "pack_route",
]

#: The applet's default rate, which the gateway asks for (``?sample-rate=8000``).
SAMPLE_RATE = 8000
#: One 20 ms frame of 16-bit PCM at 8 kHz: also the unit every chunk must be a multiple of.
FRAME_BYTES = 320
#: Exotel's ceiling on one chunk it accepts (100 KB).
MAX_CHUNK_BYTES = 100_000
#: The gateway's custom parameters (route names and token) in ``start``: generous bounds.
MAX_PARAMETERS = 16
MAX_PARAMETER_CHARS = 500
_DTMF_DIGITS = frozenset("0123456789*#")
#: The applet passes at most 3 custom parameters, so the dial-plan names a stream needs
#: (route, branch, plan and path) travel packed in one, ``route/branch/plan/path``: none of
#: them can hold a ``/`` (dial-plan names are ``[A-Za-z0-9_.-]``, branch labels names or
#: ``#n``, the plan a hex digest, a path dotted names).
ROUTE_PARAMETER = "dialplan"
_ROUTE_NAMES = ("route", "branch", "plan", "path")


def pack_route(parameters: Mapping[str, str]) -> dict[str, str]:
    """``parameters`` with the dial-plan names packed into :data:`ROUTE_PARAMETER`."""
    packed = {k: v for k, v in parameters.items() if k not in _ROUTE_NAMES}
    if parameters.get("route"):
        packed[ROUTE_PARAMETER] = "/".join(parameters.get(k, "") for k in _ROUTE_NAMES)
    return packed


def _unpack_route(parameters: dict[str, str]) -> dict[str, str]:
    """The names of a packed :data:`ROUTE_PARAMETER` as parameters of their own (they stand
    in for any sent separately); unchanged when there is none or it is malformed."""
    packed = parameters.pop(ROUTE_PARAMETER, None)
    names = packed.split("/") if packed else []
    if len(names) != len(_ROUTE_NAMES):
        return parameters
    for key in _ROUTE_NAMES:
        parameters.pop(key, None)
    parameters.update({k: v for k, v in zip(_ROUTE_NAMES, names, strict=True) if v})
    return parameters


def _text(value: object, limit: int = 100) -> str:
    """A short string field (a phone number), or empty when it is anything else."""
    return value if isinstance(value, str) and len(value) <= limit else ""


class ExotelStream(JsonStreamCore):
    """One Voicebot applet stream, from the gateway's side (a
    :class:`~gateway.streams.MediaStream` on the shared :class:`JsonStreamCore`).

    Limits are constructor arguments (see :class:`JsonStreamCore`); the defaults fit Exotel:
    a media message holds about 100 ms (~2.2 KB of JSON), so one message may hold up to a
    second of audio (``max_payload_bytes``) in ``max_message_bytes``, and about 10 media
    messages a second plus the mark echoes arrive (``max_rate`` 100 is far above a real call).
    ``max_chunk_frames`` caps an outbound chunk gathered without a mark (1 s).
    """

    #: Exotel echoes a mark "when audio you previously sent has finished playing".
    exact_heard = True
    stream_key = "stream_sid"

    def __init__(
        self,
        *,
        max_message_bytes: int = 65_536,
        max_payload_bytes: int = SAMPLE_RATE * 2,
        max_rate: float = 100.0,
        burst: float = 200.0,
        max_violations: int = 100,
        max_chunk_frames: int = 50,
    ) -> None:
        super().__init__(
            max_message_bytes=max_message_bytes,
            max_payload_bytes=max_payload_bytes,
            max_rate=max_rate,
            burst=burst,
            max_violations=max_violations,
        )
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.max_chunk_frames = max_chunk_frames
        self.chunks_sent = 0
        self._chunk: list[bytes] = []
        self._prefix = ""

    # -- receiving ---------------------------------------------------------------------------

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
                self._chunk.clear()
                self._events.append(StreamEnded())
        elif event == "connected":
            if self.state is not StreamState.AWAITING_START:
                self._violation("out-of-order", "'connected' after 'start'")
        elif event == "clear":
            pass  # an acknowledgement of ours, where Exotel sends one: nothing to do
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
        stream_sid = start.get("stream_sid", msg.get("stream_sid"))
        call_sid = start.get("call_sid")
        account_sid = start.get("account_sid", "")
        if not (is_exotel_sid(stream_sid) and is_exotel_sid(call_sid)) or (
            account_sid and not is_exotel_sid(account_sid)
        ):
            # Nothing about such a stream can name a file, a REST resource or a log line.
            raise RemoteProtocolError(
                f"'start' with identifiers not Exotel's: stream {log_field(stream_sid, 40)}, "
                f"call {log_field(call_sid, 40)}",
                kind="bad-identifier",
            )
        assert isinstance(stream_sid, str) and isinstance(call_sid, str)
        fmt = start.get("media_format")
        if isinstance(fmt, dict) and small_int(fmt.get("sample_rate"), SAMPLE_RATE) != SAMPLE_RATE:
            self._violation("bad-start", f"unsupported media_format {log_field(fmt)}")
            return
        params, dropped = bounded_parameters(
            start.get("custom_parameters") or {}, MAX_PARAMETERS, MAX_PARAMETER_CHARS
        )
        if dropped:
            self._violation("bad-start", "custom_parameters too many, too long or not strings")
        params = _unpack_route(params)
        # The numbers Exotel gives in ``start`` are the call's; parameters cannot override them.
        caller, called = _text(start.get("from")), _text(start.get("to"))
        if caller:
            params["from"] = caller
        if called:
            params["to"] = called
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self._prefix = '{"stream_sid":' + orjson.dumps(stream_sid).decode() + ',"event":'
        wire = WireFormat(Encoding.L16, SAMPLE_RATE)
        self._opened(
            StreamOpened(
                call_id=call_sid,
                stream_id=stream_sid,
                control_id=call_sid,
                parameters=params,
                media_format=f"exotel l16-le@{SAMPLE_RATE}",
            ),
            wire,
            self._prefix + '"clear"}',
        )

    def _receive_media(self, msg: dict[str, Any]) -> None:
        if not self._in_call_of(msg, "media"):
            return
        media = msg.get("media")
        if not isinstance(media, dict):
            self._violation("bad-media", "'media' without a media object")
            return
        pcm = self._payload(media.get("payload"))
        if pcm is None:
            return
        if len(pcm) % 2:
            self._violation("bad-media", f"'media' of {len(pcm)} bytes: not 16-bit samples")
            return
        assert self.codec is not None
        timestamp = small_int(media.get("timestamp"), -1)
        self._events.append(
            CallerAudio(self.codec.to_core(pcm), -1 if timestamp is None else timestamp)
        )

    def _receive_mark(self, msg: dict[str, Any]) -> None:
        if not self._in_call_of(msg, "mark"):
            return
        mark = msg.get("mark")
        self._played_up_to(mark.get("name") if isinstance(mark, dict) else None, "'mark'")

    def _receive_dtmf(self, msg: dict[str, Any]) -> None:
        if not self._in_call_of(msg, "dtmf"):
            return
        dtmf = msg.get("dtmf")
        self._digit_pressed(
            dtmf.get("digit") if isinstance(dtmf, dict) else None, "'dtmf'", _DTMF_DIGITS
        )

    # -- sending -----------------------------------------------------------------------------

    def send_audio(self, ulaw: bytes) -> None:
        """Add one 20 ms frame of the call's mu-law, as L16, to the open chunk."""
        codec = self._require_streaming()
        pcm = codec.from_core(ulaw)
        if len(pcm) % FRAME_BYTES:
            raise LocalProtocolError(f"{len(ulaw)} bytes of mu-law are not whole 20 ms frames")
        self._chunk.append(pcm)
        if len(self._chunk) >= self.max_chunk_frames:
            self._close_chunk()

    def send_mark(self, name: str) -> None:
        """Close the open chunk and queue a ``mark`` behind it."""
        self._require_streaming()
        self._close_chunk()
        name_json = orjson.dumps(name).decode()
        self._queue(self._prefix + '"mark","mark":{"name":' + name_json + "}}")

    def _close_chunk(self) -> None:
        if not self._chunk:
            return
        pcm = b"".join(self._chunk)
        self._chunk.clear()
        self.chunks_sent += 1
        payload = pybase64.b64encode_as_string(pcm)
        self._queue(self._prefix + '"media","media":{"payload":"' + payload + '"}}')

    def send_clear(self) -> None:
        """The shared clear (ahead of everything not yet written), and the open chunk, which
        never reached Exotel, dropped with the rest."""
        self._chunk.clear()
        super().send_clear()
