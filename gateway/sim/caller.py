"""The simulated caller's asyncio adapter: one phone call to a running gateway, over the wire.

:func:`place_call` does what Twilio does for an inbound call: POST the signed voice webhook,
read the TwiML answer, open the signed Media Streams websocket named by ``<Connect><Stream>``,
stream the caller's 20 ms mu-law frames in real time and play the gateway's audio out through
the simulated Twilio buffer (:class:`~gateway.sim.media.MediaStreamSim`), echoing marks as
playback reaches them. The protocol and timing logic live in the pure modules; this module only
pumps bytes and reads the clock.

Two tasks per call, both owned here: the sender ticks every 20 ms on an absolute schedule (frame
k is due at t0 + k * 20 ms, so a late tick never shifts later frames) and the receiver stamps each
gateway message on arrival. Both advance the playout and write mark echoes at once, so an echo
is never more than one tick late, and echoes caused by ``clear`` go out immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import ssl
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
import numpy as np
import soundfile
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from gateway.sim.media import (
    SAMPLE_RATE,
    LogEntry,
    MediaStreamSim,
    PlayedAudio,
    StreamSimBase,
    new_sid,
    ulaw_to_pcm,
)
from gateway.sim.report import CallReport, TwimlVerb, resolve_turns
from gateway.sim.script import BotActivity, CallerScript, ScriptRunner, is_voiced

__all__ = ["FRAME_S", "LATE_S", "parse_twiml", "place_call"]

#: One Twilio frame.
FRAME_S = 0.020
#: A frame sent this long after its due time counts as late in the report.
LATE_S = 0.005
#: Verbs Twilio plays and moves past; the sim skips them (it has nothing to play them to).
_PASS_THROUGH = frozenset({"Say", "Play", "Pause"})


def parse_twiml(text: str) -> list[TwimlVerb]:
    """The verbs of a TwiML ``<Response>``, children nested. Raises ValueError if it is not one."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"TwiML is not well-formed XML: {exc}") from exc
    if root.tag != "Response":
        raise ValueError(f"TwiML root is <{root.tag}>, expected <Response>")
    return [_verb(el) for el in root]


def _verb(el: ET.Element) -> TwimlVerb:
    return TwimlVerb(el.tag, dict(el.attrib), (el.text or "").strip(), tuple(_verb(c) for c in el))


