"""The life of one browser call's connection, sans-I/O: connecting, connected, ended, and the
deadlines that end a call whose peer never connects or goes quiet.

WebRTC has no hang-up message of its own: a tab closed without pressing hang up is seen as the
ICE connection failing (aiortc's consent checks, about 30 s) or as the audio stopping. The
adapter asks :meth:`PhoneLine.expired` at :meth:`PhoneLine.next_deadline`; the time is always
passed in.
"""

from __future__ import annotations

import enum

from gateway.carriers.webrtc.errors import LocalProtocolError

__all__ = ["LineState", "PhoneLine"]


class LineState(enum.Enum):
    CONNECTING = "connecting"  # answer sent; ICE and DTLS under way, no audio yet
    CONNECTED = "connected"  # the caller's audio arrives
    ENDED = "ended"


class PhoneLine:
    """One call's connection state; see the module docstring."""

    __slots__ = ("state", "connect_timeout", "silence_timeout", "_since", "_last_audio")

    def __init__(self, now: float, *, connect_timeout: float, silence_timeout: float) -> None:
        self.state = LineState.CONNECTING
        self.connect_timeout = connect_timeout
        self.silence_timeout = silence_timeout
        self._since = now
        self._last_audio = now

    def audio(self, now: float) -> None:
        """Caller audio arrived (per frame: two stores, no allocation)."""
        if self.state is LineState.CONNECTING:
            self.state = LineState.CONNECTED
        self._last_audio = now

    def end(self) -> None:
        self.state = LineState.ENDED

    def next_deadline(self) -> float | None:
        match self.state:
            case LineState.CONNECTING:
                return self._since + self.connect_timeout
            case LineState.CONNECTED:
                return self._last_audio + self.silence_timeout
            case LineState.ENDED:
                return None

    def expired(self, now: float) -> str | None:
        """Why the call must end now, or None while it is alive."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return None
        if self.state is LineState.CONNECTING:
            return f"no audio within {self.connect_timeout:g} s of the answer"
        return f"no audio for {self.silence_timeout:g} s"

    def require(self, state: LineState) -> None:
        """Raise :class:`LocalProtocolError` unless the line is in ``state``."""
        if self.state is not state:
            raise LocalProtocolError(f"call is {self.state.value}, not {state.value}")
