"""Telnyx over FastAPI: the TeXML call webhook and the media-stream websocket.

The wire lives in ``stream.py`` (sans-I/O), the answer in ``texml.py``, the signature in
``signature.py``, call control in ``control.py``; the call itself is the shared
:mod:`gateway.streams` pump. This module only wires them to routes.

- ``POST /telnyx/voice``: the TeXML application's voice URL. Telnyx POSTs the call's
  parameters form-encoded (``CallSid`` = the call control id, ``From``, ``To``,
  ``Direction``, ``AccountSid``: "TeXML Instruction Fetching", developers.telnyx.com/docs/
  voice/programmable-voice/texml-instruction-fetching) and signs it (``signature.py``).
- ``/telnyx/media``: the websocket ``<Stream url>`` names. Telnyx does not sign the upgrade,
  so the stream is bound to its call by the stream token its ``start`` carries back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response, WebSocket

from gateway.carriers.telnyx import texml
from gateway.carriers.telnyx.control import TelnyxControl, rest_client
from gateway.carriers.telnyx.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, Ed25519Checker
from gateway.carriers.telnyx.stream import TelnyxStream
from gateway.dialplan import CallFacts
from gateway.ids import is_telnyx_call_control_id, is_uuid
from gateway.ops.logs import call_id as current_call
from gateway.ops.logs import field as log_field
from gateway.streams.carrier import (
    CallControl,
    CloseStreamControl,
    StreamCarrier,
    is_loopback,
)
from gateway.streams.events import StreamOpened

__all__ = ["MEDIA_PATH", "VOICE_PATH", "TelnyxRoutes"]

log = logging.getLogger("overtalk.telnyx")

VOICE_PATH = "/telnyx/voice"
MEDIA_PATH = "/telnyx/media"
CLOSE_POLICY = 1008


def _xml(text: str, status: int = 200) -> Response:
    return Response(text, status_code=status, media_type="application/xml")


def _plain(text: str, status: int) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain")


class TelnyxRoutes:
    """Telnyx's routes over a :class:`StreamCarrier` named "telnyx"."""

    def __init__(self, carrier: StreamCarrier) -> None:
        self.carrier = carrier
        settings = carrier.settings
        self.checker = (
            Ed25519Checker(settings.telnyx_public_key) if settings.telnyx_public_key else None
        )
        self.rest = (
            rest_client(settings.telnyx_api_key, settings.telnyx_api_base or None)
            if settings.telnyx_api_key
            else None
        )
        self.codec = settings.telnyx_codec

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(VOICE_PATH, self.voice, methods=["POST"])
        router.add_api_websocket_route(MEDIA_PATH, self.media)
        return router

    async def aclose(self) -> None:
        if self.rest is not None:
            await self.rest.close()

    async def _authorized(self, request: Request) -> dict[str, str] | Response:
        """The webhook's form once it is Telnyx's; else the refusal to answer."""
        body = await request.body()
        if self.checker is None:
            if not is_loopback(request.client.host if request.client else None):
                return _plain("forbidden", 403)
        else:
            problem = self.checker.check(
                body,
                request.headers.get(SIGNATURE_HEADER),
                request.headers.get(TIMESTAMP_HEADER),
                time.time(),
            )
            if problem is not None:
                log.warning("x rejected Telnyx webhook: %s", problem)
                self.carrier.refused("bad-signature")
                return _plain("forbidden", 403)
        params = self.carrier.form(body)
        return params if params is not None else _plain("bad request: not a form body", 400)

    async def voice(self, request: Request) -> Response:
        """Answer a call: the dial plan's decision in TeXML, or a stream to the engine."""
        params = await self._authorized(request)
        if isinstance(params, Response):
            return params
        call_id = params.get("CallSid")
        if not is_telnyx_call_control_id(call_id):
            self.carrier.refused("bad-identifier")
            return _plain("bad request: CallSid is not a Telnyx call control id", 400)
        account = params.get("AccountSid")
        if account and not is_uuid(account):
            self.carrier.refused("bad-identifier")
            return _plain("bad request: AccountSid is not a Telnyx account id", 400)
        assert call_id is not None
        current_call.set(call_id)
        carrier = self.carrier
        if not carrier.lifecycle.accepting:
            log.info("x refusing Telnyx call %s: draining", call_id)
            return _xml(texml.busy())
        log.info(
            "< Telnyx call %s from %s to %s",
            call_id,
            log_field(params.get("From", "")),
            log_field(params.get("To", "")),
        )
        facts = CallFacts(
            to=params.get("To", ""),
            from_=params.get("From", ""),
            at=carrier.wall_clock(),
            direction=params.get("Direction", "inbound") or "inbound",
        )
        routed = carrier.decide(call_id, facts)
        if routed.busy:
            return _xml(texml.busy())
        context = {
            "from": facts.from_[:100],
            "to": facts.to[:100],
            "direction": facts.direction[:40],
        }
        stream_url = carrier.url(str(request.base_url), MEDIA_PATH, websocket=True)
        if routed.decision is None:
            parameters = carrier.stream_parameters(call_id, None, context)
            return _xml(texml.connect_stream(stream_url, parameters, self.codec))
        decision = routed.decision
        return _xml(
            texml.render(
                decision,
                stream_url=stream_url,
                parameters=lambda path: carrier.stream_parameters(call_id, decision, context, path),
                codec=self.codec,
            )
        )

    def _control(self, opened: StreamOpened, close: Callable[[], Awaitable[None]]) -> CallControl:
        if self.rest is None:
            return CloseStreamControl(close, "TELNYX_API_KEY")
        return TelnyxControl(self.rest, opened.control_id)

    async def media(self, ws: WebSocket) -> None:
        """One call's media stream, from upgrade to close."""
        if self.checker is None and not is_loopback(ws.client.host if ws.client else None):
            log.warning("x rejected Telnyx media stream from a non-loopback client: unsigned")
            self.carrier.refused("bad-signature")
            await ws.close(code=CLOSE_POLICY)
            return
        await ws.accept()
        settings = self.carrier.settings
        stream = TelnyxStream(
            # The payload bound is in mu-law bytes; 16 kHz L16 carries four bytes for each.
            max_payload_bytes=settings.media_max_payload * 4,
            max_rate=settings.media_max_rate,
            burst=settings.media_burst,
        )
        await self.carrier.serve(ws, stream, self._control)