async def place_call(
    gateway_url: str,
    script: CallerScript,
    *,
    auth_token: str | None,
    public_url: str | None = None,
    caller: str = "+15005550006",
    called: str = "+15005550001",
    record: Path | None = None,
    account_sid: str | None = None,
    voice_path: str = "/twilio/voice",
    max_duration_s: float = 600.0,
    keep_media_log: bool = True,
) -> CallReport:
    """Place one inbound call to the gateway at ``gateway_url`` and report what happened.

    ``public_url`` is the address Twilio would use (what the gateway signs against); it defaults
    to ``gateway_url``. With ``auth_token`` None no signatures are sent. ``record`` writes a
    stereo 8 kHz WAV: left the caller as sent, right the bot as played out. Never raises for
    gateway misbehaviour: failures end up in the report (``report.failed``, ``violations``).
    """
    base = gateway_url.rstrip("/")
    public = (public_url or gateway_url).rstrip("/")
    report = CallReport(
        call_sid=new_sid("CA"),
        account_sid=account_sid or new_sid("AC"),
        caller=caller,
        called=called,
    )
    validator = RequestValidator(auth_token) if auth_token is not None else None
    t_begin = time.monotonic()

    # 1. The voice webhook, form-encoded and signed over the public URL, as Twilio sends it.
    params = _webhook_params(report)
    voice_url = public + voice_path
    headers = {"User-Agent": "TwilioProxy/1.1"}
    if validator is not None:
        headers["X-Twilio-Signature"] = validator.compute_signature(voice_url, params)
    try:
        async with httpx.AsyncClient(timeout=10.0, verify=tls_context()) as client:
            resp = await client.post(base + voice_path, data=params, headers=headers)
    except httpx.HTTPError as exc:
        return _fail(report, f"voice webhook failed: {type(exc).__name__}: {exc}", t_begin)
    report.http_status = resp.status_code
    if resp.status_code != 200:
        return _fail(report, f"voice webhook answered HTTP {resp.status_code}", t_begin)
    try:
        report.twiml = parse_twiml(resp.text)
    except ValueError as exc:
        report.violations.append(f"voice webhook: {exc}")
        return _fail(report, str(exc), t_begin)

    # 2. Follow the TwiML to its <Connect><Stream>, if any.
    stream, after = _find_stream(report)
    if stream is None:
        report.ended_by = "twiml"
        report.duration_s = time.monotonic() - t_begin
        return report
    stream_url = _stream_url(stream, voice_url, report)
    split = urlsplit(stream_url)
    ws_scheme = "wss" if urlsplit(base).scheme == "https" else "ws"
    ws_url = urlunsplit((ws_scheme, urlsplit(base).netloc, split.path or "/", "", ""))
    ws_headers = (
        {"X-Twilio-Signature": validator.compute_signature(stream_url, {})} if validator else {}
    )
    custom = {
        p.attributes.get("name", ""): p.attributes.get("value", "")
        for p in stream.children
        if p.verb == "Parameter"
    }
    sim = MediaStreamSim(
        account_sid=report.account_sid,
        call_sid=report.call_sid,
        custom_parameters=custom,
        keep_media_log=keep_media_log,
    )
    report.stream_sid = sim.stream_sid

    # 3. The Media Stream.
    try:
        async with open_media(ws_url, ws_headers) as ws:
            report.streamed = True
            pump = CallPump(ws, sim, ScriptRunner(script), max_duration_s, record is not None)
            await pump.run()
    except InvalidStatus as exc:
        return _fail(report, f"media websocket refused: HTTP {exc.response.status_code}", t_begin)
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        return _fail(report, f"media websocket failed: {type(exc).__name__}: {exc}", t_begin)

    pump.fill(report)
    if report.ended_by == "gateway" and after:
        report.notes.append(
            "gateway closed the stream; Twilio would now run: " + ", ".join(v.verb for v in after)
        )
    if record is not None:
        pump.write_recording(record)
        report.record_path = record
    return report


