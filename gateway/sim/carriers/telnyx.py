"""Telnyx's side of a call, as strict as Telnyx: TeXML fetch, media stream, Call Control REST.

Rules, each from Telnyx's documentation:

- The TeXML fetch is a form POST of the call's parameters, ``CallSid`` a call control id
  (developers.telnyx.com/docs/voice/programmable-voice/texml-instruction-fetching), signed
  with Ed25519 over ``"{telnyx-timestamp}|{body}"`` (the ``telnyx`` SDK's
  ``lib/webhook_verification.py`` checks exactly this).
- The answer is TeXML, root ``<Response>``. A bot's stream is ``<Connect><Stream url>``; only
  ``bidirectionalMode="rtp"`` lets the application send RTP payloads back (the default is
  "mp3": TeXML ``<Stream>`` page), in ``bidirectionalCodec`` (default PCMU). The url must be
  ``wss://``. ``<Parameter>`` nouns come back in ``start.custom_parameters``.
- The websocket (the "Stream call media over WebSocket" AsyncAPI page): ``connected``,
  ``start`` (``stream_id``, ``start.call_control_id``, ``media_format``), ``media`` every
  20 ms, ``dtmf``, ``mark`` once the audio before it has played, ``stop``. From the
  application Telnyx takes ``media`` (RTP payload, "20 milliseconds to 30 seconds of audio"),
  ``mark`` and ``clear``; frames are JSON text.
- Call Control REST (developers.telnyx.com/api-reference/call-commands): ``POST
  /v2/calls/{call_control_id}/actions/hangup`` and ``.../transfer`` with ``{"to"}``, Bearer
  API key; errors as ``{"errors": [{"code", "title", "detail"}]}`` (401 for a bad key, 404
  for an unknown call, 422 for a bad body). ``.../send_dtmf`` (the send-dtmf page there):
  ``digits`` of ``0-9``, ``A-D``, ``*``, ``#``, ``w`` (0.5 s) and ``W`` (1 s), required;
  ``duration_millis`` an integer from 100 to 500; answers ``{"data": {"result": "ok"}}``.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import pybase64
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from nacl.signing import SigningKey

from gateway.sim.caller import CallPump, parse_twiml
from gateway.sim.carriers.dial import StreamPlan, Webhook
from gateway.sim.carriers.wire import ALAW, ULAW, Wire, WireSim
from gateway.sim.media import Inbound
from gateway.sim.report import CallReport

__all__ = ["TelnyxDialer", "TelnyxRestSim", "TelnyxStreamSim", "new_call_control_id"]

#: TeXML ``codec``/``bidirectionalCodec`` values the stand-in streams (G.711; Telnyx also
#: offers G722, OPUS and AMR-WB, which the gateway does not ask for).
_CODECS = {"PCMU": Wire(ULAW), "PCMA": Wire(ALAW)}
#: send_dtmf's ``digits`` (send-dtmf page).
_DTMF = re.compile(r"[0-9A-D*#wW]+")
#: What one outbound ``media`` may hold: 20 ms to 30 s of audio (AsyncAPI page).
_MIN_MEDIA_S, _MAX_MEDIA_S = 0.020, 30.0


def new_call_control_id() -> str:
    """A Telnyx-shaped call control id (``v3:`` and URL-safe base64)."""
    return "v3:" + secrets.token_urlsafe(36)


class TelnyxStreamSim(WireSim):
    """Telnyx's end of one bidirectional media stream (RTP mode)."""

    def __init__(
        self,
        *,
        call_control_id: str,
        custom_parameters: Mapping[str, str],
        caller: str,
        called: str,
        codec: str = "PCMU",
        wire: Wire | None = None,
        keep_media_log: bool = True,
    ) -> None:
        self.codec_name = codec if wire is None else "L16"
        super().__init__(wire or _CODECS[codec], keep_media_log=keep_media_log)
        self.call_control_id = call_control_id
        self.stream_id = str(uuid.uuid4()).upper()
        self.custom_parameters = dict(custom_parameters)
        self.caller, self.called = caller, called
        self._seq = 0
        self._chunk = 0
        self._t_start = 0.0

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    def open_messages(self, now: float) -> list[bytes]:
        self._begin(now)
        self._t_start = now
        return [
            orjson.dumps({"event": "connected", "version": "1.0.0"}),
            orjson.dumps(
                {
                    "event": "start",
                    "sequence_number": self._next_seq(),
                    "start": {
                        "user_id": str(uuid.uuid4()),
                        "call_control_id": self.call_control_id,
                        "client_state": None,
                        "from": self.caller,
                        "to": self.called,
                        "custom_parameters": self.custom_parameters,
                        "media_format": {
                            "encoding": self.codec_name,
                            "sample_rate": self.wire.rate,
                            "channels": 1,
                        },
                    },
                    "stream_id": self.stream_id,
                }
            ),
        ]

    def media(self, ulaw: bytes, now: float) -> bytes:
        self._require_open("media")
        self._chunk += 1
        return orjson.dumps(
            {
                "event": "media",
                "sequence_number": self._next_seq(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str(round((now - self._t_start) * 1000)),
                    "payload": pybase64.b64encode_as_string(self._to_wire(ulaw)),
                },
                "stream_id": self.stream_id,
            }
        )

    def dtmf(self, digit: str, now: float) -> bytes:
        self._check_digit(digit, now)
        return orjson.dumps(
            {
                "event": "dtmf",
                "stream_id": self.stream_id,
                "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "sequence_number": self._next_seq(),
                "dtmf": {"digit": digit},
            }
        )

    def echo_message(self, echo: Any) -> bytes:
        self.marks_echoed += 1
        return orjson.dumps(
            {
                "event": "mark",
                "sequence_number": self._next_seq(),
                "stream_id": self.stream_id,
                "mark": {"name": echo.name},
            }
        )

    def stop(self, now: float) -> bytes:
        self._end(now)
        return orjson.dumps(
            {
                "event": "stop",
                "sequence_number": self._next_seq(),
                "stop": {"call_control_id": self.call_control_id},
                "stream_id": self.stream_id,
            }
        )

    def _on_message(self, msg: dict[str, Any], now: float) -> Inbound:
        event = msg.get("event")
        if event == "media":
            media = msg.get("media")
            audio = self._decode(media.get("payload") if isinstance(media, dict) else None, now)
            if isinstance(audio, Inbound):
                return audio
            seconds = len(audio) / self.wire.bytes_per_second
            if not _MIN_MEDIA_S - 1e-9 <= seconds <= _MAX_MEDIA_S:
                return self._violation(
                    now, "media", f"{seconds * 1000:.1f} ms of audio; Telnyx takes 20 ms to 30 s"
                )
            return self._accept_audio(self._to_core(audio), now)
        if event == "mark":
            mark = msg.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                return self._violation(now, "mark", "missing mark.name string")
            return self._accept_mark(name, now)
        if event == "clear":
            # Telnyx promises a mark only once its audio has played: cleared ones never echo.
            return self._accept_clear(now, echo_pending=False)
        return self._violation(now, str(event), "unknown event (expected media, mark, clear)")


