"""Before dialling: does the gateway route the campaign's calls the way its dial plan does?

The dialler sends each call's TwiML inline, naming the route and branch the campaign's dial
plan chose; the gateway's media session then looks that route up in *its own* plan. A gateway
started without the campaign's plan (or with another one) finds no such route and falls back
to its default, so the person called hears some other bot (the restaurant demo) and the
attempt is still recorded as answered. The dialler therefore asks the gateway first, the way
Twilio would: a signed voice webhook for the campaign's first contact, from the campaign's
caller ID, ``Direction=outbound-api``. The voice webhook only renders TwiML (no call is
created), so the probe is harmless; its answer must name the same route and branch.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from datetime import datetime

import httpx
from twilio.request_validator import RequestValidator

from gateway.campaigns.errors import GatewayMisrouted
from gateway.campaigns.spec import LoadedCampaign
from gateway.carriers.twilio.signature import public_url
from gateway.dialplan import CallFacts, route

__all__ = ["check_gateway", "routed_as"]

#: The gateway's inbound webhook (``gateway.carriers.twilio``).
VOICE_PATH = "/twilio/voice"
#: A TwiML answer longer than this is not one the gateway renders.
MAX_ANSWER_BYTES = 64 * 1024


def routed_as(twiml: str) -> tuple[str, str] | None:
    """``(route, branch)`` named by a TwiML answer's stream parameters; None if it names none."""
    try:
        root = ET.fromstring(twiml)  # the gateway's own answer, its size bounded
    except ET.ParseError:
        return None
    params = {p.get("name"): p.get("value") or "" for p in root.iter("Parameter")}
    if "route" not in params:
        return None
    return params["route"] or "", params.get("branch") or ""


async def check_gateway(
    campaign: LoadedCampaign,
    base: str,
    *,
    phone: str,
    at: datetime,
    auth_token: str,
    account_sid: str,
    http_timeout: float = 10.0,
) -> None:
    """Raise :class:`GatewayMisrouted` unless the gateway at ``base`` routes a call to
    ``phone`` as the campaign's plan does. Nothing to check for a campaign with no plan."""
    if campaign.dialplan is None:
        return
    spec = campaign.spec
    wanted = route(
        campaign.dialplan, CallFacts(to=phone, from_=spec.caller_id, at=at,
                                     direction="outbound-api"),
    )  # fmt: skip
    url = public_url(base.rstrip("/"), VOICE_PATH)
    form = {
        "CallSid": "CA" + secrets.token_hex(16),
        "AccountSid": account_sid,
        "From": spec.caller_id,
        "To": phone,
        "Direction": "outbound-api",
        "CallStatus": "in-progress",
    }
    signature = RequestValidator(auth_token).compute_signature(url, form)
    try:
        async with httpx.AsyncClient(timeout=http_timeout) as client:
            answer = await client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    except httpx.HTTPError as exc:
        raise GatewayMisrouted(f"cannot reach the gateway at {url}: {exc}") from None
    if answer.status_code == 403:
        raise GatewayMisrouted(
            f"the gateway at {base} refused a signed test call: give the dialler the gateway's "
            "TWILIO_AUTH_TOKEN and the --public-url it signs against"
        )
    if answer.status_code != 200 or len(answer.content) > MAX_ANSWER_BYTES:
        raise GatewayMisrouted(f"the gateway at {url} answered HTTP {answer.status_code}")
    got = routed_as(answer.text)
    if got != (wanted.route, wanted.branch):
        found = "no route" if got is None else f"route {got[0]!r}, branch {got[1]!r}"
        raise GatewayMisrouted(
            f"the gateway at {base} has {found} for calls from {spec.caller_id}, where the "
            f"campaign's dial plan has route {wanted.route!r}, branch {wanted.branch!r}: "
            f"start the gateway with --dialplan {spec.dialplan} (the campaign's plan), or "
            "people called would hear another bot"
        )
