"""The SIP carrier's errors, typed by who caused them.

::

    SipError
    ├── LocalProtocolError    we used the stack wrongly (answering a call twice, a BYE with no
    │                         dialog): our bug, never the peer's
    ├── RemoteProtocolError   the peer sent something we cannot accept; ``status`` is the SIP
    │                         response it deserves (400, 413, 481, 488...) or None when the
    │                         message must be dropped without an answer (no usable Via)
    └── CallFailed            an outbound call ended without being answered; ``status`` is the
                              final response (408 when it timed out, 487 when cancelled)

RTP and RTCP garbage is not an exception: a bad packet is dropped and counted where it
arrives, because one bad datagram must never end a call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.carriers.sip.message import SipMessage

__all__ = ["CallFailed", "LocalProtocolError", "RemoteProtocolError", "SipError"]


class SipError(Exception):
    """Base of this package's errors."""


class LocalProtocolError(SipError, RuntimeError):
    """The gateway misused the SIP stack."""


class RemoteProtocolError(SipError):
    """The peer broke the protocol; ``status`` says how to answer (None: drop silently)."""

    def __init__(self, reason: str, status: int | None = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        #: What could be read of the message before the fault (enough to answer it), if any.
        self.partial: SipMessage | None = None


class CallFailed(SipError):
    """An outbound call was not answered: busy, declined, unreachable, timed out, cancelled."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
