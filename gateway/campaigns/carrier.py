"""The carrier seam: place, find, fetch and change calls; Twilio's REST API behind it.

One small interface (:class:`Carrier`) so the dialler can be driven by a fake in tests and by
the real ``twilio`` client everywhere else (pointed at the simulator's REST stand-in with
``api_base``). The client is synchronous (requests): the asyncio side calls these methods in a
worker thread.

Errors are mapped at this boundary (STYLE.md 5): a 4xx answer becomes
:class:`~gateway.campaigns.errors.CarrierRejected` (the number is invalid, the caller ID not
ours: asking again cannot help); anything that leaves the outcome unknown (a timeout, a dropped
connection, a 5xx, a 429) becomes :class:`~gateway.campaigns.errors.CarrierUnavailable`, and the
dialler must then reconcile with the carrier's call list before dialling again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from gateway.campaigns.errors import CarrierRejected, CarrierUnavailable
from gateway.carriers.twilio.control import rest_client

__all__ = ["CallInfo", "Carrier", "DialRequest", "TwilioCalls"]

T = TypeVar("T")

#: Status callback events a campaign asks for: every step, so the store sees ringing and
#: answer times, not only the end.
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")


@dataclass(frozen=True, slots=True)
class DialRequest:
    """One ``calls.create``: who, what to run, and where Twilio reports back."""

    to: str
    from_: str
    twiml: str
    status_callback: str
    timeout: int
    machine_detection: str | None = None  # "Enable" | "DetectMessageEnd" | None
    machine_detection_timeout: int | None = None
    amd_callback: str | None = None
    record: bool = False
    recording_callback: str | None = None
    time_limit: int | None = None


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the carrier says about one call."""

    sid: str
    to: str
    from_: str
    status: str
    created: float  # epoch seconds (Twilio's date_created, 1 s resolution)
    answered_by: str | None = None
    duration: float | None = None


class Carrier(Protocol):
    def create(self, request: DialRequest) -> CallInfo:
        """Place a call; the carrier's record of it."""

    def find(self, to: str, from_: str, since: float) -> list[CallInfo]:
        """Calls from ``from_`` to ``to`` created at or after ``since`` (epoch seconds)."""

    def fetch(self, sid: str) -> CallInfo:
        """The call ``sid`` as the carrier sees it now."""

    def update(self, sid: str, *, status: str | None = None, twiml: str | None = None) -> None:
        """Hang up (``completed``), cancel (``canceled``) or replace the TwiML of a call."""


def _epoch(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


def _info(call: Any) -> CallInfo:
    duration = call.duration
    return CallInfo(
        sid=call.sid,
        to=call.to or "",
        from_=call._from or "",
        status=call.status or "",
        created=_epoch(call.date_created),
        answered_by=call.answered_by or None,
        duration=float(duration) if duration not in (None, "") else None,
    )


class TwilioCalls:
    """:class:`Carrier` over the real ``twilio`` REST client.

    ``timeout`` bounds each HTTP request: the dialler's lease on an attempt must outlast it, so
    a request can never still be on its way when another process takes the attempt over.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base: str | None = None,
        timeout: float = 10.0,
        client: Client | None = None,
    ) -> None:
        self.client = client or rest_client(account_sid, auth_token, api_base)
        self.client.http_client.timeout = timeout  # type: ignore[attr-defined]
        self.timeout = timeout

    def create(self, request: DialRequest) -> CallInfo:
        kwargs: dict[str, Any] = {
            "to": request.to,
            "from_": request.from_,
            "twiml": request.twiml,
            "status_callback": request.status_callback,
            "status_callback_event": list(STATUS_EVENTS),
            "status_callback_method": "POST",
            "timeout": request.timeout,
        }
        if request.machine_detection:
            kwargs["machine_detection"] = request.machine_detection
            kwargs["async_amd"] = "true"
            if request.amd_callback:
                kwargs["async_amd_status_callback"] = request.amd_callback
                kwargs["async_amd_status_callback_method"] = "POST"
            if request.machine_detection_timeout:
                kwargs["machine_detection_timeout"] = request.machine_detection_timeout
        if request.record:
            kwargs["record"] = True
            if request.recording_callback:
                kwargs["recording_status_callback"] = request.recording_callback
        if request.time_limit:
            kwargs["time_limit"] = request.time_limit
        return _mapped(lambda: _info(self.client.calls.create(**kwargs)))

    def find(self, to: str, from_: str, since: float) -> list[CallInfo]:
        # Listed newest first; a queued call has no start time yet, so the window is applied
        # to date_created here rather than with the API's StartTime filter.
        calls = _mapped(lambda: self.client.calls.list(to=to, from_=from_, limit=100))
        return [info for info in map(_info, calls) if info.created >= since]

    def fetch(self, sid: str) -> CallInfo:
        return _mapped(lambda: _info(self.client.calls(sid).fetch()))

    def update(self, sid: str, *, status: str | None = None, twiml: str | None = None) -> None:
        kwargs = {k: v for k, v in (("status", status), ("twiml", twiml)) if v is not None}
        _mapped(lambda: self.client.calls(sid).update(**kwargs))


def _mapped(call: Callable[[], T]) -> T:
    try:
        return call()
    except TwilioRestException as exc:
        error = CarrierUnavailable if exc.status >= 500 or exc.status == 429 else CarrierRejected
        raise error(f"HTTP {exc.status}: {exc.msg}", status=exc.status, code=exc.code) from exc
    except (requests.RequestException, TwilioException) as exc:
        raise CarrierUnavailable(f"{type(exc).__name__}: {exc}") from exc
