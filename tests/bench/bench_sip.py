"""SIP path latency and interruption, measured on the wire (the Twilio path's figures, on RTP),
and the embedded engine under overload.

Run: ``python tests/bench/bench_sip.py [--turns 3]``, or
``python tests/bench/bench_sip.py --overload [--calls 1,2,4,6,8] [--repeats R] [--admission]
[--capacity N]``.
A gateway with the echo engine listens on 127.0.0.1; a bare caller (SIP by hand, RTP from a
plain UDP socket, 20 ms frames on an absolute schedule) speaks recorded utterances and stamps
every packet the gateway sends:

- response: the caller's last voiced frame sent -> the first voiced bot packet received;
- barge-in: the first voiced frame of an utterance spoken over the bot -> the first packet
  after it that is no longer bot speech (outbound RTP stops carrying the bot).

Overload: the local engine (every utterance answered by repeating it, so each turn runs VAD,
recognition and synthesis) behind a SIP gateway in this process; N callers at once, placed
from a second process (as a carrier would be: the callers' own work does not share the
gateway's interpreter), each waiting out the greeting, saying one utterance three times and
listening. Each row gives the load average (1 min) beside it: the machine is shared.
Response = the caller's last voiced frame sent -> the first voiced packet back. The capacity is
the most calls with p90 <= 400 ms and every turn answered (in every repeat); with
``--admission``, twice that many callers then come, once with admission control at that
capacity (the extra callers get 503) and once without it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.echo import EchoEngine  # noqa: E402
from gateway.audio.g711 import ulaw_encode  # noqa: E402
from gateway.call.registry import CallRegistry  # noqa: E402
from gateway.carriers.sip import RtpPacket, SipGateway, SipSettings  # noqa: E402
from gateway.carriers.sip.sdp import SessionDescription  # noqa: E402
from gateway.engines import EngineSet  # noqa: E402
from gateway.sim.script import is_voiced  # noqa: E402
from gateway.tools.sipcaller import SipCaller  # noqa: E402
from tests.conftest import load_pcm  # noqa: E402
from tests.sip.rawsip import RawUac, pcmu_offer  # noqa: E402

FRAME = 0.020
SILENCE = b"\xff" * 160


class Caller(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bool]] = []  # (time, voiced)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        packet = RtpPacket.parse(data)
        if packet.payload_type == 0:
            self.arrivals.append((time.monotonic(), is_voiced(packet.payload)))

    def bot_talking(self, now: float, quiet: float = 0.3) -> bool:
        return any(v and now - t < quiet for t, v in self.arrivals[-40:])


def frames(pcm: np.ndarray) -> list[bytes]:
    ulaw = ulaw_encode(pcm.astype("<i2").tobytes())
    ulaw += b"\xff" * (-len(ulaw) % 160)
    return [ulaw[i : i + 160] for i in range(0, len(ulaw), 160)]


async def call(turns: int) -> tuple[list[float], list[float], list[float]]:
    engine = EchoEngine()
    registry = CallRegistry()
    ledgers: list = []
    registry.on_end.append(ledgers.append)
    gateway = SipGateway(
        SipSettings(host="127.0.0.1", port=0), EngineSet("echo", prebuilt=engine), registry
    )
    await gateway.start()
    loop = asyncio.get_running_loop()
    caller = Caller()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: caller, local_addr=("127.0.0.1", 0), family=socket.AF_INET
    )
    uac = await RawUac(("127.0.0.1", gateway.port)).open()
    answer = await uac.invite(pcmu_offer(transport.get_extra_info("sockname")[1]))
    target = ("127.0.0.1", SessionDescription.parse(answer.body).media[0].port)
    say = [frames(load_pcm(p, 8000)) for p in (
        "speech/pocketsphinx/cards_001.wav",
        "speech/cmu-arctic-pyroomacoustics/arctic_a0010.wav",
    )]  # fmt: skip
    seq, ts, t0 = 1, 0, time.monotonic()
    k = 0
    responses: list[float] = []
    barges: list[float] = []

    async def send(frame: bytes) -> float:
        nonlocal seq, ts, k
        due = t0 + k * FRAME
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        transport.sendto(bytes(RtpPacket(0, seq, ts, 4242, frame, seq == 1)), target)
        seq, ts, k = seq + 1, ts + 160, k + 1
        return time.monotonic()

    async def silence_until(predicate: object, limit: float = 10.0) -> None:
        end = time.monotonic() + limit
        while not predicate() and time.monotonic() < end:  # type: ignore[operator]
            await send(SILENCE)

    for _ in range(15):
        await send(SILENCE)
    for turn in range(turns):
        # A plain turn: speak, then wait for the bot's answer to start and end.
        last_voiced = 0.0
        for frame in say[0]:
            sent = await send(frame)
            if is_voiced(frame):
                last_voiced = sent
        await silence_until(lambda: caller.bot_talking(time.monotonic()))
        first = next((t for t, v in caller.arrivals if v and t > last_voiced), None)
        if first is not None:
            responses.append((first - last_voiced) * 1000)
        await silence_until(lambda: not caller.bot_talking(time.monotonic(), 0.6))
        # A barge-in: make the bot speak the long utterance, then talk over it.
        for frame in say[1]:
            await send(frame)
        await silence_until(lambda: caller.bot_talking(time.monotonic()))
        for _ in range(30):  # let 0.6 s of the echo play
            await send(SILENCE)
        onset = None
        for frame in say[0]:
            sent = await send(frame)
            if onset is None and is_voiced(frame):
                onset = sent
        assert onset is not None
        stop = next((t for t, v in caller.arrivals if t > onset and not v), None)
        if stop is not None:
            barges.append((stop - onset) * 1000)
        await silence_until(lambda: not caller.bot_talking(time.monotonic(), 0.6))
        print(f"turn {turn + 1}: response {responses[-1]:.0f} ms, barge-in {barges[-1]:.0f} ms")
    await uac.bye()
    uac.close()
    transport.close()
    await gateway.stop()
    clears = [x * 1000 for ledger in ledgers for x in ledger.clear_latencies]
    return responses, barges, clears


FLOWS = Path(__file__).resolve().parents[2] / "dialplans" / "flows"


TURNS = 3


def _overload_frames() -> tuple[list[bytes], list[tuple[int, int]]]:
    """2.5 s for the greeting, then ``TURNS`` times an utterance and 3.5 s to hear the answer;
    with each turn's (last voiced frame, first frame of the next turn)."""
    speech = frames(load_pcm("speech/pocketsphinx/cards_001.wav", 8000))
    last = max(i for i, f in enumerate(speech) if is_voiced(f))
    sent, turns = [SILENCE] * 125, []
    for _ in range(TURNS):
        start = len(sent)
        sent += speech + [SILENCE] * 175
        turns.append((start + last, len(sent)))
    return sent, turns


