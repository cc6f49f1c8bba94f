"""Writes finished calls to the store from one thread, spooling them while it is down.

The event loop only hands a finished ledger over (:meth:`RecordWriter.submit`, a queue put);
encoding and the database round trip happen on the writer's own thread, so no call waits on
the database. When a write fails for the database's sake the record goes to the spool and the
writer retries every ``retry_s``: on reconnecting it replays the spool first, oldest first.
On start it replays what an earlier process left. A record is removed from the spool only
after the database has it, and writing is idempotent on the call id, so a crash between the
two writes it again and nothing is doubled.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from gateway.call.ledger import CallLedger
from gateway.callstore.audio import AudioStore
from gateway.callstore.errors import BadRecord, StoreUnavailable
from gateway.callstore.record import row_from_record, valid_call_id
from gateway.callstore.spool import Spool
from gateway.callstore.store import CallStore

__all__ = ["RecordWriter"]

log = logging.getLogger("overtalk.callstore")
_STOP = object()


class RecordWriter:
    """One thread, one connection; ``open_store`` (re)connects and raises StoreUnavailable."""

    def __init__(
        self,
        open_store: Callable[[], CallStore],
        spool: Spool,
        *,
        gateway: str,
        audio: AudioStore | None = None,
        recording_dirs: Sequence[Path] = (),
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._open = open_store
        self.spool = spool
        self.gateway = gateway
        self.audio = audio
        self.recording_dirs = list(recording_dirs)
        self.retry_s = retry_s
        self._clock = clock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._store: CallStore | None = None
        #: No connection attempt before this (monotonic): while the database is away each
        #: record goes straight to the spool instead of waiting out a connect timeout.
        self._retry_at = 0.0
        self._down = False  # said once per outage, not at every retry
        self._thread = threading.Thread(target=self._run, name="call-store", daemon=True)
        self.written = 0
        self.spooled = 0
        self.replayed = 0

    # -- the loop's side ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, ledger: CallLedger) -> None:
        """Hand over a finished call (its ledger is no longer written to)."""
        self._queue.put(ledger)

    def close(self, timeout: float = 30.0) -> None:
        """Write what was handed over (or spool it), then stop; blocking: run it in a thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        self._replay()
        while True:
            wait = self.retry_s if self._store is None or len(self.spool) else None
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                self._replay()
                continue
            if item is _STOP:
                if len(self.spool):
                    self._replay()  # a last chance before the process goes
                return
            self._write(item)

    def _connected(self) -> CallStore | None:
        if self._store is None:
            if time.monotonic() < self._retry_at:
                return None
            try:
                self._store = self._open()
            except StoreUnavailable as exc:
                self._retry_at = time.monotonic() + self.retry_s
                if not self._down:
                    log.warning("x call store unreachable: %s; records are spooled", exc)
                self._down = True
                return None
            log.info("= call store reached" + ("; replaying the spool" if self._down else ""))
            self._down = False
        return self._store

    def _lost(self, exc: StoreUnavailable) -> None:
        log.warning("x call store failed: %s; records are spooled", exc)
        self._down = True
        self._retry_at = time.monotonic() + self.retry_s
        if self._store is not None:
            self._store.close()
            self._store = None

    def _row_of(self, record: dict[str, Any]) -> Any:
        return row_from_record(record, audio_url=record.get("audio_url"), gateway=self.gateway)

    def _write(self, ledger: CallLedger) -> None:
        record = ledger.to_dict()
        record["audio_url"] = self._audio_url(ledger.call_id)
        try:
            row = self._row_of(record)
        except BadRecord as exc:
            log.error("x call %.40r not stored: %s", ledger.call_id, exc)
            return
        store = self._connected() if not len(self.spool) else None
        if store is not None:
            try:
                store.save(row, self._clock())
                self.written += 1
                return
            except StoreUnavailable as exc:
                self._lost(exc)
        try:
            self.spool.put(row.call_id, orjson.dumps(record))
            self.spooled += 1
        except (OSError, BadRecord) as exc:
            log.error("x call %s lost: cannot spool its record: %s", row.call_id, exc)
        if store is None:
            self._replay()  # the spool had records: they go first, then this one

    def _audio_url(self, call_id: str) -> str | None:
        """Where the call's recording is kept (moved into the audio store when there is one)."""
        if not valid_call_id(call_id):
            return None
        for folder in self.recording_dirs:
            path = folder / f"{call_id}.wav"
            if not path.is_file():
                continue
            if self.audio is None:
                return path.resolve().as_uri()
            try:
                return self.audio.keep(call_id, path)
            except OSError as exc:
                log.error("x recording of call %s left in %s: %s", call_id, folder, exc)
                return path.resolve().as_uri()
        return None

    def _replay(self) -> None:
        """Write the spool to the store, oldest first; stop at the first database failure."""
        if not len(self.spool):
            self._connected()
            return
        store = self._connected()
        if store is None:
            return
        for record in self.spool.records():
            call_id = record["call_id"]
            try:
                row = self._row_of(record)
            except BadRecord as exc:
                self.spool.reject(f"{call_id}.json", str(exc))
                continue
            try:
                store.save(row, self._clock())
            except StoreUnavailable as exc:
                self._lost(exc)
                return
            self.spool.done(call_id)
            self.replayed += 1
        log.info("= spooled call records replayed (%d so far)", self.replayed)
