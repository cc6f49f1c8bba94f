"""Dial plans: route every call by number, caller and time, from YAML files.

The public API, in the order a call meets it::

    plan = load("dialplans/default.yaml", ENGINE_NAMES)        # or PlanHolder(...).current
    decision = route(plan, CallFacts(to=..., from_=..., at=aware_datetime))
    twiml = gateway.carriers.twilio.twiml.render(decision, stream_url=..., parameters=...)

- :func:`load` / :func:`check`: files -> an immutable :class:`DialPlan`, or every
  :class:`Problem` (file, line, column, reason) in a :class:`DialPlanInvalid`.
- :func:`route`: pure; (plan, :class:`CallFacts`) -> :class:`Decision` (route, branch, action
  with variables expanded, and the reasons). :func:`after_dial` continues a transfer from
  Twilio's ``DialCallStatus``; :func:`recall` rebuilds a decision from the names a media
  stream carries.
- :class:`PlanHolder`: the plan in force and hot reload (:func:`watch`,
  :func:`install_sighup`); a broken edit is refused and the running plan stays.

Modules: ``problems`` (errors), ``_yaml`` (YAML with positions), ``numbers``, ``timing``,
``templates`` (value types), ``schema`` (the file format), ``loader``, ``plan``, ``router``
(pure), ``reload`` (the asyncio adapters, last), ``cli`` (``overtalk dialplan``).
"""

from gateway.dialplan._yaml import Positions
from gateway.dialplan._yaml import parse as parse_yaml
from gateway.dialplan.loader import check, load
from gateway.dialplan.numbers import NumberPattern, is_anonymous
from gateway.dialplan.plan import CompiledBranch, CompiledRoute, DialPlan, NumberRule
from gateway.dialplan.problems import DialPlanError, DialPlanInvalid, Problem
from gateway.dialplan.reload import PlanHolder, install_sighup, watch
from gateway.dialplan.router import (
    CallFacts,
    Decision,
    after_dial,
    bot_routes,
    recall,
    route,
    route_named,
    select_route,
)
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

__all__ = [
    "AnyAction",
    "BotAction",
    "CallFacts",
    "CompiledBranch",
    "CompiledRoute",
    "Decision",
    "DialPlan",
    "DialPlanError",
    "DialPlanInvalid",
    "HangupAction",
    "NumberPattern",
    "NumberRule",
    "PlanHolder",
    "PlayAction",
    "Positions",
    "Problem",
    "RejectAction",
    "SayAction",
    "TransferAction",
    "VoicemailAction",
    "after_dial",
    "bot_routes",
    "check",
    "install_sighup",
    "is_anonymous",
    "load",
    "parse_yaml",
    "recall",
    "route",
    "route_named",
    "select_route",
    "watch",
]
