"""``overtalk engine check NAME``: one real session with a hosted engine, reported step by step.

An operator runs it once with real credentials before pointing a number at the bot. It opens a
session with a dial-plan route's settings (or the engine's defaults), speaks to the model with
synthesised caller speech (Piper, as the simulator does), plays the gateway's part (paces the
bot's audio at 1x as a phone would, reports the heard position after an interruption), and
prints each step:

1. connected, or why not (the vendor's own words: HTTP status on the upgrade, close reason);
2. session accepted (the vendor took the session settings);
3. first audio back, and its latency from the end of the caller's first line;
4. the transcripts of both sides;
5. a tool round trip: the model is asked to call ``record_result`` (name ``engine_check``);
6. an interruption: the caller talks over the reply; the engine must stop it (``Interrupt``)
   and, where the protocol keeps a transcript of what was said (OpenAI), truncate it at what
   the caller heard.

Steps a protocol has no part in (Moshi has no tools and stops by itself) are shown as ``n/a``.
The command exits 1 when any step failed, with the vendor's error text in the report.

The check drives an :class:`~engine.base.EngineSession` directly (the engine interface, not a
carrier), so it needs no gateway running and no phone number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from engine.base import (
    Audio,
    CallContext,
    Commit,
    Engine,
    EngineFailed,
    EngineSession,
    EngineUnavailable,
    Hold,
    Interrupt,
    Metric,
    Release,
    Result,
    Transcript,
)
from gateway.audio.g711 import ulaw_decode, ulaw_encode
from gateway.audio.resample import StreamResampler

__all__ = [
    "CHECK_RESULT",
    "CheckReport",
    "Step",
    "check_engine",
    "register",
    "route_parameters",
    "run_check",
]

#: The result name the model is asked to record.
CHECK_RESULT = "engine_check"
#: What the simulated caller says: a request for the tool, then words over the reply.
CALLER_LINES = (
    "Hello, this is a line check. Please record the result now, and then tell me, in a few "
    "sentences, what you can help callers with.",
    "Sorry to interrupt. Thank you, that is all.",
)
_CHECK_PROMPT = (
    "This call is an automated line check. When the caller asks you to record the result, "
    f"call record_result with name {CHECK_RESULT} and value passed, then answer the caller."
)
#: Engines whose protocol has no function calls, or no interruption to report.
NO_TOOLS = frozenset({"moshi"})
NO_INTERRUPTION = frozenset({"moshi"})

FRAME_MS = 20
#: How long the bot may take to answer, and how long a reply plays before the caller cuts in.
ANSWER_TIMEOUT_S = 10.0
CUT_IN_AFTER_MS = 400.0
#: Quiet before the caller speaks (a greeting plays out first) and after the last line.
LEAD_IN_S = 0.6
TAIL_S = 1.5
GREETING_TIMEOUT_S = 8.0


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the report: ``ok`` is None where the step does not apply."""

    name: str
    ok: bool | None
    detail: str


@dataclass(slots=True)
class CheckReport:
    engine: str
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok is not False for step in self.steps)

    def add(self, name: str, ok: bool | None, detail: str) -> None:
        self.steps.append(Step(name, ok, detail))

    def format(self) -> str:
        lines = [f"overtalk engine check {self.engine}"]
        for step in self.steps:
            mark = "n/a " if step.ok is None else ("ok  " if step.ok else "FAIL")
            lines.append(f"  {mark} {step.name:<18} {step.detail}")
        lines.append("result: " + ("passed" if self.ok else "FAILED"))
        return "\n".join(lines)


def route_parameters(
    plan_path: str | Path, route: str | None = None
) -> tuple[str | None, dict[str, str]]:
    """The engine and the call parameters of the first ``bot`` action of ``route`` (the
    plan's default route when None).

    Raises ValueError naming what is missing (a broken plan's problems, an unknown route, a
    route with no bot).
    """
    from engine.registry import ENGINE_NAMES
    from gateway.dialplan import BotAction, DialPlanInvalid, load

    try:
        plan = load(plan_path, ENGINE_NAMES)
    except DialPlanInvalid as exc:
        raise ValueError(f"the dial plan is broken:\n{exc}") from None
    route = route or plan.default_route
    compiled = plan.routes.get(route)
    if compiled is None:
        raise ValueError(f"no route {route!r} in {plan_path}; routes: {', '.join(plan.routes)}")
    actions = [branch.action for branch in compiled.branches] + [compiled.otherwise]
    bot = next((a for a in actions if isinstance(a, BotAction)), None)
    if bot is None:
        raise ValueError(f"route {route!r} answers with no bot")
    return bot.engine, bot.context_parameters()