class TelnyxDialer:
    """Places calls the way a Telnyx TeXML application does. ``auth`` is the base64 32-byte
    Ed25519 private seed the webhooks are signed with (None: unsigned)."""

    name = "telnyx"

    def __init__(self, auth: str | None, *, wire: Wire | None = None) -> None:
        self.key = SigningKey(pybase64.b64decode(auth)) if auth else None
        #: Stream L16 (as Call Control's ``streaming_start`` can) instead of the TeXML codec.
        self.wire = wire

    @staticmethod
    def new_key() -> tuple[str, str]:
        """A fresh (private seed, public key), both base64: the public one is the gateway's
        ``TELNYX_PUBLIC_KEY``."""
        key = SigningKey.generate()
        return (
            pybase64.b64encode(bytes(key)).decode(),
            pybase64.b64encode(bytes(key.verify_key)).decode(),
        )

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        if self.key is None:
            return {}
        signature = self.key.sign(str(timestamp).encode() + b"|" + body).signature
        return {
            "telnyx-signature-ed25519": pybase64.b64encode(signature).decode(),
            "telnyx-timestamp": str(timestamp),
        }

    def webhook(self, report: CallReport, public: str) -> Webhook:
        report.call_sid = new_call_control_id()
        report.account_sid = str(uuid.uuid4())
        body = urlencode(
            {
                "AccountSid": report.account_sid,
                "CallSid": report.call_sid,
                "CallSessionId": str(uuid.uuid4()),
                "CallStatus": "ringing",
                "Direction": "inbound",
                "From": report.caller,
                "To": report.called,
            }
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        headers.update(self.sign(body, int(time.time())))
        return Webhook("/telnyx/voice", body, headers)

    def answer(
        self, text: str, public: str, report: CallReport, *, keep_media_log: bool
    ) -> StreamPlan | None:
        report.twiml = parse_twiml(text)
        for verb in report.twiml:
            if verb.verb in ("Say", "Play", "Pause"):
                continue
            if verb.verb != "Connect":
                return None
            stream = next((c for c in verb.children if c.verb == "Stream"), None)
            if stream is None:
                raise ValueError("<Connect> without <Stream>")
            attrs = stream.attributes
            if attrs.get("bidirectionalMode") != "rtp":
                raise ValueError(
                    '<Stream> without bidirectionalMode="rtp": Telnyx would not play the '
                    "gateway's audio"
                )
            codec = attrs.get("bidirectionalCodec", "PCMU")
            if codec not in _CODECS or attrs.get("codec", codec) != codec:
                raise ValueError(f"<Stream> codec {codec!r}: the stand-in streams PCMU or PCMA")
            url = urlsplit(attrs.get("url", ""))
            if url.scheme == "ws" and urlsplit(public).scheme == "http":
                report.notes.append("<Stream url> is ws://; real Telnyx dials wss://")
            elif url.scheme != "wss":
                raise ValueError(f"<Stream url> must be wss:// (got {attrs.get('url')!r})")
            params = {
                p.attributes.get("name", ""): p.attributes.get("value", "")
                for p in stream.children
                if p.verb == "Parameter"
            }
            sim = TelnyxStreamSim(
                call_control_id=report.call_sid,
                custom_parameters=params,
                caller=report.caller,
                called=report.called,
                codec=codec,
                wire=self.wire,
                keep_media_log=keep_media_log,
            )
            report.stream_sid = sim.stream_id
            return StreamPlan(url.path or "/", sim)
        return None


def _error(status: int, code: str, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"code": code, "title": title, "detail": detail}]}, status_code=status
    )


