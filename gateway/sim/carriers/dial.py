"""Placing a call over any carrier's stand-in: the I/O every carrier shares (see the package
docstring): POST the signed webhook, open the websocket the answer names, pump the stream."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
from websockets.exceptions import InvalidHandshake, InvalidStatus

from gateway.sim.caller import CallPump, open_media, tls_context
from gateway.sim.media import StreamSimBase
from gateway.sim.report import CallReport
from gateway.sim.script import CallerScript, ScriptRunner

__all__ = ["CarrierDialer", "StreamPlan", "Webhook", "place_carrier_call"]


@dataclass(frozen=True, slots=True)
class Webhook:
    """The carrier's call webhook: where it POSTs, the body and its headers (signed)."""

    path: str
    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class StreamPlan:
    """What the answer said to open: the websocket path (on the gateway), the upgrade's
    headers, and the carrier's end of the stream."""

    path: str
    sim: StreamSimBase
    headers: dict[str, str] = field(default_factory=dict)


class CarrierDialer(Protocol):
    """One carrier's way of placing an inbound call; see the module docstring."""

    name: str

    def webhook(self, report: CallReport, public: str) -> Webhook:
        """The signed call webhook for the call ``report`` describes (ids filled in here)."""

    def answer(
        self, text: str, public: str, report: CallReport, *, keep_media_log: bool
    ) -> StreamPlan | None:
        """Read the gateway's answer; the stream to open, or None (what happened instead is
        in ``report``). Raises ValueError for an answer the carrier would reject."""


def _fail(report: CallReport, why: str, t_begin: float) -> CallReport:
    report.ended_by = "error"
    report.error = why
    report.duration_s = time.monotonic() - t_begin
    return report


async def place_carrier_call(
    gateway_url: str,
    script: CallerScript,
    dialer: CarrierDialer,
    *,
    public_url: str | None = None,
    caller: str = "+15005550006",
    called: str = "+15005550001",
    record: Path | None = None,
    max_duration_s: float = 600.0,
    keep_media_log: bool = True,
    on_pump: Callable[[str, CallPump], None] | None = None,
) -> CallReport:
    """Place one inbound call over ``dialer``'s carrier and report what happened.

    Like :func:`gateway.sim.caller.place_call`: never raises for gateway misbehaviour, the
    report says what went wrong. ``on_pump(call_id, pump)`` is told of the running pump so a
    REST stand-in can end the call as the carrier would.
    """
    base = gateway_url.rstrip("/")
    public = (public_url or gateway_url).rstrip("/")
    report = CallReport(caller=caller, called=called)
    t_begin = time.monotonic()
    hook = dialer.webhook(report, public)
    try:
        async with httpx.AsyncClient(timeout=10.0, verify=tls_context()) as client:
            resp = await client.post(base + hook.path, content=hook.body, headers=hook.headers)
    except httpx.HTTPError as exc:
        return _fail(report, f"call webhook failed: {type(exc).__name__}: {exc}", t_begin)
    report.http_status = resp.status_code
    if resp.status_code != 200:
        return _fail(report, f"call webhook answered HTTP {resp.status_code}", t_begin)
    try:
        plan = dialer.answer(resp.text, public, report, keep_media_log=keep_media_log)
    except ValueError as exc:
        report.violations.append(f"{dialer.name} answer: {exc}")
        return _fail(report, str(exc), t_begin)
    if plan is None:
        report.ended_by = report.ended_by or "twiml"
        report.duration_s = time.monotonic() - t_begin
        return report
    ws_scheme = "wss" if urlsplit(base).scheme == "https" else "ws"
    ws_url = urlunsplit((ws_scheme, urlsplit(base).netloc, plan.path, "", ""))
    try:
        async with open_media(ws_url, plan.headers) as ws:
            report.streamed = True
            pump = CallPump(ws, plan.sim, ScriptRunner(script), max_duration_s, record is not None)
            if on_pump is not None:
                on_pump(report.call_sid, pump)
            await pump.run()
    except InvalidStatus as exc:
        return _fail(report, f"media websocket refused: HTTP {exc.response.status_code}", t_begin)
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        return _fail(report, f"media websocket failed: {type(exc).__name__}: {exc}", t_begin)
    pump.fill(report)
    if record is not None:
        pump.write_recording(record)
        report.record_path = record
    return report
