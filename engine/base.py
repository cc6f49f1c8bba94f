"""The duplex engine interface: what every engine offers the gateway, and nothing of calls.

An :class:`Engine` is a factory of :class:`EngineSession` objects, one per call. A session is a
duplex stream: the gateway pushes the caller's audio in continuously (silence included, so
the engine keeps its own clock from the audio it is given) and pulls events out of
:meth:`EngineSession.events`.

Inputs are plain synchronous method calls because the gateway makes them on its per-frame hot
path: they must return at once and never block. An engine whose work is slow (a model forward,
a network round trip) queues the input and does the work elsewhere (a batch worker, a thread,
another task), then reports through :meth:`EventChannel.put`.

Audio positions: every :class:`Audio` event extends the session's *output timeline*, counted in
milliseconds of audio emitted since the session opened. When the caller interrupts, the gateway
discards what was not yet heard and calls :meth:`EngineSession.played` with the position on that
timeline up to which the caller did hear the bot, so the engine can truncate what it believes it
said. Later audio continues the timeline where emission left off (the discarded span is not
reused).

Interruptions in two stages: when the caller makes a sound over the bot, the engine emits
:class:`Hold` at once; the gateway stops releasing the bot's audio (or ducks it) and keeps the
exact sample. The engine then judges the sound and emits either :class:`Release` (a cough, a
laugh, "uh-huh": playback carries on from that sample, nothing repeated or re-synthesised) or
:class:`Commit` (a turn: the gateway clears and calls :meth:`EngineSession.played`). An engine
that cannot judge (a hosted model that only says "interrupted") emits :class:`Interrupt`, a
hold and a commit at once. A hold left open too long is committed by the gateway.

Engines import only this module and their own libraries: an engine knows nothing of carriers,
calls or the gateway.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

#: Rates an engine session may declare; the gateway resamples from/to 8 kHz telephone audio.
SUPPORTED_RATES = (8000, 16000, 24000)


#: Audio encodings a session may declare. "pcm16": 16-bit signed little-endian mono at the
#: session's rate. "mulaw": G.711 mu-law at 8 kHz, the telephone's own bytes, passed through
#: untouched both ways (no decode, no resampling) for engines that speak it natively.
AUDIO_FORMATS = ("pcm16", "mulaw")


@dataclass(frozen=True, slots=True)
class Audio:
    """Bot speech, in the session's :attr:`EngineSession.audio_format` at its rate."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class Interrupt:
    """The caller is taking the turn: stop playback now and report :meth:`played` (a hold and
    a commit at once)."""


@dataclass(frozen=True, slots=True)
class Hold:
    """The caller made a sound over the bot: stop releasing its audio, keep the exact sample.

    ``soft``: the sound may well be nothing (a cough at its first frames): only duck the bot
    by the gateway's shallow depth, so a release costs the caller a dip rather than a gap. A
    plain Hold after a soft one deepens it; Release or Commit ends either.
    """

    soft: bool = False


@dataclass(frozen=True, slots=True)
class Commit:
    """The held sound is a turn: clear playback and report :meth:`played` (as Interrupt)."""


@dataclass(frozen=True, slots=True)
class Release:
    """The held sound is not a turn: carry on from the sample held at."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """Text of what one side said; ``final=False`` marks a partial hypothesis. ``revises``: a
    final line that replaces this side's last one (the caller had only paused, and what they
    said before and after the pause is one utterance)."""

    role: str  # "caller" or "bot"
    text: str
    final: bool = True
    revises: bool = False


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call after the audio already emitted has played."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the call to a phone number (E.164) or SIP URI."""

    target: str


@dataclass(frozen=True, slots=True)
class SendDtmf:
    """Play DTMF digits to the caller (``0-9*#``, ``w`` for a half-second pause)."""

    digits: str


@dataclass(frozen=True, slots=True)
class Metric:
    """A named measurement the engine wants recorded with the call (seconds or counts)."""

    name: str
    value: float


@dataclass(frozen=True, slots=True)
class Result:
    """What the conversation has settled so far (answers a flow stored, outcomes it set), as
    text by name. Each one replaces the last: an answer taken back disappears from it. The
    gateway keeps the latest in the call record, where campaigns and operators read it."""

    values: Mapping[str, str]


