"""Errors of the remote engines, typed by who caused them.

The sans-I/O protocol modules raise and report these; the asyncio layer (``link.py``) maps them
at its boundary onto what the gateway understands: a failure while opening becomes
``EngineUnavailable`` (the call takes its route's fallback), a failure mid-call that a reconnect
cannot mend becomes ``EngineFailed`` raised out of ``events()``.

::

    RemoteError
    ├── LocalProtocolError    we misused a protocol object (our bug)
    ├── RemoteProtocolError   the vendor sent something we cannot use (one message: dropped and
    │                         counted, never raised; a broken handshake: raised)
    └── VendorError           the vendor reported an error (an ``error`` event, a close code);
                              ``fatal`` says whether the session is over
"""

from __future__ import annotations

__all__ = ["LocalProtocolError", "RemoteError", "RemoteProtocolError", "VendorError"]


class RemoteError(Exception):
    """Base of the remote engines' protocol errors."""


class LocalProtocolError(RemoteError, RuntimeError):
    """A protocol object was used out of order: a bug on our side."""


class RemoteProtocolError(RemoteError):
    """The vendor broke its protocol (unparseable or impossible message)."""


class VendorError(RemoteError):
    """The vendor said no: an error event or a close code, with its own words."""

    def __init__(self, message: str, *, code: str = "", fatal: bool = True) -> None:
        super().__init__(f"{message} ({code})" if code else message)
        self.message = message
        self.code = code
        self.fatal = fatal
