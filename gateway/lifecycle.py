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
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

log = logging.getLogger("overtalk.lifecycle")


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
    host: str,
    port: int,
    drain_limit: float,
    wait_idle: Callable[[], Awaitable[None]],
    end_calls: Callable[[str], None],
    lifecycle: Lifecycle,
    **uvicorn_options: Any,
) -> None:
    """Serve ``app`` until a signal, then drain (up to ``drain_limit`` seconds) and stop."""
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", **uvicorn_options)
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
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
    serving = asyncio.create_task(server.serve())
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
        draining.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
