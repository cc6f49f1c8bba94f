"""Vonage's side of a Voice API call, sans I/O: the stand-in the simulator places calls with.

:class:`VonageDialer` signs the answer webhook and reads the NCCO; :class:`VonageMediaSim`
plays Vonage's end of the websocket; :class:`VonageRestSim` serves the REST call updates
(hang-up, transfer, DTMF) and ends the simulated call as Vonage would. Every rule cites its source:

- [WS] "WebSockets in the Vonage Voice API",
  https://developer.vonage.com/en/voice/voice-api/concepts/websockets
- [NCCO] NCCO reference, https://developer.vonage.com/en/voice/voice-api/ncco-reference
- [API] Voice API reference, "Modify an in progress call",
  https://developer.vonage.com/en/api/voice#updateCall
- [DTMF] Voice API reference, "Play DTMF into a call" (``PUT /v1/calls/{uuid}/dtmf``, body
  ``{"digits"}`` matching ``^[0-9#*p]+$``, ``p`` a 500 ms pause; 200 ``{"message": "DTMF
  sent", "uuid"}``), https://developer.vonage.com/en/api/voice#startDTMF
- [SIGNED] "Signed webhooks",
  https://developer.vonage.com/en/getting-started/concepts/webhooks#signed-webhooks

Garbage from the gateway never raises: each bad message is recorded in ``violations`` with its
reason and otherwise ignored. Time is passed in to every method that depends on it.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from gateway.sim.caller import CallPump
from gateway.sim.carriers.dial import StreamPlan, Webhook
from gateway.sim.carriers.wire import L16, Wire, WireSim
from gateway.sim.media import Inbound, LogEntry, LogKind, MarkEcho
from gateway.sim.report import CallReport

__all__ = ["VonageDialer", "VonageMediaSim", "VonageRestSim", "new_uuid", "sign_webhook"]

#: [NCCO] the content-types a websocket endpoint may ask for (the stand-in plays 8 and 16 kHz).
_CONTENT_TYPE = re.compile(r"audio/l16;rate=(8000|16000|24000)")
#: [NCCO] the actions an NCCO may hold.
NCCO_ACTIONS = frozenset(
    {"record", "conversation", "connect", "talk", "stream", "input", "notify", "wait", "transfer"}
)
#: [DTMF] what the gateway may play into a call.
_PLAY_DTMF = re.compile(r"[0-9#*p]+")
#: [WS] keys a caller may press.
DTMF_DIGITS = frozenset("0123456789*#")
#: The answer to a clear, queued with the mark echoes so it goes out in wire order.
_CLEARED = "\x00cleared"


def new_uuid() -> str:
    """A call leg UUID in Vonage's canonical form."""
    return str(uuid.uuid4())


def sign_webhook(secret: str, body: bytes, now: float, **claims: object) -> str:
    """[SIGNED] the token Vonage puts in ``Authorization: Bearer``: HS256 with the signature
    secret, ``iat``, ``jti``, ``iss`` and, for a body, its SHA-256 as ``payload_hash``."""
    payload: dict[str, object] = {"iat": int(now), "jti": new_uuid(), "iss": "Vonage"}
    if body:
        payload["payload_hash"] = hashlib.sha256(body).hexdigest()
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


