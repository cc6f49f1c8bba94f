"""Exotel over FastAPI: the Voicebot applet's stream-URL endpoint and its websocket.

The applet's URL may be "an HTTPS endpoint that dynamically returns the WSS URL"
(https://developer.exotel.com/docs/agentstream/stream-voicebot-applet): the gateway serves
that endpoint at ``/exotel/stream-url``. Exotel asks it with the call's details
(``CallSid``, ``CallFrom``, ``CallTo``, ``Direction``, as for its other dynamic URLs); the
gateway routes the call through the dial plan and answers ``{"url": "wss://.../exotel/media?
..."}``, whose query carries the applet's custom parameters (at most 3 pairs, 256 characters in
all): the dial-plan names, packed into one, and the stream token over them. Exotel hands them
back in ``start.custom_parameters``; the stream core unpacks the names.

A static ``wss://`` URL in the applet is not supported: it would carry no per-call token, and
the stream could not be bound to its call.

Authentication as Exotel documents it: "Basic Auth: ``wss://<API_KEY>:<API_TOKEN>@...`` ---
transmitted as ``Authorization: Basic base64(API_KEY:API_TOKEN)``", or an IP allow-list kept
in front of the gateway. With ``EXOTEL_API_KEY``/``EXOTEL_API_TOKEN`` set, both the stream-URL
endpoint and the websocket upgrade require that header; unset, only loopback clients are
served.

Call control: Exotel publishes no REST call to hang up or transfer a call while its Voicebot
applet runs (its Calls API makes calls and reports on them). Closing the websocket ends the
applet and "the stream auto-closes before the next applet executes": a hang-up closes it and
the flow goes on to its next applet (a Hangup applet, for a bot line). A transfer is refused
with an error in the call record.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response, WebSocket
from fastapi.responses import JSONResponse

from gateway.carriers.exotel.stream import ExotelStream, pack_route
from gateway.dialplan import BotAction, CallFacts
from gateway.ids import is_exotel_sid
from gateway.ops.logs import call_id as current_call
from gateway.streams.carrier import CallControl, CallControlError, StreamCarrier, is_loopback
from gateway.streams.events import StreamOpened

__all__ = ["MEDIA_PATH", "STREAM_URL_PATH", "ExotelRoutes"]

log = logging.getLogger("overtalk.exotel")

STREAM_URL_PATH = "/exotel/stream-url"
MEDIA_PATH = "/exotel/media"
CLOSE_POLICY = 1008
#: The applet's limit on the custom parameters appended to the URL.
MAX_CUSTOM_CHARS = 256


class _AppletControl:
    """Hang up by closing the stream (the flow runs its next applet); no transfer."""

    def __init__(self, close: Callable[[], Awaitable[None]]) -> None:
        self._close = close

    async def hangup(self) -> None:
        await self._close()

    async def transfer(self, target: str) -> None:
        raise CallControlError(
            f"cannot transfer to {target}: Exotel offers no transfer of a call in its Voicebot "
            "applet; end the stream into a Connect applet instead"
        )


class ExotelRoutes:
    """Exotel's routes over one :class:`~gateway.streams.carrier.StreamCarrier`."""

    def __init__(self, carrier: StreamCarrier) -> None:
        self.carrier = carrier
        settings = carrier.settings
        key, token = settings.exotel_api_key, settings.exotel_api_token
        self.basic = (
            "Basic " + base64.b64encode(f"{key}:{token}".encode()).decode()
            if key and token
            else None
        )

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(STREAM_URL_PATH, self.stream_url, methods=["GET", "POST"])
        router.add_api_websocket_route(MEDIA_PATH, self.media)
        return router

    def _allowed(self, authorization: str | None, host: str | None) -> bool:
        if self.basic is None:
            return is_loopback(host)
        return authorization is not None and hmac.compare_digest(
            authorization.encode(), self.basic.encode()
        )

    async def stream_url(self, request: Request) -> Response:
        """The applet's dynamic URL: route the call, answer the websocket URL to open."""
        if not self._allowed(
            request.headers.get("authorization"), request.client.host if request.client else None
        ):
            self.carrier.refused("bad-signature")
            return Response("forbidden\n", status_code=403, media_type="text/plain")
        params: Mapping[str, str] = request.query_params
        if request.method == "POST":
            form = await request.form()
            params = {k: v for k, v in form.items() if isinstance(v, str)} or params
        call_sid = params.get("CallSid")
        if not is_exotel_sid(call_sid):
            self.carrier.refused("bad-identifier")
            return Response("bad request: CallSid\n", status_code=400, media_type="text/plain")
        assert call_sid is not None
        current_call.set(call_sid)
        carrier = self.carrier
        if not carrier.lifecycle.accepting:
            return Response("draining\n", status_code=503, media_type="text/plain")
        outbound = params.get("Direction", "").startswith("outbound")
        facts = CallFacts(
            to=params.get("CallTo", "")[:32],
            from_=params.get("CallFrom", "")[:32],
            at=carrier.wall_clock(),
            direction="outbound" if outbound else "inbound",
        )
        routed = carrier.decide(call_sid, facts)
        decision = routed.decision
        if routed.busy or (decision is not None and not isinstance(decision.action, BotAction)):
            # The applet only streams: other dial-plan actions belong to the flow's applets.
            return Response("no bot for this call\n", status_code=503, media_type="text/plain")
        names = carrier.stream_parameters(call_sid, decision, {})
        query = pack_route(names)
        if len(urlencode(query)) > MAX_CUSTOM_CHARS:
            log.error("x call %s: its route names are too long for the applet", call_sid)
            return Response("route names too long\n", status_code=500, media_type="text/plain")
        url = carrier.url(str(request.base_url), MEDIA_PATH, urlencode(query), websocket=True)
        log.info("< Exotel stream URL for call %s", call_sid)
        return JSONResponse({"url": url})

    async def media(self, ws: WebSocket) -> None:
        """One Voicebot stream: Basic auth on the upgrade, then the shared plumbing (which
        checks the stream token in ``start``)."""
        if not self._allowed(
            ws.headers.get("authorization"), ws.client.host if ws.client else None
        ):
            log.warning("x rejected Exotel websocket: bad or missing Basic auth")
            self.carrier.refused("bad-signature")
            await ws.close(code=CLOSE_POLICY)
            return
        await ws.accept()
        await self.carrier.serve(ws, ExotelStream(), self._control)

    @staticmethod
    def _control(opened: StreamOpened, close: Callable[[], Awaitable[None]]) -> CallControl:
        return _AppletControl(close)
