"""The calls a gateway process carries now, and where finished calls' ledgers go."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import orjson

from gateway.call.labels import CallOutcome
from gateway.call.ledger import CallLedger
from gateway.ids import InvalidIdentifier, path_inside
from gateway.ops.logs import field

log = logging.getLogger("overtalk.calls")


class CallRegistry:
    """Active calls by id; writes each ledger out when its call ends."""

    def __init__(self, records_dir: str | Path | None = None) -> None:
        self.active: dict[str, CallLedger] = {}
        self._enders: dict[str, Callable[[str, CallOutcome], None]] = {}
        #: Told of every call that ends (metrics).
        self.on_end: list[Callable[[CallLedger], None]] = []
        self._idle: asyncio.Event | None = None
        self._writes: set[asyncio.Future[None]] = set()
        self.records_dir = Path(records_dir) if records_dir else None
        self.completed = 0
        #: Status callbacks received, per CallSid (bounded: the newest calls only).
        self.statuses: dict[str, list[dict[str, str]]] = {}
        self.max_status_calls = 10000

    def started(self, ledger: CallLedger, end: Callable[[str, CallOutcome], None]) -> bool:
        """A call is live; ``end(reason, outcome)`` hangs it up (at a drain deadline).

        False (and nothing registered) when a call with that id is live already: one media
        stream per call, and the first one keeps it.
        """
        if ledger.call_id in self.active:
            return False
        self.active[ledger.call_id] = ledger
        self._enders[ledger.call_id] = end
        return True

    def end_all(self, reason: str) -> None:
        for end in list(self._enders.values()):
            end(reason, CallOutcome.DRAINED)

    def ended(self, ledger: CallLedger) -> None:
        """A call is over: write its record, tell the listeners, wake drain waiters."""
        if self.active.get(ledger.call_id) is ledger:
            self.active.pop(ledger.call_id)
            self._enders.pop(ledger.call_id, None)
        self.completed += 1
        log.info(
            "= call %s ended (%s): %s; %d frames in, %d out, %d clears",
            field(ledger.call_id),
            ledger.outcome,
            field(ledger.end_reason, 300),
            ledger.frames_in,
            ledger.frames_out,
            ledger.clears,
        )
        if self.records_dir is not None:
            # A long call's record (its timeline) is large: encode and write it off the loop.
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._write_record(ledger)
            else:
                write = loop.run_in_executor(None, self._write_record, ledger)
                self._writes.add(write)
                write.add_done_callback(self._writes.discard)
        for listener in self.on_end:
            listener(ledger)
        if not self.active and self._idle is not None:
            self._idle.set()

    def _write_record(self, ledger: CallLedger) -> None:
        assert self.records_dir is not None
        try:
            self.records_dir.mkdir(parents=True, exist_ok=True)
            path = path_inside(self.records_dir, ledger.call_id, ".json")
            record = orjson.dumps(ledger.to_dict())
            # Written aside and renamed: a reader (``calls show``) never sees half a record.
            part = path.with_name(path.name + ".part")
            part.write_bytes(record)
            os.replace(part, path)
        except (OSError, InvalidIdentifier) as exc:
            log.error("x cannot write the record of call %s: %s", field(ledger.call_id), exc)

    async def flush(self) -> None:
        """Wait for the records still being written (at shut-down)."""
        if self._writes:
            await asyncio.gather(*self._writes)

    async def wait_idle(self) -> None:
        """Return once no call is active."""
        while self.active:
            self._idle = asyncio.Event()
            await self._idle.wait()

    def status(self, call_sid: str, fields: dict[str, str]) -> None:
        """Keep a status callback with its call (oldest calls dropped past the bound)."""
        history = self.statuses.get(call_sid)
        if history is None:
            if len(self.statuses) >= self.max_status_calls:
                self.statuses.pop(next(iter(self.statuses)))
            history = self.statuses[call_sid] = []
        history.append(fields)
