"""Call control for Telnyx calls: hang up and transfer through the Call Control API.

``POST /v2/calls/{call_control_id}/actions/hangup`` and ``.../actions/transfer`` with
``{"to": ...}`` (developers.telnyx.com/api-reference/call-commands/hangup-call and
transfer-call), Bearer API key, through the ``telnyx`` SDK's async client (httpx: never blocks
the event loop). Hanging up ends the media stream (Telnyx sends ``stop``).
"""

from __future__ import annotations

import telnyx

from gateway.ids import InvalidIdentifier, is_telnyx_call_control_id
from gateway.streams.carrier import CallControlError

__all__ = ["TelnyxControl", "rest_client"]

DEFAULT_API_BASE = "https://api.telnyx.com/v2"


def rest_client(api_key: str, api_base: str | None = None) -> telnyx.AsyncTelnyx:
    """The SDK's async client; ``api_base`` points it at a stand-in. One retry at most: a
    hang-up that waits for back-off keeps a caller on a dead bot."""
    return telnyx.AsyncTelnyx(
        api_key=api_key, base_url=api_base or DEFAULT_API_BASE, max_retries=1, timeout=10.0
    )


class TelnyxControl:
    """Hangs up or transfers one call. The call control id goes into the REST path, so it
    must have Telnyx's format (``gateway.ids``); raises InvalidIdentifier otherwise."""

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
