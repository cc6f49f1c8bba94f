"""Call control for Twilio calls: hang up and transfer through the REST API.

Updating a live call replaces its TwiML, which ends the ``<Connect><Stream>`` (Twilio then
sends ``stop``). The ``twilio`` client is synchronous (requests), so each REST call runs in a
worker thread: a slow API never stalls the event loop and every other call's frames.

Without REST credentials the gateway can still hang up by closing the Media Stream: Twilio then
runs the TwiML after ``</Connect>``, and the gateway puts none there for bot calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, VoiceResponse

from gateway.ids import CALL_SID, twilio_sid

log = logging.getLogger("overtalk.twilio")


class CallControlError(Exception):
    """A REST action on a call failed; carries Twilio's message."""


class _BaseUrlHttpClient(TwilioHttpClient):
    """Sends the REST client's requests to another API host (a local stand-in in tests)."""

    def __init__(self, api_base: str) -> None:
        super().__init__()
        self._api_base = api_base.rstrip("/")

    def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        for host in ("https://api.twilio.com",):
            if url.startswith(host):
                url = self._api_base + url[len(host) :]
        return super().request(method, url, *args, **kwargs)


def rest_client(account_sid: str, auth_token: str, api_base: str | None = None) -> Client:
    """The real ``twilio`` REST client; ``api_base`` points it at another host."""
    http = _BaseUrlHttpClient(api_base) if api_base else None
    return Client(account_sid, auth_token, http_client=http)


def transfer_twiml(target: str) -> str:
    """``<Dial>`` to a number, or to a SIP URI with ``<Sip>``."""
    response = VoiceResponse()
    dial = Dial()
    if target.startswith(("sip:", "sips:")):
        dial.sip(target)
    else:
        dial.number(target)
    response.append(dial)
    return str(response)


class TwilioRestControl:
    """Hangs up or transfers one call through ``client.calls(sid).update(...)``.

    The SID becomes part of the REST URL (``/Accounts/AC.../Calls/{sid}.json``), so it must be
    a call SID and nothing else: ``CA.../../IncomingPhoneNumbers/PN...`` would reach another
    resource with the account's credentials. Raises ``gateway.ids.InvalidIdentifier``.
    """

    def __init__(self, client: Client, call_sid: str) -> None:
        self.client = client
        self.call_sid = twilio_sid(call_sid, CALL_SID, "callSid")

    async def _update(self, **kwargs: str) -> None:
        try:
            await asyncio.to_thread(self.client.calls(self.call_sid).update, **kwargs)
        except TwilioException as exc:
            raise CallControlError(str(exc)) from exc

    async def hangup(self) -> None:
        await self._update(status="completed")

    async def transfer(self, target: str) -> None:
        await self._update(twiml=transfer_twiml(target))


class StreamCloseControl:
    """Without REST credentials: hang up by closing the stream; transfers are impossible."""

    def __init__(self, close: Callable[[], Awaitable[None]]) -> None:
        self._close = close

    async def hangup(self) -> None:
        await self._close()

    async def transfer(self, target: str) -> None:
        raise CallControlError(
            f"cannot transfer to {target}: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