def _responses_ms(turns: list[tuple[int, int]], result: object) -> list[float | None]:
    """Per turn: last voiced frame sent -> the first voiced packet back before the next turn."""
    sent_at, arrivals = result.sent_at, result.arrivals  # type: ignore[attr-defined]
    out: list[float | None] = []
    for last, until in turns:
        if len(sent_at) <= last:
            out.append(None)
            continue
        begin = sent_at[last]
        end = sent_at[until] if until < len(sent_at) else float("inf")
        first = next((t for t, p in arrivals if begin < t < end and is_voiced(p)), None)
        out.append(None if first is None else (first - begin) * 1000)
    return out


def _call_round(port: int, n: int) -> tuple[list[tuple[int, list[float | None]]], float]:
    """The callers' process: ``n`` calls at once (staggered by 0.2 s) to the gateway on
    ``port``; per call its INVITE status and its turns' response times, and the CPU seconds
    the callers took."""
    sent, turns = _overload_frames()

    async def one(i: int) -> tuple[int, list[float | None]]:
        await asyncio.sleep(0.2 * i)
        result = await SipCaller(("127.0.0.1", port)).call(sent)
        return result.status, _responses_ms(turns, result) if result.status == 200 else []

    async def every() -> list[tuple[int, list[float | None]]]:
        return await asyncio.gather(*(one(i) for i in range(n)))

    cpu0 = time.process_time()
    results = asyncio.run(every())
    return results, time.process_time() - cpu0


