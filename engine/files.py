"""Reading a configuration file named by an operator or a plan, within a bound.

Dial plans and the embedded engine's flows are both YAML files whose paths come from
configuration (a plan's ``include:`` and ``flow:``, ``serve --flow``), and both are re-read
while calls run. A path such as ``/dev/zero``, a FIFO or a directory, or a file of gigabytes,
must be refused with a clear reason before it is read, not read until memory runs out or block
a reload for ever. This module lives beside the engine interface so that the dial plan
(``gateway/dialplan``) and the engine's own flow loader share one rule: ``engine/`` never
imports ``gateway/``, and the dial plan reaches ``engine`` only through its top-level modules.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["FileRefused", "read_regular_file"]


class FileRefused(OSError):
    """A file cannot be used: missing, not a regular file, too large, or unreadable.

    An ``OSError``, so callers that already report unreadable files as such (the engine's
    flow check: "cannot be read") keep doing so."""


def read_regular_file(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``max_bytes``.

    Opened without blocking and checked on the open descriptor (no race with a swap): a FIFO,
    ``/dev/zero`` or a directory is refused before one byte is read, and no more than
    ``max_bytes + 1`` bytes are ever read, even from a file that grows.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileRefused("not found") from None
    except OSError as exc:
        raise FileRefused(exc.strerror or str(exc)) from None
    try:  # checked before fdopen, which itself refuses a directory with IsADirectoryError
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("not a regular file")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as file:
        if info.st_size > max_bytes:
            raise FileRefused(f"larger than {max_bytes} bytes")
        try:
            content = file.read(max_bytes + 1)
        except OSError as exc:
            raise FileRefused(exc.strerror or str(exc)) from None
    if len(content) > max_bytes:
        raise FileRefused(f"larger than {max_bytes} bytes")
    return content
