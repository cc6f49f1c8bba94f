"""Exotel's side of a Voicebot applet call, sans I/O: the stand-in the simulator places calls
with.

:class:`ExotelDialer` asks the applet's dynamic URL for the stream to open and reads its answer;
:class:`ExotelMediaSim` plays the applet's end of the websocket. Every rule cites its source:

- [PROTO] "WebSocket protocol", https://developer.exotel.com/docs/agentstream/websocket-protocol
- [APPLET] "Working with the Stream and Voicebot Applet",
  https://developer.exotel.com/docs/agentstream/stream-voicebot-applet
- [DYN] "Working with Connect applet (Dynamic URL)": the call details Exotel passes to a
  dynamic URL (``CallSid``, ``CallFrom``, ``CallTo``, ``Direction``),
  https://support.exotel.com/support/solutions/articles/3000096873

Two liberties, both harmless to the gateway: the dynamic URL is POSTed as a form (the shared
dialer POSTs; Exotel GETs it with the same fields in the query, which the gateway also takes),
and caller audio goes out every 20 ms (Exotel sends "every ~100 ms").

Garbage from the gateway never raises: each bad message is recorded in ``violations`` with its
reason and otherwise ignored. Time is passed in to every method that depends on it.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
import pybase64

from gateway.sim.carriers.dial import StreamPlan, Webhook
from gateway.sim.carriers.wire import L16, Wire, WireSim
from gateway.sim.media import Inbound, LogEntry, LogKind, MarkEcho
from gateway.sim.report import CallReport

__all__ = ["ExotelDialer", "ExotelMediaSim", "new_sid"]

#: [APPLET] "raw/slin (16-bit, 8kHz, mono PCM little-endian) encoded in base64".
SAMPLE_RATE = 8000
#: [APPLET] a chunk "must be a multiple of 320 bytes" and at most 100 KB.
CHUNK_UNIT = 320
MAX_CHUNK = 100_000
#: [APPLET] a chunk under 100 ms "risks audio distortion": counted, not refused.
MIN_CHUNK = SAMPLE_RATE * 2 // 10
#: [APPLET] custom parameters: "Up to 3 key-value pairs ... (max 256 chars total)".
MAX_CUSTOM = 3
MAX_CUSTOM_CHARS = 256
DTMF_DIGITS = frozenset("0123456789*#")


def new_sid() -> str:
    """An opaque Exotel-like SID: 32 lowercase hex digits."""
    return secrets.token_hex(16)


class ExotelMediaSim(WireSim):
    """The Exotel end of one Voicebot stream."""

    def __init__(
        self,
        call_sid: str,
        caller: str,
        called: str,
        custom_parameters: dict[str, str],
        *,
        keep_media_log: bool = True,
    ) -> None:
        super().__init__(Wire(L16, SAMPLE_RATE), keep_media_log=keep_media_log)
        self.call_sid = call_sid
        self.stream_sid = new_sid()
        self.account_sid = "overtalksim"
        self.caller, self.called = caller, called
        self.custom_parameters = dict(custom_parameters)
        self.short_chunks = 0
        self._seq = 0
        self._chunk = 0
        self._t_start = 0.0

    def _message(self, event: str, **fields: Any) -> bytes:
        self._seq += 1  # [PROTO] every message has a sequence_number, a string
        return orjson.dumps(
            {
                "event": event,
                "sequence_number": str(self._seq),
                "stream_sid": self.stream_sid,
                **fields,
            }
        )

    def open_messages(self, now: float) -> list[bytes]:
        """[PROTO] ``connected``, then ``start``."""
        self.started = True
        self._t_start = now
        start = self._message(
            "start",
            start={
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
        )
        return [b'{"event":"connected"}', start]

    def media(self, ulaw: bytes, now: float) -> bytes:
        """[PROTO] caller audio: base64 16-bit PCM, its chunk number and timestamp (ms)."""
        self._chunk += 1
        pcm = self._to_wire(ulaw)
        return self._message(
            "media",
            media={
                "chunk": str(self._chunk),
                "timestamp": str(round((now - self._t_start) * 1000)),
                "payload": pybase64.b64encode_as_string(pcm),
            },
        )

    def dtmf(self, digit: str, now: float) -> bytes:
        """[PROTO] a key press."""
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self.log.append(LogEntry(now, LogKind.DTMF, digit))
        return self._message("dtmf", dtmf={"digit": digit, "duration": "100"})

    def echo_message(self, echo: MarkEcho) -> bytes:
        """[PROTO] ``mark``: "sent when audio you previously sent has finished playing"."""
        self.marks_echoed += 1
        return self._message("mark", mark={"name": echo.name})

    def stop(self, now: float) -> bytes:
        """[PROTO] ``stop``; the gateway's messages after it are ignored."""
        self._play_until(now)
        self.stopped = True
        ids = {"call_sid": self.call_sid, "account_sid": self.account_sid}
        return self._message("stop", stop={**ids, "reason": "callended"})

    def _on_message(self, msg: dict[str, Any], now: float) -> Inbound:
        """One JSON message from the gateway (the base class framed and parsed it)."""
        event = msg.get("event")
        if event not in ("media", "mark", "clear"):
            return self._violation(now, str(event), "unknown event ([PROTO] media, mark, clear)")
        if msg.get("stream_sid") != self.stream_sid:
            return self._violation(now, event, "without this stream_sid ([PROTO])")
        if event == "media":
            return self._on_media(msg, now)
        if event == "mark":
            mark = msg.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                return self._violation(now, "mark", "without mark.name")
            return self._accept_mark(name, now)
        # [PROTO] clear drops the audio not yet played. Exotel documents no echo of the marks
        # queued behind it, so the stand-in sends none: a gateway must not wait for them.
        return self._accept_clear(now, echo_pending=False)

    def _on_media(self, msg: dict[str, Any], now: float) -> Inbound:
        media = msg.get("media")
        payload = media.get("payload") if isinstance(media, dict) else None
        if not isinstance(payload, str):
            return self._violation(now, "media", "without media.payload")
        try:
            pcm = pybase64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return self._violation(now, "media", "payload is not base64")
        if not pcm or len(pcm) % CHUNK_UNIT or len(pcm) > MAX_CHUNK:
            # [APPLET] "non-compliant sizes create gaps in audio playback": not played.
            return self._violation(
                now, "media", f"chunk of {len(pcm)} bytes: not a multiple of 320 up to 100 KB"
            )
        if len(pcm) < MIN_CHUNK:
            self.short_chunks += 1
        return self._accept_audio(self._to_core(pcm), now)


