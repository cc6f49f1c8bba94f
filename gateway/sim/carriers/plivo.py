"""Plivo's side of a call, as strict as Plivo: answer URL, audio stream, Voice REST API.

Rules, each from Plivo's documentation or its own SDKs:

- The answer URL gets a form POST of the call's parameters (``CallUUID``, ``From``, ``To``,
  ``Direction``, ``CallStatus``, ``Event``: plivo.com/docs/voice/xml/request-parameters),
  V3-signed (``X-Plivo-Signature-V3`` + ``-Nonce``; computed here with the ``plivo`` SDK's
  ``plivo.utils.signature_v3``, as Plivo computes it).
- The answer is Plivo XML, root ``<Response>``. ``<Stream>``'s text is the ``wss://`` URL;
  ``bidirectional="true"`` is needed for the application's audio to be played, and
  ``keepCallAlive="true"`` for the call to stay up while the stream runs (otherwise Plivo
  moves on to the next element and, with none, hangs up): plivo.com/docs/voice/xml/
  the-stream-element. ``contentType`` is ``audio/x-mulaw;rate=8000``, ``audio/x-l16;rate=8000``
  or ``audio/x-l16;rate=16000``.
- The upgrade is V3-signed over the stream URL in its ``https`` form (Plivo's stream SDK,
  ``validateConnectionSignature``).
- The websocket (Plivo's stream SDK schemas, ``src/types.ts``): Plivo sends ``start``,
  ``media``, ``dtmf``, ``playedStream`` (a checkpoint's audio has played), ``clearedAudio``;
  it takes ``playAudio`` (``media.contentType``/``sampleRate`` matching the stream,
  ``payload``), ``checkpoint`` and ``clearAudio``, each of the last two with the stream's
  ``streamId``. No ``stop``: Plivo closes the socket.
- REST (plivo.com/docs/voice/api/call): ``DELETE /v1/Account/{auth_id}/Call/{uuid}/`` hangs up
  (204); ``POST`` to the same path with ``legs=aleg`` and ``aleg_url`` transfers (202), Plivo
  fetching ``aleg_url`` for the XML to run. ``POST .../Call/{uuid}/DTMF/`` with ``digits``
  (``0-9``, ``*``, ``#``, ``w`` a 0.5 s and ``W`` a 1 s wait) and ``leg`` (``aleg``, the
  default, or ``bleg``, the other party of a ``<Dial>``) sends digits (202, "digits sent":
  plivo.com/docs/voice/api/call/dtmf/send-digits-on-a-call; the characters are those of the
  ``<DTMF>`` element, plivo.com/docs/voice/xml/dtmf). Basic auth with the auth ID and token; errors
  as ``{"api_id", "error"}`` (401, 404 "call not found", 400).
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import orjson
import pybase64
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from plivo.utils.signature_v3 import construct_get_url, construct_post_url, get_signature_v3

from gateway.sim.caller import CallPump, parse_twiml
from gateway.sim.carriers.dial import StreamPlan, Webhook
from gateway.sim.carriers.wire import L16, ULAW, Wire, WireSim
from gateway.sim.media import Inbound, MarkEcho
from gateway.sim.report import CallReport

__all__ = ["PlivoDialer", "PlivoRestSim", "PlivoStreamSim", "sign_v3"]

_CONTENT_TYPES = {
    "audio/x-mulaw;rate=8000": Wire(ULAW, 8000),
    "audio/x-l16;rate=8000": Wire(L16, 8000),
    "audio/x-l16;rate=16000": Wire(L16, 16000),
}
#: The echo that stands for ``clearedAudio`` (not a checkpoint name the gateway could send).
_CLEARED = "\x00clearedAudio"


def sign_v3(auth_token: str, method: str, url: str, params: dict[str, str]) -> dict[str, str]:
    """The V3 signature headers Plivo sends with a request (the SDK's own computation)."""
    nonce = secrets.token_hex(10)
    base = construct_post_url(url, dict(params)) if method == "POST" else construct_get_url(url, {})
    signature = get_signature_v3(auth_token, base.decode(), nonce).decode()
    return {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce}


class PlivoStreamSim(WireSim):
    """Plivo's end of one bidirectional audio stream."""

    def __init__(
        self, *, call_uuid: str, account_id: str, kind: str, keep_media_log: bool = True
    ) -> None:
        super().__init__(_CONTENT_TYPES[kind], keep_media_log=keep_media_log)
        self.call_uuid = call_uuid
        self.account_id = account_id
        self.stream_id = str(uuid.uuid4())
        self.encoding = kind.split(";")[0]
        self._seq = -1
        self._chunk = 0
        self._t_start = 0.0

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def open_messages(self, now: float) -> list[bytes]:
        self._begin(now)
        self._t_start = now
        return [
            orjson.dumps(
                {
                    "event": "start",
                    "sequenceNumber": self._next_seq(),
                    "start": {
                        "callId": self.call_uuid,
                        "streamId": self.stream_id,
                        "accountId": self.account_id,
                        "tracks": ["inbound"],
                        "mediaFormat": {"encoding": self.encoding, "sampleRate": self.wire.rate},
                    },
                    "extra_headers": "{}",
                }
            )
        ]

    def _ms(self, now: float) -> str:
        return str(round((now - self._t_start) * 1000))

    def media(self, ulaw: bytes, now: float) -> bytes:
        self._require_open("media")
        self._chunk += 1
        return orjson.dumps(
            {
                "sequenceNumber": self._next_seq(),
                "streamId": self.stream_id,
                "event": "media",
                "media": {
                    "track": "inbound",
                    "timestamp": self._ms(now),
                    "chunk": self._chunk,
                    "payload": pybase64.b64encode_as_string(self._to_wire(ulaw)),
                },
                "extra_headers": "{}",
            }
        )

    def dtmf(self, digit: str, now: float) -> bytes:
        self._check_digit(digit, now)
        return orjson.dumps(
            {
                "event": "dtmf",
                "sequenceNumber": self._next_seq(),
                "streamId": self.stream_id,
                "dtmf": {"track": "inbound", "digit": digit, "timestamp": self._ms(now)},
                "extra_headers": "{}",
            }
        )

    def echo_message(self, echo: MarkEcho) -> bytes:
        if echo.name == _CLEARED:
            body: dict[str, Any] = {"event": "clearedAudio"}
        else:
            self.marks_echoed += 1
            body = {"event": "playedStream", "name": echo.name}
        body.update(sequenceNumber=self._next_seq(), streamId=self.stream_id)
        return orjson.dumps(body)

    def stop(self, now: float) -> None:
        self._end(now)  # Plivo sends no stop: the socket closes
        return None

    def _on_message(self, msg: dict[str, Any], now: float) -> Inbound:
        event = msg.get("event")
        if event == "playAudio":
            media = msg.get("media")
            if not isinstance(media, dict):
                return self._violation(now, "playAudio", "missing media object")
            if media.get("contentType") != self.encoding or media.get("sampleRate") != (
                self.wire.rate
            ):
                return self._violation(
                    now,
                    "playAudio",
                    f"contentType {media.get('contentType')!r} at {media.get('sampleRate')!r} "
                    f"Hz is not the stream's {self.encoding} at {self.wire.rate} Hz",
                )
            audio = self._decode(media.get("payload"), now, "playAudio")
            if isinstance(audio, Inbound):
                return audio
            return self._accept_audio(self._to_core(audio), now)
        if event not in ("checkpoint", "clearAudio"):
            return self._violation(
                now, str(event), "unknown event (expected playAudio, checkpoint, clearAudio)"
            )
        if msg.get("streamId") != self.stream_id:
            return self._violation(now, event, f"streamId {msg.get('streamId')!r} is not ours")
        if event == "checkpoint":
            name = msg.get("name")
            if not isinstance(name, str) or not name:
                return self._violation(now, event, "missing name string")
            return self._accept_mark(name, now)
        inbound = self._accept_clear(now, echo_pending=False)
        self._echoes.append(MarkEcho(_CLEARED, now, cleared=True))
        return inbound


class PlivoDialer:
    """Places calls the way a Plivo application does. ``auth`` is the auth token the
    requests are V3-signed with (None: unsigned)."""

    name = "plivo"

    def __init__(self, auth: str | None) -> None:
        self.auth_token = auth

    def webhook(self, report: CallReport, public: str) -> Webhook:
        report.call_sid = str(uuid.uuid4())
        report.account_sid = "MA" + secrets.token_hex(9).upper()
        params = {
            "CallUUID": report.call_sid,
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "Event": "StartApp",
            "From": report.caller.lstrip("+"),
            "To": report.called.lstrip("+"),
            "ParentAuthID": report.account_sid,
            "SessionStart": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.auth_token is not None:
            headers.update(sign_v3(self.auth_token, "POST", public + "/plivo/answer", params))
        return Webhook("/plivo/answer", urlencode(params).encode(), headers)

    def answer(
        self, text: str, public: str, report: CallReport, *, keep_media_log: bool
    ) -> StreamPlan | None:
        report.twiml = parse_twiml(text)
        for verb in report.twiml:
            if verb.verb in ("Speak", "Play", "Wait"):
                continue
            if verb.verb != "Stream":
                return None
            attrs = verb.attributes
            if attrs.get("bidirectional") != "true":
                raise ValueError("<Stream> without bidirectional=\"true\": Plivo would not play "
                                 "the gateway's audio")  # fmt: skip
            if attrs.get("keepCallAlive") != "true":
                raise ValueError("<Stream> without keepCallAlive=\"true\": Plivo would move on "
                                 "and hang up")  # fmt: skip
            kind = attrs.get("contentType", "audio/x-l16;rate=8000")
            if kind not in _CONTENT_TYPES:
                raise ValueError(f"<Stream contentType={kind!r}> is not one Plivo streams")
            url = urlsplit(verb.text)
            if url.scheme == "ws" and urlsplit(public).scheme == "http":
                report.notes.append("<Stream> url is ws://; real Plivo dials wss://")
            elif url.scheme != "wss":
                raise ValueError(f"<Stream> url must be wss:// (got {verb.text!r})")
            sim = PlivoStreamSim(
                call_uuid=report.call_sid,
                account_id=report.account_sid,
                kind=kind,
                keep_media_log=keep_media_log,
            )
            report.stream_sid = sim.stream_id
            path = url.path + ("?" + url.query if url.query else "")
            headers: dict[str, str] = {}
            if self.auth_token is not None:
                signed = urlunsplit(("https" if url.scheme == "wss" else "http", *url[1:]))
                headers = sign_v3(self.auth_token, "GET", signed, {})
            return StreamPlan(path, sim, headers)
        return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"api_id": str(uuid.uuid4()), "error": message}, status_code=status)