def open_media(url: str, headers: dict[str, str]) -> connect:
    """Open a Media Streams websocket the way Twilio does (inbound and outbound legs alike)."""
    return connect(
        url,
        ssl=tls_context() if url.startswith("wss:") else None,
        additional_headers=headers,
        compression=None,  # Twilio does not negotiate permessage-deflate
        ping_interval=None,
        max_size=2**24,
        open_timeout=10,
        close_timeout=2,
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs ~20 ms, too much per call
    when the simulator is a load generator placing hundreds of calls."""
    return httpx.create_ssl_context()


def _webhook_params(report: CallReport) -> dict[str, str]:
    # Blank geo fields are sent as Twilio sends them: a validator that drops blank form
    # fields computes the wrong signature (REFERENCE.md 1.6 pitfalls).
    return {
        "AccountSid": report.account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": report.call_sid,
        "CallStatus": "ringing",
        "Called": report.called,
        "CalledCity": "",
        "CalledCountry": "US",
        "CalledState": "",
        "CalledZip": "",
        "Caller": report.caller,
        "CallerCity": "",
        "CallerCountry": "US",
        "CallerState": "",
        "CallerZip": "",
        "Direction": "inbound",
        "From": report.caller,
        "FromCity": "",
        "FromCountry": "US",
        "FromState": "",
        "FromZip": "",
        "To": report.called,
        "ToCity": "",
        "ToCountry": "US",
        "ToState": "",
        "ToZip": "",
    }


def _fail(report: CallReport, why: str, t_begin: float) -> CallReport:
    report.ended_by = "error"
    report.error = why
    report.duration_s = time.monotonic() - t_begin
    return report


def _find_stream(report: CallReport) -> tuple[TwimlVerb | None, list[TwimlVerb]]:
    """Run the TwiML as far as the sim can: the ``<Stream>`` to open and the verbs after it."""
    for i, verb in enumerate(report.twiml):
        if verb.verb in _PASS_THROUGH:
            continue
        if verb.verb == "Connect":
            stream = next((c for c in verb.children if c.verb == "Stream"), None)
            if stream is not None:
                return stream, report.twiml[i + 1 :]
            report.notes.append("<Connect> without <Stream>: nothing the sim can open")
            return None, []
        if verb.verb == "Start":
            report.notes.append("<Start><Stream> is unidirectional: the sim only does <Connect>")
        return None, []
    return None, []


def _stream_url(stream: TwimlVerb, voice_url: str, report: CallReport) -> str:
    """The absolute ``wss://`` URL Twilio would dial and sign, with TwiML mistakes recorded."""
    raw = stream.attributes.get("url", "")
    if not raw:
        report.violations.append("twiml: <Stream> has no url")
    url = urljoin(voice_url, raw)
    split = urlsplit(url)
    if split.scheme in ("http", "https") and not urlsplit(raw).scheme:
        # A relative url resolves against the webhook; Twilio dials it as a websocket.
        split = split._replace(scheme="wss" if split.scheme == "https" else "ws")
    if split.scheme == "ws" and urlsplit(voice_url).scheme == "http":
        # A gateway reached over plain http (local development, no public URL) cannot have
        # TLS either; Twilio could not call it at all, so this is worth a note, not a failure.
        report.notes.append(f"<Stream url> is ws:// ({raw}); real Twilio only dials wss://")
    elif split.scheme != "wss":
        report.violations.append(f"twiml: <Stream url> must be wss:// (got {raw!r})")
    if split.query:
        report.violations.append(
            f"twiml: <Stream url> cannot carry a query string (got {raw!r}); use <Parameter>"
        )
    return urlunsplit((split.scheme, split.netloc, split.path, "", ""))


class CallPump:
    """Moves one call's messages between the socket and the pure sim; owns its two tasks.

    Any carrier's stand-in plugs in: ``sim`` is a :class:`~gateway.sim.media.StreamSimBase`
    (Twilio's :class:`~gateway.sim.media.MediaStreamSim`, or one of ``gateway.sim.carriers``).
    """

    def __init__(
        self,
        ws: ClientConnection,
        sim: StreamSimBase,
        runner: ScriptRunner,
        max_duration_s: float,
        recording: bool,
    ) -> None:
        self.ws = ws
        self.sim = sim
        self.runner = runner
        self.bot = BotActivity()
        self.max_duration_s = max_duration_s
        self.t0 = 0.0
        self.t_end = 0.0
        self.frames_sent = 0
        self.frames_late = 0
        self.max_lateness = 0.0
        self.voiced_arrivals: list[float] = []
        self.clear_arrivals: list[float] = []
        self.hung_up = False
        self.gateway_closed = False
        #: Set by the carrier's REST stand-in: the call was hung up or transferred away.
        self.ended_by_carrier = ""
        self.timed_out = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.recording = recording
        self.sent_audio: list[tuple[float, bytes]] = []
        self.heard_audio: list[PlayedAudio] = []

    async def run(self) -> None:
        ws, sim = self.ws, self.sim
        self.t0 = t0 = time.monotonic()
        for message in sim.open_messages(t0):
            await ws.send(message, text=True)
        receiver = asyncio.create_task(self._receive())
        try:
            await self._send_frames()
        except ConnectionClosed:
            self.gateway_closed = not self.hung_up
        finally:
            self.t_end = time.monotonic()
            if not self.gateway_closed:
                self.hung_up = True
                last = sim.stop(self.t_end)
                if last is not None:
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send(last, text=True)
            await ws.close()
            await receiver

    async def _send_frames(self) -> None:
        ws, sim, runner, bot = self.ws, self.sim, self.runner, self.bot
        t0 = self.t0
        deadline = t0 + self.max_duration_s
        text_media = not sim.binary_media
        k = 0
        while not self.gateway_closed and not self.ended_by_carrier:
            due = t0 + k * FRAME_S
            now = time.monotonic()
            if now < due:
                await asyncio.sleep(due - now)
                if self.gateway_closed:
                    return
                now = time.monotonic()
            late = now - due
            if late > LATE_S:
                self.frames_late += 1
                self.max_lateness = max(self.max_lateness, late)
            if now >= deadline:
                self.timed_out = True
                return
            await self._pump(now)
            out = runner.next_frame(now, bot)
            for digit in out.dtmf:
                await ws.send(sim.dtmf(digit, now), text=True)
            if runner.done:
                return
            await ws.send(sim.media(out.ulaw, due), text=text_media)
            self.frames_sent += 1
            if self.recording:
                self.sent_audio.append((now, out.ulaw))
            k += 1

    def end_by_carrier(self, why: str) -> None:
        """The carrier ended the call (a REST hang-up or transfer): the next tick sends the
        carrier's stop and closes, as the carrier would."""
        self.ended_by_carrier = why

    async def _receive(self) -> None:
        ws, sim = self.ws, self.sim
        try:
            async for message in ws:
                now = time.monotonic()
                inbound = sim.receive(message, now, binary=isinstance(message, bytes))
                if inbound.event == "media":
                    if is_voiced(inbound.payload):
                        self.voiced_arrivals.append(now)
                elif inbound.event == "clear":
                    self.clear_arrivals.append(now)
                await self._pump(now)
        except ConnectionClosed:
            pass
        finally:
            if not self.hung_up:
                self.gateway_closed = True
            self.close_code, self.close_reason = ws.close_code, ws.close_reason or ""

    async def _pump(self, now: float) -> None:
        """Play out to ``now``; write the mark echoes that are due, serialised just in time."""
        sim = self.sim
        playout = sim.advance(now)
        if playout.audio:
            self.bot.feed(playout.audio)
            if self.recording:
                self.heard_audio.extend(playout.audio)
        for echo in playout.echoes:
            if self.hung_up:
                return
            await self.ws.send(sim.echo_message(echo), text=True)

    def fill(self, report: CallReport) -> None:
        sim, t0 = self.sim, self.t0
        report.ended_by = (
            "gateway"
            if self.gateway_closed
            else "carrier"
            if self.ended_by_carrier
            else "timeout"
            if self.timed_out
            else "caller"
        )
        if self.ended_by_carrier:
            report.notes.append(self.ended_by_carrier)
        report.close_code, report.close_reason = self.close_code, self.close_reason
        report.duration_s = round(self.t_end - t0, 3)
        report.frames_sent = self.frames_sent
        report.frames_late = self.frames_late
        report.max_lateness_ms = round(self.max_lateness * 1000, 2)
        report.dtmf_sent = self.runner.dtmf_sent
        report.media_received = sim.media_received
        report.marks_received = sim.marks_received
        report.clears_received = sim.clears_received
        report.marks_echoed = sim.marks_echoed
        report.bot_audio_played_s = round(sim.bytes_played / SAMPLE_RATE, 3)
        report.bot_audio_cleared_s = round(sim.bytes_cleared / SAMPLE_RATE, 3)
        report.violations.extend(sim.violations)
        report.notes.extend(self.runner.notes)
        report.turns = resolve_turns(
            self.runner.turns, self.voiced_arrivals, self.clear_arrivals, t0
        )
        report.events = [LogEntry(e.time - t0, e.kind, e.detail) for e in sim.log]

    def write_recording(self, path: Path) -> None:
        """Stereo 8 kHz 16-bit WAV on the sim clock: left caller as sent, right bot as heard."""
        left = _place(self.sent_audio, self.t0)
        right = _place([(p.time, p.ulaw) for p in self.heard_audio], self.t0)
        n = max(len(left), len(right))
        stereo = np.zeros((n, 2), dtype=np.int16)
        stereo[: len(left), 0] = left
        stereo[: len(right), 1] = right
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(os.fspath(path), stereo, SAMPLE_RATE, subtype="PCM_16")


def _place(pieces: list[tuple[float, bytes]], t0: float) -> np.ndarray:
    """Lay timed mu-law pieces on one int16 track.

    Each piece starts at its time, but never before the previous one ended: a frame sent late
    and the ones caught up behind it are shifted rather than overwritten, so nothing is lost.
    """
    if not pieces:
        return np.zeros(0, dtype=np.int16)
    spans = []
    end = 0
    for t, ulaw in pieces:
        start = max(end, round((t - t0) * SAMPLE_RATE))
        spans.append((start, ulaw))
        end = start + len(ulaw)
    track = np.zeros(end, dtype=np.int16)
    for start, ulaw in spans:
        track[start : start + len(ulaw)] = np.frombuffer(ulaw_to_pcm(ulaw), dtype="<i2")
    return track
