"""What every websocket media-stream carrier's sans-I/O core speaks: events, errors, limits.

A carrier's core (``gateway/carriers/<name>/stream.py``) parses its own wire format and hands
the call these carrier-neutral events; :mod:`gateway.streams.serve` pumps them into the call
without knowing whose wire they came from. Pure: no socket, no clock (time is passed in).

Errors::

    StreamError
    ├── LocalProtocolError    we misused the stream (sent audio before it started): our bug
    └── RemoteProtocolError   the peer broke the protocol badly enough to end the call;
                              carries the websocket close code to send and a kind for metrics

Garbage is handled per message: a malformed frame becomes a :class:`Violation` event with a
reason and is otherwise ignored; only abuse that threatens the process (an oversized frame, a
flood, a flood of garbage, a start naming its call in a format that is not the carrier's) ends
the call, and only that call.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_TOO_BIG",
    "DTMF_DIGITS",
    "CallerAudio",
    "DigitPressed",
    "LocalProtocolError",
    "MediaStream",
    "PlayedUpTo",
    "RatePolicer",
    "RemoteProtocolError",
    "StreamEnded",
    "StreamError",
    "StreamEvent",
    "StreamOpened",
    "StreamState",
    "Violation",
    "bounded_parameters",
]

#: RFC 6455 close codes used when the peer is at fault.
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
#: The keys a DTMF event may carry (RFC 4733's 16 events).
DTMF_DIGITS = frozenset("0123456789*#ABCD")


class StreamError(Exception):
    """Base of the media-stream errors."""


class LocalProtocolError(StreamError, RuntimeError):
    """The gateway used the stream wrongly."""


class RemoteProtocolError(StreamError):
    """The peer broke the protocol; the call must end with ``close_code``."""

    def __init__(
        self, reason: str, close_code: int = CLOSE_POLICY_VIOLATION, kind: str = "garbage"
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.close_code = close_code
        #: The class of fault, for metrics: "flood", "oversize", "bad-identifier", "garbage".
        self.kind = kind


class StreamState(enum.Enum):
    AWAITING_START = "awaiting-start"
    STREAMING = "streaming"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The carrier's start message: which call this stream carries.

    ``call_id`` names the call everywhere (record, recording, logs, stream token) and
    ``control_id`` the resource its REST API hangs up or transfers; both were checked against
    the carrier's format by the core. ``parameters`` are the answer's custom parameters
    (dial-plan route, stream token, numbers), bounded.
    """

    call_id: str
    stream_id: str
    control_id: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    #: The wire format as the carrier announced it ("audio/x-mulaw@8000"...), for the record.
    media_format: str = ""


@dataclass(frozen=True, slots=True)
class CallerAudio:
    """Caller audio as 8 kHz mu-law (the core transcodes), ``timestamp`` ms since the start,
    -1 when the carrier gives none."""

    ulaw: bytes
    timestamp: int = -1


@dataclass(frozen=True, slots=True)
class DigitPressed:
    digit: str


@dataclass(frozen=True, slots=True)
class PlayedUpTo:
    """The carrier played (or, after a clear, dropped) the audio before mark ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The carrier stopped the stream: the call is over."""


@dataclass(frozen=True, slots=True)
class Violation:
    """A message was ignored; ``reason`` says why, ``kind`` names the class of fault."""

    reason: str
    kind: str = "other"


StreamEvent = StreamOpened | CallerAudio | DigitPressed | PlayedUpTo | StreamEnded | Violation


class MediaStream(Protocol):
    """A carrier's sans-I/O media stream, as :mod:`gateway.streams.serve` drives it.

    Inbound: :meth:`receive_message` per websocket frame (raises RemoteProtocolError when the
    call must end), then :meth:`events_received`. Outbound: 20 ms frames of 8 kHz mu-law in
    (the core encodes them to the wire's format), frames out one at a time from
    :meth:`next_message`, text as ``str`` and binary as ``bytes``.
    """

    #: True when the carrier echoes marks as they play (the heard position is exact); False
    #: when the gateway must estimate it from its own pacing clock.
    exact_heard: bool

    @property
    def streaming(self) -> bool: ...

    def receive_message(self, message: str | bytes, now: float) -> None: ...

    def events_received(self) -> list[StreamEvent]: ...

    def send_audio(self, ulaw: bytes) -> None: ...

    def send_mark(self, name: str) -> None: ...

    def send_clear(self) -> None: ...

    def next_message(self) -> str | bytes | None: ...

    def is_clear(self, message: str | bytes) -> bool: ...


class RatePolicer:
    """A token bucket over messages per second: ``max_rate`` sustained, ``burst`` on top.

    A carrier sends 50 media messages a second plus its mark echoes; a peer sending far more
    is flooding, and :meth:`take` raises RemoteProtocolError (kind "flood").
    """

    __slots__ = ("max_rate", "burst", "_tokens", "_at")

    def __init__(self, max_rate: float = 150.0, burst: float = 300.0) -> None:
        self.max_rate = max_rate
        self.burst = burst
        self._tokens = burst
        self._at: float | None = None

    def take(self, now: float) -> None:
        last = self._at
        self._at = now
        if last is not None:
            self._tokens = min(self.burst, self._tokens + (now - last) * self.max_rate)
        self._tokens -= 1.0
        if self._tokens < 0:
            raise RemoteProtocolError(
                f"message flood: over {self.max_rate:.0f} messages/s sustained", kind="flood"
            )


def bounded_parameters(
    raw: object, max_items: int = 64, max_chars: int = 500
) -> tuple[dict[str, str], bool]:
    """The string pairs of a custom-parameters object, at most ``max_items`` of them, none
    whose name plus value is longer than ``max_chars``; and whether anything was dropped."""
    if not isinstance(raw, Mapping):
        return {}, raw is not None
    kept = {
        k: v
        for k, v in list(raw.items())[:max_items]
        if isinstance(k, str) and isinstance(v, str) and len(k) + len(v) <= max_chars
    }
    return kept, len(kept) != len(raw)
