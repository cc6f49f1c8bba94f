"""One "may we call now" check on every path that creates a call, the redial of a reconciled
attempt included: the carrier is down when an attempt is claimed, its dialler dies, and the
campaign's window closes, or it is paused or canceled, before another dialler reconciles it.
On SQLite and on PostgreSQL, on invented time against a fake carrier."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from campaignkit import FakeCarrier, FakeClock, write_campaign

from gateway.campaigns.dialler import Dialler
from gateway.campaigns.errors import CarrierUnavailable
from gateway.campaigns.outcomes import Outcome
from gateway.campaigns.permit import Close, Defer, Go, may_call
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.store import Store
from gateway.campaigns.windows import CallingWindows

CHICAGO = ZoneInfo("America/Chicago")
#: Monday 2 March 2026, 07:56:50 in Chicago: ten seconds before the window below closes.
LATE = datetime(2026, 3, 2, 7, 56, 50, tzinfo=CHICAGO).timestamp()
BODY = "windows: ['mon-fri 07:00-07:57']\n"
ONE = "phone,first_name\n+13125550170,Ann\n"
LEASE = 30.0


def dialler(store: Store, carrier: FakeCarrier, clock: FakeClock, owner: str,
            poll_s: float = 5.0) -> Dialler:  # fmt: skip
    return Dialler(store, "spring", carrier, public_url="https://gw.example.com", clock=clock,
                   owner=owner, lease_s=LEASE, poll_s=poll_s, check_after_s=60.0)  # fmt: skip


async def claimed_while_the_carrier_is_down(
    store: Store, tmp_path: Path, start: float = LATE
) -> tuple[FakeCarrier, FakeClock]:
    """A first dialler claims the contact, its ``calls.create`` fails with an unknown outcome
    (connection refused), and it dies: the attempt stays ``dialling`` under its lease."""
    create_campaign(store, write_campaign(tmp_path, BODY, contacts=ONE), start)
    store.change_state("spring", "start", start)
    clock = FakeClock(start)
    carrier = FakeCarrier(store, clock, lambda number, n: ("completed", "human", 20.0))
    carrier.fail_next = [CarrierUnavailable("connection refused")]
    first = dialler(store, carrier, clock, "first")
    await first.tick()
    await first.drain()
    assert first.counters.unknown == 1 and carrier.created == []
    (attempt,) = store.attempts("spring")
    assert (attempt["key"], attempt["state"]) == ("spring:1:1", "dialling")
    return carrier, clock


async def test_dialler_defers_a_redial_once_the_window_has_closed(store, tmp_path) -> None:
    carrier, clock = await claimed_while_the_carrier_is_down(store, tmp_path)
    clock.t += LEASE + 1  # 07:57:21: the window closed at 07:57:00
    second = dialler(store, carrier, clock, "second", poll_s=3600.0)
    await second.tick()
    await second.drain()
    assert carrier.created == []  # not at 07:57:21, nor at 3 a.m. after a restart
    assert second.counters.deferred == 1 and store.attempts("spring") == []
    (contact,) = store.contacts("spring")
    tuesday = datetime(2026, 3, 3, 7, 0, tzinfo=CHICAGO)
    assert (contact["state"], contact["attempts"]) == ("pending", 0)
    assert contact["next_at"] == tuesday.timestamp()
    await second.run()  # the contact is called in the next window, under the same key
    ((at, number),) = carrier.created
    assert datetime.fromtimestamp(at, CHICAGO).replace(second=0) == tuesday
    (attempt,) = store.attempts("spring")
    assert (attempt["key"], attempt["outcome"]) == ("spring:1:1", "answered")


async def test_dialler_does_not_redial_while_the_campaign_is_paused(store, tmp_path) -> None:
    carrier, clock = await claimed_while_the_carrier_is_down(store, tmp_path, LATE - 1800)
    store.change_state("spring", "pause", clock.now())
    clock.t += LEASE + 6
    second = dialler(store, carrier, clock, "second")
    for _ in range(3):
        await second.tick()
        await second.drain()
        await clock.sleep(5)
    assert carrier.created == [] and store.campaign("spring").state == "paused"
    assert store.dialling("spring") == 0 and second.counters.deferred == 1
    store.change_state("spring", "resume", clock.now())
    await second.run()
    assert len(carrier.created) == 1
    (attempt,) = store.attempts("spring")
    assert (attempt["key"], attempt["outcome"]) == ("spring:1:1", "answered")


async def test_dialler_closes_a_pending_attempt_of_a_canceled_campaign(store, tmp_path) -> None:
    carrier, clock = await claimed_while_the_carrier_is_down(store, tmp_path, LATE - 1800)
    store.change_state("spring", "cancel", clock.now())
    clock.t += 6  # a restart before the dead dialler's lease has run out
    second = dialler(store, carrier, clock, "second")
    await second.run()  # it waits for the lease, reconciles, and only then leaves
    assert carrier.created == []
    assert store.dialling("spring") == 0 and second.counters.closed == 1
    (attempt,) = store.attempts("spring")
    assert (attempt["key"], attempt["state"], attempt["outcome"]) == (
        "spring:1:1", "ended", "canceled")  # fmt: skip
    assert "not dialled" in attempt["error"]
    assert store.stats("spring").finished == {"canceled": 1}


async def test_dialler_closes_a_redial_past_the_stop_date(store, tmp_path) -> None:
    body = BODY + "start: 2026-03-02\nstop: 2026-03-02\n"
    create_campaign(store, write_campaign(tmp_path, body, contacts=ONE), LATE)
    store.change_state("spring", "start", LATE)
    clock = FakeClock(LATE)
    carrier = FakeCarrier(store, clock)
    carrier.fail_next = [CarrierUnavailable("read timed out")]
    first = dialler(store, carrier, clock, "first")
    await first.tick()
    await first.drain()
    clock.t += LEASE + 1
    await dialler(store, carrier, clock, "second").run()
    assert carrier.created == []
    assert store.stats("spring").finished == {"expired": 1}


async def test_dialler_closes_a_redial_to_a_number_put_on_do_not_call(store, tmp_path) -> None:
    carrier, clock = await claimed_while_the_carrier_is_down(store, tmp_path, LATE - 1800)
    store.add_do_not_call({"+13125550170": "asked by letter"}, clock.now())
    clock.t += LEASE + 1
    await dialler(store, carrier, clock, "second").run()
    assert carrier.created == [] and store.stats("spring").finished == {"dnc": 1}


# -- the check itself ---------------------------------------------------------------------

WINDOWS = CallingWindows.parse(["mon-fri 09:00-17:00"], last_day=datetime(2026, 3, 6).date())
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=CHICAGO)


def ask(**changes) -> object:
    question = dict(state="running", windows=WINDOWS, zone=CHICAGO, at=NOON, blocked=False,
                    number=1, max_attempts=3, last_outcome=None)  # fmt: skip
    question.update(changes)
    return may_call(**question)


def test_check_answers_go_inside_the_window() -> None:
    assert ask() == Go()


def test_check_orders_cancel_before_everything() -> None:
    assert ask(state="canceled", blocked=True) == Close(Outcome.CANCELED,
                                                       "the campaign was canceled")  # fmt: skip


def test_check_defers_a_paused_or_ready_campaign_until_resumed() -> None:
    assert ask(state="paused") == Defer(None, "the campaign is paused")
    assert ask(state="ready") == Defer(None, "the campaign is ready")


def test_check_closes_blocked_numbers_and_spent_contacts() -> None:
    assert isinstance(verdict := ask(blocked=True), Close) and verdict.outcome is Outcome.DNC
    spent = ask(number=4, last_outcome=Outcome.BUSY)
    assert isinstance(spent, Close) and spent.outcome is Outcome.BUSY


def test_check_defers_to_the_next_window_and_expires_after_the_stop_date() -> None:
    evening = datetime(2026, 3, 2, 18, 0, tzinfo=CHICAGO)
    tomorrow = datetime(2026, 3, 3, 9, 0, tzinfo=CHICAGO)
    assert ask(at=evening) == Defer(tomorrow.timestamp(), "outside the callee's calling window")
    friday_night = datetime(2026, 3, 6, 18, 0, tzinfo=CHICAGO).astimezone(UTC)
    verdict = ask(at=friday_night)
    assert isinstance(verdict, Close) and verdict.outcome is Outcome.EXPIRED
