"""The heard position where a carrier does not say it: mark echoes from the pacing clock.

Twilio, Telnyx and Plivo echo a mark once the audio before it has played (and drop pending
ones on a clear), so the call core's playout ledger is exact. A carrier with no such echo
plays what it is sent at 8000 samples a second from the moment the first of it arrives, and
pauses when it runs dry: :class:`PacedEchoes` models exactly that and produces the echoes the
carrier would have sent, at the times it would have sent them. The call record then says the
heard position was "estimated": network jitter and the carrier's own buffer are not seen.

Pure: time is passed in; the adapter arms one timer at :meth:`PacedEchoes.next_due`.
"""

from __future__ import annotations

from collections import deque

__all__ = ["PacedEchoes"]


class PacedEchoes:
    """Marks sent after audio, released when a real-time player would have reached them."""

    __slots__ = ("_play_end", "_pending")

    def __init__(self) -> None:
        #: When the audio sent so far finishes playing (None: the player is dry).
        self._play_end: float | None = None
        self._pending: deque[tuple[float, str]] = deque()

    def sent_audio(self, seconds: float, now: float) -> None:
        """Audio of ``seconds`` was written at ``now``: it plays after what is queued."""
        end = self._play_end
        start = now if end is None or end < now else end
        self._play_end = start + seconds

    def sent_mark(self, name: str, now: float) -> None:
        """A mark was written: it is reached when the audio before it has played."""
        end = self._play_end
        self._pending.append((now if end is None or end < now else end, name))

    def cleared(self) -> None:
        """A clear drops the player's queue, and the marks in it (the call core ignores
        marks of a cleared generation, so none are echoed)."""
        self._pending.clear()
        self._play_end = None

    def next_due(self) -> float | None:
        return self._pending[0][0] if self._pending else None

    def due(self, now: float) -> list[str]:
        """The marks reached by ``now``, in order."""
        pending = self._pending
        out: list[str] = []
        while pending and pending[0][0] <= now:
            out.append(pending.popleft()[1])
        return out
