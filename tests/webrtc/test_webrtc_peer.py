"""A browser call from a Python WebRTC peer (aiortc on both sides, no browser): the media path,
marks, clear, DTMF and hang-up on the data channel, on the echo engine. Fast, and runs where
Chromium is not installed.

The caller says one utterance, waits for the echo, talks over it, presses two keys and hangs
up; the assertions read the gateway's call record and what the peer received."""

from __future__ import annotations

import asyncio
import fractions
import json
from pathlib import Path

import httpx
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from gateway.app import create_app
from gateway.config import Settings
from gateway.ops.server import serve
from tests.conftest import load_pcm

RATE = 48000
SAMPLES = 960


class Caller(MediaStreamTrack):
    """A microphone that plays a script of PCM, then silence, in real time."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray) -> None:
        super().__init__()
        self.pcm = pcm
        self.sent = 0
        self.start: float | None = None

    async def recv(self) -> AudioFrame:
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        wait = self.start + self.sent * 0.02 - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self.pcm[self.sent * SAMPLES : (self.sent + 1) * SAMPLES]
        chunk = np.pad(chunk, (0, SAMPLES - len(chunk)))
        frame = AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(chunk.astype(np.int16).tobytes())
        frame.sample_rate = RATE
        frame.pts = self.sent * SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent += 1
        return frame


def script() -> tuple[np.ndarray, float]:
    """Utterance, a pause for its echo, then speech over the echo; and the script's length."""
    first = load_pcm("speech/pocketsphinx/cards_005.wav", RATE)  # 3.5 s
    second = load_pcm("speech/pocketsphinx/cards_003.wav", RATE)
    quiet = lambda s: np.zeros(int(s * RATE), np.int16)  # noqa: E731
    pcm = np.concatenate([quiet(0.5), first, quiet(1.6), second, quiet(2.0)])
    return pcm, len(pcm) / RATE


def the_record(records: Path) -> dict:
    """The one call record the gateway wrote."""
    (path,) = records.glob("browser-*.json")
    return json.loads(path.read_text())


async def test_peer_call_echo_clear_dtmf_and_hangup(tmp_path: Path) -> None:
    pcm, length = script()
    app = create_app(Settings(engine="echo", records_dir=str(tmp_path)))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: list[float] = []  # RMS of each bot frame the peer got
    events: list[dict] = []
    ended = asyncio.Event()
    try:
        async with serve(app) as url:
            pc.addTrack(Caller(pcm))
            channel = pc.createDataChannel("events")

            @channel.on("message")
            def on_message(data: str) -> None:
                events.append(json.loads(data))
                if events[-1]["type"] == "ended":
                    ended.set()

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                async def read() -> None:
                    while True:
                        try:
                            frame = await track.recv()
                        except MediaStreamError:
                            return
                        x = frame.to_ndarray().astype(np.float64)
                        received.append(float(np.sqrt(np.mean(x * x))))

                asyncio.get_running_loop().create_task(read())  # noqa: RUF006 - ends with pc

            await pc.setLocalDescription(await pc.createOffer())
            offer = {"type": "offer", "sdp": pc.localDescription.sdp}
            async with httpx.AsyncClient() as http:
                answer = (await http.post(f"{url}/phone/offer", json=offer)).json()
            assert answer["call_id"].startswith("browser-")
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await asyncio.sleep(length)
            channel.send(json.dumps({"type": "dtmf", "digits": "12"}))
            channel.send("not json")  # garbage: dropped, the call goes on
            await asyncio.sleep(0.3)
            channel.send(json.dumps({"type": "hangup"}))
            await asyncio.wait_for(ended.wait(), 10)
    finally:
        await pc.close()
    record = the_record(tmp_path)
    assert record["carrier"] == "browser" and record["outcome"] == "caller-hung-up"
    assert record["frames_in"] > 0.8 * length * 50  # the caller's audio reached the core
    assert record["frames_out"] > 0 and record["marks_echoed"] > 0
    # The echo was talked over: cleared, with a heard position inside the echoed utterance.
    assert record["clears"] >= 1
    assert 0 < record["heard_at_clear"][0] < 3500
    assert record["dtmf_in"] == 2
    assert record["violations"] == {"malformed-json": 1}
    (media,) = [detail for _, kind, detail in record["events"] if kind == "webrtc"]
    assert "exact to that hand-off" in media
    # The peer heard the bot (the echo) and was told how the call ended.
    assert max(received) > 300
    assert any(e["type"] == "state" and e["state"] == "interrupted" for e in events)
    last = events[-1]
    assert last["type"] == "ended" and last["reason"] == "caller hung up"
    assert last["timeline"] == f"/calls/{answer['call_id']}"


async def test_peer_that_never_connects_is_ended_and_frees_its_place(tmp_path: Path) -> None:
    settings = Settings(engine="echo", records_dir=str(tmp_path), phone_connect_timeout=1.0)
    app = create_app(settings)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        async with serve(app) as url:
            pc.addTrack(Caller(np.zeros(RATE, np.int16)))
            await pc.setLocalDescription(await pc.createOffer())
            offer = {"type": "offer", "sdp": pc.localDescription.sdp}
            async with httpx.AsyncClient() as http:
                response = await http.post(f"{url}/phone/offer", json=offer)
            assert response.status_code == 200  # answered; the peer never applies the answer
            phone = app.state.phone
            for _ in range(100):
                if not phone.active:
                    break
                await asyncio.sleep(0.1)
            assert not phone.active
            assert app.state.admission.load("echo", 0.0).in_use == 0
    finally:
        await pc.close()
    record = the_record(tmp_path)
    assert record["outcome"] == "media-timeout"
    assert record["end_reason"] == "no audio within 1 s of the answer"
