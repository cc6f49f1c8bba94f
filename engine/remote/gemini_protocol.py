"""Gemini Live (``BidiGenerateContent`` over a websocket), sans I/O.

Sources: googleapis/python-genai ``google/genai/live.py`` (the set-up message is the first
frame, ``{"setup": {...}}``, answered by ``setupComplete``; the SDK receives with
``recv(decode=False)`` and parses JSON from text *or binary* frames) and ``google/genai/types.py``
(``LiveServerContent``: ``modelTurn``, ``interrupted``, ``turnComplete``,
``inputTranscription``/``outputTranscription``; ``LiveServerGoAway.timeLeft``;
``LiveServerSessionResumptionUpdate``: ``newHandle``, ``resumable``; the Gemini API refuses
``sessionResumption.transparent``); REFERENCE.md 4.3; the Live API session guide (a connection
lasts about 10 minutes, ``goAway`` warns before the server closes it; resume with the last
handle; ``contextWindowCompression`` lifts the 15-minute audio session limit).

Audio: 16-bit little-endian PCM in, declared in the MIME type (``audio/pcm;rate=24000``: the
session runs at the output's rate, so the gateway resamples once each way and the API resamples
input itself); 24 kHz out. No mu-law support, so no pass-through.

Barge-in is the server's (``activityHandling: START_OF_ACTIVITY_INTERRUPTS``): it stops
generating and sends ``interrupted``, which becomes ``Interrupt`` (the gateway clears the
carrier); there is nothing to truncate. In the two stages of :mod:`engine.base` that is a hold
and a commit at once: the server has already decided and dropped the rest of the turn, so no
release could carry on from the held sample, and no earlier signal of the caller's sound reaches
a client that leaves activity detection to the server.

A reply the server has finished generating may still be playing out at the carrier, and the
server no longer interrupts it; when the caller's speech shows up in ``inputTranscription``
while such audio is still audible (by a 1x playout model of what was emitted), the engine
interrupts it itself.

Session limits: on ``goAway`` the call moves to a new connection that resumes the session with
the last resumable handle, at the first moment between turns with a handle newer than the last
turn, or ``GOAWAY_MARGIN_S`` before the deadline, whichever is first. Caller audio sent since
the last handle is kept (the server's state does not include it) and replayed on the new
connection, followed by what was queued meanwhile, so the model loses none of the caller's
speech to the switch. A connection dropped without warning is resumed the same way.

Keypad. The caller's keys reach the model as words (:mod:`engine.remote.keypad`) in
``realtimeInput.text``, queued and replayed with the audio.

Greeting. Gemini 2.x models take it as a ``clientContent`` user turn with ``turnComplete``.
Gemini 3.x Live models accept ``clientContent`` only to seed the initial history, declared in
``setup.historyConfig.initialHistoryInClientContent``, and such history never triggers a reply
(python-genai ``types.py`` ``HistoryConfig``); anything else goes in ``realtimeInput``. With
no history to seed, a 3.x greeting is therefore ``realtimeInput.text``, which the model answers.

Errors. The service reports a refused request by closing the socket with a code and its reason
(python-genai ``live.py`` ``_receive``: ``ConnectionClosed`` -> ``APIError(code, reason)``);
the asyncio layer reports those words. A JSON message that is none of the server message kinds
but carries ``code``/``message``/``status``, at the top level or under ``error``, is an error
too (``_receive``: "Error handling", ``errors.APIError``): it ends the session with the
vendor's words.

Tool calls. Answered at once. A ``toolCallCancellation`` names calls the model abandoned (the
caller spoke over it): outputs not yet written are withdrawn, and a ``record_result`` it
cancels is undone (python-genai ``types.py`` ``LiveServerToolCallCancellation``: "If there
were side-effects to those tool calls, clients may attempt to undo the tool calls"); a
hang-up, transfer or key press already carried out cannot be, and is counted.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import pybase64

from engine.base import Audio, EngineEvent, Interrupt, Metric, Result, Transcript
from engine.remote.errors import LocalProtocolError, VendorError
from engine.remote.settings import CallSettings
from engine.remote.tools import CallTools

__all__ = ["GeminiConfig", "GeminiProtocol", "Phase"]

OUTPUT_RATE = 24000
#: Caller audio held while no connection is ready: 10 s of 20 ms frames.
MAX_PENDING = 500
#: Caller audio kept since the last resumption handle, for replay after a switch: 15 s.
MAX_REPLAY = 750
#: Move to the new connection this long before the server's announced deadline.
GOAWAY_MARGIN_S = 5.0
#: Caller speech during this much audible bot audio counts as talking over it.
AUDIBLE_SLACK_S = 0.15
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
_MAJOR = re.compile(r"^(?:models/)?gemini-(\d+)")
#: Keys of the server messages (python-genai ``types.py`` ``LiveServerMessage``, wire names).
SERVER_KEYS = frozenset(
    {
        "setupComplete", "serverContent", "toolCall", "toolCallCancellation", "usageMetadata",
        "goAway", "sessionResumptionUpdate", "voiceActivityDetectionSignal", "voiceActivity",
    }
)  # fmt: skip
#: Tool calls remembered for cancellation.
MAX_TOOL_CALLS = 32
_AUDIO_PREFIX = '{"realtimeInput":{"audio":{"data":"'


class Phase(enum.Enum):
    CONNECTING = "connecting"
    SETTING_UP = "setting-up"  # setup sent, waiting for setupComplete
    READY = "ready"


@dataclass(frozen=True, slots=True)
class GeminiConfig:
    model: str = "gemini-2.5-flash-native-audio-preview-12-2025"
    voice: str = ""
    language: str = ""
    instructions: str = ""
    greeting: str = ""
    vad: dict[str, Any] = field(default_factory=dict)
    interrupts: bool = True
    transcripts: bool = True
    compression: bool = True
    tools: CallTools = field(default_factory=lambda: CallTools(("end_call", "send_dtmf"), ()))

    @property
    def history_in_client_content(self) -> bool:
        """Whether the model takes ``clientContent`` only as initial history (Gemini 3.x)."""
        match = _MAJOR.match(self.model)
        return match is not None and int(match.group(1)) >= 3

    @classmethod
    def from_call(cls, params: CallSettings, *, model: str, voice: str) -> GeminiConfig:
        """The session for one call; ValueError for an option the gateway refuses
        (:mod:`engine.remote.refused`) or a bad value, naming the key."""
        refused = params.refusals("gemini")
        if refused:
            raise ValueError("; ".join(refused))
        vad: dict[str, Any] = {}
        start = params.text("start_sensitivity")
        if start:
            vad["startOfSpeechSensitivity"] = (
                "START_SENSITIVITY_" + params.choice("start_sensitivity", ("high", "low"), "high")
            ).upper()
        end = params.text("end_sensitivity")
        if end:
            vad["endOfSpeechSensitivity"] = (
                "END_SENSITIVITY_" + params.choice("end_sensitivity", ("high", "low"), "high")
            ).upper()
        for key, name in (("prefix_padding_ms", "prefixPaddingMs"),
                          ("silence_duration_ms", "silenceDurationMs")):  # fmt: skip
            value = params.integer(key)
            if value is not None:
                vad[name] = value
        return cls(
            model=params.text("model", model),
            voice=params.text("voice", voice),
            language=params.text("language"),
            instructions=params.text("prompt"),
            greeting=params.text("greeting"),
            vad=vad,
            interrupts=params.flag("interrupt_response", True) is not False,
            transcripts=params.flag("transcripts", True) is not False,
            compression=params.flag("context_compression", True) is not False,
            tools=CallTools.from_settings(params),
        )

    def setup(self, handle: str | None) -> dict[str, Any]:
        """The first message of a connection; ``handle`` resumes an earlier session."""
        model = self.model if self.model.startswith("models/") else f"models/{self.model}"
        speech: dict[str, Any] = {}
        if self.voice:
            speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": self.voice}}
        if self.language:
            speech["languageCode"] = self.language
        generation: dict[str, Any] = {"responseModalities": ["AUDIO"]}
        if speech:
            generation["speechConfig"] = speech
        realtime: dict[str, Any] = {
            "activityHandling": "START_OF_ACTIVITY_INTERRUPTS"
            if self.interrupts
            else "NO_INTERRUPTION"
        }
        if self.vad:
            realtime["automaticActivityDetection"] = self.vad
        setup: dict[str, Any] = {
            "model": model,
            "generationConfig": generation,
            "realtimeInputConfig": realtime,
            "sessionResumption": {"handle": handle} if handle else {},
        }
        if self.instructions:
            setup["systemInstruction"] = {"parts": [{"text": self.instructions}]}
        if self.transcripts:
            setup["inputAudioTranscription"] = {}
            setup["outputAudioTranscription"] = {}
        if self.compression:
            setup["contextWindowCompression"] = {"slidingWindow": {}}
        tools = self.tools.gemini()
        if tools:
            setup["tools"] = tools
        return {"setup": setup}


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _list(value: Any) -> list[Any]:
    """A JSON array from the wire, or nothing (anything else in its place is garbage)."""
    return value if isinstance(value, list) else []


def parse_duration(text: Any) -> float | None:
    """A protobuf JSON Duration (``"50s"``, ``"1.5s"``) in seconds, or None."""
    if not isinstance(text, str):
        return None
    match = _DURATION.match(text.strip())
    return float(match.group(1)) if match else None


class GeminiProtocol:
    """One call's Live session across connections. Same contract as the OpenAI protocol:
    :meth:`connection_made` per socket, every server message to :meth:`receive`, write
    :attr:`outbox`; plus :meth:`next_deadline`/:meth:`on_timer` for the ``goAway`` deadline
    and :attr:`switch_requested` when the call should move to a new connection.
    """

    def __init__(self, config: GeminiConfig, input_rate: int = OUTPUT_RATE) -> None:
        self.config = config
        self.phase = Phase.CONNECTING
        self.outbox: deque[str] = deque()
        self._pending: deque[str] = deque(maxlen=MAX_PENDING)
        self._replay: deque[str] = deque(maxlen=MAX_REPLAY)
        self._mime = f'","mimeType":"audio/pcm;rate={input_rate}"}}}}}}'
        self.handle: str | None = None
        self.connections = 0
        self.resumed = 0
        self.switch_requested = False
        self._deadline: float | None = None
        self._in_turn = False
        # Whether the latest handle postdates the last turn: resuming from an older one would
        # replay caller speech the model has already answered.
        self._handle_fresh = False
        self._turn_interrupted = False
        self._caller_text: list[str] = []
        self._bot_text: list[str] = []
        self._emitted_since_cut = False
        self._audible_until = 0.0
        # After we cut a reply ourselves, its remaining audio may still be on the way: drop it
        # until the server ends that turn (``interrupted`` or ``turnComplete``).
        self._muted = False
        self.stale_audio_dropped = 0
        self.violations = 0
        self.last_violation = ""
        self.audio_dropped = 0
        self.client_interrupts = 0
        #: Tool calls answered, by id: (name, the result name and its value before the call).
        self._tool_calls: dict[str, tuple[str, str | None, str | None]] = {}
        self.tools_cancelled = 0
        #: Cancelled calls whose action (hang-up, transfer, keys) was already carried out.
        self.tools_not_undone = 0
        self.fatal: VendorError | None = None

    # -- connection lifecycle ----------------------------------------------------------------

    def connection_made(self) -> None:
        if self.phase is not Phase.CONNECTING:
            raise LocalProtocolError(f"connection_made in phase {self.phase.value}")
        self.connections += 1
        self.phase = Phase.SETTING_UP
        self.switch_requested = False
        self._deadline = None
        self.fatal = None
        self.outbox.clear()
        self.outbox.append(_dumps(self.config.setup(self.handle)))

    def connection_lost(self) -> None:
        """Audio since the last handle (sent or not) waits for the next connection."""
        self.phase = Phase.CONNECTING
        self.outbox.clear()
        self._pending = deque(list(self._replay) + list(self._pending), maxlen=MAX_PENDING)
        self._replay.clear()
        self._in_turn = False

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    def _on_ready(self) -> None:
        self.phase = Phase.READY
        if self.connections == 1 and self.config.greeting:
            self.outbox.append(_dumps(self._greeting()))
        if self.connections > 1 and self.handle:
            self.resumed += 1
        for message in self._pending:
            self.outbox.append(message)
            self._replay.append(message)
        self._pending.clear()

    def _greeting(self) -> dict[str, Any]:
        """The greeting request in the form the model family accepts (module docstring)."""
        text = "Greet the caller by saying exactly: " + self.config.greeting
        if self.config.history_in_client_content:
            return {"realtimeInput": {"text": text}}
        turn = {"role": "user", "parts": [{"text": text}]}
        return {"clientContent": {"turns": [turn], "turnComplete": True}}

    # -- time --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return None if self.switch_requested else self._deadline

    def on_timer(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline:
            self.switch_requested = True

    # -- caller -> model ---------------------------------------------------------------------

    def append(self, pcm: bytes) -> None:
        self._send_input(_AUDIO_PREFIX + pybase64.b64encode(pcm).decode("ascii") + self._mime)

    def keys(self, text: str) -> None:
        """The caller's keypresses in words, as realtime text: it reaches the model in order
        with the audio, does not interrupt its turn, and is replayed after a switch like it."""
        self._send_input(_dumps({"realtimeInput": {"text": text}}))

    def _send_input(self, message: str) -> None:
        if self.phase is Phase.READY and not self.switch_requested:
            self.outbox.append(message)
            if len(self._replay) == MAX_REPLAY:
                self.audio_dropped += 1  # older than the replay window: cannot be replayed
            self._replay.append(message)
        else:
            if len(self._pending) == MAX_PENDING:
                self.audio_dropped += 1
            self._pending.append(message)

    # -- model -> caller ---------------------------------------------------------------------

    def _violation(self, reason: str) -> list[EngineEvent]:
        self.violations += 1
        self.last_violation = reason
        return []

    def receive(self, data: str | bytes, now: float) -> list[EngineEvent]:
        """One server message (text or binary frame, both carry JSON) arrived at ``now``."""
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return self._violation(f"not JSON: {exc}")
        if not isinstance(msg, dict):
            return self._violation("not a JSON object")
        events: list[EngineEvent] = []
        if "setupComplete" in msg and self.phase is Phase.SETTING_UP:
            self._on_ready()
        content = msg.get("serverContent")
        if isinstance(content, dict):
            events.extend(self._on_content(content, now))
        call = msg.get("toolCall")
        if isinstance(call, dict):
            events.extend(self._on_tool_call(call))
        update = msg.get("sessionResumptionUpdate")
        if isinstance(update, dict):
            handle = update.get("newHandle")
            if update.get("resumable") and isinstance(handle, str) and handle:
                self.handle = handle
                self._handle_fresh = not self._in_turn
                self._replay.clear()  # the server's state now holds everything sent so far
        go_away = msg.get("goAway")
        if isinstance(go_away, dict):
            left = parse_duration(go_away.get("timeLeft"))
            self._deadline = now + max(0.0, (left if left is not None else 0.0) - GOAWAY_MARGIN_S)
            events.append(Metric("engine_go_away", 1.0))
        cancelled = msg.get("toolCallCancellation")
        if isinstance(cancelled, dict):
            events.extend(self._on_tool_cancellation(cancelled))
        if not SERVER_KEYS & msg.keys():
            self._on_error(msg)
        if self._deadline is not None and not self._in_turn and self._handle_fresh:
            self.switch_requested = True  # between turns, with a handle that covers them
        return events

    def _on_error(self, msg: dict[str, Any]) -> None:
        """A message of no known kind: an error if it says one (module docstring)."""
        error = msg.get("error")
        body = error if isinstance(error, dict) else msg
        text, status, code = body.get("message"), body.get("status"), body.get("code")
        if not isinstance(text, str) or not text:
            if status is None and code is None:
                return  # a kind newer than this client: not an error
            text = "error"
        label = str(status or code or "")
        if code is not None and status is not None:
            label = f"{code} {status}"
        self.fatal = VendorError(text[:500], code=label[:60])

    def _on_content(self, content: dict[str, Any], now: float) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        heard = content.get("inputTranscription")
        if isinstance(heard, dict) and isinstance(heard.get("text"), str) and heard["text"]:
            self._caller_text.append(heard["text"])
            if self.config.interrupts and self._emitted_since_cut and now < self._audible_until:
                # Talked over a reply the server has finished generating, or has not yet told
                # us it stopped: stop it here. If its turn is still open, more of it may be on
                # the way; none of that may reach the caller after the clear.
                self.client_interrupts += 1
                events.append(self._cut())
                self._muted = self._in_turn
        turn = content.get("modelTurn")
        if isinstance(turn, dict):
            for part in _list(turn.get("parts")):
                blob = part.get("inlineData") if isinstance(part, dict) else None
                if isinstance(blob, dict):
                    events.extend(self._on_audio(blob, now))
        said = content.get("outputTranscription")
        if isinstance(said, dict) and isinstance(said.get("text"), str):
            self._bot_text.append(said["text"])
        if content.get("interrupted"):
            # It may come after the turn's turnComplete (the reply was generated and done but
            # still playing): then it marks no turn, yet audio still audible is cut.
            self._turn_interrupted = self._in_turn
            self._muted = False  # the server stopped the cut turn: what follows is new
            if self._emitted_since_cut:
                events.append(self._cut())
        if content.get("turnComplete"):
            events.extend(self._end_turn())
        return events

    def _cut(self) -> Interrupt:
        self._emitted_since_cut = False
        self._audible_until = 0.0
        return Interrupt()

    def _on_audio(self, blob: dict[str, Any], now: float) -> list[EngineEvent]:
        mime, data = blob.get("mimeType", ""), blob.get("data")
        if not isinstance(data, str) or not isinstance(mime, str):
            return self._violation("inlineData without data/mimeType")
        if not mime.startswith("audio/pcm"):
            return []  # not audio for the caller (an image, a file)
        if "rate=" in mime and f"rate={OUTPUT_RATE}" not in mime:
            return self._violation(f"audio at an unexpected rate: {mime}")
        try:
            pcm = pybase64.b64decode(data, validate=True)
        except ValueError:
            return self._violation("inlineData is not base64")
        if not pcm:
            return []
        if self._muted:
            self.stale_audio_dropped += 1
            return []
        self._in_turn = True
        self._handle_fresh = False
        self._emitted_since_cut = True
        start = max(now, self._audible_until - AUDIBLE_SLACK_S)
        self._audible_until = start + len(pcm) / (2 * OUTPUT_RATE) + AUDIBLE_SLACK_S
        return [Audio(pcm)]

    def _end_turn(self) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        caller = "".join(self._caller_text).strip()
        bot = "".join(self._bot_text).strip()
        if caller:
            events.append(Transcript("caller", caller))
        if bot:
            note = " [interrupted]" if self._turn_interrupted else ""
            events.append(Transcript("bot", bot + note))
        self._caller_text.clear()
        self._bot_text.clear()
        self._turn_interrupted = False
        self._in_turn = False
        self._muted = False
        return events

    def _on_tool_call(self, call: dict[str, Any]) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        responses = []
        for fc in _list(call.get("functionCalls")):
            if not isinstance(fc, dict) or not isinstance(fc.get("name"), str):
                self._violation("functionCall without a name")
                continue
            call_id = fc.get("id") if isinstance(fc.get("id"), str) else ""
            args = fc.get("args") or {}
            key = (
                args.get("name")
                if fc["name"] == "record_result" and isinstance(args, dict)
                else None
            )
            before = self.config.tools.settled.get(key) if isinstance(key, str) else None
            outcome = self.config.tools.call(fc["name"], args)
            if isinstance(call_id, str) and call_id:
                if len(self._tool_calls) >= MAX_TOOL_CALLS:
                    self._tool_calls.pop(next(iter(self._tool_calls)))
                recorded = key if isinstance(key, str) and outcome.event is not None else None
                self._tool_calls[call_id] = (fc["name"], recorded, before)
            responses.append({"id": call_id, "name": fc["name"], "response": outcome.output})
            events.append(Metric(f"tool_{fc['name']}", 1.0))
            if outcome.event is not None:
                events.append(outcome.event)
        if responses:
            self.outbox.append(_dumps({"toolResponse": {"functionResponses": responses}}))
        return events

    def _on_tool_cancellation(self, cancelled: dict[str, Any]) -> list[EngineEvent]:
        """Withdraw unsent outputs of the cancelled calls and undo what can be undone."""
        ids = [i for i in _list(cancelled.get("ids")) if isinstance(i, str)]
        if not ids:
            return self._violation("toolCallCancellation without ids")
        self._withdraw_outputs(set(ids))
        events: list[EngineEvent] = []
        settled = self.config.tools.settled
        for call_id in ids:
            call = self._tool_calls.pop(call_id, None)
            if call is None:
                continue
            self.tools_cancelled += 1
            name, key, before = call
            if name == "record_result":
                if key is not None:
                    if before is None:
                        settled.pop(key, None)
                    else:
                        settled[key] = before
                    events.append(Result(dict(settled)))
            elif name in ("end_call", "transfer_call", "send_dtmf"):
                self.tools_not_undone += 1
            events.append(Metric("tool_cancelled", 1.0))
        return events

    def _withdraw_outputs(self, ids: set[str]) -> None:
        kept: list[str] = []
        for message in self.outbox:
            if message.startswith('{"toolResponse"'):
                response = orjson.loads(message)["toolResponse"]
                left = [r for r in response["functionResponses"] if r.get("id") not in ids]
                if not left:
                    continue
                message = _dumps({"toolResponse": {"functionResponses": left}})
            kept.append(message)
        self.outbox.clear()  # in place: the writer holds this deque
        self.outbox.extend(kept)
