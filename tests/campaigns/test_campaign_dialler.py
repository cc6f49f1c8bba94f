"""The dialler on invented time, against a fake carrier, on SQLite and on PostgreSQL:
pacing and concurrency, windows, retries and back-off, do-not-call, lost answers, pause,
resume and cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from campaignkit import FakeCarrier, FakeClock, write_campaign

from gateway.campaigns.dialler import Dialler
from gateway.campaigns.errors import CarrierRejected, CarrierUnavailable
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.store import Store

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
#: A Monday, 10:00 in New York.
MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC).timestamp()


def numbers(n: int, area: str = "312") -> str:
    return "phone,first_name\n" + "".join(f"+1{area}555{i:04d},P{i}\n" for i in range(n))


def setup(store: Store, tmp_path: Path, body: str, contacts: str, *, start: float = MONDAY,
          plan=None, poll_s: float = 1.0) -> tuple[Dialler, FakeCarrier, FakeClock]:  # fmt: skip
    path = write_campaign(tmp_path, body, contacts=contacts)
    create_campaign(store, path, start)
    store.change_state("spring", "start", start)
    clock = FakeClock(start)
    carrier = FakeCarrier(store, clock, plan)
    dialler = Dialler(store, "spring", carrier, public_url="https://gw.example.com", clock=clock,
                      lease_s=30.0, poll_s=poll_s, check_after_s=60.0)  # fmt: skip
    return dialler, carrier, clock


def claim_times(store: Store) -> list[float]:
    return sorted(a["created_at"] for a in store.attempts("spring"))


async def test_dialler_never_exceeds_the_call_rate(store: Store, tmp_path: Path) -> None:
    dialler, carrier, _ = setup(
        store, tmp_path, "windows: ['00:00-24:00']\npacing: {calls_per_second: 5, "
        "max_concurrent: 100}\n", numbers(60),
        plan=lambda number, n: ("completed", "human", 3.0),
    )  # fmt: skip
    await dialler.run()
    times = claim_times(store)
    assert len(times) == 60 and len(carrier.created) == 60
    for i, t in enumerate(times):  # any half-open second holds at most 5 calls
        assert sum(1 for u in times[i:] if u < t + 1.0) <= 5
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.2 - 1e-9
    assert times[-1] - times[0] == pytest.approx(59 * 0.2, abs=1.0)  # and it keeps the pace
    assert store.stats("spring").finished == {"answered": 60}


async def test_dialler_never_exceeds_max_concurrent(store: Store, tmp_path: Path) -> None:
    dialler, carrier, _ = setup(
        store, tmp_path, "windows: ['00:00-24:00']\npacing: {calls_per_second: 50, "
        "max_concurrent: 3}\n", numbers(20),
        plan=lambda number, n: ("completed", "human", 10.0),
    )  # fmt: skip
    await dialler.run()
    assert carrier.max_live == 3
    assert len(carrier.created) == 20
    assert store.stats("spring").finished == {"answered": 20}


async def test_dialler_calls_each_contact_inside_its_own_window(store, tmp_path) -> None:
    contacts = "phone,first_name\n+12125550100,ny\n+14155550100,la\n+13125550100,chi\n"
    start = datetime(2026, 3, 2, 7, 0, tzinfo=NY).timestamp()  # 07:00 NY, 04:00 LA
    dialler, carrier, _ = setup(store, tmp_path, "windows: ['mon-fri 09:00-09:30']\n", contacts,
                                start=start, poll_s=900.0)  # fmt: skip
    await dialler.run()
    # When each attempt was claimed (the dialling decision; the fake carrier's own clock may
    # have moved on by the time a placement task reaches it).
    local = {
        a["phone"]: datetime.fromtimestamp(a["created_at"], UTC) for a in store.attempts("spring")
    }
    assert len(carrier.created) == 3
    assert local["+12125550100"] == datetime(2026, 3, 2, 9, 0, tzinfo=NY)
    assert local["+14155550100"] == datetime(2026, 3, 2, 9, 0, tzinfo=LA)
    assert local["+13125550100"].astimezone(ZoneInfo("America/Chicago")).hour == 9


async def test_dialler_follows_the_wall_clock_over_a_dst_change(store, tmp_path) -> None:
    start = datetime(2026, 3, 7, 18, 0, tzinfo=NY).timestamp()  # Saturday, EST
    dialler, carrier, _ = setup(store, tmp_path, "windows: ['sun 09:00-09:30']\n",
                                "phone\n+12125550100\n", start=start, poll_s=900.0)  # fmt: skip
    await dialler.run()
    assert len(carrier.created) == 1
    (claimed,) = claim_times(store)
    assert datetime.fromtimestamp(claimed, UTC) == datetime(
        2026, 3, 8, 13, 0, tzinfo=UTC
    )  # 09:00 EDT


async def test_dialler_retries_with_back_off_per_outcome(store: Store, tmp_path: Path) -> None:
    def plan(number: str, n: int):
        if number.endswith("0000"):  # busy twice, then answers
            return ("busy", None, 5.0) if n <= 2 else ("completed", "human", 20.0)
        if number.endswith("0001"):  # never answers
            return ("no-answer", None, 30.0)
        return ("failed", None, 1.0)

    body = """\
        windows: ['00:00-24:00']
        max_attempts: 5
        retry:
          busy: {times: 2, after: [60, 300]}
          no-answer: {times: 1, after: [10m]}
        """
    dialler, carrier, _ = setup(store, tmp_path, body, numbers(3), plan=plan)
    await dialler.run()
    rows = {r["phone"]: r for r in store.contacts("spring")}
    assert (rows["+13125550000"]["outcome"], rows["+13125550000"]["attempts"]) == ("answered", 3)
    assert (rows["+13125550001"]["outcome"], rows["+13125550001"]["attempts"]) == ("no-answer", 2)
    assert (rows["+13125550002"]["outcome"], rows["+13125550002"]["attempts"]) == ("failed", 1)
    busy = sorted(t for t, n in carrier.created if n == "+13125550000")
    assert busy[1] - busy[0] >= 5 + 60 and busy[1] - busy[0] < 5 + 60 + 2
    assert busy[2] - busy[1] >= 5 + 300 and busy[2] - busy[1] < 5 + 300 + 2
    quiet = sorted(t for t, n in carrier.created if n == "+13125550001")
    assert quiet[1] - quiet[0] >= 30 + 600


async def test_dialler_never_dials_do_not_call_numbers(store: Store, tmp_path: Path) -> None:
    dialler, carrier, clock = setup(
        store, tmp_path, "windows: ['00:00-24:00']\ndo_not_call: ['+13125550001']\n", numbers(4)
    )
    store.add_do_not_call({"+13125550003": "opted out after the list was loaded"}, clock.now())
    await dialler.run()
    dialled = {n for _, n in carrier.created}
    assert dialled == {"+13125550000", "+13125550002"}
    outcomes = {r["phone"]: r["outcome"] for r in store.contacts("spring")}
    assert outcomes["+13125550001"] == outcomes["+13125550003"] == "dnc"


async def test_dialler_adopts_a_call_whose_create_answer_was_lost(store, tmp_path) -> None:
    dialler, carrier, _ = setup(store, tmp_path, "windows: ['00:00-24:00']\n", numbers(3))
    carrier.lose_answer_next = 1  # the call is placed, but the client sees a timeout
    await dialler.run()
    assert len(carrier.created) == 3  # nobody was called twice
    assert dialler.counters.unknown == 1 and dialler.counters.adopted == 1
    assert store.stats("spring").finished == {"answered": 3}
    assert all(a["call_sid"] for a in store.attempts("spring"))


async def test_dialler_redials_an_attempt_that_never_reached_the_carrier(store, tmp_path) -> None:
    dialler, carrier, _ = setup(store, tmp_path, "windows: ['00:00-24:00']\n", numbers(2))
    carrier.fail_next = [CarrierUnavailable("connection refused")]
    await dialler.run()
    assert sorted(n for _, n in carrier.created) == ["+13125550000", "+13125550001"]
    assert dialler.counters.redialled == 1
    keys = [a["key"] for a in store.attempts("spring")]
    assert sorted(keys) == ["spring:1:1", "spring:2:1"]  # the same key, dialled once


async def test_dialler_finishes_invalid_numbers_and_pauses_on_account_errors(store, tmp_path):
    dialler, carrier, clock = setup(
        store, tmp_path, "windows: ['00:00-24:00']\npacing: {calls_per_second: 100}\n", numbers(3)
    )
    carrier.fail_next = [
        CarrierRejected("HTTP 400: not a valid phone number", status=400, code=21211),
        CarrierRejected("HTTP 401: Authenticate", status=401, code=20003),
    ]
    for _ in range(2):
        await dialler.tick()
        await dialler.drain()
        await clock.sleep(0.1)
    assert store.campaign("spring").state == "paused"
    outcomes = sorted(r["outcome"] or "" for r in store.contacts("spring"))
    assert outcomes == ["", "failed", "invalid"]


async def test_dialler_pause_resume_and_cancel(store: Store, tmp_path: Path) -> None:
    dialler, carrier, clock = setup(
        store, tmp_path, "windows: ['00:00-24:00']\npacing: {calls_per_second: 1, "
        "max_concurrent: 2}\n", numbers(6),
        plan=lambda number, n: ("completed", "human", 100.0),
    )  # fmt: skip
    await dialler.tick()
    await dialler.drain()
    assert len(carrier.created) == 1
    store.change_state("spring", "pause", clock.now())
    await clock.sleep(10)
    await dialler.tick()
    assert len(carrier.created) == 1  # paused: nothing new
    store.change_state("spring", "resume", clock.now())
    await dialler.tick()
    await dialler.drain()
    assert len(carrier.created) == 2
    store.change_state("spring", "cancel", clock.now())
    await dialler.run()
    assert len(carrier.created) == 2
    updates = [u for c in carrier.calls.values() for u in c.get("updates", [])]
    assert updates == [("canceled", None), ("canceled", None)]  # calls in flight: canceled
    stats = store.stats("spring")
    assert stats.state == "canceled" and stats.finished.get("canceled") == 4
