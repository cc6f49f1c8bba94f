"""The calls a gateway process carries now, and where finished calls' ledgers go."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from gateway.ledger import CallLedger

log = logging.getLogger("overtalk.calls")


class CallRegistry:
    """Active calls by id; writes each ledger out when its call ends."""

    def __init__(self, records_dir: str | Path | None = None) -> None:
        self.active: dict[str, CallLedger] = {}
        self.records_dir = Path(records_dir) if records_dir else None
        self.completed = 0
        #: Status callbacks received, per CallSid (bounded: the newest calls only).
        self.statuses: dict[str, list[dict[str, str]]] = {}
        self.max_status_calls = 10000

    def started(self, ledger: CallLedger) -> None:
        self.active[ledger.call_id] = ledger

    def ended(self, ledger: CallLedger) -> None:
        self.active.pop(ledger.call_id, None)
        self.completed += 1
        record = orjson.dumps(ledger.to_dict())
        log.info("= call %s ended: %s", ledger.call_id, record.decode())
        if self.records_dir is not None:
            try:
                self.records_dir.mkdir(parents=True, exist_ok=True)
                (self.records_dir / f"{ledger.call_id}.json").write_bytes(record)
            except OSError as exc:
                log.error("x cannot write the record of call %s: %s", ledger.call_id, exc)

    def status(self, call_sid: str, fields: dict[str, str]) -> None:
        """Keep a status callback with its call (oldest calls dropped past the bound)."""
        history = self.statuses.get(call_sid)
        if history is None:
            if len(self.statuses) >= self.max_status_calls:
                self.statuses.pop(next(iter(self.statuses)))
            history = self.statuses[call_sid] = []
        history.append(fields)
