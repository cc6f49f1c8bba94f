"""Plivo XML answers: the dial plan's decision as a Plivo ``<Response>``.

A bot is ``<Stream bidirectional="true" keepCallAlive="true" contentType=...>wss://...
</Stream>`` (Plivo's ``<Stream>`` element: plivo.com/docs/voice/xml/the-stream-element;
``keepCallAlive`` holds the call while the stream is open, ``bidirectional`` lets the gateway
play audio back). Its dial-plan names and stream token ride in the stream URL's query string,
which the upgrade's V3 signature covers. Other actions: ``<Dial><Number>`` or ``<User>`` (SIP)
to transfer, ``<Speak>``, ``<Play>``, ``<Hangup>`` and ``<Hangup reason="busy">`` to refuse.
A voicemail has no store on Plivo here: its greeting is spoken and the call ends. Pure.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from gateway.carriers.plivo.stream import CONTENT_TYPES
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

__all__ = ["busy", "dial", "hangup", "render", "stream"]

#: ``streamTimeout``: the stream may last as long as the longest call the plan allows (1 day).
STREAM_TIMEOUT_S = 86400


def _document(response: ET.Element) -> str:
    return '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(response, encoding="unicode")


def _stream(parent: ET.Element, url: str, parameters: Mapping[str, str], kind: str) -> None:
    if kind not in CONTENT_TYPES:
        raise ValueError(f"contentType must be one of {sorted(CONTENT_TYPES)}: {kind!r}")
    element = ET.SubElement(
        parent,
        "Stream",
        bidirectional="true",
        keepCallAlive="true",
        audioTrack="inbound",
        contentType=kind,
        streamTimeout=str(STREAM_TIMEOUT_S),
    )
    element.text = url + ("?" + urlencode(parameters) if parameters else "")


def stream(url: str, parameters: Mapping[str, str], kind: str) -> str:
    """The answer streaming the call to the bot at ``url``."""
    response = ET.Element("Response")
    _stream(response, url, parameters, kind)
    return _document(response)


def hangup() -> str:
    response = ET.Element("Response")
    ET.SubElement(response, "Hangup")
    return _document(response)


def busy() -> str:
    """A call the gateway cannot take: ``<Hangup reason="busy">``."""
    response = ET.Element("Response")
    ET.SubElement(response, "Hangup", reason="busy")
    return _document(response)


def _dial(parent: ET.Element, target: str, timeout: int | None = None) -> None:
    element = ET.SubElement(parent, "Dial")
    if timeout is not None:
        element.set("timeout", str(timeout))
    sip = target.startswith(("sip:", "sips:"))
    ET.SubElement(element, "User" if sip else "Number").text = target


def dial(target: str) -> str:
    """A transfer's document (the REST transfer's ``aleg_url`` serves it)."""
    response = ET.Element("Response")
    _dial(response, target)
    return _document(response)


def render(
    decision: Decision,
    *,
    stream_url: str,
    parameters: Callable[[str], Mapping[str, str]],
    kind: str,
) -> str:
    """The Plivo XML for a dial-plan ``decision``; ``parameters(path)`` gives a bot's stream
    parameters (token included) for the action at ``path``."""
    response = ET.Element("Response")

    def append(action: AnyAction, path: str) -> None:
        def nested(key: str) -> str:
            return f"{path}.{key}" if path else key

        match action:
            case BotAction():
                _stream(response, stream_url, parameters(path), kind)
                if action.fallback is not None:
                    append(action.fallback, nested("fallback"))
            case TransferAction():
                _dial(response, action.to, action.timeout)
                if action.on_no_answer is not None:
                    append(action.on_no_answer, nested("on_no_answer"))
            case VoicemailAction():
                if action.greeting is not None:
                    ET.SubElement(response, "Speak").text = action.greeting
                ET.SubElement(response, "Hangup")
            case SayAction():
                speak = ET.SubElement(response, "Speak")
                speak.text = action.text
                if action.voice:
                    speak.set("voice", action.voice)
                if action.language:
                    speak.set("language", action.language)
                if action.loop != 1:
                    speak.set("loop", str(action.loop))
                if action.then is not None:
                    append(action.then, nested("then"))
            case PlayAction():
                play = ET.SubElement(response, "Play")
                play.text = action.url
                if action.loop != 1:
                    play.set("loop", str(action.loop))
                if action.then is not None:
                    append(action.then, nested("then"))
            case HangupAction():
                ET.SubElement(response, "Hangup")
            case RejectAction():
                ET.SubElement(response, "Hangup", reason=action.reason)

    append(decision.action, decision.path)
    return _document(response)