@dataclass
class ExotelDialer:
    """Places an inbound call the way the Voicebot applet does: ask its dynamic URL (with
    Basic auth when ``auth`` is ``"key:token"``), open the websocket it names."""

    auth: str | None = None
    name: str = "exotel"

    def _basic(self) -> dict[str, str]:
        if not self.auth:
            return {}
        return {"authorization": "Basic " + base64.b64encode(self.auth.encode()).decode()}

    def webhook(self, report: CallReport, public: str) -> Webhook:
        report.call_sid = new_sid()
        body = urlencode(
            {
                "CallSid": report.call_sid,
                "CallFrom": report.caller,
                "CallTo": report.called,
                "Direction": "incoming",
            }
        ).encode()
        headers = {"content-type": "application/x-www-form-urlencoded", **self._basic()}
        return Webhook("/exotel/stream-url", body, headers)

    def answer(
        self, text: str, public: str, report: CallReport, *, keep_media_log: bool
    ) -> StreamPlan | None:
        try:
            answer = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"[APPLET] the dynamic URL did not return JSON: {exc}") from None
        url = answer.get("url") if isinstance(answer, dict) else None
        if not isinstance(url, str):
            raise ValueError("[APPLET] the dynamic URL must return a ws(s) endpoint")
        split = urlsplit(url)
        if split.scheme not in ("ws", "wss"):
            raise ValueError(f"[APPLET] not a ws:// or wss:// URL: {url!r}")
        query = dict(parse_qsl(split.query))
        rate = query.pop("sample-rate", str(SAMPLE_RATE))
        if rate != str(SAMPLE_RATE):
            raise ValueError(f"[APPLET] the stand-in streams 8 kHz, not sample-rate={rate}")
        if len(query) > MAX_CUSTOM or len(urlencode(query)) > MAX_CUSTOM_CHARS:
            raise ValueError("[APPLET] custom parameters: up to 3 pairs, 256 characters in all")
        sim = ExotelMediaSim(
            report.call_sid, report.caller, report.called, query, keep_media_log=keep_media_log
        )
        report.stream_sid = sim.stream_sid
        return StreamPlan(split.path, sim, self._basic())
