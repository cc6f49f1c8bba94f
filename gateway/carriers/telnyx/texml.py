"""TeXML answers: the dial plan's decision in Telnyx's TwiML-compatible markup.

A bot is ``<Connect><Stream url bidirectionalMode="rtp" ...>`` with ``<Parameter>`` nouns
(TeXML ``<Stream>``: developers.telnyx.com/docs/voice/programmable-voice/texml-verbs/stream;
``bidirectionalMode`` "rtp" lets the gateway send RTP payloads back, ``bidirectionalCodec``
and ``codec`` pick PCMU or PCMA both ways). Other actions use the TeXML verbs of the same
names as TwiML (``Dial``/``Number``/``Sip``, ``Say``, ``Play``, ``Hangup``, ``Reject``; the
"TeXML TwiML Compatibility" page). A voicemail has no store on Telnyx here: its greeting is
said and the call ends. Pure.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping

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

__all__ = ["BIDIRECTIONAL_CODECS", "busy", "connect_stream", "hangup", "render"]

#: What ``bidirectionalCodec`` may be here (the gateway transcodes G.711 only).
BIDIRECTIONAL_CODECS = ("PCMU", "PCMA")


def _document(response: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(response, encoding="unicode")


def _stream(parent: ET.Element, url: str, parameters: Mapping[str, str], codec: str) -> None:
    if codec not in BIDIRECTIONAL_CODECS:
        raise ValueError(f"bidirectionalCodec must be one of {BIDIRECTIONAL_CODECS}: {codec!r}")
    connect = ET.SubElement(parent, "Connect")
    stream = ET.SubElement(
        connect,
        "Stream",
        url=url,
        track="inbound_track",
        codec=codec,
        bidirectionalMode="rtp",
        bidirectionalCodec=codec,
    )
    for name, value in parameters.items():
        ET.SubElement(stream, "Parameter", name=name, value=value)


def connect_stream(url: str, parameters: Mapping[str, str], codec: str = "PCMU") -> str:
    """The answer streaming the call to the bot at ``url``."""
    response = ET.Element("Response")
    _stream(response, url, parameters, codec)
    return _document(response)


def hangup() -> str:
    response = ET.Element("Response")
    ET.SubElement(response, "Hangup")
    return _document(response)


def busy() -> str:
    """A busy signal for a call the gateway cannot take (TeXML ``<Reject reason="busy">``)."""
    response = ET.Element("Response")
    ET.SubElement(response, "Reject", reason="busy")
    return _document(response)


def render(
    decision: Decision,
    *,
    stream_url: str,
    parameters: Callable[[str], Mapping[str, str]],
    codec: str = "PCMU",
) -> str:
    """The TeXML for a dial-plan ``decision``; ``parameters(path)`` gives a bot's stream
    parameters (token included) for the action at ``path``."""
    response = ET.Element("Response")

    def append(action: AnyAction, path: str) -> None:
        def nested(key: str) -> str:
            return f"{path}.{key}" if path else key

        match action:
            case BotAction():
                _stream(response, stream_url, parameters(path), codec)
                if action.fallback is not None:
                    append(action.fallback, nested("fallback"))
            case TransferAction():
                dial = ET.SubElement(response, "Dial", timeout=str(action.timeout))
                if action.caller_id:
                    dial.set("callerId", action.caller_id)
                target = ET.SubElement(dial, "Sip" if action.is_sip else "Number")
                target.text = action.to
                if action.on_no_answer is not None:
                    append(action.on_no_answer, nested("on_no_answer"))
            case VoicemailAction():
                if action.greeting is not None:
                    ET.SubElement(response, "Say").text = action.greeting
                ET.SubElement(response, "Hangup")
            case SayAction():
                say = ET.SubElement(response, "Say")
                say.text = action.text
                if action.voice:
                    say.set("voice", action.voice)
                if action.language:
                    say.set("language", action.language)
                if action.loop != 1:
                    say.set("loop", str(action.loop))
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
                ET.SubElement(response, "Reject", reason=action.reason)

    append(decision.action, decision.path)
    return _document(response)
