"""Finished calls for the call-store tests, built as the session builds them."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from gateway.call.ledger import CallLedger
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.store import Claimed, Store


def finished_call(
    *,
    call_id: str | None = None,
    route: str = "sales",
    outcome: str = "completed",
    caller: str = "+15005550006",
    ended_at: float = 1_770_000_000.0,
    results: dict[str, str] | None = None,
) -> CallLedger:
    ledger = CallLedger(call_id=call_id or "CA" + secrets.token_hex(16), carrier="twilio",
                        engine="echo", caller=caller, called="+15005550001", route=route,
                        started_at=ended_at - 42.5, ended_at=ended_at, end_reason="caller hung up",
                        outcome=outcome, clears=2)  # fmt: skip
    ledger.transcript = [("bot", "Will you make it?"), ("caller", "Yes.")]
    ledger.results = results or {"attend": "yes"}
    ledger.metrics = {"turn.first_audio_ms": [250.0, 310.0, 290.0]}
    ledger.clear_latencies = [0.0004, 0.0006]
    ledger.event(1.0, "said-bot", "Will you make it?")
    return ledger


#: A Monday, 10:00 in New York: inside the campaign's calling window.
MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC).timestamp()


def campaign_over_calls(store: Store, root: Path, name: str, phones: list[str]) -> Store:
    """A running campaign over ``phones`` (a campaign file and contact list under ``root``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "contacts.csv").write_text("phone\n" + "".join(f"{p}\n" for p in phones))
    (root / "campaign.yaml").write_text(
        f'version: 1\nname: {name}\ncaller_id: "+13125550100"\ncontacts: contacts.csv\n'
        "timezone: America/Chicago\nwindows: ['00:00-24:00']\n"
    )
    create_campaign(store, root / "campaign.yaml", MONDAY)
    store.change_state(name, "start", MONDAY)
    return store


def dial_as(store: Store, name: str, sids: dict[str, str]) -> float:
    """Claim every contact and settle its attempt as the call ``sids[phone]`` (answered and
    completed), as a dialler and the carrier's callbacks would; the time after."""
    now = MONDAY
    left = dict(sids)
    while left:
        claimed = store.claim(name, "test", now, 60.0)
        if isinstance(claimed, Claimed):
            sid = left.pop(claimed.attempt.phone)
            store.mark_placed(claimed.attempt.key, sid, now)
            store.record_status(claimed.attempt.key, sid, "completed", now + 1,
                                answered_by="human", duration=20.0)  # fmt: skip
        now += 5.0
    return now


class NoCarrier:
    """A dialler whose calls are all settled never asks the carrier anything."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the carrier was asked to {name}")


class StillClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