def _with_check_tool(engine: str, params: Mapping[str, str]) -> dict[str, str]:
    """The route's parameters plus what the tool step needs (record_result, its name)."""
    out = dict(params)
    if engine in NO_TOOLS:
        return out
    results = [r.strip() for r in out.get("results", "").split(",") if r.strip()]
    out["results"] = ", ".join([*results, CHECK_RESULT] if CHECK_RESULT not in results else results)
    tools = [t.strip() for t in out.get("tools", "").split(",") if t.strip()]
    if tools and "record_result" not in tools:
        out["tools"] = ", ".join([*tools, "record_result"])
    out["prompt"] = f"{out['prompt']}\n{_CHECK_PROMPT}" if out.get("prompt") else _CHECK_PROMPT
    return out


@functools.cache
def caller_speech() -> tuple[bytes, ...]:
    """The caller's lines as 8 kHz int16 PCM, synthesised once per process."""
    from gateway.sim.script import synthesize

    return tuple(synthesize(line) for line in CALLER_LINES)


def _why_not(exc: EngineUnavailable) -> tuple[bool, str]:
    """Whether the socket was up when the session failed, and the vendor's words."""
    from websockets.exceptions import ConnectionClosed

    from engine.remote.errors import VendorError

    cause = exc.__cause__
    connected = isinstance(cause, VendorError | ConnectionClosed)
    text = str(exc)
    lower = text.lower()
    if any(w in lower for w in ("401", "403", "api key", "api_key", "unauthor", "permission")):
        hint = "authentication: check the API key"
    elif any(w in lower for w in ("404", "model", "not found")):
        hint = "model or endpoint: check the model name and the URL"
    elif any(w in lower for w in ("location", "region", "country")):
        hint = "region: the service is not offered where this runs"
    elif not connected:
        hint = "network: check the URL and that this host reaches it"
    else:
        hint = "the vendor refused the session settings"
    return connected, f"{text} ({hint})"


class _Listener:
    """Collects the session's events and plays its audio out at 1x, as a phone would."""

    def __init__(self, session: EngineSession, clock: Callable[[], float]) -> None:
        self.session = session
        self.clock = clock
        self.bytes_per_ms = (
            8.0 if session.audio_format == "mulaw" else 2 * session.sample_rate / 1000
        )
        self.emitted_ms = 0.0  # output timeline: audio received
        self.played_ms = 0.0  # how far the "phone" has played it
        self.mulaw = session.audio_format == "mulaw"
        #: When each audible chunk came (a check is short): Moshi streams silence between
        #: its words, so audio alone does not mean the model spoke.
        self.voiced: list[float] = []
        self.quiet: list[float] = []
        self.transcripts: list[Transcript] = []
        self.results: list[Mapping[str, str]] = []
        self.interrupts: list[float] = []
        self.held_at: float | None = None  # an open hold: when it began
        self.vendor_errors = 0
        self.failure = ""

    async def run(self) -> None:
        try:
            async for event in self.session.events():
                now = self.clock()
                match event:
                    case Audio(pcm=pcm):
                        (self.voiced if self._loud(pcm) else self.quiet).append(now)
                        self.emitted_ms += len(pcm) / self.bytes_per_ms
                    case Hold():
                        if self.held_at is None:
                            self.held_at = now  # the phone stops playing, keeping its place
                    case Release():
                        self.held_at = None
                    case Commit() | Interrupt():
                        # Stopped when it went quiet: at the hold, if one came first.
                        self.interrupts.append(now if self.held_at is None else self.held_at)
                        self.held_at = None
                        self.emitted_ms = self.played_ms  # the phone drops what is queued
                        self.session.played(int(self.played_ms))
                    case Transcript():
                        self.transcripts.append(event)
                    case Result(values=values):
                        self.results.append(values)
                    case Metric(name="vendor_errors"):
                        self.vendor_errors += 1
                    case _:
                        pass
        except EngineFailed as exc:
            self.failure = str(exc)

    def _loud(self, pcm: bytes) -> bool:
        samples = np.frombuffer(ulaw_decode(pcm) if self.mulaw else pcm, dtype="<i2")
        return bool(len(samples)) and float(np.sqrt(np.mean(samples.astype(np.float32) ** 2))) > 300

    def spoke_since(self, t: float) -> bool:
        return bool(self.voiced) and self.voiced[-1] > t

    def tick(self, ms: float) -> None:
        """One frame of wall time went by: the phone played up to ``ms`` more of the bot (none
        during a hold)."""
        if self.held_at is not None:
            return
        self.played_ms = min(self.emitted_ms, self.played_ms + ms)

    @property
    def playing(self) -> bool:
        return self.emitted_ms > self.played_ms + 1