EngineEvent = (
    Audio
    | Interrupt
    | Hold
    | Commit
    | Release
    | Transcript
    | Hangup
    | Transfer
    | SendDtmf
    | Metric
    | Result
)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What an engine may know about the call it serves: identities, never transports."""

    call_id: str
    caller: str = ""
    called: str = ""
    direction: str = "inbound"
    #: Route settings and per-call variables (prompt, flow, contact fields...).
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a route setting would fail every call: ``option`` is the setting's name, ``message``
    reads after its value ("cannot run: ...", "is refused: ...")."""

    option: str
    message: str


class EngineError(Exception):
    """Base of engine failures.

    EngineError
    ├── EngineUnavailable   the engine could not open a session (model missing, service down)
    └── EngineFailed        a running session broke; the call takes its route's fallback
    """


class EngineUnavailable(EngineError):
    """Raised by :meth:`Engine.open` when no session can be had."""


class EngineFailed(EngineError):
    """Raised out of :meth:`EngineSession.events` when a running session breaks."""


class EventChannel:
    """A single-consumer event queue cheaper than :class:`asyncio.Queue`.

    Engines put events from the event loop's thread; one consumer iterates. Only one waiter
    future is ever created per idle period, so a burst of events costs no extra wake-ups.
    """

    __slots__ = ("_events", "_waiter", "_closed", "_error")

    def __init__(self) -> None:
        self._events: deque[EngineEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None

    def put(self, event: EngineEvent) -> None:
        if self._closed:
            return
        self._events.append(event)
        self._wake()

    def close(self, error: BaseException | None = None) -> None:
        """End the stream; the consumer sees ``error`` raised once pending events are read."""
        self._closed = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def __aiter__(self) -> AsyncIterator[EngineEvent]:
        events = self._events
        while True:
            while events:
                yield events.popleft()
            if self._closed:
                if self._error is not None:
                    raise self._error
                return
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class EngineSession(ABC):
    """One call's duplex stream. See the module docstring for the timing contract."""

    #: Sample rate of audio in both directions, one of :data:`SUPPORTED_RATES`.
    sample_rate: int
    #: Encoding of audio in both directions, one of :data:`AUDIO_FORMATS`.
    audio_format: str

    def __init__(self, sample_rate: int, audio_format: str = "pcm16") -> None:
        if sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"sample rate {sample_rate} not in {SUPPORTED_RATES}")
        if audio_format not in AUDIO_FORMATS:
            raise ValueError(f"audio format {audio_format!r} not in {AUDIO_FORMATS}")
        if audio_format == "mulaw" and sample_rate != 8000:
            raise ValueError("mu-law audio is 8 kHz")
        self.sample_rate = sample_rate
        self.audio_format = audio_format
        self.channel = EventChannel()

    @abstractmethod
    def send_audio(self, pcm: bytes) -> None:
        """Take the caller's next audio (in :attr:`audio_format` at :attr:`sample_rate`).

        Called once per carrier frame on the gateway's hot path: must return at once.
        """

    def dtmf(self, digit: str) -> None:  # noqa: B027 - optional hook, default ignores
        """The caller pressed ``digit``."""

    def played(self, ms: int) -> None:  # noqa: B027 - optional hook, default ignores
        """After a commit or an interruption: the caller heard the output timeline up to ``ms``."""

    def events(self) -> AsyncIterator[EngineEvent]:
        """The session's output events; ends when the session closes."""
        return aiter(self.channel)

    async def close(self) -> None:
        """Release the session's resources; the event stream ends."""
        self.channel.close()


class Engine(ABC):
    """A factory of sessions; one instance serves every call of a gateway process."""

    name: ClassVar[str]

    @abstractmethod
    async def open(self, context: CallContext) -> EngineSession:
        """Open a session for one call, or raise :class:`EngineUnavailable`."""

    @classmethod
    def check(cls, options: Mapping[str, str]) -> list[Problem]:
        """What in a route's settings (as :attr:`CallContext.parameters` will carry them) this
        engine would refuse at every call; empty when nothing is wrong.

        A class method, so that ``overtalk dialplan check`` can ask without building the engine
        (no model loads, no credentials). Settings an engine does not read are no problem.
        """
        return []

    async def aclose(self) -> None:  # noqa: B027 - optional hook, default has nothing to free
        """Release engine-wide resources (models, batch workers) at gateway shut-down."""
