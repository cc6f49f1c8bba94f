"""Routing: numbers, callers, time (with daylight saving), holidays, direction, variables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.dialplan import (
    BotAction,
    CallFacts,
    HangupAction,
    SayAction,
    TransferAction,
    VoicemailAction,
    after_dial,
    load,
    recall,
    route,
)

BUSINESS = """
timezone: America/New_York
default_route: main
holidays:
  us: [{date: 2026-12-25, name: Christmas Day}, 2026-11-26]
routes:
  main:
    numbers: ["+12125550100"]
    branches:
      - name: holiday
        when: {holidays: [us]}
        do: {action: voicemail, greeting: "Closed for the holiday."}
      - name: open
        when: {days: mon-fri, hours: ["09:00-17:00"]}
        do: {action: bot, engine: echo}
      - name: early-sunday
        when: {hours: ["sun 01:00-04:00"]}
        do: {action: say, text: "night owl"}
    otherwise: {action: voicemail, greeting: "After hours."}
"""

OPEN, CLOSED = "open", "otherwise"


@pytest.fixture
def business(plans, engines):
    return load(plans.write(BUSINESS), engines)


def call(plan, at, to="+12125550100", from_="+13475550123", direction="inbound"):
    return route(plan, CallFacts(to=to, from_=from_, at=at, direction=direction))


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# 2026: daylight saving starts Sunday 8 March (EST UTC-5 -> EDT UTC-4) and ends Sunday 1 November.
@pytest.mark.parametrize(
    ("at", "branch"),
    [
        (utc(2026, 3, 6, 13, 30), CLOSED),  # Fri before the switch: 08:30 EST
        (utc(2026, 3, 6, 14, 0), OPEN),  # 09:00 EST
        (utc(2026, 3, 6, 21, 30), OPEN),  # 16:30 EST
        (utc(2026, 3, 9, 13, 0), OPEN),  # Mon after the switch: 09:00 EDT
        (utc(2026, 3, 9, 12, 59), CLOSED),  # 08:59 EDT
        (utc(2026, 3, 9, 21, 0), CLOSED),  # 17:00 EDT: the end is exclusive
        (utc(2026, 3, 9, 20, 59), OPEN),  # 16:59 EDT
        (utc(2026, 10, 30, 13, 0), OPEN),  # Fri before the switch back: 09:00 EDT
        (utc(2026, 11, 2, 13, 30), CLOSED),  # Mon after: 08:30 EST
        (utc(2026, 11, 2, 14, 0), OPEN),  # 09:00 EST
        (utc(2026, 11, 2, 21, 59), OPEN),  # 16:59 EST
        (utc(2026, 11, 2, 22, 0), CLOSED),  # 17:00 EST
    ],
)
def test_router_follows_wall_clock_across_dst(business, at, branch):
    assert call(business, at).branch == branch


def test_router_matches_both_repeated_hours_at_dst_end(business):
    # 01:30 happens twice on 1 November: at 05:30 UTC (EDT) and 06:30 UTC (EST).
    first = call(business, utc(2026, 11, 1, 5, 30))
    second = call(business, utc(2026, 11, 1, 6, 30))
    assert first.branch == second.branch == "early-sunday"
    assert call(business, utc(2026, 11, 1, 9, 0)).branch == CLOSED  # 04:00 EST


def test_router_skips_missing_hour_at_dst_start(business):
    # 01:59 EST is followed directly by 03:00 EDT; both inside 01:00-04:00.
    assert call(business, utc(2026, 3, 8, 6, 59)).branch == "early-sunday"
    assert call(business, utc(2026, 3, 8, 7, 0)).branch == "early-sunday"
    assert call(business, utc(2026, 3, 8, 8, 0)).branch == CLOSED  # 04:00 EDT


def test_router_accepts_any_aware_timezone_for_at(business):
    # 09:30 in New York expressed as 15:30 in Paris (UTC+1 in winter).
    at = datetime(2026, 1, 5, 15, 30, tzinfo=timezone(timedelta(hours=1)))
    assert call(business, at).branch == OPEN


def test_router_refuses_naive_time(business):
    with pytest.raises(ValueError, match="timezone-aware"):
        call(business, datetime(2026, 1, 5, 10, 0))


def test_router_picks_holiday_over_opening_hours(business):
    decision = call(business, utc(2026, 12, 25, 15, 0))  # Friday 10:00 EST, Christmas
    assert decision.branch == "holiday"
    assert isinstance(decision.action, VoicemailAction)
    assert any("Christmas Day" in reason for reason in decision.reasons)
    assert call(business, utc(2026, 11, 26, 15, 0)).branch == "holiday"  # unnamed date


def test_router_uses_local_date_for_holidays(business):
    # 02:00 UTC on 25 December is still 21:00 on Christmas Eve in New York.
    assert call(business, utc(2026, 12, 25, 2, 0)).branch == CLOSED
    assert call(business, utc(2026, 12, 26, 2, 0)).branch == "holiday"  # 21:00 on the 25th


def test_router_explains_its_decision(business):
    decision = call(business, utc(2026, 3, 9, 14, 0))
    assert decision.reasons[0] == "route main: +12125550100 is one of its numbers"
    assert "Mon 2026-03-09 10:00 America/New_York" in decision.reasons[1]
    assert decision.reasons[2].startswith("branch holiday skipped")
    assert (
        decision.reasons[3]
        == "branch open matched: Mon 10:00 is within mon,tue,wed,thu,fri 09:00-17:00"
    )


PRECEDENCE = """
default_route: fallback
routes:
  short:
    numbers: ["+1415*"]
    otherwise: {action: say, text: short}
  fixed:
    numbers: ["+1415555XXXX"]
    otherwise: {action: say, text: fixed}
  longer:
    numbers: ["+14155*"]
    otherwise: {action: say, text: longer}
  exact:
    numbers: ["+14155550100"]
    otherwise: {action: say, text: exact}
  fallback:
    otherwise: {action: say, text: default}
