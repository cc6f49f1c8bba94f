"""The ``browser`` direction: the browser phone's calls are routed by the route the page chose,
and only routes whose decision for a browser call is a bot are offered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.dialplan import BotAction, CallFacts, bot_routes, load, route_named
from gateway.dialplan.schema import DIRECTIONS

PLAN = """
timezone: UTC
default_route: main
routes:
  main:
    numbers: ["+12125550100"]
    branches:
      - name: web
        when: {direction: browser}
        do: {action: bot, engine: echo, greeting: "Hello from {direction}."}
    otherwise: {action: transfer, to: "+12125550111"}
  phone-only:
    numbers: ["+12125550200"]
    branches:
      - name: calls
        when: {direction: [inbound]}
        do: {action: bot, engine: echo}
    otherwise: {action: hangup}
  web-only:
    branches:
      - name: web
        when: {direction: browser}
        do: {action: bot, engine: tone}
    otherwise: {action: hangup}
"""

AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
BROWSER = CallFacts(to="", from_="", at=AT, direction="browser")


@pytest.fixture
def plan(plans, engines):
    return load(plans.write(PLAN), engines)


def test_router_lists_browser_direction() -> None:
    assert "browser" in DIRECTIONS


def test_router_route_named_takes_browser_branch(plan) -> None:
    decision = route_named(plan, "main", BROWSER)
    assert decision.branch == "web"
    assert isinstance(decision.action, BotAction)
    assert decision.action.greeting == "Hello from browser."


def test_router_route_named_inbound_skips_browser_branch(plan) -> None:
    inbound = CallFacts(to="+12125550100", from_="+14155550123", at=AT)
    assert route_named(plan, "main", inbound).branch == "otherwise"


def test_router_route_named_refuses_unknown_route(plan) -> None:
    with pytest.raises(LookupError):
        route_named(plan, "nope", BROWSER)


def test_router_bot_routes_only_bots_for_browser(plan) -> None:
    assert bot_routes(plan, BROWSER) == ("main", "web-only")


def test_router_route_named_needs_aware_time(plan) -> None:
    with pytest.raises(ValueError):
        route_named(plan, "main", CallFacts("", "", datetime(2026, 1, 1), "browser"))


def test_loader_refuses_unnumbered_route_without_browser_branch(plans) -> None:
    path = plans.write(
        PLAN.replace(
            "direction: browser}\n        do: {action: bot, engine: tone}",
            "direction: inbound}\n        do: {action: bot, engine: tone}",
        )
    )
    assert "web-only" in plans.problem(path, "never used").message
