"""Call control for Plivo calls: hang up, transfer and DTMF through the Voice REST API.

- Hang up: ``DELETE /v1/Account/{auth_id}/Call/{call_uuid}/`` (204), "Hang up a call",
  plivo.com/docs/voice/api/call/hang-up-a-call.
- Transfer: ``POST /v1/Account/{auth_id}/Call/{call_uuid}/`` with ``legs=aleg``,
  ``aleg_url`` and ``aleg_method`` (202), "Transfer a call", plivo.com/docs/voice/api/call/
  transfer-a-call: Plivo fetches ``aleg_url`` (signed) for the XML to run, here the gateway's
  ``/plivo/transfer`` with the target, which answers ``<Dial>``.
- DTMF: ``POST /v1/Account/{auth_id}/Call/{call_uuid}/DTMF/`` with ``digits`` and ``leg``
  (``aleg``, the caller; 202), "Send digits on an active call",
  plivo.com/docs/voice/api/call/dtmf/send-digits-on-a-call (the SDK's ``Calls.send_digits``,
  ``plivo/resources/calls.py``).

HTTP basic auth with the auth ID and token. The ``plivo`` SDK's REST client is synchronous
(requests) with its API hosts fixed in module constants (``plivo/rest/client.py``), so this
speaks the documented endpoints with httpx's async client: it never blocks the event loop.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from gateway.ids import InvalidIdentifier, is_uuid
from gateway.streams.carrier import CallControlError
from gateway.streams.dtmf import DtmfAlphabet

__all__ = ["DEFAULT_API_BASE", "DTMF", "PlivoControl", "rest_client"]

DEFAULT_API_BASE = "https://api.plivo.com"
#: Send digits' ``digits`` (the API page says only "set of digits"): the alphabet of Plivo's
#: ``<DTMF>`` element, ``1234567890*#wW``, ``w`` a 0.5 s and ``W`` a 1 s wait
#: (plivo.com/docs/voice/xml/dtmf). A-D are not among them: tones.
DTMF = DtmfAlphabet(frozenset("0123456789*#"), pause="w")


def rest_client(auth_id: str, auth_token: str, api_base: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=(api_base or DEFAULT_API_BASE).rstrip("/"),
        auth=(auth_id, auth_token),
        timeout=10.0,
    )


class PlivoControl:
    """Hangs up, transfers or sends DTMF on one call. The CallUUID and auth ID go into REST
    paths, so they must be a UUID and a plain token; raises InvalidIdentifier otherwise."""

    def __init__(
        self, client: httpx.AsyncClient, auth_id: str, call_uuid: str, transfer_url: str
    ) -> None:
        if not is_uuid(call_uuid):
            raise InvalidIdentifier("CallUUID", call_uuid)
        if not (auth_id.isascii() and auth_id.isalnum() and len(auth_id) <= 64):
            raise InvalidIdentifier("Plivo auth ID", auth_id)
        self.client = client
        self.path = f"/v1/Account/{auth_id}/Call/{call_uuid}/"
        self.transfer_url = transfer_url

    async def _send(self, request: httpx.Request, expect: int) -> None:
        try:
            response = await self.client.send(request)
        except httpx.HTTPError as exc:
            raise CallControlError(f"Plivo REST unreachable: {exc}") from exc
        if response.status_code != expect:
            raise CallControlError(
                f"Plivo answered {response.status_code}: {response.text[:200]!r}"
            )

    async def hangup(self) -> None:
        await self._send(self.client.build_request("DELETE", self.path), 204)

    async def transfer(self, target: str) -> None:
        url = self.transfer_url + "?to=" + quote(target, safe="")
        form = {"legs": "aleg", "aleg_url": url, "aleg_method": "POST"}
        await self._send(self.client.build_request("POST", self.path, data=form), 202)

    def can_request_dtmf(self, digits: str) -> bool:
        return DTMF.translate(digits) is not None

    async def request_dtmf(self, digits: str) -> None:
        wire = DTMF.translate(digits)
        if wire is None:
            raise CallControlError(f"Plivo cannot send DTMF {digits[:70]!r}")
        form = {"digits": wire, "leg": "aleg"}
        await self._send(self.client.build_request("POST", self.path + "DTMF/", data=form), 202)
