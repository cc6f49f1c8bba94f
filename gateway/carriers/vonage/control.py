"""Call control for Vonage calls: hang up and transfer through the Voice API.

``PUT /v1/calls/{uuid}`` with ``{"action": "hangup"}``, or ``{"action": "transfer",
"destination": {"type": "ncco", "ncco": [...]}}`` (Voice API reference, "Modify an in progress
call": https://developer.vonage.com/en/api/voice#updateCall), authenticated with an
application JWT (RS256, the application's private key) made by the ``vonage-jwt`` package.

The ``vonage`` SDK's own Voice client is synchronous (requests) and always calls
``https://{api_host}``; these two requests go through ``httpx`` instead, asynchronously and to
any base URL (the simulator's Voice API in tests), with the SDK's JWT and NCCO models.
"""

from __future__ import annotations

import httpx
from vonage_jwt.jwt import JwtClient

from gateway.carriers.vonage.ncco import transfer_ncco
from gateway.ids import InvalidIdentifier, is_uuid
from gateway.streams.carrier import CallControlError

__all__ = ["API_BASE", "VonageRestControl"]

API_BASE = "https://api.nexmo.com"
#: A REST action must not hold a call's hang-up for long.
TIMEOUT_S = 10.0


class VonageRestControl:
    """Hangs up or transfers one call. The UUID is part of the URL, so it must be one."""

    def __init__(
        self,
        jwt: JwtClient,
        call_uuid: str,
        *,
        api_base: str = API_BASE,
        caller_id: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not is_uuid(call_uuid):
            raise InvalidIdentifier("Vonage call uuid", call_uuid)
        self.jwt = jwt
        self.url = f"{api_base.rstrip('/')}/v1/calls/{call_uuid}"
        self.caller_id = caller_id
        self._client = client

    async def _put(self, body: dict[str, object]) -> None:
        token = self.jwt.generate_application_jwt().decode()
        headers = {"Authorization": f"Bearer {token}"}
        try:
            if self._client is not None:
                response = await self._client.put(self.url, json=body, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                    response = await client.put(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise CallControlError(f"Voice API unreachable: {exc}") from exc
        if response.status_code >= 300:
            raise CallControlError(f"Voice API answered {response.status_code}")

    async def hangup(self) -> None:
        await self._put({"action": "hangup"})

    async def transfer(self, target: str) -> None:
        try:
            ncco = transfer_ncco(target, self.caller_id)
        except ValueError as exc:
            raise CallControlError(str(exc)) from exc
        await self._put({"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}})
