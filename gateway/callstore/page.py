"""``/calls``: recent calls from the store, each linking to its timeline, recordings playable.

Access: with ``OVERTALK_ADMIN_TOKEN`` set, a request must carry the token (``Authorization:
Bearer``, or ``?token=`` once, after which an HttpOnly cookie scoped to ``/calls`` carries it);
without one, only loopback clients are served, and not requests a proxy forwarded. Plain HTML,
no script: the recording plays in the browser's own ``<audio>`` element.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import ipaddress
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from gateway.callstore.audio import AudioStore
from gateway.callstore.errors import StoreUnavailable
from gateway.callstore.query import BadQuery, call_filter
from gateway.callstore.record import valid_call_id
from gateway.callstore.store import CallStore, CallSummary
from gateway.callstore.timeline_page import render

__all__ = ["calls_router", "render_list"]

COOKIE = "overtalk_admin"
_STYLE = (
    "body{font-family:sans-serif;margin:20px}table{border-collapse:collapse}"
    "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #ddd;white-space:nowrap}"
    "td.n{text-align:right}audio{height:28px;width:200px}"
)
_HEAD = ("ended (UTC)", "call", "route", "caller", "outcome", "duration", "reply p50",
         "clear p50", "interruptions", "recording")  # fmt: skip


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms" if value >= 10 else f"{value:.2f} ms"


def _row(call: CallSummary) -> str:
    cid = quote(call.call_id, safe="")
    cells = [
        datetime.fromtimestamp(call.ended_at, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        f'<a href="/calls/{cid}">{html.escape(call.call_id)}</a>',
        html.escape(call.route or "-"),
        html.escape(call.caller),
        html.escape(call.outcome),
        f"{call.duration:.1f} s",
        _ms(call.response_ms),
        _ms(call.clear_ms),
        str(call.interruptions),
        f'<audio controls preload="none" src="/calls/{cid}/audio"></audio>'
        if call.audio_url else "-",
    ]  # fmt: skip
    numeric = {5, 6, 7, 8}
    return (
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(cells)
        )
        + "</tr>"
    )


def render_list(calls: list[CallSummary], heading: str) -> str:
    """The calls page for a listing (pure)."""
    head = "".join(f"<th>{h}</th>" for h in _HEAD)
    body = "".join(_row(c) for c in calls) or f'<tr><td colspan="{len(_HEAD)}">no calls</td></tr>'
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Calls</title>"
        f"<style>{_STYLE}</style></head><body><h1>Calls</h1><p>{html.escape(heading)}</p>"
        f"<table id='calls'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        "</body></html>"
    )


def calls_router(
    reader: Callable[[], Awaitable[CallStore]],
    *,
    admin_token: str = "",
    audio: AudioStore | None = None,
) -> APIRouter:
    """The page's routes; ``reader()`` gives the store to read (raises StoreUnavailable)."""
    router = APIRouter()

    def allowed(request: Request) -> bool:
        if not admin_token:
            # A request a local proxy forwarded comes from loopback too, but from anywhere
            # before that: the forwarding headers (the runbook's nginx sets them) give it away.
            proxied = any(h in request.headers for h in ("x-forwarded-for", "forwarded"))
            return not proxied and _is_loopback(request.client.host if request.client else None)
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        given = given or request.query_params.get("token") or request.cookies.get(COOKIE, "")
        return hmac.compare_digest(given.encode()[:256], admin_token.encode())

    def gated(response: Response, request: Request) -> Response:
        if admin_token and request.query_params.get("token"):
            response.set_cookie(COOKIE, admin_token, httponly=True, samesite="strict",
                                path="/calls")  # fmt: skip
        return response

    def refused(request: Request) -> Response | None:
        if allowed(request):
            return None
        why = "a valid admin token" if admin_token else "a loopback client (no token is set)"
        return Response(f"the calls page needs {why}\n", status_code=403,
                        media_type="text/plain")  # fmt: skip

    async def read(call: Callable[[CallStore], Any]) -> Any:
        store = await reader()
        return await asyncio.to_thread(call, store)

    @router.get("/calls")
    async def calls_page(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        try:
            where = call_filter(dict(request.query_params), time.time())
        except BadQuery as exc:
            return Response(f"{exc}\n", status_code=400, media_type="text/plain")
        try:
            calls = await read(lambda s: s.calls(where))
        except StoreUnavailable as exc:
            return Response(f"{exc}\n", status_code=503, media_type="text/plain")
        shown = ", ".join(f"{k} {v}" for k, v in request.query_params.items() if k != "token")
        heading = f"{len(calls)} most recent calls" + (f" ({shown})" if shown else "")
        return gated(HTMLResponse(render_list(calls, heading)), request)

    async def _record(call_id: str) -> dict[str, Any] | Response:
        if not valid_call_id(call_id):
            return Response("not a call id\n", status_code=400, media_type="text/plain")
        try:
            record = await read(lambda s: s.record(call_id))
        except StoreUnavailable as exc:
            return Response(f"{exc}\n", status_code=503, media_type="text/plain")
        if record is None:
            return Response("no such call\n", status_code=404, media_type="text/plain")
        return record

    def _audio_path(record: dict[str, Any]) -> Path | None:
        url = record.get("audio_url")
        if not url or audio is None:
            return None
        return audio.local_path(str(url))

    async def _allowed_record(call_id: str, request: Request) -> dict[str, Any] | Response:
        """The call's record for a client the page serves, else the refusal to send."""
        if (no := refused(request)) is not None:
            return no
        return await _record(call_id)

    @router.get("/calls/{call_id}")
    async def timeline(call_id: str, request: Request) -> Response:
        record = await _allowed_record(call_id, request)
        if isinstance(record, Response):
            return record
        path = _audio_path(record)
        page = await asyncio.to_thread(render, record, path)  # reads the whole recording
        if path is not None:
            player = (f'<p><a href="/calls">all calls</a> · <audio controls preload="none" '
                      f'src="/calls/{quote(call_id, safe="")}/audio"></audio></p>')  # fmt: skip
        else:
            player = '<p><a href="/calls">all calls</a> · no recording</p>'
        page = page.replace("</h1>", "</h1>" + player, 1)
        return gated(HTMLResponse(page), request)

    @router.get("/calls/{call_id}/audio")
    async def recording(call_id: str, request: Request) -> Response:
        record = await _allowed_record(call_id, request)
        if isinstance(record, Response):
            return record
        path = _audio_path(record)
        if path is None:
            return Response("no recording\n", status_code=404, media_type="text/plain")
        return FileResponse(path, media_type="audio/wav")

    return router
