"""The browser phone's wire formats, sans-I/O: the offer the page POSTs, the messages it sends
on the call's data channel, and the events the gateway sends back on it.

Signalling is one HTTP exchange (``POST /phone/offer``: the page's SDP offer and the route it
chose; the answer: the gateway's SDP, ICE candidates included, and the call's id), so there is
no trickle and no socket to keep. Everything the page sends is bounded: the offer's size, the
data channel's message size and rate (a token bucket with the time passed in). A bad offer is
a :class:`RemoteProtocolError` with the HTTP status to answer; a bad data-channel message is an
:class:`Ignored` event that carries its reason, and the call goes on (garbage per message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from gateway.carriers.webrtc.errors import RemoteProtocolError

__all__ = [
    "DTMF_DIGITS",
    "MAX_MESSAGE_BYTES",
    "Dtmf",
    "HangupRequested",
    "Ignored",
    "Offer",
    "PageChannel",
    "PageEvent",
    "ended_message",
    "parse_offer",
    "state_message",
    "transcript_message",
]

#: A dial-plan route name (gateway/dialplan/schema.py ``_NAME``); empty: the page did not choose.
_ROUTE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Largest data-channel message the page may send (its messages are a few dozen bytes).
MAX_MESSAGE_BYTES = 1024
#: Sustained page messages per second, and the burst allowed on top.
MESSAGE_RATE = 10.0
MESSAGE_BURST = 20.0
DTMF_DIGITS = frozenset("0123456789*#ABCD")
#: Longest transcript line sent to the page (an engine's runaway text is cut, not sent whole).
MAX_TEXT = 2000


@dataclass(frozen=True, slots=True)
class Offer:
    """The page's call request: its SDP offer and the route it chose ("" for the default)."""

    sdp: str
    route: str


def parse_offer(body: bytes, *, max_bytes: int) -> Offer:
    """Read ``{"type": "offer", "sdp": "...", "route": "..."}``.

    Raises :class:`RemoteProtocolError` (413 when too large, 400 otherwise) naming the problem.
    The SDP itself is checked only for what makes it an audio offer at all; aiortc parses the
    rest, and its refusal is the page's error too.
    """
    if len(body) > max_bytes:
        raise RemoteProtocolError(f"offer larger than {max_bytes} bytes", 413)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RemoteProtocolError("offer is not JSON") from None
    if not isinstance(data, dict):
        raise RemoteProtocolError("offer is not a JSON object")
    if data.get("type") != "offer":
        raise RemoteProtocolError('offer must have "type": "offer"')
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise RemoteProtocolError("offer has no SDP (a string starting v=0)")
    if "\x00" in sdp or "\nm=audio " not in sdp.replace("\r\n", "\n"):
        raise RemoteProtocolError("offer's SDP has no audio section")
    route = data.get("route", "")
    if route is None:
        route = ""
    if not isinstance(route, str) or (route and _ROUTE.fullmatch(route) is None):
        raise RemoteProtocolError("route must be a dial-plan route name")
    return Offer(sdp, route)


# -- the data channel: page -> gateway ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HangupRequested:
    """The caller pressed hang up."""


@dataclass(frozen=True, slots=True)
class Dtmf:
    """Keypad digits the caller pressed."""

    digits: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message dropped, and why (counted in the call's ledger as a violation ``kind``)."""

    kind: str
    reason: str


PageEvent = HangupRequested | Dtmf | Ignored


class PageChannel:
    """Reads the page's data-channel messages, one at a time, within size and rate bounds."""

    __slots__ = ("max_bytes", "rate", "burst", "_tokens", "_at")

    def __init__(
        self,
        *,
        max_bytes: int = MAX_MESSAGE_BYTES,
        rate: float = MESSAGE_RATE,
        burst: float = MESSAGE_BURST,
    ) -> None:
        self.max_bytes = max_bytes
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at: float | None = None

    def receive(self, data: str | bytes, now: float) -> PageEvent:
        """One message in, one event out; never raises for what the page sent."""
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return Ignored("flood", f"more than {self.rate:g} messages per second")
        self._tokens -= 1.0
        size = len(data.encode() if isinstance(data, str) else data)
        if size > self.max_bytes:
            return Ignored("oversized", f"message of {size} bytes (most {self.max_bytes})")
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            return Ignored("malformed-json", "message is not JSON")
        if not isinstance(message, dict):
            return Ignored("malformed-message", "message is not a JSON object")
        match message.get("type"):
            case "hangup":
                return HangupRequested()
            case "dtmf":
                digits = message.get("digits")
                if not isinstance(digits, str) or not 0 < len(digits) <= 32:
                    return Ignored("malformed-message", "dtmf needs 1-32 digits")
                if not set(digits) <= DTMF_DIGITS:
                    return Ignored("malformed-message", "dtmf digits are 0-9, *, #, A-D")
                return Dtmf(digits)
            case _:
                return Ignored("unknown-message", "unknown message type")


# -- the data channel: gateway -> page ------------------------------------------------------


def transcript_message(role: str, text: str, final: bool) -> str:
    """A line of the transcript as it happens (``final`` false: it may still change)."""
    return orjson.dumps(
        {"type": "transcript", "role": role, "text": text[:MAX_TEXT], "final": final}
    ).decode()


def state_message(state: str, **details: str | float) -> str:
    """The call's progress (``connected``, ``interrupted``...) with what the page shows."""
    return orjson.dumps({"type": "state", "state": state, **details}).decode()


def ended_message(call_id: str, reason: str, timeline: str | None) -> str:
    """The call is over; ``timeline`` is the call's page (``/calls/<id>``) where one is kept."""
    return orjson.dumps(
        {"type": "ended", "call_id": call_id, "reason": reason, "timeline": timeline}
    ).decode()