def _thread_cpu() -> dict[str, float]:
    """CPU seconds per thread in this process (Linux ``/proc``), by the Python thread's name;
    threads Python did not start (the model runtimes' own pools) add up as "native"."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        name = names.get(int(task.name), "native")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


async def overload_round(
    engine: object, n: int, capacity: int | None, callers: ProcessPoolExecutor
) -> dict[str, Any]:
    """``n`` callers at once, placed from the ``callers`` process, against a fresh gateway."""
    registry = CallRegistry()
    gateway = SipGateway(
        SipSettings(host="127.0.0.1", port=0, transports=("udp",)),
        EngineSet("local", prebuilt=engine),  # type: ignore[arg-type]
        registry,
    )
    if capacity is not None:
        gateway.admission.capacity = {"local": capacity}
    await gateway.start()
    load0 = os.getloadavg()[0]
    asr = engine.workers.asr  # type: ignore[attr-defined]
    asr0 = (asr.requests, asr.calls, asr.busy_s, asr.queued_s)
    cpu0, wall0, threads0 = time.process_time(), time.perf_counter(), _thread_cpu()
    loop = asyncio.get_running_loop()
    results, callers_cpu = await loop.run_in_executor(callers, _call_round, gateway.port, n)
    cpu_s = time.process_time() - cpu0
    threads = {k: v - threads0.get(k, 0.0) for k, v in _thread_cpu().items()}
    asr1 = (asr.requests, asr.calls, asr.busy_s, asr.queued_s)
    requests, passes, busy_s, queued_s = (b - a for a, b in zip(asr0, asr1, strict=True))
    cpu = cpu_s / (time.perf_counter() - wall0)
    load1 = os.getloadavg()[0]
    await gateway.stop()
    answered = [turns for status, turns in results if status == 200]
    responses = [x for turns in answered for x in turns]
    latencies = [x for x in responses if x is not None]
    return {
        "callers": n,
        "capacity": capacity or 0,
        "refused_503": sum(status == 503 for status, _ in results),
        "answered": len(answered),
        "unanswered_turns": len(responses) - len(latencies),
        "p50_ms": float(np.percentile(latencies, 50)) if latencies else float("nan"),
        "p90_ms": float(np.percentile(latencies, 90)) if latencies else float("nan"),
        "cpu_pct": 100 * cpu,
        "cpu_s_per_call": cpu_s / n,
        "load": max(load0, load1),
        "callers_cpu_s_per_call": callers_cpu / n,
        "asr": (requests / n, requests / max(1, passes), busy_s / n, queued_s / max(1, requests)),
        "threads": {k: v / n for k, v in sorted(threads.items(), key=lambda kv: -kv[1]) if v},
    }


async def overload(counts: list[int], capacity: int | None, repeats: int, admission: bool) -> None:
    from engine.local import LocalEngine

    engine = LocalEngine(flow=str(FLOWS / "local-bench-listen.yaml"))
    fixed = capacity is not None  # given: the admission rounds only
    # The callers run in a process of their own (started once, fresh interpreter), so the
    # gateway's process carries only the gateway and the engine, as in production.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as callers:
        await overload_round(engine, 1, None, callers)  # warm-up: models, caches, the pool
        print(f"{'callers':>7} {'capacity':>8} {'503':>4} {'answered':>8} {'unanswered':>10} "
              f"{'p50 ms':>7} {'p90 ms':>7} {'CPU %':>6} {'CPU s/call':>10} "
              f"{'load':>5}")  # fmt: skip

        def show(row: dict[str, Any]) -> None:
            print(f"{row['callers']:7.0f} {row['capacity'] or '-':>8} {row['refused_503']:4.0f} "
                  f"{row['answered']:8.0f} {row['unanswered_turns']:10.0f} {row['p50_ms']:7.0f} "
                  f"{row['p90_ms']:7.0f} {row['cpu_pct']:6.0f} {row['cpu_s_per_call']:10.2f} "
                f"{row['load']:5.1f}",
                  flush=True)  # fmt: skip
            per_thread = ", ".join(f"{k} {v:.2f}" for k, v in row["threads"].items())
            print(
                f"        CPU s per call by thread: {per_thread}; the callers' process "
                f"{row['callers_cpu_s_per_call']:.2f}",
                flush=True,
            )
            per_call, per_pass, busy, queued = row["asr"]
            print(
                f"        recognition: {per_call:.1f} requests per call, {per_pass:.1f} per pass, "
                f"{busy:.2f} s of passes per call, {1000 * queued:.0f} ms queued per request",
                flush=True,
            )

        if capacity is None:
            capacity = 0
            for n in counts:
                rows = [await overload_round(engine, n, None, callers) for _ in range(repeats)]
                for row in rows:
                    show(row)
                if all(r["p90_ms"] <= 400 and r["unanswered_turns"] == 0 for r in rows):
                    capacity = n
            print(f"capacity at p90 <= 400 ms, every turn answered: {capacity}")
        if capacity and (admission or fixed):
            show(await overload_round(engine, 2 * capacity, capacity, callers))  # admission on
            show(await overload_round(engine, 2 * capacity, None, callers))  # and off
    await engine.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--overload", action="store_true", help="the local engine's capacity")
    parser.add_argument("--calls", default="1,2,4,6,8", help="overload: callers per round")
    parser.add_argument("--capacity", type=int, help="overload: skip the sweep, use this")
    parser.add_argument("--repeats", type=int, default=1, help="overload: rounds per count")
    parser.add_argument(
        "--admission", action="store_true", help="overload: then 2x capacity, with and without"
    )
    args = parser.parse_args()
    if args.overload:
        asyncio.run(
            overload(
                [int(x) for x in args.calls.split(",")],
                args.capacity,
                args.repeats,
                args.admission,
            )
        )
        return
    responses, barges, clears = asyncio.run(call(args.turns))
    print()
    print(f"{'figure':<52} {'p50':>8} {'max':>8}  n")
    for name, values in (
        ("end of caller speech -> first bot audio (ms)", responses),
        ("caller onset during bot speech -> bot RTP stops (ms)", barges),
        ("engine Interrupt -> outbound queue dropped (ms)", clears),
    ):
        if values:
            p50, top = statistics.median(values), max(values)
            digits = 2 if top < 1 else 0
            print(f"{name:<52} {p50:8.{digits}f} {top:8.{digits}f}  {len(values)}")


if __name__ == "__main__":
    main()
