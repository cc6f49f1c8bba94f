"""What every websocket media-stream carrier shares on the gateway side, but the wire.

:class:`StreamCarrier` holds the gateway's shared services for one carrier (engines, call
registry, dial plans, admission, stream tokens, metrics) and does the carrier-neutral half of
both endpoints:

- the call webhook: :meth:`StreamCarrier.decide` routes the call through the dial plan with
  :class:`~gateway.dialplan.CallFacts` and admission control (a full engine gives way to its
  route's fallback, or the call is refused busy); :meth:`StreamCarrier.stream_parameters` gives
  the names and the short-lived HMAC stream token the carrier's answer must carry to its stream
  (``gateway.carriers.twilio.stream_token``'s core, reused);
- the media websocket: :meth:`StreamCarrier.serve` runs one call over the carrier's sans-I/O
  :class:`~gateway.streams.events.MediaStream` (see :mod:`gateway.streams.serve`).

The carrier keeps only what is its own: its answer document, signature check, wire core and
REST call control.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl

from gateway.call.recording import recording_path
from gateway.call.registry import CallRegistry
from gateway.carriers.twilio.signature import public_url
from gateway.carriers.twilio.stream_token import TOKEN_PARAMETER, StreamTokens
from gateway.config import Settings
from gateway.dialplan import BotAction, CallFacts, Decision, PlanHolder, recall, route
from gateway.engines import EngineSet
from gateway.ops.admission import Admission
from gateway.ops.lifecycle import Lifecycle
from gateway.ops.logs import field as log_field
from gateway.streams.serve import StreamCall

if TYPE_CHECKING:
    from fastapi import WebSocket

    from gateway.streams.events import MediaStream, StreamOpened

__all__ = [
    "CallControl",
    "CallControlError",
    "CloseStreamControl",
    "ControlFactory",
    "Routed",
    "StreamCarrier",
    "is_loopback",
]

log = logging.getLogger("overtalk.streams")


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: the only peers of an unsigned gateway."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class CallControl(Protocol):
    """A carrier's call control for one call: REST round trips, run off the media path."""

    async def hangup(self) -> None: ...

    async def transfer(self, target: str) -> None: ...


#: Builds a call's control from its start message and a way to close its stream.
ControlFactory = Callable[["StreamOpened", Callable[[], Awaitable[None]]], CallControl]


class CallControlError(Exception):
    """A REST action on a call failed, or is impossible; carries the carrier's message."""


class CloseStreamControl:
    """Without REST credentials: hang up by closing the stream (the carrier then ends the
    call, or runs what follows the stream in its answer); transfers are impossible."""

    def __init__(self, close: Callable[[], Awaitable[None]], missing: str) -> None:
        self._close = close
        self._missing = missing

    async def hangup(self) -> None:
        await self._close()

    async def transfer(self, target: str) -> None:
        raise CallControlError(f"cannot transfer to {target}: set {self._missing}")


@dataclass(frozen=True, slots=True)
class Routed:
    """The webhook's outcome: ``busy``, or a dial-plan ``decision`` (None: no plan loaded, so
    the default engine's bot)."""

    busy: bool
    decision: Decision | None = None