"""


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("+14155550100", "exact"),  # exact beats every pattern
        ("+14155550199", "fixed"),  # +1415555 literal prefix (7) beats +14155 (5)
        ("+141555501999", "longer"),  # too long for the fixed-length pattern
        ("+14156660000", "short"),
        ("+14151", "short"),
        ("+12125550100", "fallback"),
        ("client:alice", "fallback"),
    ],
)
def test_router_applies_number_precedence(plans, engines, to, expected):
    plan = load(plans.write(PRECEDENCE), engines)
    assert call(plan, utc(2026, 1, 1, 12), to=to).route == expected


def test_router_precedence_ignores_file_order(plans, engines):
    reordered = PRECEDENCE.replace('"+1415*"', "TMP").replace('"+14155*"', '"+1415*"')
    reordered = reordered.replace("TMP", '"+14155*"')  # swap which route holds which pattern
    plan = load(plans.write(reordered), engines)
    decision = call(plan, utc(2026, 1, 1, 12), to="+14155123456")
    assert decision.route == "short"  # now holds +14155*, the longer prefix
    assert "matches pattern +14155*" in decision.reasons[0]


CALLERS = """
default_route: main
caller_lists:
  vips: ["+16505550123", "+1408*"]
routes:
  main:
    branches:
      - name: withheld
        when: {anonymous: true}
        do: {action: reject, reason: busy}
      - name: vip
        when: {caller_lists: [vips], callers: ["+447700900123"]}
        do: {action: transfer, to: "+14155550199"}
    otherwise: {action: bot, engine: echo}
"""


@pytest.mark.parametrize(
    "caller", ["anonymous", "Anonymous", "unknown", "restricted", "", "+266696687", "private"]
)
def test_router_treats_withheld_callers_as_anonymous(plans, engines, caller):
    plan = load(plans.write(CALLERS), engines)
    decision = call(plan, utc(2026, 1, 1, 12), to="+19995550000", from_=caller)
    assert decision.branch == "withheld"
    assert decision.route == "main"


@pytest.mark.parametrize(
    ("caller", "branch"),
    [
        ("+16505550123", "vip"),  # listed exactly
        ("+14085551234", "vip"),  # by the list's prefix
        ("+447700900123", "vip"),  # by the branch's own callers
        ("+16505550124", "otherwise"),
        ("+1408", "vip"),  # a trailing * stands for any further digits, none included
        ("+140", "otherwise"),
    ],
)
def test_router_matches_caller_lists_and_prefixes(plans, engines, caller, branch):
    plan = load(plans.write(CALLERS), engines)
    assert call(plan, utc(2026, 1, 1, 12), from_=caller).branch == branch


DIRECTION = """
default_route: other
routes:
  line:
    numbers: ["+13125550150"]
    branches:
      - name: outbound
        when: {direction: outbound-api}
        do: {action: bot, engine: tone, greeting: "Calling {caller} from {called}"}
      - name: known
        when: {callers: ["+13125550170"]}
        do: {action: bot, engine: echo}
    otherwise: hangup
  other:
    otherwise: {action: reject}
"""


def test_router_routes_outbound_calls_on_from(plans, engines):
    plan = load(plans.write(DIRECTION), engines)
    decision = call(
        plan, utc(2026, 1, 1, 12), to="+13125550170", from_="+13125550150", direction="outbound-api"
    )
    assert (decision.route, decision.branch) == ("line", "outbound")
    assert decision.action.greeting == "Calling +13125550170 from +13125550150"


def test_router_routes_inbound_calls_on_to(plans, engines):
    plan = load(plans.write(DIRECTION), engines)
    decision = call(plan, utc(2026, 1, 1, 12), to="+13125550150", from_="+13125550170")
    assert (decision.route, decision.branch) == ("line", "known")
    assert "direction inbound is not outbound-api" in decision.reasons[2]


def test_router_from_twilio_reads_webhook_parameters(plans, engines):
    plan = load(plans.write(DIRECTION), engines)
    params = {"To": "+13125550150", "From": "+13125550170", "Direction": "inbound"}
    decision = route(plan, CallFacts.from_twilio(params, utc(2026, 1, 1, 12)))
    assert decision.branch == "known"


VARIABLES = """
default_route: main
routes:
  main:
    timezone: Asia/Tokyo
    otherwise:
      action: say
      text: "{route}: {caller} called {called} on {now:%A} at {now:%H:%M} ({direction}) {{x}}"
      then:
        action: voicemail
        greeting: "Hello {caller}, it is {now}"
