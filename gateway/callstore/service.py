"""The call store as a gateway runs it: the writer, the reader behind ``/calls``, retention.

Built from the settings by :func:`call_data_for`: the store is ``store`` (``OVERTALK_STORE``),
else ``<records_dir>/calls.db``, else there is none. The app hands each finished call to
:meth:`CallData.submit`, mounts :meth:`CallData.router`, and starts and stops it with itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
import time
from pathlib import Path

from fastapi import APIRouter

from gateway.call.ledger import CallLedger
from gateway.callstore.audio import AudioStore, open_audio_store
from gateway.callstore.errors import StoreUnavailable
from gateway.callstore.page import calls_router
from gateway.callstore.spool import Spool
from gateway.callstore.store import CallStore, open_call_store, store_dsn
from gateway.callstore.writer import RecordWriter
from gateway.config import Settings

__all__ = ["CallData", "call_data_for", "store_dsn"]

log = logging.getLogger("overtalk.callstore")
DAY = 86400.0
#: How often retention runs (and at start).
RETENTION_EVERY_S = 3600.0


class CallData:
    """Everything the gateway does with finished calls beyond the per-call JSON export."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self.dsn = dsn
        self.retain_days = settings.retain_days
        #: A directory of its own (``audio_store``): retention may prune all of it.
        self.dedicated_audio = bool(settings.audio_store)
        self.records_dir = Path(settings.records_dir) if settings.records_dir else None
        self.audio: AudioStore | None = None
        root = settings.audio_store or settings.recordings_dir or settings.records_dir
        if root:
            self.audio = open_audio_store(root)
        spool_dir = settings.spool_dir or (
            str(Path(settings.records_dir) / "spool") if settings.records_dir
            else os.path.join(tempfile.gettempdir(), f"overtalk-spool-{os.getuid()}")
        )  # fmt: skip
        self.spool = Spool(spool_dir)
        folders = [Path(f) for f in (settings.recordings_dir, settings.records_dir) if f]
        #: Which process wrote a call: the host (the pod, in Kubernetes) and its process id.
        name = f"{socket.gethostname()}:{os.getpid()}"
        self.writer = RecordWriter(
            lambda: open_call_store(dsn), self.spool, gateway=name,
            audio=self.audio if settings.audio_store else None, recording_dirs=folders,
        )  # fmt: skip
        self.admin_token = settings.admin_token
        self._reader: CallStore | None = None
        self._reader_lock = asyncio.Lock()
        self._retention: asyncio.Task[None] | None = None

    def submit(self, ledger: CallLedger) -> None:
        """A call ended (an ``on_end`` listener of the call registry): O(1) on the loop."""
        self.writer.submit(ledger)

    async def reader(self) -> CallStore:
        """The store for reading, (re)opened on demand."""
        async with self._reader_lock:
            if self._reader is not None:
                try:
                    await asyncio.to_thread(self._reader.ping)
                except StoreUnavailable:
                    self._reader.close()
                    self._reader = None
            if self._reader is None:
                self._reader = await asyncio.to_thread(open_call_store, self.dsn)
            return self._reader

    def router(self) -> APIRouter:
        return calls_router(self.reader, admin_token=self.admin_token, audio=self.audio)

    def start(self) -> None:
        self.writer.start()
        if self.retain_days > 0:
            self._retention = asyncio.get_running_loop().create_task(self._retain())

    async def aclose(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        await asyncio.to_thread(self.writer.close)
        if self._reader is not None:
            self._reader.close()

    # -- retention ----------------------------------------------------------------------------

    async def _retain(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.expire, time.time())
            except StoreUnavailable as exc:
                log.warning("x retention postponed: %s", exc)
            await asyncio.sleep(RETENTION_EVERY_S)

    def expire(self, now: float) -> tuple[int, int]:
        """Delete calls, audio and JSON exports older than ``retain_days``; (calls, files)."""
        before = now - self.retain_days * DAY
        store = open_call_store(self.dsn)
        try:
            urls = store.expire(before)
        finally:
            store.close()
        files = 0
        if self.audio is not None:
            files += sum(self.audio.delete(url) for url in urls)
            # Voicemail and recordings of calls never stored; only *.wav in a shared folder.
            files += self.audio.prune(before, "**/*" if self.dedicated_audio else "*.wav")
        if self.records_dir is not None:
            for path in self.records_dir.glob("*.json"):
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < before:
                        path.unlink()
                        files += 1
        log.info("= retention (%g days): %d calls, %d files deleted", self.retain_days,
                 len(urls), files)  # fmt: skip
        return len(urls), files


def call_data_for(settings: Settings) -> CallData | None:
    """The gateway's call data, or None when no store is configured."""
    dsn = store_dsn(settings)
    return CallData(settings, dsn) if dsn else None
