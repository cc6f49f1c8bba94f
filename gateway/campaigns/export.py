"""A campaign's results as CSV: one row per contact, its variables, and its latest attempt.

After the fixed columns come the contact's own columns, then one ``result.<name>`` column per
result the calls' conversations settled (``result.attend``, ``result.new_date``...)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from gateway.campaigns.store import Store

__all__ = ["EXPORT_COLUMNS", "export_csv"]

EXPORT_COLUMNS = (
    "line", "phone", "timezone", "state", "outcome", "attempts", "last_dialled_at", "call_sid",
    "call_status", "answered_by", "machine_action", "duration_s", "error", "recording_url",
    "transcript",
)  # fmt: skip


def _iso(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else ""


def export_csv(store: Store, campaign_id: str) -> str:
    """The results; the contact's own columns follow the fixed ones, in first-seen order."""
    rows = store.contacts(campaign_id)
    extra: dict[str, None] = {}
    settled: dict[str, None] = {}
    for row in rows:
        extra.update(dict.fromkeys(row["variables"]))
        settled.update(dict.fromkeys(row["results"]))
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*EXPORT_COLUMNS, *extra, *(f"result.{name}" for name in settled)])
    for r in rows:
        writer.writerow(
            [
                r["line"], r["phone"], r["zone"], r["state"], r["outcome"] or "", r["attempts"],
                _iso(r["dialled_at"]), r["call_sid"] or "", r["status"] or "",
                r["answered_by"] or "", r["machine_action"] or "",
                "" if r["duration"] is None else f"{r['duration']:g}", r["error"] or "",
                r["recording_url"] or "", r["transcript"] or "",
                *(r["variables"].get(name, "") for name in extra),
                *(r["results"].get(name, "") for name in settled),
            ]
        )  # fmt: skip
    return out.getvalue()
