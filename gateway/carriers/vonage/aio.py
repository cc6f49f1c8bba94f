"""Vonage over FastAPI: the answer and event webhooks and the Voice API websocket.

The wire lives in ``stream.py`` (sans-I/O), the answer in ``ncco.py``, the call in the shared
plumbing (:mod:`gateway.streams`); this module checks who is asking, validates identifiers and
pumps. Without ``VONAGE_SIGNATURE_SECRET`` nothing can be authenticated, so only loopback
clients are served (a development gateway and its simulator), as Twilio's routes do without
an auth token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

import orjson
from fastapi import APIRouter, Request, Response, WebSocket
from vonage_jwt.jwt import JwtClient

from gateway.carriers.vonage.control import API_BASE, VonageRestControl
from gateway.carriers.vonage.ncco import connect_websocket, render
from gateway.carriers.vonage.signature import SignedWebhooks
from gateway.carriers.vonage.stream import CALL_HEADER, VonageStream
from gateway.dialplan import CallFacts
from gateway.ids import is_uuid
from gateway.ops.logs import call_id as current_call
from gateway.ops.logs import field as log_field
from gateway.streams.carrier import CallControl, CloseStreamControl, StreamCarrier, is_loopback
from gateway.streams.events import StreamOpened

__all__ = ["ANSWER_PATH", "EVENT_PATH", "MEDIA_PATH", "VonageRoutes"]

log = logging.getLogger("overtalk.vonage")

ANSWER_PATH = "/vonage/answer"
EVENT_PATH = "/vonage/event"
MEDIA_PATH = "/vonage/media"
CLOSE_POLICY = 1008
#: A webhook's JSON body is a few hundred bytes; the app's body limit bounds it too.
MAX_WEBHOOK_BYTES = 16_384


def _json(ncco: list[dict[str, object]]) -> Response:
    return Response(orjson.dumps(ncco), media_type="application/json")


def _e164(number: str) -> str:
    """Vonage gives numbers as bare digits (``14155550100``); the dial plan speaks E.164."""
    number = number[:32]
    return "+" + number if number.isascii() and number.isdigit() else number


class VonageRoutes:
    """Vonage's routes over one :class:`~gateway.streams.carrier.StreamCarrier`."""

    def __init__(self, carrier: StreamCarrier) -> None:
        self.carrier = carrier
        settings = carrier.settings
        secret = settings.vonage_signature_secret
        self.checker = SignedWebhooks(secret) if secret else None
        self.rate = settings.vonage_rate
        app_id, key = settings.vonage_application_id, settings.vonage_private_key
        self.jwt = JwtClient(app_id, key) if app_id and key else None
        self.api_base = settings.vonage_api_base or API_BASE

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(ANSWER_PATH, self.answer, methods=["GET", "POST"])
        router.add_api_route(EVENT_PATH, self.event, methods=["GET", "POST"])
        router.add_api_websocket_route(MEDIA_PATH, self.media)
        return router

    # -- webhooks ----------------------------------------------------------------------------

    async def _authorized(self, request: Request) -> dict[str, str] | None:
        """The webhook's fields (query for GET, JSON body for POST), or None when it is not
        Vonage's. Each value is kept only if it is a string of at most 200 characters."""
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BYTES:
            return None
        if self.checker is None:
            if not is_loopback(request.client.host if request.client else None):
                return None
        else:
            why = self.checker.check(request.headers.get("authorization"), body, time.time())
            if why is not None:
                log.warning("x rejected Vonage webhook to %s: %s", request.url.path, why)
                self.carrier.refused("bad-signature")
                return None
        raw: Mapping[str, object]
        if request.method == "POST" and body:
            try:
                loaded = orjson.loads(body)
            except orjson.JSONDecodeError:
                return {}
            raw = loaded if isinstance(loaded, dict) else {}
        else:
            raw = request.query_params
        return {k: v for k, v in raw.items() if isinstance(v, str) and len(v) <= 200}

    async def answer(self, request: Request) -> Response:
        """Answer an inbound call with an NCCO: the dial plan's decision, or the bot."""
        params = await self._authorized(request)
        if params is None:
            return Response("forbidden\n", status_code=403, media_type="text/plain")
        uuid = params.get("uuid")
        if not is_uuid(uuid):
            self.carrier.refused("bad-identifier")
            return Response("bad request: uuid\n", status_code=400, media_type="text/plain")
        assert uuid is not None
        current_call.set(uuid)
        carrier = self.carrier
        if not carrier.lifecycle.accepting:
            log.info("x refusing Vonage call %s: draining", uuid)
            return _json([])  # an NCCO with nothing to do ends the call
        caller, called = _e164(params.get("from", "")), _e164(params.get("to", ""))
        log.info("< Vonage answer webhook call %s from %s to %s", uuid, caller, called)
        facts = CallFacts(to=called, from_=caller, at=carrier.wall_clock(), direction="inbound")
        routed = carrier.decide(uuid, facts)
        if routed.busy:
            return _json([])
        stream_url = carrier.url(str(request.base_url), MEDIA_PATH, websocket=True)
        context = {CALL_HEADER: uuid, "from": caller, "to": called, "direction": "inbound"}
        if routed.decision is None:
            headers = carrier.stream_parameters(uuid, None, context)
            action = connect_websocket(stream_url, self.rate, headers, called)
            return _json([action.model_dump(by_alias=True, exclude_none=True, mode="json")])
        try:
            ncco = render(
                routed.decision,
                stream_url=stream_url,
                rate=self.rate,
                headers=context,
                caller_id=called,
                stream_token=lambda names: carrier.tokens.issue(uuid, names, time.time()),
            )
        except ValueError as exc:  # e.g. a transfer to something Vonage cannot dial
            log.error("x call %s: cannot render its route: %s", uuid, log_field(exc))
            ncco = []
        return _json(ncco)

    async def event(self, request: Request) -> Response:
        """Call status events: acknowledged (Vonage retries an event it gets no 200 for)."""
        params = await self._authorized(request)
        if params is None:
            return Response("forbidden\n", status_code=403, media_type="text/plain")
        log.debug(
            "< Vonage event %s for %s",
            log_field(params.get("status", "?"), 20),
            log_field(params.get("uuid", "?"), 40),
        )
        return Response(status_code=204)

    # -- the websocket -----------------------------------------------------------------------

    def _control(self, opened: StreamOpened, close: Callable[[], Awaitable[None]]) -> CallControl:
        if self.jwt is None:
            # Closing the socket ends the connect action: Vonage runs the NCCO's next action
            # (the bot's fallback) or, with none, ends the call.
            return CloseStreamControl(close, "VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY")
        return VonageRestControl(
            self.jwt,
            opened.control_id,
            api_base=self.api_base,
            caller_id=opened.parameters.get("to"),
        )

    async def media(self, ws: WebSocket) -> None:
        """One call leg's websocket. Vonage signs nothing on the upgrade: the stream token in
        the NCCO headers (checked by the shared plumbing) binds it to its call."""
        if self.checker is None and not is_loopback(ws.client.host if ws.client else None):
            log.warning("x rejected Vonage websocket from a non-loopback peer: no secret set")
            self.carrier.refused("bad-signature")
            await ws.close(code=CLOSE_POLICY)
            return
        await ws.accept()
        await self.carrier.serve(ws, VonageStream(self.rate), self._control)
