"""Logging: plain text for a terminal, one JSON object per line for production.

Every line logged while a call is being served carries that call's id: the call's tasks and
timer callbacks run in a context where :data:`call_id` is set, and a filter copies it onto
each record, so nothing has to pass the id around by hand.

Anything a peer sent goes into a line through :func:`field`: bounded in length, with control
characters (newlines first of all) escaped, so a peer can neither forge log lines nor flood
them. The text formatter escapes the whole message again (defence in depth); JSON lines are
escaped by the encoder.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time

import orjson

#: The call the current task or callback serves ("" outside calls).
call_id: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="")

#: The longest peer-supplied value :func:`field` lets into a line, by default.
FIELD_LIMIT = 120


def _escapes() -> dict[int, str]:
    # C0, DEL and C1 controls, the Unicode line and paragraph separators, and the bidi
    # overrides that make a terminal show text in another order than it was written.
    points = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F)]
    points += range(0x2066, 0x206A)
    return {p: f"\\x{p:02x}" if p < 0x100 else f"\\u{p:04x}" for p in points}


_ESCAPES = _escapes()


def field(value: object, limit: int = FIELD_LIMIT) -> str:
    """``value`` fit for a log line: control characters escaped, at most ``limit`` characters
    of it kept (the rest counted, not shown). Use it for everything a peer sent."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = f"{text[:limit]}...(+{len(text) - limit} chars)"
    return text.translate(_ESCAPES)


class _CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.call_id = call_id.get()
        return True


class TextFormatter(logging.Formatter):
    """Plain lines; the message is escaped so that one record is always one line."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return super().formatMessage(record).translate(_ESCAPES)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "call_id", "msg"}`` plus ``exc`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "call_id": getattr(record, "call_id", ""),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def setup(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger once (replaces earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_CallIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif fmt == "text":
        handler.setFormatter(
            TextFormatter("%(asctime)s %(levelname)-7s %(name)s [%(call_id)s] %(message)s")
        )
    else:
        raise ValueError(f"log format must be text or json, not {fmt!r}")
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # uvicorn's own loggers propagate to ours, so their lines share the format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