class TelnyxRestSim:
    """Call Control's hang-up, transfer and send_dtmf for the calls the stand-in placed."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.calls: dict[str, CallPump] = {}
        #: (call control id, action, body) of every accepted command, in order.
        self.actions: list[tuple[str, str, dict[str, Any]]] = []
        self.rejected: list[tuple[int, str]] = []
        #: (call control id, digits) of every DTMF string played into a call, in order.
        self.pressed: list[tuple[str, str]] = []

    def track(self, call_id: str, pump: CallPump) -> None:
        """For :func:`gateway.sim.carriers.place_carrier_call`'s ``on_pump``."""
        self.calls[call_id] = pump

    def app(self) -> FastAPI:
        app = FastAPI()
        app.add_api_route("/v2/calls/{call_id}/actions/{action}", self._action, methods=["POST"])
        return app

    async def _action(self, call_id: str, action: str, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            self.rejected.append((401, action))
            return _error(401, "10009", "Authentication failed", "bad or missing API key")
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            self.rejected.append((422, action))
            return _error(422, "10015", "Invalid request body", "the body is not a JSON object")
        pump = self.calls.get(call_id)
        if pump is None or pump.ended_by_carrier or pump.hung_up or pump.gateway_closed:
            self.rejected.append((404, action))
            return _error(404, "90018", "Call has already ended", "no live call with that id")
        if action == "hangup":
            pump.end_by_carrier("hung up through Call Control")
        elif action == "transfer":
            to = body.get("to")
            if not isinstance(to, str) or not (to.startswith(("sip:", "+")) and 2 < len(to) <= 256):
                self.rejected.append((422, action))
                return _error(422, "10015", "Invalid value for to", "E.164 number or SIP URI")
            pump.end_by_carrier(f"transferred to {to} through Call Control")
        elif action == "send_dtmf":
            digits, duration = body.get("digits"), body.get("duration_millis", 250)
            if not isinstance(digits, str) or not _DTMF.fullmatch(digits):
                self.rejected.append((422, action))
                return _error(422, "10015", "Invalid value for digits", "0-9, A-D, *, #, w, W")
            if type(duration) is not int or not 100 <= duration <= 500:
                self.rejected.append((422, action))
                return _error(422, "10015", "Invalid value for duration_millis", "100 to 500")
            self.pressed.append((call_id, digits))
        else:
            self.rejected.append((404, action))
            return _error(404, "10005", "Resource not found", f"no action {action!r}")
        self.actions.append((call_id, action, body))
        return JSONResponse({"data": {"result": "ok"}})
