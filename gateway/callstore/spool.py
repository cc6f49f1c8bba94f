"""Records waiting for the database, on local disk: written whole, replayed, then removed.

A record is written to ``<call id>.json.part``, flushed to disk and renamed to
``<call id>.json``, so a crash leaves either a whole record or a ``.part`` file that is never
read. A file that cannot be a record (wrong name, too large, not a JSON object, another call's
id inside) is moved to ``rejected/`` with a ``.reason`` beside it: kept for a person to look
at, never retried, never in the way of the others.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from gateway.callstore.errors import BadRecord
from gateway.callstore.record import MAX_RECORD_BYTES, valid_call_id

__all__ = ["Spool", "parse_spooled"]

log = logging.getLogger("overtalk.callstore")
SUFFIX = ".json"


def parse_spooled(name: str, data: bytes) -> dict[str, Any]:
    """A spool file's record; :class:`BadRecord` unless it is one (pure, so it is fuzzed)."""
    call_id = name.removesuffix(SUFFIX)
    if not name.endswith(SUFFIX) or not valid_call_id(call_id):
        raise BadRecord(f"not a spool file name: {name[:80]!r}")
    if len(data) > MAX_RECORD_BYTES:
        raise BadRecord(f"{len(data)} bytes is over the record bound")
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise BadRecord("not a JSON object")
    if record.get("call_id") != call_id:
        raise BadRecord("the record inside is another call's")
    return record


class Spool:
    """A directory of records not yet in the database."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rejected = self.directory / "rejected"

    def put(self, call_id: str, data: bytes) -> None:
        """Keep a record durably (raises OSError when the disk refuses)."""
        if not valid_call_id(call_id):
            raise BadRecord(f"invalid call id {call_id[:40]!r}")
        final = self.directory / f"{call_id}{SUFFIX}"
        part = final.with_name(final.name + ".part")
        with part.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, final)

    def names(self) -> list[str]:
        """Spooled file names, oldest first."""
        try:
            entries = [e for e in os.scandir(self.directory)
                       if e.name.endswith(SUFFIX) and e.is_file(follow_symlinks=False)]  # fmt: skip
        except OSError:
            return []
        entries.sort(key=lambda e: (e.stat().st_mtime, e.name))
        return [e.name for e in entries]

    def __len__(self) -> int:
        return len(self.names())

    def records(self) -> Iterator[dict[str, Any]]:
        """Each good record in the spool; bad files are set aside on the way."""
        for name in self.names():
            path = self.directory / name
            try:
                with path.open("rb") as f:
                    data = f.read(MAX_RECORD_BYTES + 1)
                yield parse_spooled(name, data)
            except BadRecord as exc:
                self.reject(name, str(exc))
            except OSError as exc:  # gone meanwhile, or unreadable: try again next time
                log.warning("x cannot read spooled record %s: %s", name, exc)

    def reject(self, name: str, reason: str) -> None:
        log.error("x spooled record %s set aside in %s: %s", name[:80], self.rejected, reason)
        try:
            self.rejected.mkdir(exist_ok=True)
            os.replace(self.directory / name, self.rejected / name)
            (self.rejected / f"{name}.reason").write_text(reason + "\n")
        except OSError as exc:
            log.error("x cannot set aside %s: %s", name[:80], exc)

    def done(self, call_id: str) -> None:
        """The record is in the database: forget it."""
        try:
            (self.directory / f"{call_id}{SUFFIX}").unlink()
        except FileNotFoundError:
            pass
