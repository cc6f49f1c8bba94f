"""What one simulated call measured on the wire, as a table for people and a dict for JSON.

Latencies are taken where a carrier would see them, not inside the gateway:

- response latency: the send time of the caller's last voiced frame of a ``say`` step to the
  arrival of the first non-silent ``media`` message from the gateway after it;
- barge-in latency: the send time of the first voiced frame of a ``barge_in`` step to the
  arrival of the next ``clear`` (None when no ``clear`` came: the interruption was missed).

A turn's window closes when the caller's next utterance starts, so a late answer is never
credited to the wrong turn. The report carries no transcripts: only timings and counts.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from gateway.sim.media import LogEntry, LogKind
from gateway.sim.script import TurnRecord

__all__ = ["CallReport", "TurnResult", "TwimlVerb", "resolve_turns"]


class TwimlVerb(NamedTuple):
    """One TwiML element: ``(verb, attributes, text, children)``; children nest the same way."""

    verb: str
    attributes: dict[str, str]
    text: str
    children: tuple[TwimlVerb, ...] = ()

    def walk(self) -> Iterator[TwimlVerb]:
        """This element and all its descendants, in document order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def to_dict(self) -> dict[str, Any]:
        return {
            "verb": self.verb,
            "attributes": dict(self.attributes),
            "text": self.text,
            "children": [c.to_dict() for c in self.children],
        }


@dataclass(frozen=True, slots=True)
class TurnResult:
    """One caller utterance and how fast the gateway reacted (times in ms from stream start)."""

    index: int
    kind: str  # "say" or "barge_in"
    label: str
    speech_start_ms: float | None
    speech_end_ms: float | None
    #: last voiced caller frame sent -> first non-silent bot media arrived (for a barge-in,
    #: only when it was caught: the bot's reply to the interruption).
    response_ms: float | None = None
    #: barge_in: first voiced caller frame sent -> clear arrived; None = missed.
    barge_in_ms: float | None = None
    note: str = ""


def resolve_turns(
    turns: list[TurnRecord],
    voiced_arrivals: list[float],
    clear_arrivals: list[float],
    t0: float,
) -> list[TurnResult]:
    """Match caller utterances with the gateway's reactions. Arrival lists must be sorted."""

    def ms(t: float | None) -> float | None:
        return None if t is None else round((t - t0) * 1000, 1)

    results = []
    for i, turn in enumerate(turns):
        nxt = next((u.speech_start for u in turns[i + 1 :] if u.speech_start is not None), None)
        response = barge = None
        note = turn.note
        if turn.kind == "say" and turn.speech_end is not None:
            response = _first_after(voiced_arrivals, turn.speech_end, nxt)
            if response is None:
                note = note or "no bot audio"
        elif turn.kind == "barge_in" and turn.speech_start is not None:
            j = bisect.bisect_left(clear_arrivals, turn.speech_start)
            if j < len(clear_arrivals) and (nxt is None or clear_arrivals[j] < nxt):
                barge = round((clear_arrivals[j] - turn.speech_start) * 1000, 1)
                # Once the bot stopped, how fast it answered the interruption. Without a
                # clear the bot never stopped, and its ongoing speech would read as an answer.
                response = _first_after(voiced_arrivals, turn.speech_end, nxt)
            else:
                note = note or "missed: no clear"
        elif turn.speech_start is None:
            note = note or "no voiced audio"
        results.append(
            TurnResult(
                turn.index,
                turn.kind,
                turn.label,
                ms(turn.speech_start),
                ms(turn.speech_end),
                response,
                barge,
                note,
            )
        )
    return results


def _first_after(arrivals: list[float], since: float | None, until: float | None) -> float | None:
    """Milliseconds from ``since`` to the first arrival in ``[since, until)``, if any."""
    if since is None:
        return None
    j = bisect.bisect_left(arrivals, since)
    if j < len(arrivals) and (until is None or arrivals[j] < until):
        return round((arrivals[j] - since) * 1000, 1)
    return None


