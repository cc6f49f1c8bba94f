"""Run an ASGI app on a uvicorn server inside the current event loop.

The demo, the benchmark and the tests all need a real gateway on a real socket next to a
client in the same process; this is the one way they start it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


@contextlib.asynccontextmanager
async def serve(
    app: Any, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[str]:
    """Serve ``app`` until the block exits; yields its base URL (``http://host:port``).

    ``port=0`` takes a free port from the kernel, so parallel tests never collide. The app's
    own server limits (``app.state.uvicorn_options``: header deadline, websocket bounds) apply
    unless ``options`` overrides them.
    """
    state = getattr(app, "state", None)
    options = {**getattr(state, "uvicorn_options", {}), **options}
    config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on", **options)
    server = uvicorn.Server(config)
    # Leave signal handling to the embedding program (the demo, a benchmark, pytest).
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # re-raise why it could not start
                raise RuntimeError("server stopped before it started")
            await asyncio.sleep(0.01)
        sock = server.servers[0].sockets[0]
        bound_host, bound_port = sock.getsockname()[:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.should_exit = True
        await task