@dataclass
class StreamCarrier:
    """One media-stream carrier's share of the gateway; see the module docstring."""

    name: str
    settings: Settings
    engines: EngineSet
    calls: CallRegistry
    tokens: StreamTokens
    plans: PlanHolder | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    #: Wall clock for routing by time of day (a fixed one in tests).
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    #: Told of each refusal by kind (``GatewayMetrics.refused``).
    refused: Callable[[str], None] = lambda kind: None
    admission: Admission | None = None
    #: Call ids with a media stream being served: one stream per call.
    streaming: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.admission is None:
            self.admission = Admission({}, self.calls.active)

    # -- webhook side ------------------------------------------------------------------------

    def url(self, request_base: str, path: str, query: str = "", *, websocket: bool = False) -> str:
        """This gateway's public URL for ``path``: the configured public URL, else the
        request's own base (right only when nothing sits in between)."""
        base = self.settings.public_url or request_base
        return public_url(base, path, query, websocket=websocket)

    def form(self, body: bytes, max_fields: int = 100) -> dict[str, str] | None:
        """A form-encoded webhook body as a dict (last value wins); None when it is not one
        or has more than ``max_fields`` fields."""
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields
            )
        except (UnicodeDecodeError, ValueError):
            return None
        return dict(pairs)

    def decide(self, call_id: str, facts: CallFacts) -> Routed:
        """Route a new call and take its engine place; ``busy`` when it cannot be served."""
        plans = self.plans
        if plans is None:
            return Routed(busy=not self._admit(call_id, self.engines.default))
        decision = route(plans.current, facts, engine_available=self._engine_free)
        log.info(
            "= %s call %s -> route %s, %s: %s",
            self.name,
            call_id,
            decision.route,
            decision.branch,
            decision.action.action,
        )
        log.debug("= why: %s", "; ".join(decision.reasons))
        action = decision.action
        if isinstance(action, BotAction) and not self._admit(
            call_id, action.engine or self.engines.default
        ):
            return Routed(busy=True)
        return Routed(busy=False, decision=decision)

    def stream_parameters(
        self, call_id: str, decision: Decision | None, context: Mapping[str, str], path: str = ""
    ) -> dict[str, str]:
        """The parameters a bot's stream must carry: ``context`` (caller, called...), the
        dial-plan names that find its action again, and the stream token over all of them."""
        names = dict(context)
        if decision is not None:
            names.update(route=decision.route, branch=decision.branch, plan=decision.plan)
            if path or decision.path:
                names["path"] = path or decision.path
        names[TOKEN_PARAMETER] = self.tokens.issue(call_id, names, time.time())
        return names

    def _engine_free(self, engine: str) -> bool:
        assert self.admission is not None
        full = self.admission.load(engine, time.monotonic()).full
        return self.engines.available(engine) and not full

    def _admit(self, call_id: str, engine: str) -> bool:
        assert self.admission is not None
        if self.admission.admit(call_id, engine, self.name, time.monotonic()):
            return True
        log.info("x refusing %s call %s: engine %s is full", self.name, call_id, engine)
        return False

    # -- media side --------------------------------------------------------------------------

    def admit_stream(self, opened: StreamOpened) -> tuple[str, str] | None:
        """None when this stream may serve its call; else the refusal's kind and reason."""
        problem = self.tokens.verify(opened.call_id, opened.parameters, time.time())
        if problem is not None:
            return "stream-token", problem
        if opened.call_id in self.streaming or opened.call_id in self.calls.active:
            return "duplicate-stream", "that call has a media stream already"
        return None

    def bot_for(self, params: Mapping[str, str], call_id: str) -> BotAction | None:
        """The dial-plan bot a stream's parameters name, or None (the default engine)."""
        plans = self.plans
        if plans is None or "route" not in params:
            return None
        plan = plans.get(params.get("plan", "")) or plans.current
        facts = CallFacts(
            to=params.get("to", ""),
            from_=params.get("from", ""),
            at=self.wall_clock(),
            direction=params.get("direction", "inbound"),
        )
        try:
            decision = recall(
                plan, params["route"], params.get("branch", ""), facts, path=params.get("path", "")
            )
        except LookupError as exc:
            log.warning("x call %s: %s; using the default engine", call_id, log_field(exc))
            return None
        return decision.action if isinstance(decision.action, BotAction) else None

    def recording_path(self, call_id: str, bot: BotAction | None) -> Path | None:
        return recording_path(
            call_id,
            recordings_dir=self.settings.recordings_dir,
            records_dir=self.settings.records_dir,
            record=bot is not None and bool(bot.record),
        )

    async def serve(self, ws: WebSocket, stream: MediaStream, control: ControlFactory) -> None:
        """One accepted media websocket, from its start message to its close."""
        await StreamCall(self, ws, stream, control).run()