#: Send digits' ``digits`` (the ``<DTMF>`` element's alphabet).
_DTMF = re.compile(r"[0-9*#wW]+")


class PlivoRestSim:
    """The Voice API's hang-up, transfer and send digits for the calls the stand-in placed."""

    def __init__(self, auth_id: str, auth_token: str) -> None:
        self.auth_id, self.auth_token = auth_id, auth_token
        self.calls: dict[str, CallPump] = {}
        #: (CallUUID, action, detail) of every accepted request, in order.
        self.actions: list[tuple[str, str, str]] = []
        self.rejected: list[tuple[int, str]] = []
        #: (CallUUID, digits) of every DTMF string played into a call, in order.
        self.pressed: list[tuple[str, str]] = []

    def track(self, call_id: str, pump: CallPump) -> None:
        self.calls[call_id] = pump

    def app(self) -> FastAPI:
        app = FastAPI()
        path = "/v1/Account/{account}/Call/{call_uuid}/"
        app.add_api_route(path, self._hangup, methods=["DELETE"])
        app.add_api_route(path, self._transfer, methods=["POST"])
        app.add_api_route(path + "DTMF/", self._digits, methods=["POST"])
        return app

    def _authorized(self, request: Request, account: str) -> bool:
        auth = request.headers.get("authorization", "")
        expected = (
            "Basic " + pybase64.b64encode(f"{self.auth_id}:{self.auth_token}".encode()).decode()
        )
        return auth == expected and account == self.auth_id

    def _live(self, call_uuid: str) -> CallPump | None:
        pump = self.calls.get(call_uuid)
        if pump is None or pump.ended_by_carrier or pump.hung_up or pump.gateway_closed:
            return None
        return pump

    async def _hangup(self, account: str, call_uuid: str, request: Request) -> Response:
        if not self._authorized(request, account):
            self.rejected.append((401, "hangup"))
            return _error(401, "Authentication failed")
        pump = self._live(call_uuid)
        if pump is None:
            self.rejected.append((404, "hangup"))
            return _error(404, "call not found")
        pump.end_by_carrier("hung up through the Plivo REST API")
        self.actions.append((call_uuid, "hangup", ""))
        return Response(status_code=204)

    async def _transfer(self, account: str, call_uuid: str, request: Request) -> Response:
        if not self._authorized(request, account):
            self.rejected.append((401, "transfer"))
            return _error(401, "Authentication failed")
        pump = self._live(call_uuid)
        if pump is None:
            self.rejected.append((404, "transfer"))
            return _error(404, "call not found")
        form = dict((await request.form()).items())
        url, method = form.get("aleg_url"), form.get("aleg_method", "POST")
        if form.get("legs") != "aleg" or not isinstance(url, str) or method not in ("GET", "POST"):
            self.rejected.append((400, "transfer"))
            return _error(400, "legs=aleg with an aleg_url is required")
        # Plivo fetches the new XML, signed, before it moves the call.
        params = {"CallUUID": call_uuid, "Direction": "inbound", "CallStatus": "in-progress"}
        headers = sign_v3(self.auth_token, "POST", url, params)
        async with httpx.AsyncClient(timeout=10.0) as client:
            got = await client.post(url, data=params, headers=headers)
        try:
            root = ET.fromstring(got.text) if got.status_code == 200 else None
        except ET.ParseError:
            root = None
        dial = root.find("Dial") if root is not None and root.tag == "Response" else None
        target = next(iter(dial), None) if dial is not None else None
        if target is None or target.tag not in ("Number", "User") or not target.text:
            self.rejected.append((400, "transfer"))
            return _error(400, f"aleg_url answered no <Dial> (HTTP {got.status_code})")
        pump.end_by_carrier(f"transferred to {target.text} through the Plivo REST API")
        self.actions.append((call_uuid, "transfer", target.text))
        return JSONResponse(
            {"api_id": str(uuid.uuid4()), "message": "call transferred"}, status_code=202
        )

    async def _digits(self, account: str, call_uuid: str, request: Request) -> Response:
        if not self._authorized(request, account):
            self.rejected.append((401, "dtmf"))
            return _error(401, "Authentication failed")
        pump = self._live(call_uuid)
        if pump is None:
            self.rejected.append((404, "dtmf"))
            return _error(404, "call not found")
        form = dict((await request.form()).items())
        digits, leg = form.get("digits"), form.get("leg", "aleg")
        if not isinstance(digits, str) or not _DTMF.fullmatch(digits):
            self.rejected.append((400, "dtmf"))
            return _error(400, "digits must be 0-9, *, #, w or W")
        if leg != "aleg":  # the stand-in's calls never <Dial>: there is no B leg
            self.rejected.append((400, "dtmf"))
            return _error(400, f"no {leg!r} on this call")
        self.pressed.append((call_uuid, digits))
        self.actions.append((call_uuid, "dtmf", digits))
        return JSONResponse(
            {"api_id": str(uuid.uuid4()), "message": "digits sent"}, status_code=202
        )
