"""The FastAPI application: mounts the carriers' routes and owns start-up and shut-down."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from engine.base import Engine
from engine.registry import create_engine
from gateway.calls import CallRegistry
from gateway.carriers.twilio.aio import TwilioCarrier
from gateway.config import Settings

log = logging.getLogger("overtalk.gateway")


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Build the gateway app; ``engine`` overrides the one named in ``settings`` (tests)."""
    engine = engine or create_engine(settings.engine, **dict(settings.engine_options))
    calls = CallRegistry(settings.records_dir or None)
    twilio = TwilioCarrier(settings, engine, calls)

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
        log.info("= engine %s ready", engine.name)
        try:
            yield
        finally:
            await engine.aclose()

    app = FastAPI(title="Overtalk gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.calls = calls
    app.state.engine = engine
    app.include_router(twilio.router())

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse(
            {"status": "ok", "active_calls": len(calls.active), "engine": engine.name}
        )

    return app
