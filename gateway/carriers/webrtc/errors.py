"""Errors of the browser phone, typed by who caused them::

    WebRtcError
    ├── LocalProtocolError   this gateway misused its own state (a bug)
    └── RemoteProtocolError  the page sent something unusable; ``status`` is the HTTP answer

Model: h11's ``LocalProtocolError``/``RemoteProtocolError`` with ``error_status_hint``.
"""

from __future__ import annotations

__all__ = ["LocalProtocolError", "RemoteProtocolError", "WebRtcError"]


class WebRtcError(Exception):
    """Base of the browser phone's errors."""


class LocalProtocolError(WebRtcError):
    """We asked the call for something its state does not allow."""


class RemoteProtocolError(WebRtcError):
    """The page's request is unusable; ``status`` is the HTTP status that says why."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