@dataclass
class CallReport:
    """Everything one :func:`gateway.sim.caller.place_call` saw. ``failed`` means no usable call."""

    call_sid: str = ""
    account_sid: str = ""
    stream_sid: str = ""
    caller: str = ""
    called: str = ""
    #: HTTP status of the voice webhook answer.
    http_status: int | None = None
    #: The TwiML answer, top-level verbs with nested children.
    twiml: list[TwimlVerb] = field(default_factory=list)
    #: Whether a Media Stream was opened.
    streamed: bool = False
    #: "caller" (script ended), "gateway" (it closed the socket), "carrier" (the gateway hung up
    #: or transferred through the carrier's REST API), "twiml" (no stream to open), "timeout"
    #: (max call duration), "error".
    ended_by: str = ""
    error: str | None = None
    close_code: int | None = None
    close_reason: str = ""
    duration_s: float = 0.0
    frames_sent: int = 0
    frames_late: int = 0
    max_lateness_ms: float = 0.0
    dtmf_sent: int = 0
    media_received: int = 0
    marks_received: int = 0
    clears_received: int = 0
    marks_echoed: int = 0
    bot_audio_played_s: float = 0.0
    bot_audio_cleared_s: float = 0.0
    violations: list[str] = field(default_factory=list)
    turns: list[TurnResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The simulated Twilio's timed events (media, mark, clear, echoes), times in s from start.
    events: list[LogEntry] = field(default_factory=list)
    record_path: Path | None = None

    @property
    def failed(self) -> bool:
        """No usable call: an error, or the gateway dropped the stream abnormally.

        A gateway hanging up with close code 1000/1001 is a normal end of call (the bot said
        goodbye); any other code (1008 policy, 1011 crash, 1006 no close frame) is a failure.
        """
        if self.ended_by == "error":
            return True
        return self.ended_by == "gateway" and self.close_code not in (1000, 1001)

    @property
    def ok(self) -> bool:
        """What the CLI's exit status reports: the call worked and the gateway kept the rules."""
        return not self.failed and not self.violations

    def twiml_verbs(self) -> list[tuple[str, dict[str, str], str]]:
        """Every TwiML element in document order as ``(verb, attributes, text)``."""
        return [(v.verb, v.attributes, v.text) for top in self.twiml for v in top.walk()]

    @property
    def response_latencies_ms(self) -> list[float]:
        """Response latencies of the ``say`` turns (a barge-in's reply is not a turn answer)."""
        return [t.response_ms for t in self.turns if t.kind == "say" and t.response_ms is not None]

    @property
    def barge_in_latencies_ms(self) -> list[float]:
        return [t.barge_in_ms for t in self.turns if t.barge_in_ms is not None]

    def to_dict(self, *, events: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; ``events=True`` adds the mark/clear/violation log."""
        data: dict[str, Any] = {
            name: getattr(self, name)
            for name in (
                "call_sid",
                "account_sid",
                "stream_sid",
                "caller",
                "called",
                "http_status",
                "streamed",
                "ended_by",
                "error",
                "close_code",
                "close_reason",
                "duration_s",
                "frames_sent",
                "frames_late",
                "max_lateness_ms",
                "dtmf_sent",
                "media_received",
                "marks_received",
                "clears_received",
                "marks_echoed",
                "bot_audio_played_s",
                "bot_audio_cleared_s",
                "violations",
                "notes",
            )
        }
        data["failed"] = self.failed
        data["twiml"] = [v.to_dict() for v in self.twiml]
        data["turns"] = [asdict(t) for t in self.turns]
        data["record_path"] = str(self.record_path) if self.record_path else None
        data["summary"] = self.summary()
        if events:
            data["events"] = [
                {"time_s": round(e.time, 4), "kind": str(e.kind), "detail": e.detail}
                for e in self.events
                if e.kind is not LogKind.MEDIA
            ]
        return data

    def summary(self) -> dict[str, Any]:
        """Aggregates over the turns: response p50/max, barge-ins caught."""
        resp, barge = self.response_latencies_ms, self.barge_in_latencies_ms
        barges = [t for t in self.turns if t.kind == "barge_in" and t.speech_start_ms is not None]
        return {
            "turns": sum(1 for t in self.turns if t.kind == "say"),
            "responses": len(resp),
            "response_p50_ms": statistics.median(resp) if resp else None,
            "response_max_ms": max(resp) if resp else None,
            "barge_ins": len(barges),
            "barge_ins_caught": len(barge),
            "barge_in_p50_ms": statistics.median(barge) if barge else None,
        }

    def format(self) -> str:
        """A readable table of the call."""
        lines = [
            f"call {self.call_sid or '-'}  {self.caller} -> {self.called}  "
            f"stream {self.stream_sid or '-'}",
            f"ended by {self.ended_by or '?'} after {self.duration_s:.2f} s"
            + (
                f" (close code {self.close_code}{_reason(self.close_reason)})"
                if self.ended_by == "gateway" and self.close_code is not None
                else ""
            )
            + (f"  ERROR: {self.error}" if self.error else ""),
        ]
        if self.twiml:
            lines.append("twiml: " + "; ".join(_format_verb(v) for v in self.twiml))
        if self.streamed:
            lines.append(
                f"caller frames sent {self.frames_sent} (late {self.frames_late}, max lateness "
                f"{self.max_lateness_ms:.1f} ms), dtmf {self.dtmf_sent}"
            )
            lines.append(
                f"gateway sent media {self.media_received}, mark {self.marks_received}, "
                f"clear {self.clears_received}; marks echoed {self.marks_echoed}; bot audio "
                f"played {self.bot_audio_played_s:.2f} s, cleared {self.bot_audio_cleared_s:.2f} s"
            )
        if self.turns:
            lines.append("")
            lines.append(
                f"{'#':>2}  {'kind':<8}  {'label':<28}  {'speech':>15}  "
                f"{'response':>9}  {'barge-in':>9}  note"
            )
            for t in self.turns:
                span = (
                    f"{t.speech_start_ms / 1000:.2f}-{t.speech_end_ms / 1000:.2f} s"
                    if t.speech_start_ms is not None and t.speech_end_ms is not None
                    else "-"
                )
                lines.append(
                    f"{t.index + 1:>2}  {t.kind:<8}  {_clip(t.label, 28):<28}  {span:>15}  "
                    f"{_ms(t.response_ms) if t.kind == 'say' or t.response_ms else '':>9}  "
                    f"{_ms(t.barge_in_ms) if t.kind == 'barge_in' else '':>9}  {t.note}"
                )
            s = self.summary()
            lines.append("")
            lines.append(
                f"response p50 {_ms(s['response_p50_ms'])} max {_ms(s['response_max_ms'])} "
                f"({s['responses']}/{s['turns']} answered); barge-ins caught "
                f"{s['barge_ins_caught']}/{s['barge_ins']}, p50 {_ms(s['barge_in_p50_ms'])}"
            )
        lines.extend(f"note: {n}" for n in self.notes)
        if self.violations:
            lines.append(f"protocol violations ({len(self.violations)}):")
            lines.extend(f"  {v}" for v in self.violations[:50])
            if len(self.violations) > 50:
                lines.append(f"  ... {len(self.violations) - 50} more")
        else:
            lines.append("protocol violations: none")
        if self.record_path:
            lines.append(f"recording: {self.record_path}")
        return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _reason(text: str) -> str:
    return f" {text}" if text else ""


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _format_verb(v: TwimlVerb) -> str:
    attrs = ",".join(f"{k}={val}" for k, val in v.attributes.items())
    out = v.verb + (f"({attrs})" if attrs else "")
    if v.text:
        out += f" {_clip(v.text, 40)!r}"
    if v.children:
        out += " > " + " ".join(_format_verb(c) for c in v.children)
    return out
