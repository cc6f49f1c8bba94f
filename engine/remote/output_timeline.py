"""Where each vendor item's audio sits on the session's output timeline, and what a cut means.

The gateway reports an interruption as one number: the position on the session's output
timeline (ms of audio emitted since the session opened, see ``engine.base``) up to which the
caller heard the bot. A vendor that keeps a transcript of what its model said (OpenAI Realtime)
wants the cut per item instead: ``conversation.item.truncate`` takes an ``item_id`` and an
``audio_end_ms`` inside that item, and answers an error if ``audio_end_ms`` exceeds the item's
audio (openai-python ``types/realtime/conversation_item_truncate_event.py``).

:class:`OutputTimeline` is that mapping. Every emitted chunk is recorded against its item; a
chunk of a new item opens a segment ``(item, timeline start, offset inside the item)``. A cut at
``heard_ms`` then gives, for every item with audio past that point, where inside the item the
caller stopped hearing it, clamped to ``[0, audio received for the item]``: the sample fix from
REFERENCE.md 4.2 ("clamp to ms_sent_for_item") without its wall-clock estimate, since the
position comes from the gateway's mark ledger (exact to one mark interval).

Pure and synchronous; positions are floats in milliseconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["Cut", "OutputTimeline"]

#: Segments kept; older ones are long played out (a bound for very long calls).
MAX_SEGMENTS = 256


@dataclass(frozen=True, slots=True)
class Cut:
    """One item the caller did not hear to its end: truncate it at ``audio_end_ms``."""

    item: str
    #: Milliseconds into the item the caller heard, within ``[0, received_ms]``.
    audio_end_ms: int
    #: Milliseconds of the item's audio received (and emitted) so far.
    received_ms: float


@dataclass(slots=True)
class _Segment:
    item: str
    start_ms: float  # timeline position of the segment's first sample
    item_offset_ms: float  # how far into the item the segment starts
    length_ms: float


class OutputTimeline:
    """Emitted audio by item; see the module docstring."""

    __slots__ = ("position_ms", "_segments", "_received")

    def __init__(self) -> None:
        #: The session's output timeline: ms emitted so far.
        self.position_ms = 0.0
        self._segments: deque[_Segment] = deque(maxlen=MAX_SEGMENTS)
        self._received: dict[str, float] = {}

    def add(self, item: str, ms: float) -> None:
        """Record ``ms`` of ``item``'s audio as emitted now, at the end of the timeline."""
        segments = self._segments
        last = segments[-1] if segments else None
        if last is not None and last.item == item:
            last.length_ms += ms
        else:
            offset = self._received.get(item, 0.0)
            segments.append(_Segment(item, self.position_ms, offset, ms))
        self._received[item] = self._received.get(item, 0.0) + ms
        self.position_ms += ms

    @property
    def unsettled(self) -> bool:
        """Whether audio was emitted since the last cut (something may still be playing)."""
        return bool(self._segments)

    def received_ms(self, item: str) -> float:
        return self._received.get(item, 0.0)

    def cut(self, heard_ms: float) -> list[Cut]:
        """The caller heard the timeline up to ``heard_ms``: the items to truncate, in order.

        Items heard to their end need nothing. Every segment is settled by a cut (later audio
        starts a new segment), so a second cut never reports an item again.
        """
        cuts: dict[str, Cut] = {}
        for seg in self._segments:
            end = seg.start_ms + seg.length_ms
            if end <= heard_ms + 1e-6:
                continue  # heard in full
            received = self._received[seg.item]
            inside = seg.item_offset_ms + max(0.0, heard_ms - seg.start_ms)
            if seg.item not in cuts:
                cuts[seg.item] = Cut(seg.item, int(min(inside, received)), received)
        self._segments.clear()
        return list(cuts.values())

    def forget(self, item: str) -> None:
        """Drop what is known about ``item`` (its conversation no longer exists)."""
        self._received.pop(item, None)
        self._segments = deque((s for s in self._segments if s.item != item), maxlen=MAX_SEGMENTS)
