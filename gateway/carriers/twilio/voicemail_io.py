"""Keeps voicemail on disk: the records (JSON) and the audio Twilio recorded (WAV).

The thin asyncio side of ``voicemail.py`` beside it. The webhook only waits for the record to be
written; the audio is fetched in a background task this keeper owns (like ``CallRegistry``'s
record writes), so Twilio's callback is answered at once. :meth:`VoicemailKeeper.aclose`
cancels and awaits the fetches still running at shut-down; their records keep the
recording's URL, so no message is lost with them.

Twilio may not have the media ready when the callback arrives, so a 404 or 5xx (or a
transport error) is retried with back-off. Every file is written to a temporary name in the
store and moved into place with ``os.replace``: a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.carriers.twilio.voicemail import (
    MessageFiles,
    RecordingReport,
    RecordingStatus,
    TranscriptionReport,
    message_files,
    recording_record,
    transcription_record,
    with_audio,
)

log = logging.getLogger("overtalk.voicemail")

#: Seconds between tries of a media fetch that got a 404/5xx (Twilio still processing).
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
#: Largest audio accepted: an hour of Twilio's 8 kHz 16-bit mono WAV is 57.6 MB.
MAX_AUDIO_BYTES = 64 * 1024 * 1024


class FetchFailed(Exception):
    """The audio could not be fetched; the record keeps its URL."""


class VoicemailKeeper:
    """Writes each message's record and fetches its audio into the action's store."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._auth = (account_sid, auth_token) if account_sid and auth_token else None
        self._transport = transport
        self._retry_delays = tuple(retry_delays)
        self._clock = clock
        # Records are read, merged and rewritten; one lock keeps two callbacks of a message
        # from interleaving (they are small, so one lock for all is enough).
        self._lock = asyncio.Lock()
        self._fetches: set[asyncio.Task[None]] = set()
        self._warned = False

    async def recording(
        self,
        store: Path,
        report: RecordingReport,
        *,
        route: str,
        branch: str,
        caller: str,
        called: str,
        media_url: str | None,
    ) -> None:
        """Keep a recording status callback; fetch ``media_url`` in the background.

        Raises OSError when the record cannot be written (the store is not writable).
        """
        files = message_files(report.call_sid, report.recording_sid)
        received = self._clock()
        await self._update(
            store,
            files,
            lambda old: recording_record(
                old, report, route=route, branch=branch, caller=caller, called=called,
                received_at=received,
            ),
        )  # fmt: skip
        log.info("= voicemail %s of call %s: %s", files.record, report.call_sid, report.status)
        if report.status is not RecordingStatus.COMPLETED or media_url is None:
            return
        if self._auth is None:
            if not self._warned:
                self._warned = True
                log.warning(
                    "x TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN are not both set: voicemail audio "
                    "is not fetched, its records keep only the recording URL"
                )
            return
        task = asyncio.create_task(self._fetch(store, files, media_url))
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    async def transcription(
        self,
        store: Path,
        report: TranscriptionReport,
        *,
        route: str,
        branch: str,
        caller: str,
        called: str,
    ) -> None:
        """Merge a transcription into its message's record (made if it comes first)."""
        files = message_files(report.call_sid, report.recording_sid)
        received = self._clock()
        await self._update(
            store,
            files,
            lambda old: transcription_record(
                old, report, route=route, branch=branch, caller=caller, called=called,
                received_at=received,
            ),
        )  # fmt: skip
        log.info("= voicemail %s transcribed: %s", files.record, report.status)

    async def aclose(self) -> None:
        """Cancel the fetches still running and wait for them (at shut-down)."""
        tasks = list(self._fetches)
        if tasks:
            log.warning("x %d voicemail fetches cut short; their records keep the URL", len(tasks))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _update(
        self,
        store: Path,
        files: MessageFiles,
        merge: Callable[[dict[str, Any] | None], dict[str, Any]],
    ) -> None:
        async with self._lock:
            await asyncio.to_thread(_merge_record, store, store / files.record, merge)

    async def _fetch(self, store: Path, files: MessageFiles, url: str) -> None:
        try:
            audio = await self._download(url)
            await asyncio.to_thread(_write_atomic, store, store / files.audio, audio)
            await self._update(store, files, lambda old: with_audio(old or {}, files.audio))
        except FetchFailed as exc:
            log.error("x voicemail %s: audio not fetched: %s", files.audio, exc)
        except OSError as exc:
            log.error("x voicemail %s: audio not written: %s", files.audio, exc)
        else:
            log.info("= voicemail %s saved (%d bytes)", files.audio, len(audio))

    async def _download(self, url: str) -> bytes:
        async with httpx.AsyncClient(
            auth=self._auth, transport=self._transport, timeout=30.0, follow_redirects=True
        ) as client:
            for delay in self._retry_delays:
                try:
                    return await _get(client, url)
                except _Retry as exc:
                    log.debug("x voicemail %s: %s; retrying in %.1f s", url, exc, delay)
                await asyncio.sleep(delay)
            try:
                return await _get(client, url)
            except _Retry as exc:
                tries = len(self._retry_delays) + 1
                raise FetchFailed(f"{exc} after {tries} tries") from None


class _Retry(Exception):
    """Worth another try: Twilio has not finished the file, or the network failed."""


async def _get(client: httpx.AsyncClient, url: str) -> bytes:
    try:
        async with client.stream("GET", url) as response:
            code = response.status_code
            if code == 404 or code >= 500:
                raise _Retry(f"HTTP {code}")
            if code != 200:
                raise FetchFailed(f"HTTP {code} from {url}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_AUDIO_BYTES:
                    raise FetchFailed(f"larger than {MAX_AUDIO_BYTES} bytes: {url}")
            return bytes(body)
    except httpx.TransportError as exc:
        raise _Retry(repr(exc)) from None
    except httpx.HTTPError as exc:
        raise FetchFailed(repr(exc)) from None


def _merge_record(
    store: Path, path: Path, merge: Callable[[dict[str, Any] | None], dict[str, Any]]
) -> None:
    """Read the record at ``path`` (if any), merge, write it back atomically (in a thread)."""
    old: dict[str, Any] | None = None
    with contextlib.suppress(FileNotFoundError):
        try:
            old = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            log.error("x voicemail record %s is not JSON; rewriting it", path)
    _write_atomic(store, path, orjson.dumps(merge(old), option=orjson.OPT_INDENT_2))


def _write_atomic(store: Path, path: Path, data: bytes) -> None:
    store.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=store, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
