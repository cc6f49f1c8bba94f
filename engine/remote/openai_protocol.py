"""OpenAI Realtime over a websocket, sans I/O: session set-up, audio both ways, barge-in.

Sources (message for message): openai-python ``src/openai/types/realtime/`` (GA types:
``realtime_session_create_request.py``, ``realtime_audio_formats.py``,
``realtime_audio_input_turn_detection.py``, ``input_audio_buffer_speech_started_event.py``,
``conversation_item_truncate_event.py``, ``response_function_call_arguments_done_event.py``,
``realtime_server_event.py``, ``realtime_error.py``); REFERENCE.md 4.1 (GA field names) and
4.2 (the Twilio sample's interruption flaws, fixed here).

The session shape (GA, the only one the service accepts: the beta shape was retired, see
:mod:`engine.remote.refused`): ``session.type = "realtime"``, audio under
``session.audio.input|output`` with ``format.type`` ``audio/pcmu`` (G.711 mu-law at 8 kHz: the
telephone's own bytes, so a Twilio call is passed through with no decode and no resampling) or
``audio/pcm`` (16-bit at 24 kHz, for carriers that are not mu-law), turn detection under
``audio.input.turn_detection``.

One response at a time. The service allows one active response per conversation and refuses a
``response.create`` sent while one is active with error
``conversation_already_has_active_response`` ("Wait until the response is finished before
creating a new one", as quoted in openai-agents-python issue 1466 and LiveKit agents pull
6818). A function call is reported (``response.output_item.done``) while the
response that carries it is still active, and a keypress may come at any moment, so every
``response.create`` goes through :meth:`RealtimeProtocol._request_response`: sent at once when
no response is active or requested, otherwise held and sent on the active response's
``response.done``. If the server's own turn detection starts a response in the same instant
and the service refuses ours, the request is held again rather than lost.

Barge-in, in two stages (:mod:`engine.base`: hold, then commit or release).
``input_audio_buffer.speech_started`` over audio still playing is a ``Hold``: the gateway quiets
the bot and keeps the unheard audio from the exact sample. Truncation happens only on commit:
the gateway then reports the heard position with ``played(ms)``, mapped to the item that was
playing by :class:`~engine.remote.output_timeline.OutputTimeline` and sent as
``conversation.item.truncate`` with ``audio_end_ms`` clamped to the audio received for that item
(the API errors beyond it; REFERENCE.md 4.1). What commits is the service's own decision:

- ``interrupt_response`` true (the service's default): the server cancels the active response
  when speech starts ("Whether or not to automatically interrupt any ongoing response ... when a
  VAD start event occurs", openai-python ``realtime_audio_input_turn_detection.py``), so the
  hold commits on that response's ``response.done`` with status ``cancelled``. Deltas of it
  already on their way are dropped, so none reaches the caller after the ``clear``. With no
  response active (the reply was generated and is still playing out), the server answers the
  sound when it stops (``create_response``), and that new ``response.created`` commits. A hold
  in this mode never releases: the service has already given the turn away.
- ``interrupt_response`` false: the response stays alive and its audio keeps coming (held at the
  gateway). A response cannot start while one is active ("If interrupt_response is set to false
  this may fail to create a response if the model is already responding", the same file's
  ``create_response``), so when the sound stops during the response the decision is this
  client's, on the caller's transcript (``conversation.item.input_audio_transcription.completed``):
  no words, a non-lexical sound ("[cough]", "hmm", a laugh) or a backchannel ("uh-huh", "right")
  releases, and the bot carries on from the held sample with no truncate; words that take the
  floor commit: the kept response is cancelled (``response.cancel``, then the truncate) and a
  response to the caller is asked for through the response gate, after the cancelled one's
  ``response.done``. Without transcription there are no words to judge by, and the hold commits
  when the speech stops. If the kept response finished before the speech stopped, the server
  answers the sound itself, and its ``response.created`` commits as above.

A hold left open by the service is committed by the gateway (its ``played`` call does the same
cancel, truncate and request).

Reconnects. The Realtime API has no session resumption; when a session ends under a call (its
maximum duration, a dropped socket) a new one is opened and the conversation so far is replayed
into it as text items (``conversation.item.create``), so the call goes on with its context.

Keypad. The caller's keys reach the model as words (:mod:`engine.remote.keypad`): a user
message (``conversation.item.create``, ``input_text``) and ``response.create``, held until the
response being spoken is done, since the API refuses a second active response.

Garbage from the server is dropped per message and counted in :attr:`violations`.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import pybase64

from engine.base import Audio, Commit, EngineEvent, Hold, Metric, Release, Transcript
from engine.remote.errors import LocalProtocolError, VendorError
from engine.remote.floor import takes_floor
from engine.remote.output_timeline import OutputTimeline
from engine.remote.settings import CallSettings
from engine.remote.tools import CallTools

__all__ = ["Phase", "RealtimeConfig", "RealtimeProtocol"]

#: Caller audio held while no session is ready (set-up, reconnect): 10 s of 20 ms frames.
MAX_PENDING = 500
#: Interrupted responses remembered, to drop their late deltas.
MAX_CUT_RESPONSES = 16
#: Transcript entries replayed into a new session after a reconnect.
MAX_HISTORY = 40
#: Error codes after which the server ends the session (the call reconnects).
SESSION_ENDING_CODES = frozenset({"session_expired"})
#: The error for a response.create while a response is active.
ACTIVE_RESPONSE_CODE = "conversation_already_has_active_response"

VAD_TYPES = ("server_vad", "semantic_vad", "none")
_APPEND = '{"type":"input_audio_buffer.append","audio":"'
_RESPONSE_CREATE = '{"type":"response.create"}'


class Phase(enum.Enum):
    CONNECTING = "connecting"  # no socket, or socket not yet configured
    CONFIGURING = "configuring"  # session.update sent, waiting for session.updated
    READY = "ready"


@dataclass(frozen=True, slots=True)
class RealtimeConfig:
    """One call's session, rendered as the GA ``session.update``."""

    model: str = "gpt-realtime"
    audio: str = "pcmu"  # "pcmu" (8 kHz mu-law) | "pcm" (24 kHz 16-bit)
    instructions: str = ""
    voice: str = "alloy"
    turn_detection: dict[str, Any] | None = field(default_factory=lambda: {"type": "server_vad"})
    transcription_model: str = "gpt-4o-mini-transcribe"
    tools: CallTools = field(default_factory=lambda: CallTools(("end_call", "send_dtmf"), ()))
    greeting: str = ""

    @property
    def interrupts(self) -> bool:
        """Whether the server cancels the reply when caller speech starts (its
        ``interrupt_response``); when not, this client judges the sound (module docstring)."""
        td = self.turn_detection
        return td is not None and td.get("interrupt_response", True) is not False

    @classmethod
    def from_call(
        cls, params: CallSettings, *, model: str, audio: str, voice: str
    ) -> RealtimeConfig:
        """The session for one call: engine defaults overridden by the dial plan's options.

        ValueError for an option the service would refuse (:mod:`engine.remote.refused`)."""
        refused = params.refusals("openai")
        if refused:
            raise ValueError("; ".join(refused))
        params.choice("api", ("ga",), "ga")
        audio = params.choice("audio_format", ("pcmu", "pcm"), audio)
        instructions = params.text("prompt")
        language = params.text("language")
        if language:
            instructions = f"{instructions}\nSpeak {language}.".strip()
        mode = params.choice("turn_detection", VAD_TYPES, "server_vad")
        td: dict[str, Any] | None = None
        if mode != "none":
            td = {"type": mode}
            if mode == "server_vad":
                for key, value in (
                    ("threshold", params.number("vad_threshold")),
                    ("prefix_padding_ms", params.integer("prefix_padding_ms")),
                    ("silence_duration_ms", params.integer("silence_duration_ms")),
                    ("idle_timeout_ms", params.integer("idle_timeout_ms")),
                ):
                    if value is not None:
                        td[key] = value
            else:
                eagerness = params.text("eagerness")
                if eagerness:
                    td["eagerness"] = params.choice(
                        "eagerness", ("low", "medium", "high", "auto"), "auto"
                    )
            for key in ("create_response", "interrupt_response"):
                flag = params.flag(key)
                if flag is not None:
                    td[key] = flag
        transcription = params.text("transcription_model", "gpt-4o-mini-transcribe")
        return cls(
            model=params.text("model", model),
            audio=audio,
            instructions=instructions,
            voice=params.text("voice", voice),
            turn_detection=td,
            transcription_model="" if transcription == "none" else transcription,
            tools=CallTools.from_settings(params),
            greeting=params.text("greeting"),
        )

    def session_update(self) -> dict[str, Any]:
        fmt_ga: dict[str, Any] = (
            {"type": "audio/pcmu"} if self.audio == "pcmu" else {"type": "audio/pcm", "rate": 24000}
        )
        audio_in: dict[str, Any] = {"format": fmt_ga, "turn_detection": self.turn_detection}
        if self.transcription_model:
            audio_in["transcription"] = {"model": self.transcription_model}
        ga: dict[str, Any] = {
            "type": "realtime",
            "model": self.model,
            "output_modalities": ["audio"],
            "audio": {"input": audio_in, "output": {"format": fmt_ga, "voice": self.voice}},
            "tools": self.tools.openai(),
            "tool_choice": "auto",
        }
        if self.instructions:
            ga["instructions"] = self.instructions
        return {"type": "session.update", "session": ga}


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