class VonageMediaSim(WireSim):
    """The Vonage end of one websocket call leg."""

    #: [WS] audio both ways is binary frames.
    binary_media = True

    def __init__(
        self, content_type: str, headers: dict[str, str], *, keep_media_log: bool = True
    ) -> None:
        match = _CONTENT_TYPE.fullmatch(content_type)
        if match is None or match.group(1) == "24000":
            raise ValueError(f"[NCCO] content-type {content_type!r} is not one the stand-in plays")
        # [WS] 16-bit signed little-endian PCM at the content-type's rate.
        super().__init__(Wire(L16, int(match.group(1))), keep_media_log=keep_media_log)
        self.content_type = content_type
        self.headers = dict(headers)
        self.rate = int(match.group(1))
        #: [WS] one message carries 20 ms of 16-bit PCM: 640 bytes at 16 kHz, 320 at 8 kHz.
        self.frame_bytes = self.rate // 50 * 2
        self.cleared_answers = 0

    def open_messages(self, now: float) -> list[bytes]:
        """[WS] the first message: ``websocket:connected`` with the content-type and the
        NCCO's ``headers`` as fields of their own."""
        self.started = True
        return [
            orjson.dumps(
                {"event": "websocket:connected", "content-type": self.content_type, **self.headers}
            )
        ]

    def media(self, ulaw: bytes, now: float) -> bytes:
        """[WS] 20 ms of caller audio, one binary message of 16-bit little-endian PCM."""
        pcm = self._to_wire(ulaw)
        return pcm.ljust(self.frame_bytes, b"\0")[: self.frame_bytes]

    def dtmf(self, digit: str, now: float) -> bytes:
        """[WS] a key press, as a ``websocket:dtmf`` event."""
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self.log.append(LogEntry(now, LogKind.DTMF, digit))
        return orjson.dumps({"event": "websocket:dtmf", "digit": digit, "duration": 100})

    def echo_message(self, echo: MarkEcho) -> bytes:
        """[WS] ``websocket:notify`` with the payload of the ``notify`` that was reached; or the
        ``websocket:cleared`` answering a clear."""
        if echo.name == _CLEARED:
            self.cleared_answers += 1
            return b'{"event":"websocket:cleared"}'
        self.marks_echoed += 1
        return b'{"event":"websocket:notify","payload":' + echo.name.encode() + b"}"

    def stop(self, now: float) -> bytes:
        """Vonage sends no last message: the call's end closes the socket. The pump writes
        what this returns before it closes, so it is an empty text frame, which carries
        nothing."""
        self._play_until(now)
        self.stopped = True
        return b""

    def receive(self, message: str | bytes, now: float, *, binary: bool = False) -> Inbound:
        """Take one message from the gateway; violations are recorded, never raised. Binary
        frames are audio; text frames are JSON commands (:meth:`_on_message`)."""
        if not (binary and isinstance(message, bytes)):
            return super().receive(message, now)
        self.received += 1
        if self.stopped:
            return Inbound("ignored")
        self._play_until(now)
        # [WS] audio to play is binary 16-bit PCM at the connection's rate, 20 ms a message.
        if len(message) != self.frame_bytes:
            return self._violation(now, "audio", f"{len(message)} bytes, not 20 ms")
        return self._accept_audio(self._to_core(message), now)

    def _on_message(self, msg: dict[str, Any], now: float) -> Inbound:
        action = msg.get("action")
        if action == "notify":
            payload = msg.get("payload")
            # [WS] notify carries a payload object, sent back once the audio before it played.
            if not isinstance(payload, dict):
                return self._violation(now, "notify", "without a payload object")
            return self._accept_mark(orjson.dumps(payload).decode(), now)
        if action == "clear":
            # [WS] clear empties the playback buffer and is answered with websocket:cleared.
            # The guide promises no echo for notifies queued behind the cleared audio, so the
            # stand-in sends none: a gateway must not wait for them.
            inbound = self._accept_clear(now, echo_pending=False)
            self._echoes.append(MarkEcho(_CLEARED, now))
            return inbound
        return self._violation(now, str(action), "unknown action (expected notify or clear)")


def _ncco_summary(ncco: list[dict[str, Any]]) -> str:
    return "ncco: " + ", ".join(str(a.get("action")) for a in ncco)


@dataclass
class VonageDialer:
    """Places an inbound call the way Vonage does: a signed answer webhook, then the NCCO.

    ``auth`` is the signature secret (None: the webhook goes unsigned, for a loopback
    gateway without one). The answer webhook is POSTed as JSON (the application's
    ``answer_method`` set to POST), so [SIGNED]'s ``payload_hash`` covers its fields.
    """

    auth: str | None = None
    name: str = "vonage"

    def webhook(self, report: CallReport, public: str) -> Webhook:
        report.call_sid = new_uuid()
        body = orjson.dumps(
            {
                "from": report.caller.removeprefix("+"),
                "to": report.called.removeprefix("+"),
                "uuid": report.call_sid,
                "conversation_uuid": "CON-" + new_uuid(),
            }
        )
        headers = {"content-type": "application/json"}
        if self.auth:
            token = sign_webhook(self.auth, body, time.time())
            headers["authorization"] = f"Bearer {token}"
        return Webhook("/vonage/answer", body, headers)

    def answer(
        self, text: str, public: str, report: CallReport, *, keep_media_log: bool
    ) -> StreamPlan | None:
        try:
            ncco = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"[NCCO] the answer is not JSON: {exc}") from None
        if not isinstance(ncco, list) or not all(isinstance(a, dict) for a in ncco):
            raise ValueError("[NCCO] an NCCO is a JSON array of action objects")
        for action in ncco:
            if action.get("action") not in NCCO_ACTIONS:
                raise ValueError(f"[NCCO] unknown action {action.get('action')!r}")
            if (
                action["action"] == "connect"
                and "from" not in action
                and not action.get("randomFromNumber")
            ):
                raise ValueError("[NCCO] connect needs from or randomFromNumber")
        report.notes.append(_ncco_summary(ncco))
        for action in ncco:
            if action["action"] != "connect":
                continue
            for endpoint in action.get("endpoint") or []:
                if not isinstance(endpoint, dict) or endpoint.get("type") != "websocket":
                    continue
                uri = endpoint.get("uri")
                scheme = urlsplit(uri).scheme if isinstance(uri, str) else ""
                if scheme not in ("ws", "wss"):
                    raise ValueError(f"[NCCO] websocket uri must be ws:// or wss://: {uri!r}")
                headers = endpoint.get("headers") or {}
                if not isinstance(headers, dict) or not all(
                    isinstance(v, str) for v in headers.values()
                ):
                    raise ValueError("[NCCO] websocket headers must be an object of strings")
                sim = VonageMediaSim(
                    str(endpoint.get("content-type")), headers, keep_media_log=keep_media_log
                )
                return StreamPlan(urlsplit(uri).path, sim)
        return None


