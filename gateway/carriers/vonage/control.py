"""Call control for Vonage calls: hang up, transfer and DTMF through the Voice API.

``PUT /v1/calls/{uuid}`` with ``{"action": "hangup"}``, or ``{"action": "transfer",
"destination": {"type": "ncco", "ncco": [...]}}`` (Voice API reference, "Modify an in progress
call": https://developer.vonage.com/en/api/voice#updateCall); ``PUT /v1/calls/{uuid}/dtmf``
with ``{"digits": ...}`` ("Play DTMF into a call":
https://developer.vonage.com/en/api/voice#startDTMF). Each is authenticated with an
application JWT (RS256, the application's private key) made by the ``vonage-jwt`` package.

The ``vonage`` SDK's own Voice client is synchronous (requests) and always calls
``https://{api_host}``; these requests go through ``httpx`` instead, asynchronously and to
any base URL (the simulator's Voice API in tests), with the SDK's JWT and NCCO models.
"""

from __future__ import annotations

import httpx
from vonage_jwt.jwt import JwtClient

from gateway.carriers.vonage.ncco import transfer_ncco
from gateway.ids import InvalidIdentifier, is_uuid
from gateway.streams.carrier import CallControlError
from gateway.streams.dtmf import DtmfAlphabet

__all__ = ["API_BASE", "DTMF", "VonageRestControl"]

API_BASE = "https://api.nexmo.com"
#: A REST action must not hold a call's hang-up for long.
TIMEOUT_S = 10.0
#: Play DTMF's ``digits``: pattern ``^[0-9#*p]+$``, ``p`` a 500 ms pause (the API reference's
#: startDTMF body; the SDK's ``vonage_utils.types.Dtmf``). A-D are not among them: tones.
DTMF = DtmfAlphabet(frozenset("0123456789*#"), pause="p")


class VonageRestControl:
    """Hangs up, transfers or sends DTMF on one call. The UUID is part of the URL, so it
    must be one."""

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

    async def _put(self, body: dict[str, object], url: str | None = None) -> None:
        token = self.jwt.generate_application_jwt().decode()
        headers = {"Authorization": f"Bearer {token}"}
        url = url or self.url
        try:
            if self._client is not None:
                response = await self._client.put(url, json=body, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                    response = await client.put(url, json=body, headers=headers)
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

    def can_request_dtmf(self, digits: str) -> bool:
        return DTMF.translate(digits) is not None

    async def request_dtmf(self, digits: str) -> None:
        wire = DTMF.translate(digits)
        if wire is None:
            raise CallControlError(f"Vonage cannot send DTMF {digits[:70]!r}")
        await self._put({"digits": wire}, self.url + "/dtmf")
