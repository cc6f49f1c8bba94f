"""The TwiML an outbound campaign call runs when answered, and the message left on machines.

The dialler builds the answer itself and sends it inline (``calls.create(twiml=...)``) rather
than pointing Twilio at the gateway's voice webhook: the contact's variables then travel as
``<Parameter>``s of the ``<Connect><Stream>`` and reach the engine's
``CallContext.parameters`` with no lookup and no change to the gateway. The call is still
routed by the campaign's dial plan, exactly as ``/twilio/voice`` would route it (an
``outbound-api`` call routes on ``From``, our caller ID): the plan's ``route``, ``branch`` and
``plan`` digest go along, so the gateway's media session recalls the same bot action.

Twilio's limits are checked here, where a contact's data meets them: each ``<Parameter>``'s
name and value under 500 characters, and inline TwiML at most 4000 characters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from twilio.twiml.voice_response import VoiceResponse

from gateway.campaigns.spec import AmdSpec, LoadedCampaign
from gateway.carriers.twilio.stream_token import TOKEN_PARAMETER
from gateway.carriers.twilio.twiml import connect_stream, render
from gateway.dialplan import CallFacts, route

__all__ = ["MAX_TWIML_CHARS", "answer_twiml", "machine_twiml", "stream_parameters"]

#: Twilio's limit on ``calls.create(twiml=...)`` (REFERENCE.md 1.7).
MAX_TWIML_CHARS = 4000


def stream_parameters(
    campaign: str, attempt: str, caller_id: str, phone: str, variables: Mapping[str, str]
) -> dict[str, str]:
    """What the engine learns about an outbound call, besides the route's own settings."""
    return {
        **variables,
        "from": caller_id,
        "to": phone,
        "direction": "outbound-api",
        "campaign": campaign,
        "attempt": attempt,
    }


def answer_twiml(
    campaign: LoadedCampaign,
    *,
    stream_url: str,
    action_url: str | None,
    attempt: str,
    phone: str,
    variables: Mapping[str, str],
    at: datetime,
    stream_token: Callable[[dict[str, str]], str] | None = None,
) -> str:
    """The inline TwiML for one attempt; ValueError when Twilio would refuse it.

    ``stream_url`` is the gateway's Media Streams websocket (``wss://.../twilio/media``) and
    ``action_url`` its ``/twilio/dial`` (for a plan whose answer is a transfer).
    ``stream_token`` issues the token the gateway asks of the stream
    (``gateway.carriers.twilio.stream_token``), over this attempt.
    """
    spec = campaign.spec
    params = stream_parameters(spec.name, attempt, spec.caller_id, phone, variables)
    if TOKEN_PARAMETER in params:
        raise ValueError(f"a contact's variables cannot name {TOKEN_PARAMETER!r}")
    if campaign.dialplan is None:
        if stream_token is not None:
            params[TOKEN_PARAMETER] = stream_token(params)
        twiml = connect_stream(stream_url, params)
    else:
        facts = CallFacts(to=phone, from_=spec.caller_id, at=at, direction="outbound-api")
        decision = route(campaign.dialplan, facts)
        twiml = render(
            decision,
            stream_url=stream_url,
            parameters=params,
            action_url=action_url,
            stream_token=stream_token,
        )
    if len(twiml) > MAX_TWIML_CHARS:
        raise ValueError(
            f"the call's TwiML is {len(twiml)} characters, over Twilio's {MAX_TWIML_CHARS} "
            "for inline TwiML: shorten the contact's variables"
        )
    return twiml


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def machine_twiml(amd: AmdSpec, variables: Mapping[str, str]) -> str:
    """``<Say>`` the campaign's message (``{column}`` filled from the contact), then hang up.

    Sent with ``calls(sid).update(twiml=...)`` when AMD reports the end of the greeting: it
    replaces the running stream, so the bot stops and the message plays after the beep.
    """
    text = (amd.message or "").format_map(_Blank(variables))
    response = VoiceResponse()
    response.say(text, voice=amd.voice, language=amd.language)
    response.hangup()
    return str(response)