class VonageRestSim:
    """[API] the call updates a gateway makes (``PUT /v1/calls/{uuid}``: hang-up, transfer),
    checked as Vonage checks them, for the calls the stand-in placed.

    Requests carry an application JWT (RS256, signed with the application's private key, with
    the claim ``application_id``); ``public_key`` is the application's public key (PEM).
    """

    def __init__(self, application_id: str, public_key: str) -> None:
        self.application_id = application_id
        self.public_key = public_key
        self.calls: dict[str, CallPump] = {}
        #: (uuid, action, body) of every accepted update, in order.
        self.updates: list[tuple[str, str, dict[str, Any]]] = []
        self.rejected: list[tuple[int, str]] = []
        #: (uuid, digits) of every DTMF string played into a call, in order.
        self.pressed: list[tuple[str, str]] = []

    def track(self, call_id: str, pump: CallPump) -> None:
        """For :func:`gateway.sim.carriers.dial.place_carrier_call`'s ``on_pump``."""
        self.calls[call_id] = pump

    def app(self) -> FastAPI:
        app = FastAPI()
        app.add_api_route("/v1/calls/{uuid}", self._update, methods=["PUT"])
        app.add_api_route("/v1/calls/{uuid}/dtmf", self._dtmf, methods=["PUT"])
        return app

    def _refuse(self, status: int, title: str, detail: str) -> JSONResponse:
        self.rejected.append((status, title))
        return JSONResponse({"title": title, "detail": detail}, status_code=status)

    async def _checked(
        self, uuid: str, request: Request
    ) -> tuple[CallPump, dict[str, Any]] | JSONResponse:
        """The live call and the JSON body of an authorised request, or the refusal."""
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return self._refuse(401, "Unauthorized", "invalid application JWT")
        if claims.get("application_id") != self.application_id:
            return self._refuse(401, "Unauthorized", "JWT for another application")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return self._refuse(400, "Bad request", "the body is not a JSON object")
        pump = self.calls.get(uuid)
        if pump is None or pump.ended_by_carrier or pump.hung_up or pump.gateway_closed:
            return self._refuse(404, "Not found", "no live call with that uuid")
        return pump, body

    async def _dtmf(self, uuid: str, request: Request) -> Response:
        checked = await self._checked(uuid, request)
        if isinstance(checked, JSONResponse):
            return checked
        digits = checked[1].get("digits")
        if not isinstance(digits, str) or not _PLAY_DTMF.fullmatch(digits):
            return self._refuse(400, "Bad request", "digits must match ^[0-9#*p]+$")
        self.pressed.append((uuid, digits))
        return JSONResponse({"message": "DTMF sent", "uuid": uuid})

    async def _update(self, uuid: str, request: Request) -> Response:
        checked = await self._checked(uuid, request)
        if isinstance(checked, JSONResponse):
            return checked
        pump, update = checked
        action = update.get("action")
        destination = update.get("destination")
        if action == "hangup":
            pump.end_by_carrier("hung up through the Voice API")
        elif (
            action == "transfer"
            and isinstance(destination, dict)
            and destination.get("type") == "ncco"
            and isinstance(destination.get("ncco"), list)
            and destination["ncco"]
        ):
            pump.end_by_carrier("transferred to an NCCO through the Voice API")
        else:
            return self._refuse(400, "Bad request", f"unsupported update {action!r}")
        self.updates.append((uuid, str(action), update))
        return Response(status_code=204)
