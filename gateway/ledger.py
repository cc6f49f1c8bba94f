"""The per-call ledger: everything one call cost and did, written out when it ends."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class CallLedger:
    """Counters a call owns; the session fills them, nothing else writes them."""

    call_id: str
    carrier: str
    engine: str = ""
    started_at: float = 0.0  # wall clock, seconds since the epoch
    ended_at: float = 0.0
    end_reason: str = ""
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
    resumes: int = 0
    dtmf_in: int = 0
    protocol_violations: int = 0
    engine_errors: int = 0
    #: Seconds from an engine Interrupt being handled to ``clear`` written to the socket.
    clear_latencies: list[float] = field(default_factory=list)
    #: Positions (output-timeline ms) reported to the engine as heard at each clear.
    heard_at_clear: list[float] = field(default_factory=list)
    transcript: list[tuple[str, str]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
