"""Remote engines: what each adapter adds per frame, and where OpenAI truncation lands.

    python tests/bench/bench_remote.py [--frames 250] [--calls 6]

Against the local stand-ins (``tests/remote/standins``) on loopback:

- per adapter, the synchronous cost of ``send_audio`` (the gateway's per-frame call) and the
  latency from ``send_audio`` to the vendor's socket receiving the frame (inbound), and from the
  vendor sending audio to the ``Audio`` event reaching the gateway (outbound): encoding, JSON,
  base64, Ogg-Opus, the writer/reader tasks and one loopback websocket hop;
- for OpenAI over the full gateway path (simulated Twilio, real gateway, stand-in), how far
  ``conversation.item.truncate``'s ``audio_end_ms`` is from what the caller actually heard of
  the cut reply (read back from the call recording), over calls barging in at different points.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "remote"))

from remotekit import gateway, level_samples, plan_file, settle, tone8k, voice_track  # noqa: E402
from standins.common import audioop, tone_pcm  # noqa: E402
from standins.gemini import GeminiScript, GeminiStandIn  # noqa: E402
from standins.moshi import MoshiScript, MoshiStandIn  # noqa: E402
from standins.openai import OpenAIScript, OpenAIStandIn  # noqa: E402

from engine.base import Audio, CallContext, Engine  # noqa: E402
from engine.remote.gemini import GeminiLiveEngine  # noqa: E402
from engine.remote.moshi import MoshiEngine  # noqa: E402
from engine.remote.openai import OpenAIRealtimeEngine  # noqa: E402
from gateway.sim.caller import place_call  # noqa: E402
from gateway.sim.script import CallerScript  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def adapter_run(
    engine: Engine,
    frames: int,
    speech: Callable[[int], bytes],
    silence: bytes,
) -> tuple[list[float], list[int], list[float]]:
    """Send ``frames`` 20 ms frames in real time (speech for the first 600 ms); returns the
    send times, the per-call cost of send_audio (ns) and the Audio arrival times."""
    session = await engine.open(CallContext("bench"))
    arrivals: list[float] = []

    async def consume() -> None:
        async for event in session.events():
            if isinstance(event, Audio):
                arrivals.append(time.monotonic())

    task = asyncio.create_task(consume())
    sends: list[float] = []
    costs: list[int] = []
    t0 = time.monotonic()
    for k in range(frames):
        delay = t0 + k * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = speech(k) if k < 30 else silence
        sends.append(time.monotonic())
        c0 = time.perf_counter_ns()
        session.send_audio(frame)
        costs.append(time.perf_counter_ns() - c0)
    await asyncio.sleep(0.5)
    await session.close()
    await task
    return sends, costs, arrivals


def pair(earlier: list[float], later: list[float]) -> list[float]:
    return [(b - a) * 1000 for a, b in zip(earlier, later, strict=False) if b >= a]


async def bench_adapters(frames: int) -> list[tuple[str, list[float], list[float], list[int]]]:
    rows = []
    ulaw_speech = audioop.lin2ulaw(tone8k(20), 2)
    async with OpenAIStandIn(OpenAIScript(reply_ms=2000)) as s:
        engine = OpenAIRealtimeEngine(url=s.url, api_key=s.script.api_key,
                                      options={"silence_duration_ms": "300"})  # fmt: skip
        sends, costs, arrivals = await adapter_run(
            engine, frames, lambda k: ulaw_speech, b"\xff" * 160
        )
        await settle(s)
        record = s.connections[0]
        rows.append(("openai (pcmu)", pair(sends, record.append_times),
                     pair(record.delta_times, arrivals), costs))  # fmt: skip

    def pcm24(k: int) -> bytes:
        return tone_pcm(20, 400, 24000, phase=k * 480)

    async with GeminiStandIn(GeminiScript(reply_ms=2000)) as g:
        engine = GeminiLiveEngine(url=g.url, api_key=g.script.api_key,
                                  options={"silence_duration_ms": "300"})  # fmt: skip
        sends, costs, arrivals = await adapter_run(engine, frames, pcm24, b"\0" * 960)
        await settle(g)
        record = g.connections[0]
        rows.append(("gemini (pcm 24k)", pair(sends, record.audio_times),
                     pair(record.chunk_times, arrivals), costs))  # fmt: skip

    async with MoshiStandIn(MoshiScript(reply_ms=1500)) as m:
        sends, costs, arrivals = await adapter_run(MoshiEngine(url=m.url), frames, pcm24,
                                                   b"\0" * 960)  # fmt: skip
        await settle(m)
        record = m.connections[0]
        # 4 frames per 80 ms message; a message leaves when its last frame is in.
        inbound = pair(sends[3::4], record.in_times)
        per_message = max(1, round(len(arrivals) / max(1, len(record.out_times))))
        rows.append(("moshi (ogg-opus 24k)", inbound,
                     pair(record.out_times, arrivals[per_message - 1 :: per_message]),
                     costs))  # fmt: skip
    return rows


async def one_truncation(after_ms: int, root: Path) -> tuple[int, float, float] | None:
    work = root / f"call-{after_ms}"
    work.mkdir()
    script = (
        CallerScript()
        .pause(200)
        .say(tone8k(600, 400))
        .barge_in(after_ms, tone8k(500, 600))
        .wait_for_bot(500, timeout_s=8)
    )
    async with OpenAIStandIn(OpenAIScript(reply_ms=2500)) as standin:
        engine = OpenAIRealtimeEngine(url=standin.url, api_key=standin.script.api_key)
        plan = plan_file(work, {"silence_duration_ms": 300})
        async with gateway(engine, work, plan) as url:
            await place_call(url, script, auth_token=None, record=work / "c.wav")
        await settle(standin)
    conn = standin.connections[0]
    if not conn.truncates:
        return None
    first = standin.replies[0]
    _, bot = voice_track(work / "c.wav")
    heard = len(level_samples(bot, first.level)) / 8
    return conn.truncates[0][1], heard, first.sent_ms


async def bench_truncation(calls: int) -> list[tuple[int, int, float, float]]:
    points = [300 + 200 * i for i in range(calls)]
    with tempfile.TemporaryDirectory() as tmp:
        results = await asyncio.gather(*(one_truncation(p, Path(tmp)) for p in points))
    return [(p, *r) for p, r in zip(points, results, strict=True) if r is not None]


async def main(args: Any) -> None:
    rows = await bench_adapters(args.frames)
    print(f"Adapters, {args.frames} frames of 20 ms each, loopback stand-ins (ms unless noted)")
    print(f"{'adapter':<22}{'send_audio us p50/p99':>24}{'inbound p50/p99':>20}"
          f"{'outbound p50/p99':>20}")  # fmt: skip
    for name, inbound, outbound, costs in rows:
        us = [c / 1000 for c in costs]
        print(
            f"{name:<22}{pct(us, 50):>11.1f} / {pct(us, 99):<10.1f}"
            f"{pct(inbound, 50):>9.2f} / {pct(inbound, 99):<8.2f}"
            f"{pct(outbound, 50):>9.2f} / {pct(outbound, 99):<8.2f}"
            f"  (n={len(inbound)}/{len(outbound)})"
        )
    trunc = await bench_truncation(args.calls)
    print()
    print("OpenAI truncation over the full gateway path (simulated Twilio, marks every 40 ms)")
    print(f"{'barge-in at':>12}{'audio_end_ms':>14}{'heard ms':>10}{'error ms':>10}{'sent ms':>9}")
    errors = []
    for point, end, heard, sent in trunc:
        errors.append(end - heard)
        print(f"{point:>10} ms{end:>14}{heard:>10.1f}{end - heard:>+10.1f}{sent:>9.0f}")
    if errors:
        print(f"error: mean {statistics.mean(errors):+.1f} ms, max |error| "
              f"{max(abs(e) for e in errors):.1f} ms over {len(errors)} calls; "
              f"never beyond audio sent: {all(e <= s for _, e, _, s in trunc)}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--calls", type=int, default=6)
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main(parser.parse_args()))
