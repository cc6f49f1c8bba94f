"""The asyncio side of one call, the same for every carrier.

:class:`CallRunner` drives a sans-I/O :class:`~gateway.call.session.CallSession`: it feeds
it with the time read once per input, hands the session's commands to the carrier, keeps the
session's one timer armed at :meth:`~gateway.call.session.CallSession.next_deadline`, pumps
the engine's events, runs hang-ups, transfers and REST DTMF (network round trips) in one task
in order, enforces the bot's ``max_duration``, and at the end settles the ledger, closes the
engine, writes the recording off the event loop and files the call record.

A carrier supplies only a :class:`Carrier`: wire framing of frames and marks, clear, and its
call control. Model: aioquic's ``asyncio/protocol.py`` (``transmit()`` after every input,
one ``call_at`` for the connection's timer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from engine.base import CallContext, EngineError, EngineEvent, EngineFailed, EngineSession
from gateway.call.commands import (
    CallAction,
    ClearAudio,
    HangUp,
    SendDigits,
    SendFrame,
    SendMark,
    TransferCall,
)
from gateway.call.labels import CallOutcome
from gateway.call.ledger import CallLedger
from gateway.call.registry import CallRegistry
from gateway.call.session import CallSession

if TYPE_CHECKING:
    from gateway.engines import EngineSet

log = logging.getLogger("overtalk.session")


async def open_engine(
    engines: EngineSet, ledger: CallLedger, context: CallContext
) -> EngineSession | None:
    """Open the engine the ledger names; None when it is unavailable, with the ledger saying
    so. The carrier then runs its own fallback (Twilio the TwiML after ``</Connect>``, SIP a
    503 that sends the trunk to its next gateway)."""
    try:
        return await engines.get(ledger.engine).open(context)
    except EngineError as exc:
        log.error("x engine %s unavailable for call %s: %s", ledger.engine, ledger.call_id, exc)
        ledger.engine_errors += 1
        ledger.end_reason = f"engine unavailable: {exc}"
        ledger.outcome = CallOutcome.ENGINE_UNAVAILABLE
        return None


class Carrier(Protocol):
    """What a carrier gives a call: its media transport and its call control.

    The media methods never block: they queue for the carrier's writer (or its media clock),
    and :meth:`flush` says a batch is queued. The two call actions are network round trips.
    """

    def send_frame(self, frame: bytes) -> None: ...

    def send_mark(self, name: str) -> None: ...

    def send_clear(self) -> None:
        """Drop whatever is buffered for the caller, ahead of anything not yet written."""

    def flush(self) -> None:
        """Commands are queued: have the writer send them."""

    async def hangup(self) -> None: ...

    async def transfer(self, target: str) -> None: ...


@runtime_checkable
class SendsDtmf(Protocol):
    """A carrier that can send DTMF as events rather than tones (SIP: RFC 4733)."""

    def send_dtmf(self, digits: str) -> bool:
        """Queue ``digits`` (keys and ``W`` pauses) as events, after anything queued before;
        False when this call cannot carry them (the peer offered no telephone-event)."""


@runtime_checkable
class RequestsDtmf(Protocol):
    """A carrier whose REST API plays DTMF into the call (Telnyx, Plivo, Vonage): a network
    round trip, so it runs in the action task, in order with hang-ups and transfers."""

    def can_request_dtmf(self, digits: str) -> bool:
        """Whether this call's API can carry ``digits`` (keys and ``W`` pauses); False sends
        them as tones at once, with no error (no credentials, or a key the API refuses)."""

    async def request_dtmf(self, digits: str) -> None:
        """Ask the carrier to play ``digits``; raises when the request fails."""


#: How the ledger's errors name a failed action.
_ACTION_KINDS: dict[type, str] = {HangUp: "hangup", TransferCall: "transfer", SendDigits: "dtmf"}


class CallRunner:
    """One call's asyncio side; see the module docstring."""

    def __init__(
        self,
        session: CallSession,
        carrier: Carrier,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.session = session
        self.carrier = carrier
        self.clock = clock
        self.wall = wall
        self._timer: asyncio.TimerHandle | None = None
        self._armed: float | None = None
        self._limit: asyncio.TimerHandle | None = None
        self._actions: deque[CallAction] = deque()
        self._action_task: asyncio.Task[None] | None = None
        self._registry: CallRegistry | None = None

    # -- inputs: each runs the core, then sends what it asked for ----------------------------

    def receive_audio(self, ulaw: bytes, timestamp_ms: int = -1) -> None:
        """Caller audio: goes to the engine and asks nothing of the carrier."""
        self.session.receive_audio(ulaw, timestamp_ms)

    def receive_mark(self, name: str) -> None:
        self.session.receive_mark(name, self.clock())
        self.transmit()

    def receive_dtmf(self, digit: str) -> None:
        self.session.receive_dtmf(digit, self.clock())

    def engine_event(self, event: EngineEvent) -> None:
        self.session.engine_event(event, self.clock())
        self.transmit()

    def clear_written(self) -> None:
        """The carrier wrote the clear (to the socket, or dropped its queue)."""
        self.session.clear_written(self.clock())

    def end_call(self, reason: str, outcome: CallOutcome = CallOutcome.LIMIT) -> None:
        """Hang up now, whatever is playing (a limit, ``overtalk`` ending it, a drain)."""
        self.session.end_call(reason, outcome)
        self.transmit()

    def pull_frame(self, now: float) -> bytes | None:
        """The carrier's media clock takes the bot's next frame as it transmits it at ``now``
        (a session built with ``carrier_clock``): None means silence."""
        frame = self.session.pull_frame(now)
        self.transmit()  # the last frame out may release a hang-up, transfer or DTMF
        return frame

    # -- outputs -----------------------------------------------------------------------------

    def transmit(self) -> None:
        """Hand the session's commands to the carrier and re-arm the timer."""
        session = self.session
        commands = session.commands_to_send()
        while commands:
            carrier = self.carrier
            for command in commands:
                match command:
                    case SendFrame(frame=frame):
                        carrier.send_frame(frame)
                    case SendMark(name=name):
                        carrier.send_mark(name)
                    case ClearAudio():
                        carrier.send_clear()
                    case HangUp() | TransferCall():
                        self._act(command)
                    case SendDigits(digits=digits):
                        if isinstance(carrier, SendsDtmf) and carrier.send_dtmf(digits):
                            continue  # RFC 4733 events, queued in order with the media
                        if isinstance(carrier, RequestsDtmf) and carrier.can_request_dtmf(digits):
                            self._act(command)  # after the hang-ups and transfers before it
                        else:
                            session.play_dtmf(digits, self.clock())  # tones: more commands
            carrier.flush()
            commands = session.commands_to_send()
        deadline = session.next_deadline()
        if deadline != self._armed:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._armed = deadline
            if deadline is not None:
                loop = asyncio.get_running_loop()
                # The deadline is on self.clock; the loop's timer on loop.time().
                delay = deadline - self.clock()
                self._timer = loop.call_at(loop.time() + max(0.0, delay), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._armed = None
        self.session.handle_timer(self.clock())
        self.transmit()

    def _act(self, action: CallAction) -> None:
        self._actions.append(action)
        task = self._action_task
        if task is None or task.done():
            self._action_task = asyncio.get_running_loop().create_task(self._run_actions())

    async def _run_actions(self) -> None:
        session = self.session
        call_id = session.ledger.call_id
        while self._actions:
            action = self._actions.popleft()
            kind = _ACTION_KINDS.get(type(action), "action")
            try:
                match action:
                    case HangUp():
                        await self.carrier.hangup()
                    case TransferCall(target=target):
                        await self.carrier.transfer(target)
                    case SendDigits(digits=digits):
                        carrier = self.carrier
                        if not isinstance(carrier, RequestsDtmf):  # transmit() checked it
                            raise TypeError("the carrier sends no DTMF")
                        await carrier.request_dtmf(digits)
            except Exception as exc:  # a failed REST call must not end the media path
                session.ledger.errors.append(f"{kind} failed: {exc}")
                log.warning("x %s of call %s failed: %s", kind, call_id, exc)
                if isinstance(action, SendDigits) and not session.closed:
                    session.play_dtmf(action.digits, self.clock())  # the caller still hears them
                    self.transmit()

    # -- lifetime ----------------------------------------------------------------------------

    def start(self, registry: CallRegistry, max_duration: float = 0.0) -> None:
        """The call is up: file it as live and arm its length limit, if the bot has one."""
        self._registry = registry
        registry.started(self.session.ledger, self.end_call)
        if max_duration:
            self._limit = asyncio.get_running_loop().call_later(
                max_duration, self.end_call, f"call length limit {max_duration:g} s"
            )

    async def pump_engine(self, observe: Callable[[EngineEvent], None] | None = None) -> None:
        """Pump the engine's events until its stream ends; an engine failure ends the call.

        ``observe`` sees each event after the core has (a carrier that shows the call as it
        happens, such as the browser phone's live transcript)."""
        session = self.session
        engine: EngineSession = session.engine
        try:
            async for event in engine.events():
                self.engine_event(event)
                if observe is not None:
                    observe(event)
        except EngineFailed as exc:
            session.engine_failed(str(exc))
            log.warning("x engine failed on call %s: %s", session.ledger.call_id, exc)
            raise

    async def close(
        self,
        reason: str,
        outcome: CallOutcome = CallOutcome.COMPLETED,
        recording: Path | None = None,
    ) -> None:
        """End the call: settle the ledger (``outcome`` unless one was set already), close the
        engine, write the recording, file the call."""
        session = self.session
        if session.closed:
            return
        session.ledger.settle(outcome)
        if self._limit is not None:
            self._limit.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        session.close(reason, self.clock(), self.wall())
        ledger = session.ledger
        try:
            await session.engine.close()
        except Exception as exc:  # the engine's own cleanup failing must not leak the call
            ledger.errors.append(f"engine close failed: {exc}")
        if self._action_task is not None and not self._action_task.done():
            await asyncio.gather(self._action_task, return_exceptions=True)
        recorder = session.recorder
        if recording is not None and recorder is not None:
            try:
                await asyncio.to_thread(recorder.write, recording)
            except OSError as exc:
                ledger.errors.append(f"recording not written: {exc}")
        if self._registry is not None:
            self._registry.ended(ledger)
