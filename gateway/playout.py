"""Outbound playout: pacing ahead of real time, marks, and what the caller actually heard.

Pure and synchronous: every method takes ``now`` (seconds on the caller's monotonic clock) and
returns what to send; nothing here reads a clock or touches a socket.

Positions are milliseconds on the engine's *output timeline* (see ``engine.base``): each queued
frame carries the timeline position where it ends. Marks are named ``"<generation>:<position>"``
so a mark echo says both which playback generation it belongs to and how far playback got.

Why generations: after a ``clear``, Twilio echoes every mark still pending for the discarded
audio (REFERENCE.md 1.5). Those echoes prove nothing was played, so every ``clear`` bumps the
generation and echoes of older generations are ignored. The position heard at a ``clear`` is the
last mark echoed before it plus the time elapsed since, capped at the next mark sent: exact to
one mark interval.

Why a lead: the carrier buffers what we send and plays it at 1x. Sending ahead by a small lead
(default 120 ms) absorbs network and scheduling jitter without underruns, while keeping what a
``clear`` must throw away small. Pacing follows a model of the carrier's buffer (when what was
sent will have finished playing), so a stall on our side is caught up at once rather than
leaving a backlog that never drains.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

FRAME_SECONDS = 0.020


@dataclass(frozen=True, slots=True)
class Clearing:
    """The outcome of :meth:`Playout.clear`."""

    #: Output-timeline position the caller heard up to.
    heard_ms: float
    #: Frames sent or queued that were thrown away (stale audio never to be sent again).
    discarded_frames: int


class Playout:
    """One call's outbound audio: queue, pacing, marks and the playout ledger.

    Produce with :meth:`enqueue`; call :meth:`poll` whenever a frame may be due (after enqueue,
    after each mark echo, and at :meth:`next_deadline`). ``poll`` returns the items to hand to
    the transport in order: ``bytes`` are audio frames, ``str`` are mark names.
    """

    def __init__(
        self,
        *,
        lead: float = 0.120,
        mark_every: int = 2,
        resume_window: float = 2.0,
    ) -> None:
        if lead < FRAME_SECONDS:
            raise ValueError("lead must be at least one frame")
        if mark_every < 1:
            raise ValueError("mark_every must be >= 1")
        self.lead = lead
        self.mark_every = mark_every
        self.resume_window = resume_window
        self.generation = 0
        # Frames waiting to be sent: (payload, end position ms).
        self._queue: deque[tuple[bytes, float]] = deque()
        # Sent but not yet known to be played: (payload, end position ms). Kept for Resume.
        self._unconfirmed: deque[tuple[bytes, float]] = deque()
        # Positions of marks sent and not yet echoed, in send order (current generation).
        self._marks: deque[float] = deque()
        # When everything sent so far will have finished playing, per our model of the carrier.
        self._play_end = 0.0
        # Playback anchor: position known to be playing at time anchor_time.
        self._anchor_pos = 0.0
        self._anchor_time = 0.0
        self._since_mark = 0
        self._last_sent_pos = 0.0
        # What a clear threw away, offered back to a Resume until the deadline.
        self._retained: list[tuple[bytes, float]] = []
        self._retained_until = 0.0
        # Ledger figures.
        self.frames_sent = 0
        self.marks_sent = 0
        self.marks_echoed = 0
        self.stale_marks = 0
        self.clears = 0

    # -- producing ---------------------------------------------------------------------------

    def enqueue(self, frame: bytes, end_ms: float) -> None:
        """Queue one frame that ends at output-timeline position ``end_ms``."""
        self._queue.append((frame, end_ms))

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    @property
    def play_end(self) -> float:
        """When everything sent so far will have finished playing at the carrier."""
        return self._play_end

    @property
    def idle(self) -> bool:
        """Nothing queued and everything sent has been confirmed played."""
        return not self._queue and not self._marks

    # -- pacing ------------------------------------------------------------------------------

    def poll(self, now: float) -> list[bytes | str]:
        """Frames (bytes) and mark names (str) due by ``now``, in send order."""
        out: list[bytes | str] = []
        queue = self._queue
        if not queue:
            return out
        play_end = self._play_end
        if play_end < now:
            play_end = now  # the carrier's buffer ran dry: playback restarts on arrival
        horizon = now + self.lead - 1e-9  # float sums of 0.02 must not buy an extra frame
        marks = self._marks
        while queue and play_end < horizon:
            frame, end_ms = queue.popleft()
            if not marks and self._since_mark == 0:
                # Nothing outstanding at the carrier: this frame starts playing on arrival.
                self._anchor_pos = end_ms - len(frame) / 8.0
                self._anchor_time = now
            out.append(frame)
            self._unconfirmed.append((frame, end_ms))
            play_end += len(frame) / 8000.0
            self._last_sent_pos = end_ms
            self.frames_sent += 1
            self._since_mark += 1
            if self._since_mark >= self.mark_every or not queue:
                out.append(self._mark(end_ms))
        self._play_end = play_end
        return out

    def _mark(self, end_ms: float) -> str:
        self._since_mark = 0
        self._marks.append(end_ms)
        self.marks_sent += 1
        return f"{self.generation}:{end_ms:.0f}"

    def next_deadline(self) -> float | None:
        """When :meth:`poll` will next have a frame to send, or None if nothing is queued."""
        if not self._queue:
            return None
        return self._play_end - self.lead

    # -- the ledger --------------------------------------------------------------------------

    def mark_echoed(self, name: str, now: float) -> bool:
        """Record a mark echo; returns False for stale (older generation) or foreign names."""
        gen, sep, pos = name.partition(":")
        if not sep or gen != str(self.generation):
            self.stale_marks += 1
            return False
        # Our names carry a whole number of ms; anything else ("inf", "1e999", "nan") is not
        # one of ours, and an infinite position would poison every later estimate.
        if not (pos.isascii() and pos.isdigit() and len(pos) <= 15):
            self.stale_marks += 1
            return False
        position = float(pos)
        marks = self._marks
        if marks and position > marks[-1] + 0.5:
            self.stale_marks += 1  # beyond anything sent: not an echo
            return False
        matched = False
        while marks and marks[0] <= position + 0.5:
            marks.popleft()
            matched = True
        if not matched:
            self.stale_marks += 1
            return False
        self.marks_echoed += 1
        self._anchor_pos = position
        self._anchor_time = now
        unconfirmed = self._unconfirmed
        while unconfirmed and unconfirmed[0][1] <= position + 0.5:
            unconfirmed.popleft()
        return True

    def heard(self, now: float) -> float:
        """The output-timeline position the caller has heard up to at ``now``."""
        if not self._marks and self._since_mark == 0:
            return self._last_sent_pos  # every mark echoed: all sent audio has played
        estimate = self._anchor_pos + (now - self._anchor_time) * 1000.0
        cap = self._marks[0] if self._marks else self._last_sent_pos
        return max(self._anchor_pos, min(estimate, cap))

    def clear(self, now: float) -> Clearing:
        """Throw away everything not yet heard; bump the generation. Returns the heard position."""
        heard = self.heard(now)
        retained = [item for item in self._unconfirmed if item[1] > heard]
        retained.extend(self._queue)
        self._retained = retained
        self._retained_until = now + self.resume_window
        self._queue.clear()
        self._unconfirmed.clear()
        self._marks.clear()
        self._since_mark = 0
        self._play_end = now
        self._last_sent_pos = heard
        self._anchor_pos = heard
        self._anchor_time = now
        self.generation += 1
        self.clears += 1
        return Clearing(heard_ms=heard, discarded_frames=len(retained))

    def resume(self, now: float) -> int:
        """Queue again what the last clear threw away, if still held. Returns frames requeued."""
        retained = self._retained
        self._retained = []
        if not retained or now > self._retained_until:
            return 0
        self._queue.extendleft(reversed(retained))
        return len(retained)
