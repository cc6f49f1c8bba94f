"""Route a call: (plan, call facts) -> a :class:`Decision`, with the reasons it was taken.

Pure: no I/O, no clock. The caller supplies the call's time as an aware datetime, so the same
facts always give the same decision, and tests can stand on either side of a daylight-saving
change without patching anything.

Precedence
----------
1. **Which route.** The number the plan routes on is *ours*: ``To`` on an inbound call,
   ``From`` on an outbound one (``outbound-api``, ``outbound-dial``). An exact number listed by
   a route wins; otherwise the most specific matching pattern (longer literal prefix first, see
   :mod:`gateway.dialplan.numbers`); otherwise the plan's ``default_route``. A ``browser``
   call has no number: the page names its route (:func:`route_named`).
2. **Which branch.** A route's branches are tried in file order and the first whose conditions
   all hold wins; if none does, ``otherwise``. Conditions look at the *far party* (``From`` on
   an inbound call, ``To`` on an outbound one), the direction, and the route's local time.
3. **Which action.** The branch's action, with ``{variables}`` expanded. If the caller says an
   engine is unavailable, a bot is replaced by its ``fallback`` (repeatedly, if need be).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from gateway.dialplan.numbers import is_anonymous
from gateway.dialplan.plan import CompiledBranch, CompiledRoute, DialPlan
from gateway.dialplan.schema import (
    NESTED_ACTIONS,
    AnyAction,
    BotAction,
    HangupAction,
    TransferAction,
)
from gateway.dialplan.templates import expand
from gateway.dialplan.timing import DAY_NAMES, week_minute

__all__ = [
    "CallFacts",
    "Decision",
    "after_dial",
    "bot_routes",
    "recall",
    "route",
    "route_named",
    "select_route",
]

#: ``DialCallStatus`` values after which the person was reached: the call is over.
DIAL_ANSWERED = frozenset({"completed", "answered"})


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the carrier told us about a call, as Twilio names it, plus when it arrived.

    ``at`` must be timezone-aware: a naive time would silently be read in the gateway's own
    zone, not the route's.
    """

    to: str
    from_: str
    at: datetime
    direction: str = "inbound"

    @classmethod
    def from_twilio(cls, params: Mapping[str, str], at: datetime) -> CallFacts:
        """From a voice webhook's parameters (``To``, ``From``, ``Direction``)."""
        return cls(
            to=params.get("To", ""),
            from_=params.get("From", ""),
            at=at,
            direction=params.get("Direction", "inbound") or "inbound",
        )

    @property
    def outbound(self) -> bool:
        return self.direction.startswith("outbound")

    @property
    def ours(self) -> str:
        """The number the plan routes on: the one that was called, or that is calling out."""
        return self.from_ if self.outbound else self.to

    @property
    def far(self) -> str:
        """The other party: the caller on inbound calls, the person called on outbound ones."""
        return self.to if self.outbound else self.from_


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a call, and why.

    ``route`` and ``branch`` (a branch label or ``"otherwise"``) name where the action came
    from, and ``path`` where within that branch's action (``""`` for the action itself,
    ``"fallback"``, ``"on_no_answer.then"``...); ``plan`` is the digest of the plan that
    decided. Together they let a media session find the same action again after a reload
    (:func:`recall`). ``action`` has its variables expanded.
    """

    route: str
    branch: str
    action: AnyAction
    reasons: tuple[str, ...]
    plan: str
    path: str = ""


def select_route(plan: DialPlan, number: str) -> tuple[CompiledRoute, str]:
    """The route for ``number`` (ours) and the reason, by the precedence in the module doc."""
    name = plan.exact.get(number)
    if name is not None:
        return plan.routes[name], f"route {name}: {number} is one of its numbers"
    for rule in plan.patterns:
        if rule.pattern.matches(number):
            return (
                plan.routes[rule.route],
                f"route {rule.route}: {number} matches pattern {rule.pattern} (no exact number "
                "or more specific pattern does)",
            )
    shown = number or "(no number)"
    return (
        plan.routes[plan.default_route],
        f"route {plan.default_route}: the default, as no route lists {shown}",
    )


def route(
    plan: DialPlan,
    facts: CallFacts,
    *,
    engine_available: Callable[[str], bool] | None = None,
) -> Decision:
    """Decide what to do with the call described by ``facts``.

    ``engine_available(name)``, when given, is asked about each bot's engine; a bot whose engine
    is unavailable gives way to its ``fallback``. Without a fallback the bot is kept (with a
    reason saying so): the gateway will meet the failure when it connects, and the TwiML
    rendered after ``</Connect>`` has nothing to fall back on either.
    """
    if facts.at.tzinfo is None or facts.at.utcoffset() is None:
        raise ValueError("CallFacts.at must be timezone-aware")
    chosen, why = select_route(plan, facts.ours)
    return _decide(plan, chosen, why, facts, engine_available)


def route_named(
    plan: DialPlan,
    route_name: str,
    facts: CallFacts,
    *,
    engine_available: Callable[[str], bool] | None = None,
) -> Decision:
    """Decide a call whose route was chosen by name, not by number: a ``browser`` call, where
    the page offers the routes. Branches, variables and fallbacks apply as in :func:`route`.

    Raises LookupError when the plan has no such route.
    """
    if facts.at.tzinfo is None or facts.at.utcoffset() is None:
        raise ValueError("CallFacts.at must be timezone-aware")
    chosen = plan.routes.get(route_name)
    if chosen is None:
        raise LookupError(f"plan {plan.digest} has no route {route_name!r}")
    return _decide(plan, chosen, f"route {route_name}: chosen by name", facts, engine_available)


def _decide(
    plan: DialPlan,
    chosen: CompiledRoute,
    why: str,
    facts: CallFacts,
    engine_available: Callable[[str], bool] | None,
) -> Decision:
    reasons = [why]
    local = facts.at.astimezone(chosen.zone)
    reasons.append(f"local time {local:%a %Y-%m-%d %H:%M} {chosen.timezone}")
    action: AnyAction | None = None
    label = "otherwise"
    for branch in chosen.branches:
        ok, because = _evaluate(branch, facts, local)
        reasons.append(f"branch {branch.label} {'matched' if ok else 'skipped'}: {because}")
        if ok:
            action, label = branch.action, branch.label
            break
    if action is None:
        action = chosen.otherwise
        reasons.append("no branch matched: otherwise")
    if action is None:  # the loader refuses such plans; a defensive, legible failure
        raise LookupError(f"route {chosen.name} has no branch for this call and no otherwise")
    action = _expand(action, _variables(facts, chosen.name, label, local))
    path = ""
    if engine_available is not None:
        action, path = _available(action, engine_available, reasons)
    return Decision(chosen.name, label, action, tuple(reasons), plan.digest, path)


def recall(
    plan: DialPlan, route_name: str, branch: str, facts: CallFacts, *, path: str = ""
) -> Decision:
    """Rebuild the decision a call was given, from the names its stream carries.

    A media session learns only names from the ``<Parameter>``s of its stream (``route``,
    ``branch``, ``path``); with the plan the call was routed by (looked up by digest, see
    :class:`~gateway.dialplan.reload.PlanHolder`) this gives it the full, expanded action.
    Raises LookupError if the plan has no such route, branch or path.
    """
    chosen = plan.routes.get(route_name)
    if chosen is None:
        raise LookupError(f"plan {plan.digest} has no route {route_name!r}")
    if branch == "otherwise":
        action = chosen.otherwise
    else:
        found = chosen.branch(branch)
        action = found.action if found is not None else None
    if action is None:
        raise LookupError(f"route {route_name!r} of plan {plan.digest} has no branch {branch!r}")
    for step in filter(None, path.split(".")):
        nested = getattr(action, step, None) if step in NESTED_ACTIONS else None
        if nested is None:
            raise LookupError(f"branch {branch!r} of route {route_name!r} has no {path!r}")
        action = nested
    local = facts.at.astimezone(chosen.zone)
    action = _expand(action, _variables(facts, chosen.name, branch, local))
    why = f"recalled route {route_name}, branch {branch}{' ' + path if path else ''}"
    reasons = (f"{why} of plan {plan.digest}",)
    return Decision(route_name, branch, action, reasons, plan.digest, path)


def after_dial(decision: Decision, dial_status: str) -> Decision:
    """What follows a transfer, given Twilio's ``DialCallStatus`` from the ``<Dial action>``.

    ``completed``/``answered``: the person took the call; hang up. ``busy``: ``on_busy`` if set,
    else ``on_no_answer``. ``no-answer``, ``failed``, ``canceled``: ``on_no_answer``. Without
    either, hang up.
    """
    action = decision.action
    if not isinstance(action, TransferAction):
        raise ValueError(f"after_dial needs a transfer decision, not {action.action}")
    key = None
    if dial_status in DIAL_ANSWERED:
        why = f"transfer to {action.to} ended ({dial_status})"
    elif dial_status == "busy" and action.on_busy is not None:
        key, why = "on_busy", f"transfer to {action.to} was busy: on_busy"
    else:
        key, why = "on_no_answer", f"transfer to {action.to} got {dial_status}: on_no_answer"
    nxt: AnyAction | None = getattr(action, key) if key else None
    if nxt is None:
        return replace(
            decision,
            action=HangupAction(action="hangup"),
            reasons=(*decision.reasons, why + " -> hang up"),
        )
    path = f"{decision.path}.{key}" if decision.path else str(key)
    return replace(decision, action=nxt, reasons=(*decision.reasons, why), path=path)


# -- conditions ------------------------------------------------------------------------------


def _evaluate(branch: CompiledBranch, facts: CallFacts, local: datetime) -> tuple[bool, str]:
    """Whether every condition holds; the reason names all that held, or the first that
    failed."""
    when = branch.when
    held: list[str] = []
    if when.direction is not None:
        if facts.direction not in when.direction:
            return False, f"direction {facts.direction} is not {' or '.join(when.direction)}"
        held.append(f"direction {facts.direction}")
    anonymous = is_anonymous(facts.far)
    shown = facts.far or "(empty)"
    if when.anonymous is True:
        if not anonymous:
            return False, f"caller {shown} did not withhold their number"
        held.append(f"the caller withheld their number (From {shown})")
    elif when.anonymous is False:
        if anonymous:
            return False, f"the caller withheld their number (From {shown})"
        held.append(f"caller {shown} did not withhold their number")
    if branch.callers is not None:
        hit = None if anonymous else next((p for p in branch.callers if p.matches(facts.far)), None)
        if hit is None:
            return False, f"caller {shown} is not among its callers"
        held.append(f"caller {facts.far} matches {hit}")
    if branch.dates is not None:
        today = local.date()
        if today not in branch.dates:
            return False, f"{today} is not one of its dates"
        held.append(f"{today} is {branch.date_names.get(today, 'a listed date')}")
    if branch.times is not None:
        minute = week_minute(local)
        when_text = f"{DAY_NAMES[local.weekday()].capitalize()} {local:%H:%M}"
        if minute not in branch.times:
            return False, f"{when_text} is outside {_describe_times(branch)}"
        held.append(f"{when_text} is within {_describe_times(branch)}")
    if not held:
        return True, "it has no conditions"
    return True, "; ".join(held)


def _describe_times(branch: CompiledBranch) -> str:
    when = branch.when
    parts = []
    if when.days is not None and (when.hours is None or any(w.days is None for w in when.hours)):
        parts.append(",".join(DAY_NAMES[d] for d in sorted(when.days)))
    if when.hours is not None:
        parts.append(", ".join(w.text for w in when.hours))
    return " ".join(parts)


# -- actions ---------------------------------------------------------------------------------


def _variables(facts: CallFacts, route_name: str, branch: str, local: datetime) -> dict[str, Any]:
    return {
        "caller": "anonymous" if is_anonymous(facts.far) else facts.far,
        "called": facts.ours,
        "route": route_name,
        "branch": branch,
        "direction": facts.direction,
        "now": local,
    }


def _expand(action: AnyAction, values: Mapping[str, Any]) -> AnyAction:
    update: dict[str, Any] = {}
    for name in getattr(action, "TEMPLATES", ()):
        text = getattr(action, name)
        if text is not None:
            update[name] = expand(text, values)
    if isinstance(action, TransferAction) and action.caller_id in ("{caller}", "{called}"):
        number = values[action.caller_id.strip("{}")]
        update["caller_id"] = None if number == "anonymous" or not number else number
    for key in NESTED_ACTIONS:
        nested = getattr(action, key, None)
        if nested is not None:
            update[key] = _expand(nested, values)
    return action.model_copy(update=update) if update else action


def _available(
    action: AnyAction, engine_available: Callable[[str], bool], reasons: list[str]
) -> tuple[AnyAction, str]:
    path: list[str] = []
    while isinstance(action, BotAction) and action.engine is not None:
        if engine_available(action.engine):
            break
        if action.fallback is None:
            reasons.append(f"engine {action.engine} is unavailable and the bot has no fallback")
            break
        reasons.append(f"engine {action.engine} is unavailable: fallback {action.fallback.action}")
        action = action.fallback
        path.append("fallback")
    return action, ".".join(path)


def bot_routes(plan: DialPlan, facts: CallFacts) -> tuple[str, ...]:
    """The routes a call described by ``facts`` may name (:func:`route_named`): those whose
    decision for it, now, is a bot. The browser phone offers these and refuses any other; a
    browser call can only talk to a bot (it has no number to transfer or leave a message)."""
    names = []
    for name in plan.routes:
        try:
            decision = route_named(plan, name, facts)
        except LookupError:
            continue
        if isinstance(decision.action, BotAction):
            names.append(name)
    return tuple(names)
