"""Finished calls for the call-store tests, built as the session builds them."""

from __future__ import annotations

import secrets

from gateway.ledger import CallLedger


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
