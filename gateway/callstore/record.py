"""A finished call's record as the store keeps it: the summary columns and the whole ledger.

Pure: turns the ledger's dictionary (``CallLedger.to_dict()``) into a :class:`CallRow`,
validating what will reach a file name, a URL or a log line (the call id) and bounding what is
stored (the whole record, each text field).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.callstore.errors import BadRecord
from gateway.ids import is_file_token

__all__ = ["MAX_RECORD_BYTES", "CallRow", "CallSummary", "row_from_record", "valid_call_id"]

#: A record's encoded size bound; the ledger's timeline is itself bounded (MAX_EVENTS), so only
#: a corrupt or hostile file comes near it.
MAX_RECORD_BYTES = 32 * 1024 * 1024
#: Bound on each short text column (numbers, route names, reasons).
MAX_FIELD = 256
#: The engine metric that times a reply: end of the caller's speech to first bot audio.
RESPONSE_METRIC = "turn.first_audio_ms"


#: A call id is valid where it can name a file: one rule for the records, the store and the page.
valid_call_id = is_file_token


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSummary:
    """What a listing shows of one call: the whole record stays out of lists."""

    call_id: str
    carrier: str
    route: str
    caller: str
    called: str
    outcome: str
    end_reason: str
    started_at: float
    ended_at: float
    duration: float
    interruptions: int
    response_ms: float | None
    clear_ms: float | None
    audio_url: str | None
    gateway: str
    campaign: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRow(CallSummary):
    """One call in the store: its summary, and what only the call's own page shows."""

    transcript: list[tuple[str, str]]
    results: dict[str, str]
    record: bytes  # the whole ledger, JSON


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name, "")
    if not isinstance(value, str):
        raise BadRecord(f"{name} must be text, not {type(value).__name__}")
    return value[:MAX_FIELD]


def _number(record: Mapping[str, Any], name: str) -> float:
    value = record.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise BadRecord(f"{name} must be a number")
    return float(value)


def _median(values: object) -> float | None:
    if not isinstance(values, list) or not values:
        return None
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return statistics.median(numbers) if numbers else None


def _transcript(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise BadRecord("transcript must be a list of [role, text]")
    lines = []
    for line in value:
        if not (isinstance(line, list | tuple) and len(line) == 2
                and all(isinstance(part, str) for part in line)):  # fmt: skip
            raise BadRecord("transcript must be a list of [role, text]")
        lines.append((line[0], line[1]))
    return lines


def row_from_record(record: Mapping[str, Any], *, audio_url: str | None, gateway: str) -> CallRow:
    """The row for a ledger dictionary; raises :class:`BadRecord` on a malformed one."""
    call_id = record.get("call_id")
    if not valid_call_id(call_id):
        raise BadRecord(f"invalid call id {str(call_id)[:40]!r}")
    assert isinstance(call_id, str)
    encoded = orjson.dumps(record)
    if len(encoded) > MAX_RECORD_BYTES:
        raise BadRecord(f"call {call_id}: record of {len(encoded)} bytes is over the bound")
    results = record.get("results", {})
    if not isinstance(results, dict):
        raise BadRecord(f"call {call_id}: results must be an object")
    metrics = record.get("metrics", {})
    clear = _median(record.get("clear_latencies"))
    started, ended = _number(record, "started_at"), _number(record, "ended_at")
    return CallRow(
        call_id=call_id,
        carrier=_text(record, "carrier"),
        route=_text(record, "route"),
        caller=_text(record, "caller"),
        called=_text(record, "called"),
        outcome=_text(record, "outcome"),
        end_reason=_text(record, "end_reason"),
        started_at=started,
        ended_at=ended,
        duration=max(0.0, ended - started),
        interruptions=int(_number(record, "clears")),
        response_ms=_median(metrics.get(RESPONSE_METRIC)) if isinstance(metrics, dict) else None,
        clear_ms=None if clear is None else clear * 1000.0,
        transcript=_transcript(record.get("transcript", [])),
        results={str(k)[:MAX_FIELD]: str(v) for k, v in results.items()},
        record=encoded,
        audio_url=audio_url,
        gateway=gateway[:MAX_FIELD],
    )
