"""NCCO answers (Vonage Call Control Objects), built with the ``vonage`` SDK's NCCO models.

The answer webhook returns a JSON array of actions that Vonage runs in order
(https://developer.vonage.com/en/voice/voice-api/ncco-reference). A bot is a ``connect`` action
to a ``websocket`` endpoint with ``content-type: audio/l16;rate=N`` and ``headers``: those
headers come back in the socket's first message (``stream.py``), so the gateway's per-call
context (call id, numbers, dial-plan route) and its stream token travel there, as Twilio's do
in ``<Parameter>``s. When the socket closes while the call is up, Vonage carries on with the
next action (the bot's fallback); when the last action is done, it hangs up.

:func:`render` turns a dial-plan decision into the whole answer; what each action becomes is in
its docstring.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from vonage_voice.models.connect_endpoints import PhoneEndpoint, SipEndpoint, WebsocketEndpoint
from vonage_voice.models.ncco import Connect, NccoAction, Stream, Talk

from gateway.carriers.vonage.stream import content_type
from gateway.dialplan.router import Decision
from gateway.dialplan.schema import (
    AnyAction,
    BotAction,
    HangupAction,
    PlayAction,
    RejectAction,
    SayAction,
    TransferAction,
    VoicemailAction,
)

__all__ = ["RESERVED_HEADERS", "TOKEN_HEADER", "connect_websocket", "render", "transfer_ncco"]

#: The header the stream token travels under.
TOKEN_HEADER = "stream_token"
#: Header names the gateway sets itself; the caller's ``headers`` may not use them.
RESERVED_HEADERS = frozenset({"route", "branch", "path", "plan", TOKEN_HEADER})
#: A number as the NCCO wants it: E.164 digits without ``+`` (``vonage_utils.types.PhoneNumber``).
_NUMBER = re.compile(r"[1-9]\d{6,14}")
#: The NCCO reference caps ``talk`` text at 1500 characters.
MAX_TALK_CHARS = 1500

Ncco = list[dict[str, Any]]


def _number(value: str | None) -> str | None:
    """``value`` as NCCO digits, or None when it is not a number Vonage takes."""
    if not value:
        return None
    digits = value.removeprefix("+")
    return digits if _NUMBER.fullmatch(digits) else None


def _dump(actions: list[NccoAction]) -> Ncco:
    return [a.model_dump(by_alias=True, exclude_none=True, mode="json") for a in actions]


def connect_websocket(
    uri: str, rate: int, headers: Mapping[str, str], caller_id: str | None = None
) -> NccoAction:
    """A ``connect`` to the websocket ``uri`` at ``rate`` carrying ``headers``."""
    number = _number(caller_id)
    return Connect(
        endpoint=[
            WebsocketEndpoint(uri=uri, contentType=content_type(rate), headers=dict(headers))
        ],
        from_=number,
        randomFromNumber=None if number else True,
    )


def _connect_target(action_to: str, caller_id: str | None, timeout: int | None) -> NccoAction:
    number = _number(caller_id)
    endpoint: PhoneEndpoint | SipEndpoint
    if action_to.startswith(("sip:", "sips:")):
        endpoint = SipEndpoint(uri=action_to)
    else:
        target = _number(action_to)
        if target is None:
            raise ValueError(f"not a number Vonage can dial: {action_to!r}")
        endpoint = PhoneEndpoint(number=target)
    return Connect(
        endpoint=[endpoint],
        from_=number,
        randomFromNumber=None if number else True,
        timeout=timeout,
    )


def transfer_ncco(target: str, caller_id: str | None = None) -> Ncco:
    """The NCCO a live call is transferred to (``PUT /v1/calls/{uuid}``): connect ``target``."""
    return _dump([_connect_target(target, caller_id, None)])


def render(
    decision: Decision,
    *,
    stream_url: str,
    rate: int,
    headers: Mapping[str, str],
    caller_id: str | None = None,
    stream_token: Callable[[dict[str, str]], str] | None = None,
) -> Ncco:
    """The NCCO answer for a dial-plan ``decision``.

    ``headers`` are the gateway's own websocket headers for a bot (call id, numbers), to which
    ``route``, ``branch``, ``plan`` and, for a bot reached through another action, ``path`` are
    added so the media session can ``recall`` its action; ``stream_token`` issues the token that
    binds the stream to this call, given the other headers. ``caller_id`` is the number called
    (the application's own), used as ``from`` of ``connect`` actions.

    Per action:

    - bot: ``connect`` to the websocket, then the bot's ``fallback`` (run when the socket
      closes while the call is still up, as after ``</Connect>`` on Twilio: the gateway ends a
      finished call with a REST hang-up, not by closing the socket).
    - transfer: ``connect`` to a ``phone`` or ``sip`` endpoint with ``timeout``; its
      ``on_no_answer``/``on_busy`` are not rendered (Vonage reports them to an ``eventUrl``
      the gateway does not serve yet), nor ``record`` or SIP credentials.
    - say: ``talk``; play: ``stream``; each followed by ``then``.
    - voicemail: its greeting as ``talk``, then the end of the call: Vonage's ``record`` posts
      the recording to an ``eventUrl`` the gateway does not serve yet, so nothing is recorded.
    - hangup, reject: an empty NCCO (Vonage ends a call whose NCCO has no action left; it has no
      rejection with a cause).
    """
    clash = RESERVED_HEADERS & set(headers)
    if clash:
        raise ValueError(f"header names reserved for the dial plan: {sorted(clash)}")
    actions: list[NccoAction] = []

    def names(path: str) -> dict[str, str]:
        found = {"route": decision.route, "branch": decision.branch, "plan": decision.plan}
        if path:
            found["path"] = path
        return found

    def append(action: AnyAction, path: str) -> None:
        def nested(key: str) -> str:
            return f"{path}.{key}" if path else key

        match action:
            case BotAction():
                params = {**headers, **names(path)}
                if stream_token is not None:
                    params[TOKEN_HEADER] = stream_token(params)
                actions.append(connect_websocket(stream_url, rate, params, caller_id))
                if action.fallback is not None:
                    append(action.fallback, nested("fallback"))
            case TransferAction():
                actions.append(_connect_target(action.to, caller_id, action.timeout))
            case SayAction():
                actions.append(
                    Talk(
                        text=str(action.text)[:MAX_TALK_CHARS],
                        language=action.language,
                        loop=action.loop if action.loop != 1 else None,
                    )
                )
                if action.then is not None:
                    append(action.then, nested("then"))
            case PlayAction():
                loop = action.loop if action.loop != 1 else None
                actions.append(Stream(streamUrl=[str(action.url)], loop=loop))
                if action.then is not None:
                    append(action.then, nested("then"))
            case VoicemailAction():
                if action.greeting is not None:
                    actions.append(Talk(text=str(action.greeting)[:MAX_TALK_CHARS]))
                elif action.greeting_audio is not None:
                    actions.append(Stream(streamUrl=[str(action.greeting_audio)]))
            case HangupAction() | RejectAction():
                pass

    append(decision.action, decision.path)
    return _dump(actions)