class _Mouth:
    """Caller audio (8 kHz int16) to the session's rate and format, in 20 ms frames."""

    def __init__(self, session: EngineSession) -> None:
        self.session = session
        self.rate = session.sample_rate
        self.mulaw = session.audio_format == "mulaw"
        self.resampler = StreamResampler(8000, self.rate) if self.rate != 8000 else None
        self.silence = b"\x00\x00" * 160

    def frames(self, pcm: bytes) -> list[bytes]:
        step = 2 * 8000 * FRAME_MS // 1000
        return [pcm[i : i + step].ljust(step, b"\x00") for i in range(0, len(pcm), step)]

    def send(self, frame: bytes) -> None:
        if self.resampler is not None:
            frame = self.resampler.process(frame)
        if self.mulaw:
            frame = ulaw_encode(frame)
        if frame:
            self.session.send_audio(frame)


async def check_engine(
    engine: Engine,
    params: Mapping[str, str],
    *,
    speech: Sequence[bytes] | None = None,
    greeting_expected: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> CheckReport:
    """Run the check against ``engine`` with a route's ``params``; see the module docstring.

    ``speech`` is the caller's two lines (8 kHz int16); Piper speaks :data:`CALLER_LINES` when
    it is None.
    """
    name = engine.name
    report = CheckReport(name)
    lines = tuple(speech) if speech is not None else caller_speech()
    context = CallContext(
        f"check-{secrets.token_hex(4)}", direction="outbound-api",
        parameters=_with_check_tool(name, params),
    )  # fmt: skip
    opened = clock()
    try:
        session = await engine.open(context)
    except EngineUnavailable as exc:
        connected, why = _why_not(exc)
        report.add("connected", connected, "yes" if connected else why)
        report.add("session accepted", False, why if connected else "not reached")
        return report
    report.add("connected", True, "yes")
    report.add("session accepted", True, f"ready in {(clock() - opened) * 1000:.0f} ms")
    listener = _Listener(session, clock)
    reader = asyncio.get_running_loop().create_task(listener.run(), name="engine-check-events")
    try:
        ended, cut_at = await _converse(session, listener, lines, greeting_expected, clock)
    finally:
        await session.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(reader, 2.0)
    _judge(report, session, listener, ended, cut_at)
    return report


async def _converse(
    session: EngineSession,
    listener: _Listener,
    lines: Sequence[bytes],
    greeting_expected: bool,
    clock: Callable[[], float],
) -> tuple[float, float | None]:
    """Speak the caller's part in real time; returns when line one ended and line two began."""
    mouth = _Mouth(session)
    frame_s = FRAME_MS / 1000
    next_at = clock()

    async def frame(pcm: bytes) -> None:
        nonlocal next_at
        mouth.send(pcm)
        listener.tick(FRAME_MS)
        next_at += frame_s
        await asyncio.sleep(max(0.0, next_at - clock()))

    async def quiet_until(done: Callable[[], bool], limit_s: float) -> None:
        deadline = clock() + limit_s
        while not done() and clock() < deadline and not listener.failure:
            await frame(mouth.silence)

    await quiet_until(lambda: False, LEAD_IN_S)
    if greeting_expected:  # let the greeting play out before speaking
        await quiet_until(lambda: bool(listener.voiced), GREETING_TIMEOUT_S)
        await quiet_until(lambda: not listener.playing, GREETING_TIMEOUT_S)
    for pcm in mouth.frames(lines[0]):
        await frame(pcm)
    ended = clock()
    await quiet_until(lambda: listener.spoke_since(ended), ANSWER_TIMEOUT_S)
    reply_from = listener.played_ms
    await quiet_until(
        lambda: listener.played_ms - reply_from >= CUT_IN_AFTER_MS or not listener.playing,
        ANSWER_TIMEOUT_S,
    )
    speaking = listener.playing and listener.spoke_since(clock() - 0.2)
    cut_at = clock() if speaking else None
    for pcm in mouth.frames(lines[1]):
        await frame(pcm)
    await quiet_until(lambda: False, TAIL_S)
    return ended, cut_at


def _judge(
    report: CheckReport,
    session: EngineSession,
    listener: _Listener,
    ended: float,
    cut_at: float | None,
) -> None:
    name = report.engine
    protocol: Any = getattr(session, "protocol", None)
    replies = [t for t in listener.transcripts if t.role == "bot"]
    answer = next((t for t in listener.voiced if t > ended), None)
    if not listener.voiced:
        report.add("first audio back", False, listener.failure or "no audio from the model")
    elif answer is None:
        report.add("first audio back", False, "the model did not answer the caller")
    else:
        latency = (answer - ended) * 1000
        report.add("first audio back", True, f"{latency:.0f} ms after the caller stopped")
    caller = " | ".join(t.text for t in listener.transcripts if t.role == "caller") or "(none)"
    bot = " | ".join(t.text for t in replies) or "(none)"
    report.add("transcripts", bool(replies), f"caller: {caller[:160]}; bot: {bot[:160]}")
    if name in NO_TOOLS:
        report.add("tool round trip", None, f"{name} offers no function calls")
    else:
        recorded = [r.get(CHECK_RESULT) for r in listener.results if CHECK_RESULT in r]
        if recorded:
            report.add("tool round trip", True, f"record_result {CHECK_RESULT}={recorded[-1]}")
        else:
            report.add("tool round trip", False, "the model did not call record_result")
    if name in NO_INTERRUPTION:
        quiet = next((t for t in listener.quiet if cut_at is not None and t > cut_at), None)
        went = (
            f"; it went quiet {(quiet - cut_at) * 1000:.0f} ms after the caller cut in"
            if quiet is not None and cut_at is not None
            else ""
        )
        report.add("interruption", None, f"{name} decides itself when talked over{went}")
    elif cut_at is None:
        report.add("interruption", False, "the reply ended before the caller could cut in")
    else:
        report.add("interruption", *_interruption(listener, protocol, cut_at))
    errors = list(getattr(protocol, "errors", []) or [])
    fatal = getattr(protocol, "fatal", None)
    if fatal is not None:
        errors.append(str(fatal))
    if listener.failure:
        errors.append(listener.failure)
    if errors:
        report.add("vendor errors", False, "; ".join(errors)[:500])
    elif listener.vendor_errors:
        report.add("vendor errors", False, f"{listener.vendor_errors} error events")


def _interruption(listener: _Listener, protocol: Any, cut_at: float) -> tuple[bool, str]:
    after = [t for t in listener.interrupts if t >= cut_at]
    if not after:
        return False, "the caller talked over the reply and it was not stopped"
    detail = f"stopped {(after[0] - cut_at) * 1000:.0f} ms after the caller cut in"
    truncations = getattr(protocol, "truncations", None)
    if truncations is None:
        return True, detail + " (this protocol keeps no unheard audio: nothing to truncate)"
    if not truncations:
        return False, detail + ", but nothing was truncated"
    item, end_ms = truncations[-1]
    return True, detail + f"; truncated {item} at {end_ms} ms (what the caller heard)"


async def run_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """The ``overtalk engine check`` command: 0 passed, 1 a step failed, 2 cannot start."""
    from engine.registry import create_engine
    from gateway.config import load_settings

    out = out or sys.stdout
    params: dict[str, str] = {}
    try:
        if args.dialplan:
            named, params = route_parameters(args.dialplan, args.route)
            if named is not None and named != args.name:
                raise ValueError(f"the route's bot uses engine {named!r}, not {args.name!r}")
        elif args.route:
            raise ValueError("--route needs --dialplan")
        settings = load_settings(args.config, {})
        options = dict(settings.engine_options) if settings.engine == args.name else {}
        engine = create_engine(args.name, **options)
    except ValueError as exc:
        print(f"overtalk: engine check: {exc}", file=sys.stderr)
        return 2
    try:
        report = await check_engine(engine, params, greeting_expected=bool(params.get("greeting")))
    finally:
        await engine.aclose()
    print(report.format(), file=out)
    return 0 if report.ok else 1


def register(commands: Any) -> None:
    """Add ``engine check`` to the ``overtalk`` command's subparsers."""
    engine = commands.add_parser("engine", help="check a hosted engine before calls reach it")
    sub = engine.add_subparsers(dest="engine_command", required=True)
    check = sub.add_parser(
        "check",
        help="open one real session (credentials from the environment), speak to the model "
        "and report: connected, session accepted, first audio and latency, transcripts, a "
        "tool round trip, an interruption; exits 1 with the vendor's words if any fails",
    )
    check.add_argument("name", help="engine name: openai, gemini, moshi")
    check.add_argument("--dialplan", help="take the bot's settings from this dial plan")
    check.add_argument("--route", help="the route whose bot to check (default: the plan's)")
    check.add_argument("--config", help="TOML config file (engine options for NAME)")
    check.set_defaults(handler=lambda args: asyncio.run(run_check(args)))
