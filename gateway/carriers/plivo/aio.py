"""Plivo over FastAPI: the answer webhook, the transfer document and the audio stream.

The wire lives in ``stream.py`` (sans-I/O), the answer in ``answer.py``, the signature in
``signature.py``, call control in ``control.py``; the call itself is the shared
:mod:`gateway.streams` pump. This module only wires them to routes.

- ``POST /plivo/answer``: the application's answer URL. Plivo POSTs the call's parameters
  form-encoded (``CallUUID``, ``From``, ``To``, ``Direction``...: "Answer URL request
  parameters", plivo.com/docs/voice/xml/request-parameters), V3-signed.
- ``POST /plivo/transfer?to=...``: the XML a REST transfer runs (``control.py``), V3-signed.
- ``/plivo/media``: the ``<Stream>`` websocket; Plivo signs the upgrade with V3 over the
  ``https://`` form of the stream URL, query included (as Plivo's stream SDK checks it:
  github.com/plivo/plivo-stream-sdk-node ``validateConnectionSignature``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response, WebSocket

from gateway.carriers.plivo import answer
from gateway.carriers.plivo.control import PlivoControl, rest_client
from gateway.carriers.plivo.signature import NONCE_HEADER, SIGNATURE_HEADER, V3Checker
from gateway.carriers.plivo.stream import PlivoStream
from gateway.dialplan import CallFacts
from gateway.ids import is_uuid
from gateway.ops.logs import call_id as current_call
from gateway.ops.logs import field as log_field
from gateway.streams.carrier import (
    CallControl,
    CloseStreamControl,
    ControlFactory,
    StreamCarrier,
    is_loopback,
)
from gateway.streams.events import StreamOpened, bounded_parameters

__all__ = ["ANSWER_PATH", "MEDIA_PATH", "TRANSFER_PATH", "PlivoRoutes"]

log = logging.getLogger("overtalk.plivo")

ANSWER_PATH = "/plivo/answer"
TRANSFER_PATH = "/plivo/transfer"
MEDIA_PATH = "/plivo/media"
CLOSE_POLICY = 1008
#: A transfer target: E.164 or a SIP URI, nothing that could break out of the XML text.
_TARGET = re.compile(r"\+?[0-9]{3,20}|sips?:[A-Za-z0-9_.!~*'()&=+$,;?/%@:-]{3,250}")


def _e164(number: str) -> str:
    """Plivo sends numbers in E.164 without the ``+`` ("14155551234"); the dial plan routes
    E.164 with it. SIP URIs and anything else pass as they are."""
    return "+" + number if number.isascii() and number.isdigit() else number


def _xml(text: str) -> Response:
    return Response(text, media_type="application/xml")


def _plain(text: str, status: int) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain")


class PlivoRoutes:
    """Plivo's routes over a :class:`StreamCarrier` named "plivo"."""

    def __init__(self, carrier: StreamCarrier) -> None:
        self.carrier = carrier
        settings = carrier.settings
        self.checker = V3Checker(settings.plivo_auth_token) if settings.plivo_auth_token else None
        self.auth_id = settings.plivo_auth_id
        self.rest = (
            rest_client(settings.plivo_auth_id, settings.plivo_auth_token, settings.plivo_api_base)
            if settings.plivo_auth_id and settings.plivo_auth_token
            else None
        )
        self.kind = settings.plivo_content_type

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(ANSWER_PATH, self.answer, methods=["POST"])
        router.add_api_route(TRANSFER_PATH, self.transfer, methods=["POST"])
        router.add_api_websocket_route(MEDIA_PATH, self.media)
        return router

    async def aclose(self) -> None:
        if self.rest is not None:
            await self.rest.aclose()

    async def _authorized(self, request: Request) -> dict[str, str] | Response:
        """The request's form once it is Plivo's; else the refusal to answer."""
        params = self.carrier.form(await request.body())
        if params is None:
            return _plain("bad request: not a form body", 400)
        if self.checker is None:
            host = request.client.host if request.client else None
            return params if is_loopback(host) else _plain("forbidden", 403)
        url = self.carrier.url(str(request.base_url), request.url.path, request.url.query)
        if not self.checker.check(
            "POST",
            url,
            params,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(NONCE_HEADER),
        ):
            log.warning("x rejected unsigned or forged Plivo request to %s", request.url.path)
            self.carrier.refused("bad-signature")
            return _plain("forbidden", 403)
        return params

    async def answer(self, request: Request) -> Response:
        """Answer a call: the dial plan's decision in Plivo XML, or a stream to the engine."""
        params = await self._authorized(request)
        if isinstance(params, Response):
            return params
        call_id = params.get("CallUUID")
        if not is_uuid(call_id):
            self.carrier.refused("bad-identifier")
            return _plain("bad request: CallUUID is not a UUID", 400)
        assert call_id is not None
        current_call.set(call_id)
        carrier = self.carrier
        if not carrier.lifecycle.accepting:
            log.info("x refusing Plivo call %s: draining", call_id)
            return _xml(answer.busy())
        log.info(
            "< Plivo call %s from %s to %s",
            call_id,
            log_field(params.get("From", "")),
            log_field(params.get("To", "")),
        )
        facts = CallFacts(
            to=_e164(params.get("To", "")),
            from_=_e164(params.get("From", "")),
            at=carrier.wall_clock(),
            direction=params.get("Direction", "inbound") or "inbound",
        )
        routed = carrier.decide(call_id, facts)
        if routed.busy:
            return _xml(answer.busy())
        context = {
            "from": facts.from_[:100],
            "to": facts.to[:100],
            "direction": facts.direction[:40],
        }
        stream_url = carrier.url(str(request.base_url), MEDIA_PATH, websocket=True)
        if routed.decision is None:
            parameters = carrier.stream_parameters(call_id, None, context)
            return _xml(answer.stream(stream_url, parameters, self.kind))
        decision = routed.decision
        return _xml(
            answer.render(
                decision,
                stream_url=stream_url,
                parameters=lambda path: carrier.stream_parameters(call_id, decision, context, path),
                kind=self.kind,
            )
        )

    async def transfer(self, request: Request) -> Response:
        """The document a REST transfer runs: ``<Dial>`` to the target in the URL."""
        refused = await self._authorized(request)
        if isinstance(refused, Response):
            return refused
        target = request.query_params.get("to", "")
        if not _TARGET.fullmatch(target):
            return _plain("bad request: not a number or SIP URI", 400)
        return _xml(answer.dial(target))

    def _control_for(self, transfer_url: str) -> ControlFactory:
        """The call control factory of a stream whose transfers run ``transfer_url``."""

        def control(opened: StreamOpened, close: Callable[[], Awaitable[None]]) -> CallControl:
            if self.rest is None:
                return CloseStreamControl(close, "PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN")
            return PlivoControl(self.rest, self.auth_id, opened.control_id, transfer_url)

        return control

    def _upgrade_allowed(self, ws: WebSocket) -> bool:
        if self.checker is None:
            return is_loopback(ws.client.host if ws.client else None)
        base = str(ws.base_url).replace("ws", "http", 1)
        url = self.carrier.url(base, ws.url.path, ws.url.query)
        return self.checker.check(
            "GET", url, {}, ws.headers.get(SIGNATURE_HEADER), ws.headers.get(NONCE_HEADER)
        )

    async def media(self, ws: WebSocket) -> None:
        """One call's audio stream, from upgrade to close."""
        if not self._upgrade_allowed(ws):
            log.warning("x rejected Plivo stream upgrade: bad or missing signature")
            self.carrier.refused("bad-signature")
            await ws.close(code=CLOSE_POLICY)
            return
        base = str(ws.base_url).replace("ws", "http", 1)
        try:
            query = dict(parse_qsl(ws.url.query, max_num_fields=64))
        except ValueError:
            self.carrier.refused("bad-parameters")
            await ws.close(code=CLOSE_POLICY)
            return
        parameters, _ = bounded_parameters(query)
        await ws.accept()
        settings = self.carrier.settings
        stream = PlivoStream(
            parameters,
            # The payload bound is in mu-law bytes; 16 kHz L16 carries four bytes for each.
            max_payload_bytes=settings.media_max_payload * 4,
            max_rate=settings.media_max_rate,
            burst=settings.media_burst,
        )
        control = self._control_for(self.carrier.url(base, TRANSFER_PATH))
        await self.carrier.serve(ws, stream, control)
