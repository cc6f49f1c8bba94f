"""The per-call ledger: everything one call cost and did, written out when it ends."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from gateway.call.labels import CallOutcome
from gateway.histogram import LATENESS_BUCKETS, Histogram

#: Timeline entries kept per call (a bound, so a week-long call cannot eat memory).
MAX_EVENTS = 20000


@dataclass(slots=True)
class CallLedger:
    """Counters a call owns; the session fills them, nothing else writes them."""

    call_id: str
    carrier: str
    engine: str = ""
    caller: str = ""
    called: str = ""
    route: str = ""
    started_at: float = 0.0  # wall clock, seconds since the epoch
    ended_at: float = 0.0
    end_reason: str = ""
    #: A short class of how the call ended, for metrics ("" while it is live).
    outcome: CallOutcome | Literal[""] = ""
    frames_in: int = 0
    frames_out: int = 0
    audio_in_seconds: float = 0.0
    audio_out_seconds: float = 0.0
    gap_fill_seconds: float = 0.0
    marks_sent: int = 0
    marks_echoed: int = 0
    stale_marks: int = 0
    clears: int = 0
    discarded_frames: int = 0
    #: Holds the engine opened (the bot paused while it judged the caller's sound), and how
    #: each ended: committed (the caller got the turn) or released (the bot carried on).
    holds: int = 0
    commits: int = 0
    releases: int = 0
    #: Of the holds, how many began soft (the bot ducked a little, not silenced) and how many
    #: went deep (silenced, or ducked by the deep depth); a soft hold can end without going deep.
    soft_holds: int = 0
    deep_holds: int = 0
    #: Seconds of silence the caller heard at each release (the hold gap).
    hold_gaps: list[float] = field(default_factory=list)
    #: Each duck's depth (dB) and how long the caller heard it (seconds): a soft hold's, then
    #: a deep hold's when holds duck instead of silencing.
    ducks: list[tuple[float, float]] = field(default_factory=list)
    dtmf_in: int = 0
    protocol_violations: int = 0
    #: Ignored or fatal carrier messages by kind (malformed-json, flood, ...).
    violations: dict[str, int] = field(default_factory=dict)
    engine_errors: int = 0
    #: Seconds from an engine Interrupt being handled to ``clear`` written to the socket.
    clear_latencies: list[float] = field(default_factory=list)
    #: Positions (output-timeline ms) reported to the engine as heard at each clear.
    heard_at_clear: list[float] = field(default_factory=list)
    transcript: list[tuple[str, str]] = field(default_factory=list)
    #: The engine's latest :class:`~engine.base.Result`: what the conversation settled.
    results: dict[str, str] = field(default_factory=dict)
    #: Engine Metric events by name, every value in order (per-turn latencies...).
    metrics: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: How late the outbound pacing timer fired, per tick (seconds).
    frame_lateness: Histogram = field(default_factory=lambda: Histogram(LATENESS_BUCKETS))
    #: The call's timeline: (seconds since start, kind, detail), for ``overtalk calls show``.
    events: list[tuple[float, str, str]] = field(default_factory=list)
    #: When each mark came back played (seconds since start), for the timeline.
    mark_times: list[float] = field(default_factory=list)

    def event(self, t: float, kind: str, detail: str = "") -> None:
        if len(self.events) < MAX_EVENTS:
            self.events.append((round(t, 4), kind, detail))

    def mark(self, t: float) -> None:
        if len(self.mark_times) < MAX_EVENTS:
            self.mark_times.append(round(t, 4))

    def settle(self, outcome: CallOutcome, reason: str = "") -> None:
        """How the call ended: the first outcome and the first reason given stand (a hang-up
        the engine asked for is not turned into the caller's by the stream closing after)."""
        self.outcome = self.outcome or outcome
        self.end_reason = self.end_reason or reason

    def violation(self, kind: str, count: int = 1) -> None:
        """Count ``count`` ignored or fatal carrier messages of ``kind``."""
        self.protocol_violations += count
        self.violations[kind] = self.violations.get(kind, 0) + count

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["frame_lateness"] = self.frame_lateness.to_dict()
        return data
