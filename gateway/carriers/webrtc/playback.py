"""The bot's side of a browser call, sans-I/O: the frames and marks the call core sends, in
order, until the outbound track takes them one 20 ms frame at a time.

A mark is echoed when the frame before it is handed to aiortc (:meth:`BotQueue.take`), so the
heard position the core computes is exact to the send: it does not include what follows
(Opus encoding, the network, the browser's jitter buffer, typically 20-80 ms on a LAN).
``clear`` drops every queued frame and mark at once; the track then sends silence.
"""

from __future__ import annotations

from collections import deque

__all__ = ["BotQueue"]


class BotQueue:
    """Frames (``bytes``) and marks (``str``) in the order the call core queued them."""

    __slots__ = ("_items", "frames", "frames_taken", "cleared_frames")

    def __init__(self) -> None:
        self._items: deque[bytes | str] = deque()
        #: Frames queued and not yet taken.
        self.frames = 0
        self.frames_taken = 0
        #: Frames dropped by clears, over the call.
        self.cleared_frames = 0

    def push_frame(self, frame: bytes) -> None:
        self._items.append(frame)
        self.frames += 1

    def push_mark(self, name: str) -> None:
        self._items.append(name)

    def clear(self) -> int:
        """Drop everything queued (marks too: what they stood for will never play); returns
        the frames dropped."""
        dropped = self.frames
        self._items.clear()
        self.frames = 0
        self.cleared_frames += dropped
        return dropped

    def take(self) -> tuple[bytes | None, list[str]]:
        """The next frame to send (None: nothing queued, send silence) and the marks reached by
        sending it: those queued before the next frame."""
        items = self._items
        marks: list[str] = []
        frame: bytes | None = None
        while items:
            head = items[0]
            if type(head) is str:
                marks.append(items.popleft())  # type: ignore[arg-type]
            elif frame is None:
                frame = items.popleft()  # type: ignore[assignment]
                self.frames -= 1
                self.frames_taken += 1
            else:
                break
        return frame, marks
