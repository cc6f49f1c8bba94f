"""Start, serve, drain, stop: what a gateway does with SIGTERM so a rolling deploy drops no call.

On SIGTERM (or the first Ctrl-C) the gateway starts draining: readiness fails, so the load
balancer stops sending new calls; a voice webhook that still arrives is refused (busy, or 503
so Twilio tries the number's fallback URL); calls already in progress run on until they end
or the drain limit passes, when the rest are hung up; then the server stops. A second signal
stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from gateway.ops.admission import Admission
from gateway.ops.heap import freeze_startup_objects

log = logging.getLogger("overtalk.lifecycle")


class CannotListen(Exception):
    """An address the gateway serves on cannot be bound (taken, not local, not permitted)."""


class StartFailed(Exception):
    """The app's start-up failed (the log says why); the server never answered."""


def listen(host: str, port: int) -> socket.socket:
    """Bind (not yet listen on) the gateway's HTTP socket before anything starts.

    Binding here, rather than leaving it to uvicorn, turns a taken port into one plain error
    at once (uvicorn would log it and ``sys.exit`` from inside the event loop, after the
    models loaded). Listening starts when the server does, so until then connections are
    refused rather than left waiting.
    """
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


def readiness(
    lifecycle: Lifecycle, admission: Admission, default_engine: str, now: float
) -> tuple[dict[str, Any], bool]:
    """``/readyz``'s body and verdict: not ready while draining or while the default engine
    is full, so a load balancer sends new calls to another gateway; each engine's capacity
    and calls in use are listed for whoever sizes the fleet."""
    loads = admission.loads([default_engine], now)
    full = any(load.full for load in loads if load.engine == default_engine)
    body = {
        "ready": lifecycle.accepting and not full,
        "draining": lifecycle.draining,
        "full": full,
        "engines": {
            load.engine: {"capacity": load.capacity, "calls": load.in_use} for load in loads
        },
    }
    return body, bool(body["ready"])


class Lifecycle:
    """Whether the gateway takes new calls; shared by the routes and the runner."""

    def __init__(self) -> None:
        self.draining = False
        self.drain_started = 0.0
        self._changed = asyncio.Event()

    @property
    def accepting(self) -> bool:
        return not self.draining

    def start_drain(self) -> None:
        if not self.draining:
            self.draining = True
            self.drain_started = time.monotonic()
            log.info("= draining: no new calls; active calls run to their end")
            self._changed.set()

    async def wait_drain(self) -> None:
        await self._changed.wait()


async def run(
    app: Any,
    *,
    sock: socket.socket,
    drain_limit: float,
    wait_idle: Callable[[], Awaitable[None]],
    end_calls: Callable[[str], None],
    lifecycle: Lifecycle,
    **uvicorn_options: Any,
) -> None:
    """Serve ``app`` on ``sock`` (from :func:`listen`) until a signal, then drain (up to
    ``drain_limit`` seconds) and stop."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", **uvicorn_options)
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    start_up = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        try:
            await start_up(sockets=sockets)
        except SystemExit as exc:  # uvicorn's way out when the lifespan fails
            raise StartFailed("the gateway could not start; the log above says why") from exc
        if server.started:
            # Everything start-up built (the engine's models included) stays for the process:
            # out of the collector's way, so ended calls are collected soon (see ops.heap).
            log.debug("= %d start-up objects frozen", freeze_startup_objects())
            # Said once it answers; with port 0 this is where the chosen port is told.
            log.info("= listening on http://%s:%d", host, port)

    server.startup = startup  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("= %s received", signal.Signals(signum).name)
            lifecycle.start_drain()
        else:
            log.warning("x second signal: stopping now")
            server.should_exit = True
            server.force_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    draining = asyncio.create_task(lifecycle.wait_drain())
    try:
        await asyncio.wait({serving, draining}, return_when=asyncio.FIRST_COMPLETED)
        if not serving.done():
            try:
                await asyncio.wait_for(wait_idle(), drain_limit)
            except TimeoutError:
                log.warning("x drain limit of %.0f s reached: ending the calls left", drain_limit)
                end_calls("gateway drained")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wait_idle(), 5.0)
            log.info("= drained; stopping")
            server.should_exit = True
        await serving
    finally:
        sock.close()
        draining.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