"""


def test_router_expands_variables_in_route_time_zone(plans, engines):
    plan = load(plans.write(VARIABLES), engines)
    decision = call(plan, utc(2026, 1, 4, 23, 30), to="+15550000", from_="anonymous")
    assert isinstance(decision.action, SayAction)
    # 23:30 UTC Sunday is 08:30 Monday in Tokyo.
    assert decision.action.text == (
        "main: anonymous called +15550000 on Monday at 08:30 (inbound) {x}"
    )
    assert decision.action.then.greeting == "Hello anonymous, it is 2026-01-05 08:30"
    assert plan.routes["main"].otherwise.text.startswith("{route}")  # the plan is untouched


FALLBACK = """
default_route: main
routes:
  main:
    otherwise:
      action: bot
      engine: tone
      fallback:
        action: bot
        engine: echo
        fallback:
          action: transfer
          to: "+14155550199"
          caller_id: "{caller}"
          on_busy: {action: say, text: busy}
          on_no_answer: {action: voicemail, greeting: "Message for {called}"}
"""


def test_router_uses_fallback_when_engine_unavailable(plans, engines):
    plan = load(plans.write(FALLBACK), engines)
    decision = route(
        plan,
        CallFacts("+15550000", "+14085551234", utc(2026, 1, 1)),
        engine_available=lambda name: name == "echo",
    )
    assert isinstance(decision.action, BotAction)
    assert decision.action.engine == "echo"
    assert decision.path == "fallback"
    assert "engine tone is unavailable: fallback bot" in decision.reasons


def test_router_walks_fallback_chain_until_available(plans, engines):
    plan = load(plans.write(FALLBACK), engines)
    decision = route(
        plan,
        CallFacts("+15550000", "+14085551234", utc(2026, 1, 1)),
        engine_available=lambda name: False,
    )
    assert isinstance(decision.action, TransferAction)
    assert decision.action.caller_id == "+14085551234"
    assert decision.path == "fallback.fallback"


def test_router_keeps_bot_when_engine_available(plans, engines):
    plan = load(plans.write(FALLBACK), engines)
    decision = route(
        plan, CallFacts("+15550000", "anonymous", utc(2026, 1, 1)), engine_available=lambda n: True
    )
    assert decision.action.engine == "tone"
    assert decision.path == ""
    # An anonymous caller cannot be shown as caller ID: Twilio's default applies.
    assert decision.action.fallback.fallback.caller_id is None


@pytest.mark.parametrize(
    ("status", "expected", "path"),
    [
        ("busy", SayAction, "fallback.fallback.on_busy"),
        ("no-answer", VoicemailAction, "fallback.fallback.on_no_answer"),
        ("failed", VoicemailAction, "fallback.fallback.on_no_answer"),
        ("completed", HangupAction, "fallback.fallback"),
    ],
)
def test_router_after_dial_follows_dial_status(plans, engines, status, expected, path):
    plan = load(plans.write(FALLBACK), engines)
    facts = CallFacts("+15550000", "+14085551234", utc(2026, 1, 1))
    transfer = route(plan, facts, engine_available=lambda n: False)
    decision = after_dial(transfer, status)
    assert isinstance(decision.action, expected)
    assert decision.path == path
    assert status in decision.reasons[-1]
    if expected is VoicemailAction:
        assert decision.action.greeting == "Message for +15550000"


def test_router_after_dial_refuses_non_transfer(plans, engines):
    plan = load(plans.write(FALLBACK), engines)
    decision = route(plan, CallFacts("+15550000", "+14085551234", utc(2026, 1, 1)))
    with pytest.raises(ValueError, match="needs a transfer"):
        after_dial(decision, "busy")


def test_router_recall_rebuilds_nested_action(plans, engines):
    plan = load(plans.write(FALLBACK), engines)
    facts = CallFacts("+15550000", "+14085551234", utc(2026, 1, 1))
    decision = recall(plan, "main", "otherwise", facts, path="fallback.fallback.on_no_answer")
    assert decision.action.greeting == "Message for +15550000"
    assert decision.plan == plan.digest
    with pytest.raises(LookupError):
        recall(plan, "main", "otherwise", facts, path="fallback.then")
    with pytest.raises(LookupError):
        recall(plan, "nope", "otherwise", facts)


def test_router_recall_finds_branch_by_label(business):
    facts = CallFacts("+12125550100", "+13475550123", utc(2026, 3, 9, 14))
    routed = route(business, facts)
    again = recall(business, routed.route, routed.branch, facts)
    assert again.action == routed.action
