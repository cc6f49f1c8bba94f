"""The browser phone's round trip beside the Twilio path's, on the same flow.

Run: ``python tests/bench/bench_phone.py [--repeats 2]`` (needs Chromium and Playwright, the
test extra, and ../shared/data). One gateway with the echo engine (each utterance played back
when it ends) on 127.0.0.1 takes, per repeat, the same five recorded utterances twice:

- **browser**: headless Chromium opens ``/phone`` and calls with a fake microphone playing the
  utterances (each followed by a pause for its echo). Latency as the page hears it: the
  caller's level (a WebAudio analyser on the microphone) falling below the threshold for the
  last time before the bot's level (an analyser on the remote track, after Opus, the network
  and Chrome's jitter buffer) rises over it. Both ends are read every animation frame (~17 ms).
- **twilio**: the simulator places a signed call over Media Streams with the same utterances;
  latency as the simulated carrier measures it on the wire: its last voiced frame sent -> the
  first voiced frame back.

Both include the echo engine's end-of-utterance wait, identical on both paths; the difference
between the two medians is what the browser transport (and the page's way of listening) adds.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import soxr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gateway.app import create_app  # noqa: E402
from gateway.config import Settings  # noqa: E402
from gateway.ops.server import serve  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
UTTERANCES = [f"speech/pocketsphinx/cards_00{i}.wav" for i in range(1, 6)]
RATE = 48000
#: After each utterance: long enough for its echo (at most 3.5 s) and a pause.
GAP_S = 5.0
#: Pauses within an utterance are shorter than this; those between utterances are longer.
UTTERANCE_GAP_MS = 2000.0


def _pcm(relative: str, rate: int) -> np.ndarray:
    audio, source = soundfile.read(DATA / relative, dtype="float32")
    return soxr.resample(audio, source, rate) if source != rate else audio


def _browser_wav(path: Path) -> float:
    parts = [np.zeros(RATE, np.float32)]
    for relative in UTTERANCES:
        parts += [_pcm(relative, RATE), np.zeros(int(GAP_S * RATE), np.float32)]
    audio = np.concatenate(parts + [np.zeros(RATE * 30, np.float32)])
    soundfile.write(path, audio, RATE, subtype="PCM_16")
    return sum(len(p) for p in parts) / RATE


async def browser_call(url: str, wav: Path, length: float) -> list[float]:
    from playwright.async_api import async_playwright

    binary = shutil.which("chromium") or "/usr/bin/chromium"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=binary,
            args=["--no-sandbox", "--use-fake-ui-for-media-stream",
                  "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
                  "--autoplay-policy=no-user-gesture-required"],
        )  # fmt: skip
        try:
            page = await browser.new_page()
            await page.goto(f"{url}/phone")
            await page.click("#call")
            await asyncio.sleep(length + 1.0)
            stats = await page.evaluate("window.phoneStats")
            await page.click("#hangup")
            await asyncio.sleep(1.0)
        finally:
            await browser.close()
    return reply_latencies(stats["callerOffsets"], stats["botOnsets"])


def reply_latencies(offsets: list[float], onsets: list[float]) -> list[float]:
    """One latency per utterance, as the simulator counts a turn: the caller's offsets are
    grouped into utterances (a pause over :data:`UTTERANCE_GAP_MS` separates two), and each
    reply is the bot's first onset after the utterance's last offset, before the next one. Bot
    onsets while the caller is still talking (the echo engine answers a phrase of a longer
    utterance) are not replies to the utterance, as on the simulator."""
    groups: list[float] = []
    for t in offsets:
        if groups and t - groups[-1] < UTTERANCE_GAP_MS:
            groups[-1] = t
        else:
            groups.append(t)
    latencies = []
    for i, end in enumerate(groups):
        following = groups[i + 1] if i + 1 < len(groups) else float("inf")
        replies = [t for t in onsets if end < t < following]
        if replies:
            latencies.append(replies[0] - end)
    return latencies


async def twilio_call(url: str) -> list[float]:
    from gateway.sim.caller import place_call
    from gateway.sim.script import CallerScript

    script = CallerScript().pause(1000)
    for relative in UTTERANCES:
        script.say_file(DATA / relative).wait_for_bot(timeout_s=8)
    report = await place_call(url, script, auth_token=None)
    return report.response_latencies_ms


def _summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:8} no turns measured"
    q = statistics.quantiles(values, n=10, method="inclusive") if len(values) > 1 else values * 9
    p50 = statistics.median(values)
    return (f"{name:8} turns {len(values):3}  p50 {p50:5.0f} ms  p90 {q[8]:5.0f} ms  "
            f"min {min(values):5.0f} ms  max {max(values):5.0f} ms")  # fmt: skip


async def main(repeats: int) -> None:
    records = tempfile.mkdtemp(prefix="bench-phone-")
    wav = Path(records) / "caller.wav"
    length = _browser_wav(wav)
    app = create_app(Settings(engine="echo", records_dir=records))
    browser: list[float] = []
    twilio: list[float] = []
    async with serve(app) as url:
        for i in range(repeats):
            browser += await browser_call(url, wav, length)
            twilio += await twilio_call(url)
            print(f"repeat {i + 1}/{repeats}: browser {len(browser)} turns, twilio {len(twilio)}",
                  flush=True)  # fmt: skip
    print("\nreply latency, echo engine (end of the caller's speech -> the bot's first audio)")
    print(_summary("browser", browser) + "   (as the page hears it: WebAudio analysers)")
    print(_summary("twilio", twilio) + "   (as the simulated carrier sees it on the wire)")
    if browser and twilio:
        gap = statistics.median(browser) - statistics.median(twilio)
        print(f"browser - twilio, medians: {gap:+.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="calls per path (default 2)")
    asyncio.run(main(parser.parse_args().repeats))
