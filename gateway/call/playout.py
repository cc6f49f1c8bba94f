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

Why a hold: an engine that hears the caller start over the bot cannot yet tell a turn from a
cough. :meth:`Playout.hold` stops releasing frames at once; what is already at the carrier (at
most the lead) plays out and the position after the last frame sent is the exact sample the
hold keeps. :meth:`Playout.release` carries on from that sample (the queued frames go out as
they were: nothing re-synthesised, repeated or cleared); a commit is :meth:`Playout.clear`.
With ``duck_db`` set, a hold keeps releasing frames attenuated by that much instead of
stopping them: the caller hears a dip, not a gap. With ``hold_clears`` (the default), a hold
also clears the carrier's buffer, so the bot is quiet within a network trip instead of after the
lead: the unheard audio is kept from the exact sample heard (the frame it falls in is cut
there) and a release sends it again from that sample, in a new generation. Measured over the
simulator (tests/bench/bench_local.py, interaction), stopping alone left a real interruption
talked over for a lead more (silent p50 310 ms after the caller's onset against 120 ms).

Why two levels: a silent hold on every cough is heard as a gap each time, and a duck alone
leaves a real interruption talked over until the commit. A *soft* hold (``hold(now,
soft=True)``, level 1) only ducks what is sent from then on by ``soft_db`` (the bot stays
audible, nothing is cleared), so a sound judged harmless costs a dip, not a gap; a plain hold
(level 2) is the deep one above, and follows a soft hold once the sound looks like speech.
Release and commit end either level.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from gateway.audio.g711 import ulaw_decode, ulaw_encode

FRAME_SECONDS = 0.020


def ducking_table(db: float) -> bytes:
    """A ``bytes.translate`` table that scales mu-law audio by ``db``: one C pass per frame."""
    gain = 10.0 ** (db / 20.0)
    linear = ulaw_decode(bytes(range(256)))
    scaled = bytearray()
    for i in range(256):
        sample = int.from_bytes(linear[2 * i : 2 * i + 2], "little", signed=True)
        scaled += int(round(sample * gain)).to_bytes(2, "little", signed=True)
    return ulaw_encode(bytes(scaled))


@dataclass(frozen=True, slots=True)
class Releasing:
    """The outcome of :meth:`Playout.release`: what the caller heard of the hold."""

    #: Output-timeline position playback carries on from (where the hold began).
    held_ms: float
    #: Seconds of silence the caller heard (the carrier ran dry before the release came).
    gap_s: float
    #: Seconds the caller heard the bot ducked at the deep level (0 when holds are silent).
    ducked_s: float
    #: Seconds the caller heard the bot ducked at the soft level (``soft_db``) over the hold.
    soft_s: float = 0.0
    #: A deep spell (level 2) ended here; False: the hold ended soft, nothing was cleared.
    deep: bool = True


@dataclass(frozen=True, slots=True)
class Clearing:
    """The outcome of :meth:`Playout.clear`."""

    #: Output-timeline position the caller heard up to.
    heard_ms: float
    #: Frames sent or queued that were thrown away (stale audio never to be sent again).
    discarded_frames: int
    #: The hold this clear committed (how it sounded until then), None when none was open.
    hold: Releasing | None = None


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
        duck_db: float | None = None,
        hold_clears: bool = True,
        soft_db: float | None = -10.0,
    ) -> None:
        if lead < FRAME_SECONDS:
            raise ValueError("lead must be at least one frame")
        if mark_every < 1:
            raise ValueError("mark_every must be >= 1")
        if duck_db is not None and not -60.0 <= duck_db < 0.0:
            raise ValueError("duck_db must be in [-60, 0) dB, or None for silent holds")
        if duck_db is not None and hold_clears:
            raise ValueError("a hold that clears the carrier cannot duck what it cleared")
        if soft_db is not None and not -20.0 < soft_db < 0.0:
            raise ValueError("soft_db must be in (-20, 0) dB (deeper is a deep hold), or None")
        self.lead = lead
        self.mark_every = mark_every
        self.duck_db = duck_db
        self.hold_clears = hold_clears
        self.soft_db = soft_db
        self._duck = ducking_table(duck_db) if duck_db is not None else None
        self._soft_duck = ducking_table(soft_db) if soft_db is not None else None
        self.generation = 0
        # Frames waiting to be sent: (payload, end position ms).
        self._queue: deque[tuple[bytes, float]] = deque()
        # Sent but not yet known to be played: (payload, end position ms).
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
        # The open hold: when it began, and when the carrier runs out of what it had then.
        self._held_at: float | None = None
        self._held_ms = 0.0
        self._held_play_end = 0.0
        # The soft level (level 1): when the current soft spell began (None: not soft now), and
        # the soft time of the open hold's earlier spells.
        self._soft_at: float | None = None
        self._soft_s = 0.0
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
    def held(self) -> bool:
        """A deep hold is open (see :meth:`hold`)."""
        return self._held_at is not None

    @property
    def softly_held(self) -> bool:
        """A soft hold is open and not deep now: the bot plays on, ducked by ``soft_db``."""
        return self._soft_at is not None

    @property
    def silent_hold(self) -> bool:
        """A deep hold that sends nothing is open: pacing stops until it ends."""
        return self._held_at is not None and self._duck is None

    @property
    def idle(self) -> bool:
        """Nothing queued and everything sent has been confirmed played."""
        return not self._queue and not self._marks

    # -- pacing ------------------------------------------------------------------------------

    def poll(self, now: float) -> list[bytes | str]:
        """Frames (bytes) and mark names (str) due by ``now``, in send order."""
        out: list[bytes | str] = []
        queue = self._queue
        if not queue or (self._held_at is not None and self._duck is None):
            return out
        duck = self._duck_now()
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
            out.append(frame if duck is None else frame.translate(duck))
            self._unconfirmed.append((frame, end_ms))
            play_end += len(frame) / 8000.0
            self._last_sent_pos = end_ms
            self.frames_sent += 1
            self._since_mark += 1
            if self._since_mark >= self.mark_every or not queue:
                out.append(self._mark(end_ms))
        self._play_end = play_end
        return out

    def pull(self, now: float) -> bytes | None:
        """The next frame for a carrier whose own clock transmits it at ``now`` (SIP's RTP
        clock), or None when nothing is queued or a silent hold is open.

        The carrier keeps no buffer of ours, so what this returns is on the wire: it counts
        as heard at once, with no mark and no lead (use :meth:`poll` or this, not both).
        """
        queue = self._queue
        if not queue or (self._held_at is not None and self._duck is None):
            return None
        frame, end_ms = queue.popleft()
        self._play_end = max(self._play_end, now) + len(frame) / 8000.0
        self._last_sent_pos = self._anchor_pos = end_ms
        self._anchor_time = now
        self.frames_sent += 1
        duck = self._duck_now()
        return frame if duck is None else frame.translate(duck)

    def _duck_now(self) -> bytes | None:
        """The translate table for frames sent now: the deep duck while a hold is deep, the
        soft one while it is soft, None when the bot plays as it is."""
        if self._held_at is not None:
            return self._duck
        return self._soft_duck if self._soft_at is not None else None

    def _mark(self, end_ms: float) -> str:
        self._since_mark = 0
        self._marks.append(end_ms)
        self.marks_sent += 1
        return f"{self.generation}:{end_ms:.0f}"

    def next_deadline(self) -> float | None:
        """When :meth:`poll` will next have a frame to send, or None if nothing is queued."""
        if not self._queue or (self._held_at is not None and self._duck is None):
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

    def hold(self, now: float, soft: bool = False) -> float | None:
        """Stop releasing new audio (or duck it); returns the output position held at.

        What the carrier already has plays out. A second hold while one is open changes
        nothing and returns the same position. ``soft``: only duck what is sent from now on by
        ``soft_db`` (level 1; None, and nothing happens, when soft holds are off); a plain hold
        after it goes deep.
        """
        if self._held_at is not None:
            return self._held_ms
        if soft:
            if self._soft_duck is None:
                return None
            if self._soft_at is None:
                self._soft_at = now
                self._held_ms = self._last_sent_pos
            return self._held_ms
        if self._soft_at is not None:
            self._soft_s += now - self._soft_at
            self._soft_at = None
        self._held_at = now
        if not self.hold_clears:
            self._held_ms = self._last_sent_pos
            self._held_play_end = max(self._play_end, now)
            return self._held_ms
        heard = self.heard(now)
        kept = [item for item in self._unconfirmed if item[1] > heard]
        kept.extend(self._queue)
        if kept:
            frame, end_ms = kept[0]
            skip = int(round((heard - (end_ms - len(frame) / 8.0)) * 8))
            if skip > 0:  # the caller heard part of this frame: carry on from the next sample
                kept[0] = (frame[skip:], end_ms)
        self._reset(now, heard)
        self._queue.extend(kept)
        self._held_ms = heard
        self._held_play_end = now
        return heard

    def soften(self, now: float) -> Releasing | None:
        """Lift a deep hold back to the soft level (the sound stopped, its judgement is still
        open): playback carries on from the held sample, ducked by ``soft_db``. Returns the deep
        spell just ended (its gap); None when no deep hold was open. With soft holds off, this
        is a release."""
        if self._held_at is None:
            return None
        if self._soft_duck is None:
            return self.release(now)
        deep = self._end_deep(now)
        self._soft_at = now
        return deep

    def release(self, now: float) -> Releasing | None:
        """End the hold: playback carries on from the held sample. None when none was open.
        The result covers the deep spell ending now (if any) and the soft time of the whole
        hold."""
        if self._held_at is not None:
            ended = self._end_deep(now)
        elif self._soft_at is not None:
            # Ducked frames at the carrier (at most the lead) play out; what follows is whole.
            ended = Releasing(self._held_ms, 0.0, 0.0, deep=False)
        else:
            return None
        if self._soft_at is not None:
            self._soft_s += now - self._soft_at
            self._soft_at = None
        soft_s, self._soft_s = self._soft_s, 0.0
        return Releasing(ended.held_ms, ended.gap_s, ended.ducked_s, soft_s, ended.deep)

    def _end_deep(self, now: float) -> Releasing:
        """Close the open deep hold: the silence (or deep duck) the caller heard in it."""
        self._held_at = None
        after = max(0.0, now - self._held_play_end)
        if self._duck is not None:
            return Releasing(self._held_ms, 0.0, after)
        return Releasing(self._held_ms, after, 0.0)

    def clear(self, now: float) -> Clearing:
        """Throw away everything not yet heard; bump the generation; end any hold. Returns the
        heard position (a commit)."""
        hold = self.release(now)
        heard = self.heard(now)
        discarded = sum(1 for item in self._unconfirmed if item[1] > heard) + len(self._queue)
        self._reset(now, heard)
        return Clearing(heard_ms=heard, discarded_frames=discarded, hold=hold)

    def _reset(self, now: float, heard: float) -> None:
        """The carrier's buffer is cleared: nothing sent is pending, a new generation starts."""
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
