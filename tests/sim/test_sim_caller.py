"""The simulated caller end to end, against a stand-in gateway on a real uvicorn socket.

The stand-in plays a tiny bot the way the real gateway talks to Twilio: it checks both
signatures, waits for the caller's utterance to end (200 ms of silence), then sends the same
audio back at once (faster than real time, as a gateway with a lead does) as 20 ms ``media``
messages, each followed by a ``mark``. When the caller speaks while its marks are still pending
it sends ``clear``: that is how the tests tell it to clear. DTMF ``#`` makes it hang up and ``9``
makes it send a malformed message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import orjson
import pytest
import soundfile
import uvicorn
from fastapi import FastAPI, Request, Response, WebSocket, WebSocketDisconnect
from simkit import audioop, tone
from twilio.request_validator import RequestValidator

from gateway.sim.caller import parse_twiml, place_call
from gateway.sim.media import LogKind
from gateway.sim.report import CallReport, TwimlVerb
from gateway.sim.script import CallerScript

REPO = Path(__file__).resolve().parents[2]
TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://example.test"
STREAM_URL = "wss://example.test/twilio/media"
CLOSED_LINE = "+15005550009"
ELSEWHERE_LINE = "+15005550010"
RELATIVE_LINE = "+15005550011"
PLAIN_WS_LINE = "+15005550012"
CONNECT_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
    f'<Stream url="{STREAM_URL}"><Parameter name="x" value="y"/></Stream>'
    "</Connect></Response>"
)
CLOSED_TWIML = (
    '<Response><Say voice="alice">We are closed.</Say>'
    '<Dial timeout="10"><Number>+15551234567</Number></Dial></Response>'
)
VOICED_RMS = 184  # -45 dBFS
END_OF_TURN_FRAMES = 10  # 200 ms of silence


@dataclass
class StandIn:
    """What the stand-in gateway saw, for the tests to assert on."""

    webhooks: list[dict[str, str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    marks_sent: list[str] = field(default_factory=list)
    marks_back: list[str] = field(default_factory=list)
    clears_sent: int = 0
    echoes_after_clear: list[str] = field(default_factory=list)


def make_gateway(state: StandIn) -> FastAPI:
    validator = RequestValidator(TOKEN)
    app = FastAPI()

    @app.post("/twilio/voice")
    async def voice(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(f"{PUBLIC}/twilio/voice", form, signature):
            state.rejected.append("voice")
            return Response(status_code=403)
        state.webhooks.append(form)
        twiml = CLOSED_TWIML if form.get("To") == CLOSED_LINE else CONNECT_TWIML
        if form.get("To") == ELSEWHERE_LINE:  # signed for another host than the one checked
            twiml = CONNECT_TWIML.replace("example.test", "elsewhere.test")
        if form.get("To") == RELATIVE_LINE:  # Twilio resolves it against the webhook URL
            twiml = CONNECT_TWIML.replace(STREAM_URL, "/twilio/media")
        if form.get("To") == PLAIN_WS_LINE:  # Twilio only dials wss://
            twiml = CONNECT_TWIML.replace("wss://", "ws://")
        return Response(twiml, media_type="application/xml")

    @app.websocket("/twilio/media")
    async def media(ws: WebSocket) -> None:
        if not validator.validate(STREAM_URL, {}, ws.headers.get("x-twilio-signature", "")):
            state.rejected.append("media")
            await ws.close(code=1008)
            return
        await ws.accept()
        await run_bot(ws, state)

    return app


async def run_bot(ws: WebSocket, state: StandIn) -> None:
    sid = ""
    heard: list[bytes] = []
    quiet = 0
    pending: set[str] = set()
    cleared = False
    try:
        while True:
            msg = orjson.loads(await ws.receive_text())
            state.received.append(msg)
            match msg["event"]:
                case "start":
                    sid = msg["start"]["streamSid"]
                case "mark":
                    name = msg["mark"]["name"]
                    state.marks_back.append(name)
                    pending.discard(name)
                    if cleared:
                        state.echoes_after_clear.append(name)
                case "dtmf" if msg["dtmf"]["digit"] == "#":
                    await ws.close(code=1000, reason="bot hung up")
                    return
                case "dtmf" if msg["dtmf"]["digit"] == "9":
                    await ws.send_text(json.dumps({"event": "media", "streamSid": "MZnope"}))
                case "media":
                    frame = base64.b64decode(msg["media"]["payload"])
                    voiced = audioop.rms(audioop.ulaw2lin(frame, 2), 2) > VOICED_RMS
                    if voiced and pending:
                        await ws.send_text(json.dumps({"event": "clear", "streamSid": sid}))
                        state.clears_sent += 1
                        cleared = True
                        pending.clear()
                    if voiced:
                        heard.append(frame)
                        quiet = 0
                    elif heard:
                        quiet += 1
                        if quiet >= END_OF_TURN_FRAMES:  # end of the caller's turn: reply
                            reply = f"r{len(state.marks_sent)}"  # r0 for the first reply
                            for k, chunk in enumerate(heard):
                                name = f"{reply}-{k}"
                                payload = base64.b64encode(chunk).decode()
                                await ws.send_text(
                                    json.dumps(
                                        {
                                            "event": "media",
                                            "streamSid": sid,
                                            "media": {"payload": payload},
                                        }
                                    )
                                )
                                await ws.send_text(
                                    json.dumps(
                                        {"event": "mark", "streamSid": sid, "mark": {"name": name}}
                                    )
                                )
                                state.marks_sent.append(name)
                                pending.add(name)
                            heard = []
                case "stop":
                    return
    except WebSocketDisconnect:
        return


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 on a free port in this event loop; yields its base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # a condition, polled: not a sleep that passes by luck
                if task.done():
                    task.result()
                    raise RuntimeError("stand-in gateway stopped before it started")
                await asyncio.sleep(0.005)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[str, StandIn]]:
    state = StandIn()
    async with serving(make_gateway(state)) as url:
        yield url, state


async def call(url: str, script: CallerScript, **kwargs: Any) -> CallReport:
    kwargs.setdefault("auth_token", TOKEN)
    kwargs.setdefault("public_url", PUBLIC)
    async with asyncio.timeout(20):
        return await place_call(url, script, **kwargs)


# ------------------------------------------------------------------------------------ tests


async def test_caller_call_measures_response_latency_and_echoes_marks(
    gateway: tuple[str, StandIn], tmp_path: Path
) -> None:
    url, state = gateway
    script = CallerScript().say(tone(300), "hello").wait_for_bot(silence_ms=200, timeout_s=5)
    record = tmp_path / "call.wav"
    report = await call(url, script.hang_up(), record=record)

    assert report.ok and report.ended_by == "caller" and report.streamed, report.format()
    # The webhook arrived signed over the public URL, with Twilio's fields.
    (form,) = state.webhooks
    assert form["CallSid"] == report.call_sid and form["Direction"] == "inbound"
    assert form["CallStatus"] == "ringing" and form["From"] == "+15005550006"
    assert state.rejected == []
    # The stream: connected, start with the TwiML parameters, media with rising numbers, stop.
    events = [m["event"] for m in state.received]
    assert events[:2] == ["connected", "start"] and events[-1] == "stop"
    assert state.received[1]["start"]["customParameters"] == {"x": "y"}
    assert state.received[1]["start"]["callSid"] == report.call_sid
    seqs = [int(m["sequenceNumber"]) for m in state.received[1:]]
    assert seqs == list(range(1, len(seqs) + 1))
    media = [m["media"] for m in state.received if m["event"] == "media"]
    assert [int(m["timestamp"]) for m in media[:3]] == [0, 20, 40]
    assert len(media) == report.frames_sent
    # The bot's reply was heard, with every mark echoed in order once it played.
    assert state.marks_sent and state.marks_back == state.marks_sent
    assert report.marks_received == report.marks_echoed == len(state.marks_sent)
    assert report.media_received == len(state.marks_sent)
    (turn,) = report.turns
    assert turn.response_ms is not None
    assert 150 <= turn.response_ms < 2000  # the stand-in waits 200 ms of silence to answer
    assert report.bot_audio_played_s == pytest.approx(0.3, abs=0.021)
    # The recording: two channels at 8 kHz, caller left, bot right, on one clock.
    audio, rate = soundfile.read(record, dtype="int16", always_2d=True)
    assert rate == 8000 and audio.shape[1] == 2
    assert audio.shape[0] / rate == pytest.approx(report.duration_s, abs=0.1)
    loud = np.abs(audio.astype(np.int32)) > 1000
    caller_at = np.argmax(loud[:, 0]) / rate
    bot_at = np.argmax(loud[:, 1]) / rate
    assert caller_at < 0.05 and bot_at > 0.3 + 0.15  # the bot answered after the caller
    assert "response" in report.format() and report.to_dict()["turns"][0]["response_ms"]


async def test_caller_barge_in_measures_clear_and_gets_pending_marks(
    gateway: tuple[str, StandIn],
) -> None:
    url, state = gateway
    script = (
        CallerScript()
        .say(tone(1000), "long question")
        .barge_in(after_ms=200, pcm=tone(200, freq=660), label="wait")
        .wait_for_bot(silence_ms=200, timeout_s=5)
        .hang_up()
    )
    report = await call(url, script)

    assert report.ok, report.format()
    assert report.clears_received == state.clears_sent == 1
    barge = next(t for t in report.turns if t.kind == "barge_in")
    assert barge.barge_in_ms is not None and 0 <= barge.barge_in_ms < 500
    # The interruption started ~200 ms into the reply, so most of it was thrown away...
    assert 0.4 < report.bot_audio_cleared_s < 0.9
    # ...and every mark still pending came back right after the clear, in order.
    first_reply = [n for n in state.marks_sent if n.startswith("r0-")]
    assert state.marks_back[: len(first_reply)] == first_reply
    flushed = [n for n in state.echoes_after_clear if n.startswith("r0-")]
    assert flushed and flushed == first_reply[-len(flushed) :]
    assert abs(len(flushed) - report.bot_audio_cleared_s / 0.02) <= 2
    (clear,) = [e for e in report.events if e.kind is LogKind.CLEAR]
    echoed_at_clear = [
        e for e in report.events if e.kind is LogKind.MARK_ECHO and e.detail.endswith("cleared")
    ]
    assert clear.detail.endswith(f"flushed={len(echoed_at_clear)}")
    assert {e.time for e in echoed_at_clear} == {clear.time}  # all at once, at the clear
    # The barge-in itself was answered after it ended.
    assert report.summary()["barge_ins_caught"] == 1


async def test_caller_gateway_hangup_ends_call(gateway: tuple[str, StandIn]) -> None:
    url, state = gateway
    report = await call(url, CallerScript().pause(100).dtmf("#").pause(5000))

    assert report.ended_by == "gateway" and not report.failed, report.format()
    assert report.close_code == 1000 and report.close_reason == "bot hung up"
    assert report.duration_s < 2.0  # did not play out the 5 s pause
    dtmf = [m for m in state.received if m["event"] == "dtmf"]
    assert [d["dtmf"] for d in dtmf] == [{"track": "inbound_track", "digit": "#"}]
    assert "stop" not in [m["event"] for m in state.received]


async def test_caller_gateway_bad_message_is_violation(gateway: tuple[str, StandIn]) -> None:
    url, _ = gateway
    report = await call(url, CallerScript().dtmf("9").pause(200))
    assert report.ended_by == "caller"
    assert len(report.violations) == 1 and "wrong streamSid" in report.violations[0]
    assert not report.ok


async def test_caller_twiml_without_stream_reports_verbs(gateway: tuple[str, StandIn]) -> None:
    url, state = gateway
    report = await call(url, CallerScript().say(tone(100)), called=CLOSED_LINE)

    assert not report.streamed and report.ended_by == "twiml" and not report.failed
    assert report.twiml_verbs() == [
        ("Say", {"voice": "alice"}, "We are closed."),
        ("Dial", {"timeout": "10"}, ""),
        ("Number", {}, "+15551234567"),
    ]
    assert report.twiml[1].children[0].verb == "Number"
    assert state.received == []


async def test_caller_wrong_token_is_refused(gateway: tuple[str, StandIn]) -> None:
    url, state = gateway
    report = await call(url, CallerScript().pause(100), auth_token="not-the-token")
    assert report.failed and report.http_status == 403 and "403" in (report.error or "")
    assert state.rejected == ["voice"]


async def test_caller_stream_signature_covers_twiml_url(gateway: tuple[str, StandIn]) -> None:
    url, state = gateway
    report = await call(url, CallerScript().pause(100), called=ELSEWHERE_LINE)
    # The sim signed wss://elsewhere.test/... as the TwiML said; the stand-in checks
    # wss://example.test/... and refuses the upgrade, as a gateway must.
    assert report.failed and "refused: HTTP 403" in (report.error or "")
    assert state.rejected == ["media"]


async def test_caller_relative_stream_url_resolves_to_public_wss(
    gateway: tuple[str, StandIn],
) -> None:
    url, state = gateway
    report = await call(url, CallerScript().pause(60), called=RELATIVE_LINE)
    assert report.ok and report.streamed, report.format()
    assert state.rejected == []  # signed as wss://example.test/twilio/media


async def test_caller_plain_ws_stream_url_is_violation(gateway: tuple[str, StandIn]) -> None:
    url, _ = gateway
    report = await call(url, CallerScript().pause(60), called=PLAIN_WS_LINE)
    assert report.violations == [
        "twiml: <Stream url> must be wss:// (got 'ws://example.test/twilio/media')"
    ]
    assert not report.ok


async def test_caller_unreachable_gateway_fails_cleanly() -> None:
    report = await call("http://127.0.0.1:9", CallerScript().pause(100))
    assert report.failed and "voice webhook failed" in (report.error or "")


def test_cli_sim_call_prints_json_report(tmp_path: Path) -> None:
    """``overtalk sim call`` as a user runs it: a separate process, exit status, JSON out."""
    wav = tmp_path / "hello.wav"
    soundfile.write(wav, np.frombuffer(tone(300), dtype="<i2"), 8000, subtype="PCM_16")

    async def scenario() -> subprocess.CompletedProcess[str]:
        state = StandIn()
        async with serving(make_gateway(state)) as url:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.sim",
                "call",
                "--gateway",
                url,
                "--public-url",
                PUBLIC,
                "--wav",
                str(wav),
                "--silence-ms",
                "200",
                "--json",
                env={"TWILIO_AUTH_TOKEN": TOKEN, "PATH": ""},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=REPO,
            )
            async with asyncio.timeout(30):
                out, err = await proc.communicate()
            assert proc.returncode is not None
            return subprocess.CompletedProcess([], proc.returncode, out.decode(), err.decode())

    result = asyncio.run(scenario())
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ended_by"] == "caller" and data["violations"] == []
    assert data["turns"][0]["label"] == "hello.wav" and data["turns"][0]["response_ms"] > 0


def test_twiml_parse_nests_children_and_rejects_non_twiml() -> None:
    (connect,) = parse_twiml(CONNECT_TWIML)
    assert connect.verb == "Connect"
    (stream,) = connect.children
    assert stream.attributes == {"url": STREAM_URL}
    assert stream.children == (TwimlVerb("Parameter", {"name": "x", "value": "y"}, ""),)
    with pytest.raises(ValueError, match="expected <Response>"):
        parse_twiml("<Html/>")
    with pytest.raises(ValueError, match="well-formed"):
        parse_twiml("<Response><Say>")
