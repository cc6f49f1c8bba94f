"""HTTP limits for the whole app: how big a request may be and how long it may take to arrive.

Two places enforce them, each where it can act before any cost is paid:

- :class:`BodyLimit`, an ASGI middleware, reads a request's body before any route sees it:
  a ``Content-Length`` over the limit is refused with 413 before one byte is read, a chunked
  body that grows past it is refused as soon as it does, and a body that trickles in for longer
  than ``body_timeout`` gets 408. Routes (webhook signature checks, campaign JSON) then parse
  a body that is whole and bounded, and a refusal never reaches their authentication or parser.
- :func:`uvicorn_options` gives the server a header deadline (a connection that has not sent a
  whole request head within ``header_timeout`` is closed: uvicorn has no such setting, only a
  keep-alive timeout that stops counting as soon as one byte arrives), bounds websocket
  messages well below uvicorn's 16 MiB default, and fails a websocket whose text frame is not
  UTF-8 with 1007 and a one-line warning (uvicorn's own websockets protocol does the same but
  logs a traceback at ERROR for what is only a peer's garbage).

Every refusal is reported by kind to ``refused`` (``/metrics``: ``overtalk_refusals_total``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("overtalk.limits")

#: A Media Streams frame is under 1 KB; 64 KiB leaves room and stops a 16 MiB message from
#: being buffered before ``TwilioStream`` could refuse it.
WS_MAX_SIZE = 64 * 1024


async def _refuse(send: Send, status: int, reason: str) -> None:
    body = f"{reason}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Reads each HTTP request body whole, within ``max_bytes`` and ``body_timeout`` seconds,
    before the app sees the request; refuses it (413, 408) otherwise."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        body_timeout: float,
        refused: Callable[[str], None] = lambda kind: None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
                break
        if declared is not None and (
            not declared.isdigit() or len(declared) > 15 or int(declared) > self.max_bytes
        ):
            self.refused("body-too-large")
            await _refuse(send, 413, f"request body over {self.max_bytes} bytes")
            return
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await self._read(receive)
        except TimeoutError:
            self.refused("body-timeout")
            log.warning("x request body not received within %g s", self.body_timeout)
            await _refuse(send, 408, f"request body not received within {self.body_timeout:g} s")
            return
        if body is None:
            self.refused("body-too-large")
            await _refuse(send, 413, f"request body over {self.max_bytes} bytes")
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # the disconnect, when it comes

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it exceeds the limit (the rest is not read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body and the disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def uvicorn_options(
    header_timeout: float, refused: Callable[[str], None] = lambda kind: None
) -> dict[str, Any]:
    """Server options that bound what a connection may hold before the app runs."""
    options: dict[str, Any] = {"ws_max_size": WS_MAX_SIZE, "h11_max_incomplete_event_size": 16384}
    options["ws"] = _utf8_checked_websockets(refused)
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # no httptools (a PyPy build): uvicorn's own keep-alive limit only
        log.warning("x httptools is not installed: no deadline for request headers")
        return options

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        """Closes a connection whose request head is not complete ``header_timeout`` seconds
        after it opened or after its previous response (a slow-headers attack)."""

        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                refused("header-timeout")
                log.warning("x request head not received within %g s; closing", header_timeout)
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

    options["http"] = HeaderDeadlineProtocol
    return options


def _utf8_checked_websockets(refused: Callable[[str], None]) -> type[Any]:
    """uvicorn's default websockets protocol, failing non-UTF-8 text frames quietly (RFC 6455
    section 8.1: the endpoint MUST fail the connection, code 1007)."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    class Utf8CheckedProtocol(WebSocketsSansIOProtocol):
        def send_receive_event_to_app(self) -> None:
            if self.curr_msg_data_type == "text" and not self.close_sent:
                frames = self.frames
                data = frames[0] if len(frames) == 1 else b"".join(frames)
                # Media Streams JSON is ASCII: the full decode runs only for other text.
                if not data.isascii():
                    try:
                        data.decode()
                    except UnicodeDecodeError:
                        refused("invalid-utf8")
                        log.warning("x websocket text frame is not UTF-8; closing with 1007")
                        self.frames = []
                        self.conn.send_close(1007)
                        self.handle_parser_exception()
                        return
            super().send_receive_event_to_app()

    return Utf8CheckedProtocol
