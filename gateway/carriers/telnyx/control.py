"""Call control for Telnyx calls: hang up, transfer and DTMF through the Call Control API.

``POST /v2/calls/{call_control_id}/actions/hangup``, ``.../actions/transfer`` with
``{"to": ...}`` and ``.../actions/send_dtmf`` with ``{"digits": ...}``
(developers.telnyx.com/api-reference/call-commands/hangup-call, transfer-call and send-dtmf),
Bearer API key, through the ``telnyx`` SDK's async client (httpx: never blocks the event loop).
Hanging up ends the media stream (Telnyx sends ``stop``).
"""

from __future__ import annotations

import telnyx

from gateway.ids import InvalidIdentifier, is_telnyx_call_control_id
from gateway.streams.carrier import CallControlError
from gateway.streams.dtmf import DtmfAlphabet

__all__ = ["DTMF", "TelnyxControl", "rest_client"]

DEFAULT_API_BASE = "https://api.telnyx.com/v2"
#: send_dtmf's ``digits``: "Valid digits are 0-9, A-D, *, and #. Pauses can be added using w
#: (0.5s) and W (1s)" (developers.telnyx.com/api-reference/call-commands/send-dtmf). The page
#: states no length limit; ours is the session's. ``duration_millis`` keeps its default (250 ms,
#: of 100-500): longer than our in-band tones, which suits IVRs on lossy legs.
DTMF = DtmfAlphabet(frozenset("0123456789ABCD*#"), pause="w")


def rest_client(api_key: str, api_base: str | None = None) -> telnyx.AsyncTelnyx:
    """The SDK's async client; ``api_base`` points it at a stand-in. One retry at most: a
    hang-up that waits for back-off keeps a caller on a dead bot.

    The SDK imports its call-command resources on first use, a synchronous import of about a
    second: done here, at start-up, so the first hang-up or DTMF does not stall the event
    loop, and every call's media with it."""
    client = telnyx.AsyncTelnyx(
        api_key=api_key, base_url=api_base or DEFAULT_API_BASE, max_retries=1, timeout=10.0
    )
    _ = client.calls.actions
    return client


class TelnyxControl:
    """Hangs up, transfers or sends DTMF on one call. The call control id goes into the REST
    path, so it must have Telnyx's format (``gateway.ids``); raises InvalidIdentifier
    otherwise."""

    def __init__(self, client: telnyx.AsyncTelnyx, call_control_id: str) -> None:
        if not is_telnyx_call_control_id(call_control_id):
            raise InvalidIdentifier("call_control_id", call_control_id)
        self.client = client
        self.call_control_id = call_control_id

    async def hangup(self) -> None:
        try:
            await self.client.calls.actions.hangup(self.call_control_id)
        except telnyx.APIError as exc:
            raise CallControlError(str(exc)) from exc

    async def transfer(self, target: str) -> None:
        try:
            await self.client.calls.actions.transfer(self.call_control_id, to=target)
        except telnyx.APIError as exc:
            raise CallControlError(str(exc)) from exc

    def can_request_dtmf(self, digits: str) -> bool:
        return DTMF.translate(digits) is not None

    async def request_dtmf(self, digits: str) -> None:
        wire = DTMF.translate(digits)
        if wire is None:
            raise CallControlError(f"Telnyx cannot send DTMF {digits[:70]!r}")
        try:
            await self.client.calls.actions.send_dtmf(self.call_control_id, digits=wire)
        except telnyx.APIError as exc:
            raise CallControlError(str(exc)) from exc
