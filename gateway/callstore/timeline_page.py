"""``overtalk calls show``: one call's timeline as a self-contained HTML page.

Both channels' loudness (from the stereo recording, when there is one), the bot's playback,
the marks Twilio echoed, every ``clear`` with the position the caller had heard, DTMF, what
each side said, and the measured latencies, on one time axis: a turn-taking problem is seen,
not dug out of logs. Plain SVG in one HTML file: no script, no network, opens anywhere.
"""

from __future__ import annotations

import html
import wave
from pathlib import Path
from typing import Any

import numpy as np

WIDTH = 1400  # px of the time axis
LEFT = 110  # px for lane labels
LANE = 60


def _envelope(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-20 ms RMS of the caller (left) and bot (right) channels, in dBFS."""
    try:
        with wave.open(str(path)) as wav:
            if wav.getnchannels() != 2 or wav.getsampwidth() != 2:
                return None
            rate = wav.getframerate()
            audio = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    except (OSError, wave.Error):
        return None
    window = rate // 50
    usable = len(audio) // window * window
    frames = audio[:usable].astype(np.float64).reshape(-1, window, 2)
    rms = np.sqrt((frames**2).mean(axis=1)) / 32768.0
    db = 20 * np.log10(rms + 1e-9)
    return db[:, 0], db[:, 1]


def _x(t: float, duration: float) -> float:
    return LEFT + WIDTH * (t / duration if duration else 0.0)


def _lane_bars(db: np.ndarray, top: int, color: str, duration: float) -> str:
    parts = []
    for i, level in enumerate(db):
        height = max(0.0, min(1.0, (level + 60) / 60)) * (LANE - 8)
        if height < 1:
            continue
        x = _x(i * 0.02, duration)
        y = top + LANE - 4 - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(1.0, WIDTH * 0.02 / duration):.2f}" '
            f'height="{height:.1f}" fill="{color}"/>'
        )
    return "".join(parts)


def render(record: dict[str, Any], recording: Path | None = None) -> str:
    """The HTML page for one call record (a ledger as written to the records directory)."""
    events: list[list[Any]] = record.get("events", [])
    marks: list[float] = record.get("mark_times", [])
    envelope = _envelope(recording) if recording is not None else None
    duration = max(
        [0.1]
        + [float(e[0]) for e in events]
        + marks
        + ([len(envelope[0]) * 0.02] if envelope is not None else [])
    )
    lanes = ["caller audio", "bot audio", "bot playback", "marks", "events"]
    height = 40 + LANE * len(lanes) + 30
    svg: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEFT + WIDTH + 20}" height="{height}" '
        'font-family="sans-serif" font-size="11">'
    ]
    for i, name in enumerate(lanes):
        top = 30 + i * LANE
        svg.append(
            f'<rect x="{LEFT}" y="{top}" width="{WIDTH}" height="{LANE - 4}" fill="#f6f6f6"/>'
        )
        svg.append(f'<text x="8" y="{top + LANE / 2}">{name}</text>')
    if envelope is not None:
        svg.append(_lane_bars(envelope[0], 30, "#2b6cb0", duration))
        svg.append(_lane_bars(envelope[1], 30 + LANE, "#2f855a", duration))
    else:
        svg.append(f'<text x="{LEFT + 8}" y="{30 + LANE / 2}" fill="#888">no recording</text>')
    # Bot playback spans: bot-start until bot-stop, clear or end.
    start: float | None = None
    top = 30 + 2 * LANE
    for t, kind, _ in events:
        if kind == "bot-start":
            start = float(t)
        elif kind in ("bot-stop", "clear", "end") and start is not None:
            x0, x1 = _x(start, duration), _x(float(t), duration)
            svg.append(
                f'<rect x="{x0:.1f}" y="{top + 10}" width="{max(1.0, x1 - x0):.1f}" '
                f'height="{LANE - 24}" fill="#68d391"><title>bot {start:.2f}-{t:.2f} s</title>'
                "</rect>"
            )
            start = None
    top = 30 + 3 * LANE
    for t in marks:
        x = _x(t, duration)
        svg.append(f'<line x1="{x:.1f}" y1="{top + 12}" x2="{x:.1f}" y2="{top + LANE - 16}" '
                   'stroke="#a0aec0" stroke-width="1"/>')  # fmt: skip
    top = 30 + 4 * LANE
    row = 0
    for t, kind, detail in events:
        x = _x(float(t), duration)
        if kind == "clear":
            svg.append(
                f'<line x1="{x:.1f}" y1="30" x2="{x:.1f}" y2="{30 + 5 * LANE}" stroke="#e53e3e" '
                f'stroke-width="2"><title>clear at {t:.3f} s; heard {detail} ms</title></line>'
            )
            svg.append(f'<text x="{x + 3:.1f}" y="{top + 14}" fill="#e53e3e">clear '
                       f"(heard {html.escape(str(detail))} ms)</text>")  # fmt: skip
        elif kind in ("duck", "hold", "unhold", "release"):
            color = {"duck": "#d69e2e", "hold": "#dd6b20"}.get(kind, "#38a169")
            what = {
                "duck": f"soft hold (ducked) at {detail} ms",
                "hold": f"held at {detail} ms",
                "unhold": f"back to the soft level; gap {detail} ms",
            }.get(kind, f"gap {detail} ms")
            svg.append(
                f'<line x1="{x:.1f}" y1="30" x2="{x:.1f}" y2="{30 + 5 * LANE}" stroke="{color}" '
                f'stroke-width="1" stroke-dasharray="4 3"><title>{kind} at {t:.3f} s; '
                f"{html.escape(what)}</title></line>"
            )
        elif kind in ("dtmf", "said-caller", "said-bot", "results", "end"):
            row = (row + 1) % 3
            color = {"said-caller": "#2b6cb0", "said-bot": "#2f855a"}.get(kind, "#4a5568")
            label = html.escape(f"{kind}: {detail}"[:60])
            svg.append(f'<text x="{x:.1f}" y="{top + 26 + row * 11}" fill="{color}">{label}</text>')
    for second in range(int(duration) + 1):
        x = _x(second, duration)
        svg.append(f'<line x1="{x:.1f}" y1="{30 + 5 * LANE}" x2="{x:.1f}" '
                   f'y2="{36 + 5 * LANE}" stroke="#333"/>')  # fmt: skip
        if int(duration) < 40 or second % 5 == 0:
            svg.append(f'<text x="{x - 4:.1f}" y="{50 + 5 * LANE}">{second}s</text>')
    svg.append("</svg>")

    rows = []
    for name, values in sorted(record.get("metrics", {}).items()):
        shown = ", ".join(f"{v * 1000:.0f} ms" if v < 60 else f"{v:.1f}" for v in values)
        rows.append((name, shown))
    if record.get("clear_latencies"):
        shown = ", ".join(f"{v * 1000:.2f} ms" for v in record["clear_latencies"])
        rows.append(("interrupt -> clear written", shown))
    if record.get("heard_at_clear"):
        shown = ", ".join(f"{v:.0f} ms" for v in record["heard_at_clear"])
        rows.append(("heard at each clear", shown))
    if record.get("hold_gaps"):
        shown = ", ".join(f"{v * 1000:.0f} ms" for v in record["hold_gaps"])
        rows.append(("silence heard at each deep hold's end (hold gap)", shown))
    if record.get("ducks"):
        shown = ", ".join(f"{db:.0f} dB for {s * 1000:.0f} ms" for db, s in record["ducks"])
        rows.append(("ducks (depth, length)", shown))
    for key in ("frames_in", "frames_out", "marks_sent", "marks_echoed", "stale_marks",
                "clears", "holds", "soft_holds", "deep_holds", "commits", "releases",
                "protocol_violations",
                "engine_errors"):  # fmt: skip
        rows.append((key.replace("_", " "), str(record.get(key, ""))))
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    transcript = "".join(
        f"<li><b>{html.escape(role)}</b>: {html.escape(text)}</li>"
        for role, text in record.get("transcript", [])
    )
    results = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in record.get("results", {}).items()
    )
    title = html.escape(f"call {record.get('call_id', '?')}")
    summary = html.escape(
        f"{record.get('caller', '')} -> {record.get('called', '')}, route "
        f"{record.get('route') or '-'}, engine {record.get('engine', '')}, outcome "
        f"{record.get('outcome', '')} ({record.get('end_reason', '')})"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:20px}th{text-align:left;padding-right:16px}"
        "</style></head><body>"
        f"<h1>{title}</h1><p>{summary}</p>{''.join(svg)}"
        f"<h2>Measurements</h2><table>{table}</table>"
        f"<h2>Results</h2><table>{results or '<tr><td>none</td></tr>'}</table>"
        f"<h2>Transcript</h2><ul>{transcript or '<li>none</li>'}</ul></body></html>"
    )
