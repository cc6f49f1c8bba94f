"""The pure scheduling core: numbers and zones, calling windows across zones and DST, pacing,
outcomes and per-outcome retries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.campaigns.outcomes import Outcome, Retry, RetryPolicy, classify
from gateway.campaigns.pacing import Pacing
from gateway.campaigns.windows import CallingWindows
from gateway.campaigns.zones import normalize, zone_for

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+1 (312) 555-0170", "+13125550170"),
        ("312.555.0170", "+13125550170"),
        ("13125550170", "+13125550170"),
        ("0044 20 7946 0018", "+442079460018"),
        ("+442079460018", "+442079460018"),
    ],
)
def test_zones_normalize_accepts_spreadsheet_spellings(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize("text", ["", "hello", "+1312555017", "+11125550170", "+1312155501700"])
def test_zones_normalize_rejects_numbers_that_cannot_ring(text: str) -> None:
    with pytest.raises(ValueError):
        normalize(text)


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+12125550100", "America/New_York"),
        ("+13125550100", "America/Chicago"),
        ("+14155550100", "America/Los_Angeles"),
        ("+16025550100", "America/Phoenix"),
        ("+18085550100", "Pacific/Honolulu"),
        ("+16045550100", "America/Vancouver"),
        ("+442079460018", "Europe/London"),
        ("+353215550100", "Europe/Dublin"),
        ("+61255550100", None),  # Australia has several zones: the campaign default applies
    ],
)
def test_zones_zone_for_infers_from_area_or_country_code(number: str, zone: str | None) -> None:
    assert zone_for(number) == zone


def test_windows_are_read_on_each_callees_wall_clock() -> None:
    windows = CallingWindows.parse(["09:00-20:00"])
    at = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # 09:30 in New York, 06:30 in Los Angeles
    assert windows.is_open(at, NY)
    assert not windows.is_open(at, LA)
    assert windows.next_open(at, NY) == at
    assert windows.next_open(at, LA) == datetime(2026, 3, 2, 9, tzinfo=LA).astimezone(UTC)


def test_windows_keep_wall_clock_hours_across_spring_forward() -> None:
    windows = CallingWindows.parse(["09:00-17:00"])
    # Saturday evening before the US change (Sunday 8 March 2026, 02:00 -> 03:00).
    opens = windows.next_open(datetime(2026, 3, 7, 23, tzinfo=UTC), NY)
    assert opens is not None
    assert opens.astimezone(NY).replace(tzinfo=None) == datetime(2026, 3, 8, 9, 0)
    assert opens.utcoffset() == datetime(2026, 3, 8, 13, tzinfo=UTC).utcoffset()
    assert opens == datetime(2026, 3, 8, 13, tzinfo=UTC)  # EDT: UTC-4 (it was UTC-5 the day before)


def test_windows_opening_in_the_skipped_hour_open_when_the_gap_ends() -> None:
    windows = CallingWindows.parse(["sun 02:30-04:00"])
    at = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 01:00 EST, one hour before the gap
    opens = windows.next_open(at, NY)
    assert opens == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, the first instant after
    assert opens.astimezone(NY).hour == 3


def test_windows_opening_in_the_repeated_hour_open_at_its_first_occurrence() -> None:
    windows = CallingWindows.parse(["sun 01:15-01:45"])
    at = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT; 01:00-02:00 happens twice
    opens = windows.next_open(at, NY)
    assert opens == datetime(2026, 11, 1, 5, 15, tzinfo=UTC)  # 01:15 EDT, not 01:15 EST
    later = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # 01:00 EST, the second pass
    assert windows.is_open(datetime(2026, 11, 1, 6, 20, tzinfo=UTC), NY)
    assert windows.next_open(later, NY) == datetime(2026, 11, 1, 6, 15, tzinfo=UTC)


def test_windows_differ_when_europe_and_america_change_on_different_dates() -> None:
    # 9 March 2026: New York already on EDT (UTC-4), London still on GMT: a 4-hour gap, not 5.
    windows = CallingWindows.parse(["09:00-17:00"])
    ny_open = windows.next_open(datetime(2026, 3, 9, 0, tzinfo=UTC), NY)
    london_open = windows.next_open(datetime(2026, 3, 9, 0, tzinfo=UTC), LONDON)
    assert ny_open is not None and london_open is not None
    assert (ny_open - london_open).total_seconds() == 4 * 3600


def test_windows_honour_days_and_the_campaign_dates() -> None:
    windows = CallingWindows.parse(
        ["mon-fri 09:00-12:00"], first_day=date(2026, 3, 4), last_day=date(2026, 3, 6)
    )
    before = datetime(2026, 3, 1, 12, tzinfo=UTC)  # a Sunday, before the start date
    assert windows.next_open(before, NY) == datetime(2026, 3, 4, 9, tzinfo=NY).astimezone(UTC)
    friday_noon = datetime(2026, 3, 6, 12, 0, tzinfo=NY)
    assert windows.next_open(friday_noon, NY) is None  # next Monday is after the stop date


def test_pacing_admits_at_most_one_call_per_interval() -> None:
    pacing = Pacing(calls_per_second=4, max_concurrent=100)
    slot, starts, now = 0.0, [], 0.0
    while now < 10.0:  # a dialler asking every millisecond
        if pacing.admit(now, slot, 0).ok:
            starts.append(now)
            slot = pacing.next_slot(now, slot)
        now = round(now + 0.001, 6)
    assert len(starts) == 40
    for i, t in enumerate(starts):  # every half-open second holds at most 4 calls
        assert sum(1 for u in starts[i:] if u < t + 1.0) <= 4


def test_pacing_never_catches_up_in_a_burst_after_a_stall() -> None:
    pacing = Pacing(calls_per_second=10, max_concurrent=100)
    slot = pacing.next_slot(0.0, 0.0)
    assert pacing.admit(5.0, slot, 0).ok  # five seconds late
    slot = pacing.next_slot(5.0, slot)
    refused = pacing.admit(5.05, slot, 0)
    assert not refused.ok and refused.retry_at == pytest.approx(5.1)


def test_pacing_refuses_past_max_concurrent_until_a_call_ends() -> None:
    pacing = Pacing(calls_per_second=100, max_concurrent=3)
    refused = pacing.admit(10.0, 0.0, 3)
    assert not refused.ok and refused.retry_at is None
    assert pacing.admit(10.0, 0.0, 2).ok


@pytest.mark.parametrize(
    ("status", "answered_by", "action", "outcome"),
    [
        ("completed", "human", None, Outcome.ANSWERED),
        ("completed", None, None, Outcome.ANSWERED),
        ("completed", "unknown", None, Outcome.ANSWERED),
        ("completed", "machine_end_beep", "message", Outcome.VOICEMAIL),
        ("completed", "machine_start", "hangup", Outcome.MACHINE),
        ("completed", "fax", None, Outcome.MACHINE),
        ("busy", None, None, Outcome.BUSY),
        ("no-answer", None, None, Outcome.NO_ANSWER),
        ("failed", None, None, Outcome.FAILED),
        ("canceled", None, None, Outcome.CANCELED),
    ],
)
def test_outcomes_classify_twilio_status_and_amd(status, answered_by, action, outcome) -> None:
    assert classify(status, answered_by, action) is outcome


def test_outcomes_classify_refuses_a_status_that_is_not_final() -> None:
    with pytest.raises(ValueError):
        classify("ringing", None, None)


def test_retry_backs_off_per_outcome_and_stops_at_the_limits() -> None:
    policy = RetryPolicy(
        max_attempts=4,
        rules={
            Outcome.BUSY: Retry(times=2, after=(60.0, 600.0)),
            Outcome.NO_ANSWER: Retry(times=1, after=(3600.0,)),
        },
    )
    assert policy.delay(Outcome.BUSY, attempts=1, outcome_count=1) == 60.0
    assert policy.delay(Outcome.BUSY, attempts=2, outcome_count=2) == 600.0
    assert policy.delay(Outcome.BUSY, attempts=3, outcome_count=3) is None  # two retries used
    assert policy.delay(Outcome.NO_ANSWER, attempts=3, outcome_count=1) == 3600.0
    assert policy.delay(Outcome.NO_ANSWER, attempts=4, outcome_count=1) is None  # max_attempts
    assert policy.delay(Outcome.FAILED, attempts=1, outcome_count=1) is None  # no rule
    assert policy.delay(Outcome.ANSWERED, attempts=1, outcome_count=1) is None
