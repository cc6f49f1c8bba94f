"""The FastAPI application: mounts the carriers' routes and owns start-up and shut-down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from engine.base import Engine
from engine.registry import ENGINE_NAMES
from gateway.call.registry import CallRegistry
from gateway.callstore.service import call_data_for
from gateway.carriers.exotel.aio import ExotelRoutes
from gateway.carriers.plivo.aio import PlivoRoutes
from gateway.carriers.sip import SipSettings, sip_server
from gateway.carriers.telnyx.aio import TelnyxRoutes
from gateway.carriers.twilio.aio import TwilioCarrier
from gateway.carriers.vonage.aio import VonageRoutes
from gateway.carriers.webrtc.aio import PhoneCarrier
from gateway.config import Settings
from gateway.dialplan import PlanHolder, install_sighup, watch
from gateway.engines import EngineSet
from gateway.ops.admission import Admission, default_capacity, parse_capacity
from gateway.ops.heap import CallGarbage
from gateway.ops.lifecycle import Lifecycle, readiness
from gateway.ops.limits import BodyLimit, uvicorn_options
from gateway.ops.metrics import GatewayMetrics
from gateway.streams.carrier import StreamCarrier

log = logging.getLogger("overtalk.gateway")


def _campaign_router(settings: Settings) -> Any:
    """Campaign callbacks and the management API over the configured store."""
    from gateway.campaigns.api import campaign_router
    from gateway.campaigns.carrier import TwilioCalls
    from gateway.campaigns.store import open_store

    sid, token = settings.twilio_account_sid, settings.twilio_auth_token
    carrier = (
        TwilioCalls(sid, token, api_base=settings.twilio_api_base or None)
        if sid and token
        else None
    )
    return campaign_router(
        open_store(settings.campaign_store),
        twilio_auth_token=token or None,
        public_base=settings.public_url or None,
        carrier=carrier,
    )


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    wall_clock: Callable[[], datetime] | None = None,
    sip: SipSettings | None = None,
) -> FastAPI:
    """Build the gateway app; ``engine`` overrides the one named in ``settings`` (tests).

    Raises :class:`gateway.dialplan.DialPlanInvalid` when the configured dial plan is broken:
    a gateway does not start without a working plan.
    """
    engines = EngineSet(
        settings.engine, {settings.engine: settings.engine_options}, prebuilt=engine
    )
    engine = engines.get()  # the default engine loads before the first call, not during it
    plans = (
        PlanHolder(settings.dialplan, ENGINE_NAMES, max_bytes=settings.dialplan_max_bytes)
        if settings.dialplan
        else None
    )
    calls = CallRegistry(settings.records_dir or None)
    lifecycle = Lifecycle()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    admission = Admission(
        default_capacity(parse_capacity(settings.capacity), cores or 1), calls.active
    )
    calls.on_end.append(admission.call_ended)
    metrics = GatewayMetrics(
        lambda: len(calls.active), lambda: lifecycle.draining, admission, lambda: [engine.name]
    )
    calls.on_end.append(metrics.call_ended)
    garbage = CallGarbage()  # ended calls' cycles freed within seconds (see ops.heap)
    calls.on_end.append(garbage.call_ended)
    call_data = call_data_for(settings)  # the call store, when one is configured
    if call_data is not None:
        calls.on_end.append(call_data.submit)
    twilio = TwilioCarrier(
        settings,
        engines,
        calls,
        plans,
        lifecycle,
        refused=metrics.refused,
        admission=admission,
    )
    if wall_clock is not None:
        twilio.wall_clock = wall_clock
    phone = PhoneCarrier(settings, engines, calls, plans, lifecycle, admission, metrics.refused,
                         timelines=call_data is not None)  # fmt: skip
    if wall_clock is not None:
        phone.wall_clock = wall_clock

    def stream_carrier(name: str) -> StreamCarrier:
        """A websocket media-stream carrier's share of the gateway (gateway/streams)."""
        carrier = StreamCarrier(
            name,
            settings,
            engines,
            calls,
            twilio.tokens,
            plans,
            lifecycle,
            refused=metrics.refused,
            admission=admission,
        )
        if wall_clock is not None:
            carrier.wall_clock = wall_clock
        return carrier

    telnyx = TelnyxRoutes(stream_carrier("telnyx"))
    plivo = PlivoRoutes(stream_carrier("plivo"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.signed:
            log.info("= Twilio signatures checked against %s", settings.public_url or "the Host")
            if not settings.public_url:
                log.warning(
                    "x no public URL configured: signatures are checked against each request's "
                    "Host, which fails behind a proxy; set --public-url"
                )
        else:
            log.warning(
                "x TWILIO_AUTH_TOKEN is not set: requests are not authenticated, so only "
                "loopback clients (127.0.0.0/8, ::1) are accepted"
            )
        for carrier, signed, secret in (
            ("Telnyx", bool(settings.telnyx_public_key), "TELNYX_PUBLIC_KEY"),
            ("Plivo", bool(settings.plivo_auth_token), "PLIVO_AUTH_TOKEN"),
            ("Vonage", bool(settings.vonage_signature_secret), "VONAGE_SIGNATURE_SECRET"),
            ("Exotel", bool(settings.exotel_api_token), "EXOTEL_API_TOKEN"),
        ):
            if signed:
                log.info("= %s signatures checked", carrier)
            else:
                log.info(
                    "= %s requests unsigned (%s unset): loopback clients only", carrier, secret
                )
        if call_data is not None:
            call_data.start()
        stack = contextlib.AsyncExitStack()
        if sip is not None and sip.enabled:
            app.state.sip = await stack.enter_async_context(
                sip_server(
                    sip,
                    engines,
                    calls,
                    plans,
                    lifecycle=lifecycle,
                    admission=admission,
                    wall_clock=wall_clock,
                    recordings_dir=settings.recordings_dir,
                    holds=settings.holds,
                )
            )
        watcher = None
        if plans is not None:
            log.info("= dial plan %s (%s) in force", plans.path, plans.current.digest)
            watcher = asyncio.create_task(watch(plans))
            try:
                install_sighup(plans, asyncio.get_running_loop())
            except (NotImplementedError, RuntimeError, ValueError) as exc:
                log.info("= no SIGHUP reload here (%s); the file watch still reloads", exc)
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            await stack.aclose()
            await phone.aclose()
            await twilio.aclose()
            await telnyx.aclose()
            await plivo.aclose()
            await calls.flush()
            if call_data is not None:  # last: every call has ended and been handed over
                await call_data.aclose()
            await engines.aclose()
            garbage.close()

    app = FastAPI(title="Overtalk gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.calls = calls
    app.state.engines = engines
    app.state.plans = plans
    app.state.lifecycle = lifecycle
    app.state.admission = admission
    app.state.metrics = metrics
    app.state.stream_tokens = twilio.tokens
    app.state.phone = phone
    #: What the server must be started with for the header deadline and websocket bound.
    app.state.uvicorn_options = uvicorn_options(settings.header_timeout, metrics.refused)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
        refused=metrics.refused,
    )
    app.include_router(twilio.router())
    app.include_router(phone.router())
    app.include_router(telnyx.router())
    app.include_router(plivo.router())
    app.include_router(VonageRoutes(stream_carrier("vonage")).router())
    app.include_router(ExotelRoutes(stream_carrier("exotel")).router())
    if settings.campaign_store:
        app.include_router(_campaign_router(settings))
    if call_data is not None:
        app.include_router(call_data.router())

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Liveness: the process serves requests (draining included)."""
        return JSONResponse(
            {
                "status": "ok",
                "active_calls": len(calls.active),
                "engine": engine.name,
                "tasks": len(asyncio.all_tasks()),
            }
        )

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: 503 while draining or full, so the load balancer sends new calls
        elsewhere."""
        body, ready = readiness(lifecycle, admission, engine.name, time.monotonic())
        body["active_calls"] = len(calls.active)
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return app
