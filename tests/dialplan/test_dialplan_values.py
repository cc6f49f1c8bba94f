"""Number patterns, time windows, dates and templates: the value types plans are made of."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.dialplan import NumberPattern, is_anonymous
from gateway.dialplan.templates import check_template, expand
from gateway.dialplan.timing import DateRange, WeekSet, Window, parse_days, week_minute


@pytest.mark.parametrize(
    ("pattern", "number", "matches"),
    [
        ("+14155550100", "+14155550100", True),
        ("+14155550100", "+141555501001", False),
        ("+1415*", "+14155550100", True),
        ("+1415*", "+1415", True),
        ("+1415*", "+1416", False),
        ("+1415555XXXX", "+14155550100", True),
        ("+1415555XXXX", "+141555501000", False),
        ("+1415555xxxx", "+14155559999", True),
        ("+44X*", "+4420", True),
        ("+44X*", "+44", False),
        ("+1415*", "anonymous", False),
    ],
)
def test_pattern_matches_numbers(pattern, number, matches):
    assert NumberPattern.parse(pattern).matches(number) is matches


@pytest.mark.parametrize(
    "text", ["14155550100", "+0123", "+1", "+1415**", "+1415*5", "*", "+*", "+1234567890123456"]
)
def test_pattern_parse_refuses_bad_input(text):
    with pytest.raises(ValueError):
        NumberPattern.parse(text)


def test_pattern_precedence_orders_specific_first():
    texts = ["+1*", "+1415*", "+1415XXXXXXX", "+14155*", "+1415XX00*", "+14155550100"]
    ordered = sorted(texts, key=lambda t: NumberPattern.parse(t).precedence, reverse=True)
    assert ordered == ["+14155550100", "+14155*", "+1415XX00*", "+1415XXXXXXX", "+1415*", "+1*"]


@pytest.mark.parametrize(
    ("a", "b", "covers", "overlaps"),
    [
        ("+1415*", "+14155*", True, True),
        ("+14155*", "+1415*", False, True),
        ("+1415X*", "+1415*", False, True),
        ("+1415XXXXXXX", "+14155550100", True, True),
        ("+1415XXXXXXX", "+1415*", False, True),
        ("+1415X5*", "+1415X6*", False, False),
        ("+1415XXXX", "+1415XXX", False, False),
    ],
)
def test_pattern_covers_and_overlaps(a, b, covers, overlaps):
    pa, pb = NumberPattern.parse(a), NumberPattern.parse(b)
    assert pa.covers(pb) is covers
    assert pa.overlaps(pb) is overlaps
    assert pb.overlaps(pa) is overlaps


@pytest.mark.parametrize(
    ("caller", "anonymous"),
    [
        ("anonymous", True),
        ("UNKNOWN", True),
        ("restricted", True),
        ("", True),
        (None, True),
        ("+266696687", True),
        ("+14155550100", False),
        ("client:alice", False),
    ],
)
def test_caller_counts_as_anonymous_when_withheld(caller, anonymous):
    assert is_anonymous(caller) is anonymous


def test_days_parse_ranges_lists_and_groups():
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_days("mon,wed,Friday") == frozenset({0, 2, 4})
    assert parse_days("weekends") == frozenset({5, 6})
    with pytest.raises(ValueError, match="did you mean 'tue'"):
        parse_days("teu")


def test_window_overnight_wraps_into_next_day_and_week():
    window = Window.parse("sun 22:00-02:00")
    times = WeekSet.of(window.intervals(range(7)))
    sunday_late = week_minute(datetime(2026, 3, 15, 23, 0))  # a Sunday
    monday_early = week_minute(datetime(2026, 3, 16, 1, 59))
    monday_late = week_minute(datetime(2026, 3, 16, 2, 0))
    assert sunday_late in times and monday_early in times
    assert monday_late not in times


def test_window_parse_refuses_bad_times():
    for text in ("25:00-26:00", "09:00-09:00", "9-17", "09:60-10:00"):
        with pytest.raises(ValueError):
            Window.parse(text)
    assert Window.parse("00:00-24:00").intervals([0]) == [(0, 1440)]


def test_date_range_parses_all_forms():
    assert DateRange.parse(date(2026, 12, 25)).days() == {date(2026, 12, 25)}
    assert len(DateRange.parse("2026-12-24..2026-12-26").days()) == 3
    named = DateRange.parse({"date": "2026-07-03", "until": "2026-07-05", "name": "Summer"})
    assert date(2026, 7, 4) in named and str(named) == "2026-07-03..2026-07-05 (Summer)"
    with pytest.raises(ValueError, match="before it starts"):
        DateRange.parse("2026-12-26..2026-12-24")
    with pytest.raises(ValueError, match="10 years"):
        DateRange.parse("2026-01-01..2062-01-01")


def test_template_expands_and_refuses_bad_fields():
    now = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    assert expand("{caller} {now:%a} {{x}}", {"caller": "+1555", "now": now}) == "+1555 Mon {x}"
    for bad in ("{nope}", "{caller!r}", "{caller", "{caller[0]}", "{caller:{route}}"):
        with pytest.raises(ValueError):
            check_template(bad)
