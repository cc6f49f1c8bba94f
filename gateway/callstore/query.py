"""What a reader asks of the call store, from a command line or a page's query string.

Pure and bounded: every value is checked before it reaches SQL (as a parameter) or a page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from gateway.callstore.store import MAX_LIST, CallFilter

__all__ = ["BadQuery", "call_filter", "parse_since"]

_AGO = re.compile(r"([0-9]{1,6})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Bound on a filter value (a route name, a number, a campaign).
MAX_VALUE = 128


class BadQuery(ValueError):
    """A filter the reader gave is malformed; the message says which and why."""


def parse_since(text: str, now: float) -> float:
    """``90m``, ``24h``, ``7d`` (ago) or an ISO date/time (UTC unless it says otherwise)."""
    text = text.strip()
    ago = _AGO.fullmatch(text)
    if ago:
        return now - int(ago.group(1)) * _UNIT[ago.group(2)]
    try:
        when = datetime.fromisoformat(text[:40])
    except ValueError:
        raise BadQuery(f"since: {text[:40]!r} is neither a duration (24h, 7d) nor a date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.timestamp()
    except (OverflowError, ValueError, OSError):  # year 1 in a zone east of UTC
        raise BadQuery(f"since: {text[:40]!r} is out of range") from None


def call_filter(values: Mapping[str, str | None], now: float) -> CallFilter:
    """A :class:`CallFilter` from ``since``, ``route``, ``outcome``, ``campaign``, ``caller``
    and ``limit``; unknown or absent keys are ignored, empty ones select everything."""
    fields: dict[str, str] = {}
    for name in ("route", "outcome", "campaign", "caller"):
        value = (values.get(name) or "").strip()
        if len(value) > MAX_VALUE or any(ord(c) < 32 for c in value):
            raise BadQuery(f"{name}: at most {MAX_VALUE} printable characters")
        fields[name] = value
    since_text = values.get("since") or ""
    since = parse_since(since_text, now) if since_text.strip() else None
    limit_text = (values.get("limit") or "").strip() or "100"
    if not re.fullmatch(r"[0-9]{1,4}", limit_text) or not 1 <= int(limit_text) <= MAX_LIST:
        raise BadQuery(f"limit: a whole number from 1 to {MAX_LIST}")
    return CallFilter(since=since, limit=int(limit_text), **fields)
