"""``overtalk calls list`` and ``overtalk calls show``: finished calls from the store.

``show`` reads the store first; a per-call JSON export in ``--records-dir`` is the fallback
for a call the store does not hold (an older gateway, or no store).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.callstore.audio import AudioStore
from gateway.callstore.errors import StoreUnavailable
from gateway.callstore.query import BadQuery, call_filter
from gateway.callstore.store import CallStore, CallSummary, open_call_store, store_dsn
from gateway.config import ConfigError, Settings, load_settings
from gateway.database import is_postgres, sqlite_path
from gateway.ids import InvalidIdentifier, path_inside

__all__ = ["calls_list", "calls_show", "format_table", "register_list", "store_options"]

_COLUMNS = ("ended (UTC)", "call", "route", "caller", "outcome", "duration", "reply p50",
            "clears", "campaign")  # fmt: skip


def store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (for store, records_dir)")
    parser.add_argument("--store", help="call store: SQLite file or postgresql:// URL "
                        "(OVERTALK_STORE; default <records-dir>/calls.db)")  # fmt: skip
    parser.add_argument("--records-dir", help="where the gateway writes call records "
                        "(OVERTALK_RECORDS_DIR)")  # fmt: skip


def register_list(commands: Any) -> None:
    """Add ``calls list`` to the ``calls`` subcommands."""
    listing = commands.add_parser("list", help="finished calls, newest first, as a table")
    store_options(listing)
    listing.add_argument("--since", help="ended since: 90m, 24h, 7d or a date (2026-03-01)")
    listing.add_argument("--route", help="only calls of this route")
    listing.add_argument("--outcome", help="only calls that ended so (completed, drained...)")
    listing.add_argument("--campaign", help="only calls of this campaign")
    listing.add_argument("--caller", help="only calls from this number")
    listing.add_argument("--limit", default="100", help="at most this many (default 100)")
    listing.set_defaults(handler=calls_list)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, {"store": args.store, "records_dir": args.records_dir})


def _open(settings: Settings) -> CallStore | None:
    dsn = store_dsn(settings)
    if not dsn:
        return None
    if not is_postgres(dsn) and not Path(sqlite_path(dsn)).exists():
        return None  # reading never creates an empty store
    return open_call_store(dsn)


def format_table(calls: list[CallSummary]) -> str:
    rows = [
        (
            datetime.fromtimestamp(c.ended_at, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            c.call_id, c.route or "-", c.caller or "-", c.outcome or "-", f"{c.duration:.1f}s",
            "-" if c.response_ms is None else f"{c.response_ms:.0f}ms", str(c.interruptions),
            c.campaign or "-",
        )
        for c in calls
    ]  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_COLUMNS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(_COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def calls_list(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
        where = call_filter(vars(args), time.time())
        store = _open(settings)
    except (ConfigError, BadQuery, StoreUnavailable) as exc:
        print(f"overtalk: {exc}", file=sys.stderr)
        return 2 if not isinstance(exc, StoreUnavailable) else 1
    if store is None:
        print("overtalk: no call store (set --store, OVERTALK_STORE or --records-dir)",
              file=sys.stderr)  # fmt: skip
        return 1
    try:
        calls = store.calls(where)
    except StoreUnavailable as exc:
        print(f"overtalk: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(format_table(calls))
    print(f"{len(calls)} call{'s' if len(calls) != 1 else ''}")
    return 0


def _from_store(settings: Settings, call_id: str) -> dict[str, Any] | None:
    store = _open(settings)
    if store is None:
        return None
    try:
        return store.record(call_id)
    finally:
        store.close()


def calls_show(args: argparse.Namespace) -> int:
    from gateway.callstore.timeline_page import render

    call_id = args.call_id
    try:  # a call id names files here: it must be one, never a path
        path_inside(".", call_id, ".json")
    except InvalidIdentifier as exc:
        print(f"overtalk: {exc}", file=sys.stderr)
        return 2
    try:
        settings = _settings(args)
        record = _from_store(settings, call_id)
    except (ConfigError, StoreUnavailable) as exc:
        print(f"overtalk: {exc}", file=sys.stderr)
        return 1
    records = Path(settings.records_dir or ".")
    if record is None:
        try:
            record = orjson.loads(path_inside(records, call_id, ".json").read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            print(f"overtalk: cannot read the record of call {call_id} (not in the call "
                  f"store either): {exc}", file=sys.stderr)  # fmt: skip
            return 1
    recording = None
    url = record.get("audio_url") if isinstance(record, dict) else None
    if isinstance(url, str):
        recording = AudioStore(Path(url.removeprefix("file://")).parent).local_path(url)
    folders = (args.recordings_dir, settings.recordings_dir, str(records))
    for folder in filter(None, () if recording else folders):
        candidate = path_inside(folder, call_id, ".wav")
        if candidate.is_file():
            recording = candidate
            break
    out = Path(args.out or f"{call_id}.html")
    out.write_text(render(record, recording))
    print(f"{out} ({'with' if recording else 'without'} recording)")
    return 0