class RealtimeProtocol:
    """One call's Realtime conversation across one or more connections. See the module doc.

    Contract: :meth:`connection_made` for every new socket (it queues ``session.update``), then
    feed every server message to :meth:`receive` and write :attr:`outbox` in order;
    :meth:`connection_lost` when the socket goes. :meth:`append` and :meth:`played` may be
    called at any time; caller audio waits in a bounded queue until a session is ready.
    """

    def __init__(self, config: RealtimeConfig) -> None:
        self.config = config
        self.phase = Phase.CONNECTING
        #: Messages to write to the socket, in order.
        self.outbox: deque[str] = deque()
        self._pending: deque[str] = deque(maxlen=MAX_PENDING)
        self.timeline = OutputTimeline()
        self._bytes_per_ms = 8.0 if config.audio == "pcmu" else 48.0
        # The response gate (see the module docstring): the active response's id, whether a
        # response.create of ours awaits its response.created, and the request held meanwhile
        # (its message: a plain one, or the greeting's with instructions).
        self._response: str | None = None
        self._creating = False
        # A response.create of ours went out and no response has finished since: a refusal
        # may be of it (the server's response.created cannot be told from ours).
        self._asked = False
        self._last_create = _RESPONSE_CREATE
        self._held: str | None = None
        self.responses_held = 0
        self._cut_responses: deque[str] = deque(maxlen=MAX_CUT_RESPONSES)
        self._live_items: set[str] = set()  # assistant items of the current session
        self._truncated: dict[str, tuple[int, float]] = {}
        # The open hold (module docstring): whether one is open, the response active when it
        # began, and whether the caller's speech stopped while that response was still active,
        # so the server could not answer it and the decision is ours.
        self._holding = False
        self._held_response: str | None = None
        self._unanswered = False
        #: Holds opened, committed and released (the ledger has the gateway's view).
        self.holds = 0
        self.commits = 0
        self.releases = 0
        self._history: deque[tuple[str, str]] = deque(maxlen=MAX_HISTORY)
        self.connections = 0
        #: Counters for the ledger and the tests.
        self.violations = 0
        self.last_violation = ""
        self.stale_deltas_dropped = 0
        self.audio_dropped = 0
        self.truncations: list[tuple[str, int]] = []
        #: Non-fatal vendor errors, in its words.
        self.errors: list[str] = []
        #: Set when the vendor ended the session (an error before ready, an expiry).
        self.fatal: VendorError | None = None

    # -- connection lifecycle ----------------------------------------------------------------

    def connection_made(self) -> None:
        if self.phase is not Phase.CONNECTING:
            raise LocalProtocolError(f"connection_made in phase {self.phase.value}")
        self.connections += 1
        self.phase = Phase.CONFIGURING
        self.fatal = None
        self.outbox.clear()
        self.outbox.append(_dumps(self.config.session_update()))

    def connection_lost(self) -> None:
        """The socket is gone: its session's items can no longer be truncated, and caller
        audio not yet written goes back to wait for the next session."""
        self.phase = Phase.CONNECTING
        unsent = [m for m in self.outbox if m.startswith(_APPEND)]
        self.outbox.clear()
        self._pending = deque(unsent + list(self._pending), maxlen=MAX_PENDING)
        self._response = None
        self._creating = False
        self._live_items.clear()

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    def _on_ready(self) -> None:
        self.phase = Phase.READY
        if self.connections == 1:
            if self.config.greeting:
                self._request_response(
                    _dumps(
                        {
                            "type": "response.create",
                            "response": {
                                "instructions": "Greet the caller by saying exactly: "
                                + self.config.greeting
                            },
                        }
                    )
                )
        else:
            self._replay_history()
        self.outbox.extend(self._pending)
        self._pending.clear()
        if self._held is not None and self._response is None and not self._creating:
            self._release_held()  # asked for while no session was ready

    # -- the response gate -------------------------------------------------------------------

    def _request_response(self, message: str = _RESPONSE_CREATE) -> None:
        """Ask for a response: now if none is active or on its way, else on its ``done``.

        Requests made while one is held merge into it (one reply answers them all), keeping
        the first message (a greeting's instructions outrank a plain request)."""
        if self.phase is Phase.READY and self._response is None and not self._creating:
            self._creating = True
            self._asked = True
            self._last_create = message
            self.outbox.append(message)
        elif self._held is None:
            self._held = message
            self.responses_held += 1

    def _release_held(self) -> None:
        message, self._held = self._held, None
        if message is not None:
            self._request_response(message)

    def _replay_history(self) -> None:
        for role, text in self._history:
            if role == "caller":
                item = {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                }
            else:
                item = {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text}],
                }
            self.outbox.append(_dumps({"type": "conversation.item.create", "item": item}))

    # -- caller -> model ---------------------------------------------------------------------

    def append(self, audio: bytes) -> None:
        """Queue caller audio, in the session's format, as ``input_audio_buffer.append``."""
        message = _APPEND + pybase64.b64encode(audio).decode("ascii") + '"}'
        if self.phase is Phase.READY:
            self.outbox.append(message)
        else:
            if len(self._pending) == MAX_PENDING:
                self.audio_dropped += 1
            self._pending.append(message)

    def keys(self, text: str) -> None:
        """The caller's keypresses in words: a user message, then a response to it through the
        response gate (after the response being spoken, if any)."""
        self._history.append(("caller", text))
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
        message = _dumps({"type": "conversation.item.create", "item": item})
        if self.phase is Phase.READY:
            self.outbox.append(message)
        else:
            self._pending.append(message)
        self._request_response()

    def played(self, heard_ms: float) -> None:
        """After a commit: cancel a reply kept alive through the hold (and ask for one to the
        caller if the server could not start it), then truncate every item the caller did not
        hear to what was heard."""
        if self._holding:
            self._holding = False  # committed by the gateway (a hold left open too long)
            self.commits += 1
        kept = self._held_response
        self._held_response = None
        if kept is not None and kept == self._response and kept not in self._cut_responses:
            self._cut_responses.append(kept)  # its deltas still on their way are stale
            self.outbox.append(_dumps({"type": "response.cancel", "response_id": kept}))
        if self._unanswered:
            self._unanswered = False
            self._request_response()  # after the cancelled response's done (the gate)
        for cut in self.timeline.cut(heard_ms):
            if cut.item not in self._live_items:
                continue  # an item of a closed session: nothing left to truncate
            if cut.audio_end_ms >= int(cut.received_ms):
                continue  # heard in full
            self._truncated[cut.item] = (cut.audio_end_ms, cut.received_ms)
            self.truncations.append((cut.item, cut.audio_end_ms))
            self.outbox.append(
                _dumps(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": cut.item,
                        "content_index": 0,
                        "audio_end_ms": cut.audio_end_ms,
                    }
                )
            )

    # -- model -> caller ---------------------------------------------------------------------

    def _violation(self, reason: str) -> list[EngineEvent]:
        self.violations += 1
        self.last_violation = reason
        return []

    def receive(self, data: str | bytes, now: float = 0.0) -> list[EngineEvent]:
        """Take one server message (arrived at ``now``); returns the engine events it makes."""
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return self._violation(f"not JSON: {exc}")
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            return self._violation("not an event object with a type")
        kind: str = msg["type"]
        match kind:
            case "response.output_audio.delta":
                return self._on_delta(msg)
            case "input_audio_buffer.speech_started":
                return self._on_speech_started()
            case "response.created":
                response = msg.get("response")
                if not isinstance(response, dict) or not isinstance(response.get("id"), str):
                    return self._violation("response.created without a response id")
                # Ours, or one the server's turn detection started: either way, active now.
                self._response = response["id"]
                self._creating = False
                if self._holding:
                    self._unanswered = False  # the server (or a request) answered the sound
                    return self._decide(commit=True)  # a new reply replaces the held one
                return []
            case "response.done":
                response = msg.get("response")
                if not isinstance(response, dict):
                    return self._violation("response.done without a response")
                status = response.get("status")
                if status == "failed":
                    self.errors.append(f"response failed: {response.get('status_details')}")
                self._asked = False
                if response.get("id") == self._response:
                    self._response = None
                    self._release_held()
                if (
                    self._holding
                    and status == "cancelled"
                    and response.get("id") == self._held_response
                ):
                    return self._decide(commit=True)  # the server gave the turn away
                return []
            case "input_audio_buffer.speech_stopped":
                return self._on_speech_stopped()
            case "response.output_audio_transcript.done":
                return self._on_bot_transcript(msg)
            case "conversation.item.input_audio_transcription.completed":
                text = msg.get("transcript")
                if not isinstance(text, str):
                    return self._violation(f"{kind} without a transcript")
                text = text.strip()
                events: list[EngineEvent] = []
                if self._holding and self._unanswered:
                    events = self._decide(commit=takes_floor(text))
                if text:
                    self._history.append(("caller", text))
                    events.append(Transcript("caller", text))
                return events
            case "response.output_item.done":
                return self._on_item_done(msg)
            case "session.updated":
                if self.phase is Phase.CONFIGURING:
                    self._on_ready()
                return []
            case "error":
                return self._on_error(msg)
            case _:
                return []  # the API adds event types often; unknown ones are not errors

    def _on_delta(self, msg: dict[str, Any]) -> list[EngineEvent]:
        delta, item = msg.get("delta"), msg.get("item_id")
        if not isinstance(delta, str) or not isinstance(item, str):
            return self._violation("audio delta without delta/item_id")
        if msg.get("response_id") in self._cut_responses:
            self.stale_deltas_dropped += 1
            return []
        try:
            audio = pybase64.b64decode(delta, validate=True)
        except ValueError:
            return self._violation("audio delta is not base64")
        if not audio:
            return []
        self._live_items.add(item)
        self.timeline.add(item, len(audio) / self._bytes_per_ms)
        return [Audio(audio)]

    def _on_speech_started(self) -> list[EngineEvent]:
        response = self._response
        if self.config.interrupts and response is not None and response not in self._cut_responses:
            # The server cancels it (it stays active until its response.done); deltas it sent
            # before cancelling are stale from now on.
            self._cut_responses.append(response)
        if self._holding or not self.timeline.unsettled:
            return []  # a hold is open already, or nothing emitted since the last cut is playing
        self._holding = True
        self._held_response = response
        self._unanswered = False
        self.holds += 1
        return [Hold()]

    def _on_speech_stopped(self) -> list[EngineEvent]:
        if not self._holding or self.config.interrupts or self._response is None:
            return []  # the server cancelled, or will answer the sound itself
        # The kept response is active, so the server cannot answer: ours to judge.
        self._unanswered = True
        if not self.config.transcription_model:
            return self._decide(commit=True)  # no words will come to judge by
        return []

    def _decide(self, *, commit: bool) -> list[EngineEvent]:
        """End the open hold: ``Commit`` (``played`` follows from the gateway) or ``Release``."""
        self._holding = False
        if commit:
            self.commits += 1
            return [Commit()]
        self.releases += 1
        self._held_response = None
        self._unanswered = False
        return [Release()]

    def _on_bot_transcript(self, msg: dict[str, Any]) -> list[EngineEvent]:
        text, item = msg.get("transcript"), msg.get("item_id")
        if not isinstance(text, str):
            return self._violation("transcript.done without a transcript")
        text = text.strip()
        if not text:
            return []
        cut = self._truncated.pop(item, None) if isinstance(item, str) else None
        if cut is not None:
            heard, received = cut
            text = f"{text} [cut at {heard / 1000:.2f} s of {received / 1000:.2f} s]"
        self._history.append(("bot", text))
        return [Transcript("bot", text)]

    def _on_item_done(self, msg: dict[str, Any]) -> list[EngineEvent]:
        item = msg.get("item")
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return []
        name, call_id, raw = item.get("name"), item.get("call_id"), item.get("arguments", "{}")
        if not isinstance(name, str) or not isinstance(call_id, str) or not isinstance(raw, str):
            return self._violation("function_call item without name/call_id/arguments")
        try:
            args = orjson.loads(raw or "{}")
        except orjson.JSONDecodeError:
            args = None
        outcome = self.config.tools.call(name, args)
        self.outbox.append(
            _dumps(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "function_call_output",
                        "call_id": call_id,
                        "output": orjson.dumps(outcome.output).decode(),
                    },
                }
            )
        )
        if outcome.respond:
            self._request_response()  # after the response carrying the call is done
        events: list[EngineEvent] = [Metric(f"tool_{name}", 1.0)]
        if outcome.event is not None:
            events.append(outcome.event)
        return events

    def _on_error(self, msg: dict[str, Any]) -> list[EngineEvent]:
        error = msg.get("error")
        if not isinstance(error, dict):
            return self._violation("error event without an error object")
        text = str(error.get("message", "")) or "error"
        code = str(error.get("code") or error.get("type") or "")
        if code == ACTIVE_RESPONSE_CODE:
            # Our request met a response the server started in the same instant: hold it
            # until that one is done (its response.created has arrived or follows).
            # A refusal of the server's own attempt (a sound that stopped during a reply kept
            # alive) holds nothing: no request of ours was in flight.
            if self._asked and self._held is None:
                self._held = self._last_create
                self.responses_held += 1
            self._creating = self._asked = False
            self.errors.append(f"{code}: {text}")
            return [Metric("vendor_errors", 1.0)]
        if self.phase is not Phase.READY or code in SESSION_ENDING_CODES:
            self.fatal = VendorError(text, code=code)
        else:
            self.errors.append(f"{code}: {text}" if code else text)
        return [Metric("vendor_errors", 1.0)]
