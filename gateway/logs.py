"""Logging: plain text for a terminal, one JSON object per line for production.

Every line logged while a call is being served carries that call's id: the call's tasks and
timer callbacks run in a context where :data:`call_id` is set, and a filter copies it onto
each record, so nothing has to pass the id around by hand.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time

import orjson

#: The call the current task or callback serves ("" outside calls).
call_id: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="")


class _CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.call_id = call_id.get()
        return True


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
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s [%(call_id)s] %(message)s")
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
