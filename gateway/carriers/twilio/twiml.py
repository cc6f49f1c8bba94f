"""TwiML answers, built with the real ``twilio.twiml.voice_response`` builder.

Twilio drops any query string from ``<Stream url>``, so per-call context travels only as
``<Parameter>`` children, which arrive in the Media Streams ``start`` message.

:func:`render` turns a dial-plan decision into the whole answer; see its docstring for what
each action becomes and when Twilio runs the verbs after ``</Connect>`` and ``</Dial>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from twilio.twiml import TwiML
from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from gateway.carriers.twilio.stream_token import TOKEN_PARAMETER
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

#: Twilio's limit on len(name) + len(value) of one <Parameter>.
MAX_PARAMETER_CHARS = 500


def connect_stream(stream_url: str, parameters: Mapping[str, str]) -> str:
    """A bidirectional ``<Connect><Stream>`` to ``stream_url`` carrying ``parameters``.

    Raises ValueError for a parameter Twilio would reject (too long) rather than let Twilio
    fail the call with an opaque 11200-class error.
    """
    if "?" in stream_url:
        raise ValueError(f"<Stream url> cannot carry a query string: {stream_url}")
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        if len(name) + len(value) >= MAX_PARAMETER_CHARS:
            raise ValueError(f"<Parameter> {name!r} is {len(name) + len(value)} characters")
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


# -- dial-plan decisions -> TwiML ------------------------------------------------------------
#
# The dial plan decides, the carrier renders. Everything below turns a
# ``gateway.dialplan.Decision`` into one TwiML document with the twilio builder.

#: ``<Parameter>`` names that ``render`` sets itself; the caller's ``parameters`` may not use them.
RESERVED_PARAMETERS = frozenset({"route", "branch", "path", "plan", TOKEN_PARAMETER})


class _Prebuilt(TwiML):  # type: ignore[misc]  # twilio ships no type hints
    """A verb already built as an ElementTree element (by :func:`connect_stream`), so that it
    can sit in a ``VoiceResponse`` next to verbs made by the builder."""

    def __init__(self, element: ET.Element) -> None:
        super().__init__()
        self.name = element.tag
        self._element = element

    def xml(self) -> ET.Element:
        return self._element


def render(
    decision: Decision,
    *,
    stream_url: str,
    parameters: Mapping[str, str],
    action_url: str | None = None,
    voicemail_url: str | None = None,
    stream_token: Callable[[dict[str, str]], str] | None = None,
) -> str:
    """The TwiML answer for a dial-plan ``decision``.

    ``stream_token`` issues the token that binds a bot's stream to this call
    (``stream_token.py``), given the stream's other ``<Parameter>``s; it is added as one more.

    ``stream_url`` is the Media Streams websocket for bots; ``parameters`` are the gateway's
    own ``<Parameter>``s for it, to which ``route``, ``branch``, ``plan`` (the plan digest) and,
    for a bot reached through another action, ``path`` are added so the media session can find
    its action again (``gateway.dialplan.recall``). ``action_url`` is where Twilio reports how a
    ``<Dial>`` or ``<Record>`` ended; the same four names are added to its query string (Twilio
    keeps query strings on action URLs), so the gateway can ``recall`` the transfer a
    ``DialCallStatus`` is about, even one nested in a bot's fallback, and answer with
    ``render(after_dial(...))``. ``voicemail_url`` is the gateway's voicemail webhook; it gets
    the same four names (and keeps its own query, e.g. the caller's number).

    Per action:

    - bot: ``<Connect><Stream>`` (built by :func:`connect_stream`), then the bot's ``fallback``.
      Twilio runs what follows ``</Connect>`` only when the stream ends while the call is still
      up: the gateway closed the websocket (the engine failed or could not start) or the
      stream could not connect at all. It does not run when the caller hangs up, nor when the
      gateway redirects the call over REST (``calls(sid).update(twiml=...)``), which replaces
      this document. That is the right place for a fallback, with one duty for the gateway: end
      a call the bot finished (or that reached ``max_duration``) with a REST hang-up, not by
      closing the socket, or the caller would be sent to the fallback. With no fallback the
      document ends and Twilio hangs up.
    - transfer: ``<Dial callerId timeout action><Number>`` or ``<Sip>``. With ``action_url``,
      Twilio posts ``DialCallStatus`` there and ignores verbs after ``<Dial>``. Without it,
      ``on_no_answer`` is rendered after ``</Dial>``, where Twilio runs it after *any* outcome,
      including a transfer that was answered and later hung up by the person called: pass an
      ``action_url`` whenever a transfer has ``on_no_answer`` or ``on_busy``.
    - voicemail: ``<Say>``/``<Play>`` greeting, ``<Record maxLength playBeep transcribe>``,
      ``<Hangup>``. The ``<Record action>`` (posted when the recording ends; it is answered
      with a hang-up) is ``voicemail_url``. A ``store`` URL gets the recording and
      transcription callbacks itself; for a directory ``store`` they go to ``voicemail_url``
      too, where the gateway saves the files. Without ``voicemail_url``, ``action_url`` takes
      its place (the gateway's ``/twilio/dial`` passes voicemail callbacks on); without either
      Twilio posts the finished recording back to the voice webhook URL, which must then answer
      with a hang-up. ``<Hangup>`` is reached only if nothing was recorded.
    - say/play: ``<Say voice language loop>``/``<Play loop>``, then ``then``.
    - hangup: ``<Hangup>``; reject: ``<Reject reason>``.
    """
    clash = RESERVED_PARAMETERS & set(parameters)
    if clash:
        raise ValueError(f"<Parameter> names reserved for the dial plan: {sorted(clash)}")
    response = VoiceResponse()
    _Renderer(decision, stream_url, parameters, action_url, voicemail_url, stream_token).append(
        response, decision.action, decision.path
    )
    return str(response)


class _Renderer:
    def __init__(
        self,
        decision: Decision,
        stream_url: str,
        parameters: Mapping[str, str],
        action_url: str | None,
        voicemail_url: str | None,
        stream_token: Callable[[dict[str, str]], str] | None = None,
    ) -> None:
        self.decision = decision
        self.stream_token = stream_token
        self.stream_url = stream_url
        self.parameters = parameters
        self.action_url = action_url
        self.voicemail_url = voicemail_url or action_url

    def names(self, path: str) -> dict[str, str]:
        names = {
            "route": self.decision.route,
            "branch": self.decision.branch,
            "plan": self.decision.plan,
        }
        if path:
            names["path"] = path
        return names

    def callback(self, path: str, url: str | None) -> str | None:
        """``url`` with the names of the action it reports on added to its query."""
        if url is None:
            return None
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in RESERVED_PARAMETERS]
        query.extend(self.names(path).items())
        return urlunsplit(parts._replace(query=urlencode(query)))

    def append(self, response: VoiceResponse, action: AnyAction, path: str) -> None:
        def nested(key: str) -> str:
            return f"{path}.{key}" if path else key

        match action:
            case BotAction():
                params = {**self.parameters, **self.names(path)}
                if self.stream_token is not None:
                    params[TOKEN_PARAMETER] = self.stream_token(params)
                answer = ET.fromstring(connect_stream(self.stream_url, params))
                for verb in answer:
                    response.append(_Prebuilt(verb))
                if action.fallback is not None:
                    self.append(response, action.fallback, nested("fallback"))
            case TransferAction():
                dial = Dial(
                    action=self.callback(path, self.action_url),
                    timeout=action.timeout,
                    caller_id=action.caller_id,
                    record="record-from-answer" if action.record else None,
                )
                if action.is_sip:
                    dial.sip(action.to, username=action.sip_username, password=action.sip_password)
                else:
                    dial.number(action.to)
                response.append(dial)
                if self.action_url is None and action.on_no_answer is not None:
                    self.append(response, action.on_no_answer, nested("on_no_answer"))
            case VoicemailAction():
                if action.greeting is not None:
                    response.say(action.greeting, voice=action.voice, language=action.language)
                elif action.greeting_audio is not None:
                    response.play(action.greeting_audio)
                report = self.callback(path, self.voicemail_url)
                if action.store_is_url:
                    callback = action.store
                else:
                    callback = report if action.store is not None else None
                response.record(
                    action=report,
                    max_length=action.max_length,
                    play_beep=action.beep,
                    transcribe=action.transcribe,
                    transcribe_callback=callback if action.transcribe else None,
                    recording_status_callback=callback,
                )
                response.hangup()
            case SayAction():
                response.say(
                    action.text,
                    voice=action.voice,
                    language=action.language,
                    loop=action.loop if action.loop != 1 else None,
                )
                if action.then is not None:
                    self.append(response, action.then, nested("then"))
            case PlayAction():
                response.play(action.url, loop=action.loop if action.loop != 1 else None)
                if action.then is not None:
                    self.append(response, action.then, nested("then"))
            case HangupAction():
                response.hangup()
            case RejectAction():
                response.reject(reason=action.reason)
