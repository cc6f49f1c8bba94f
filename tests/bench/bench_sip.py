"""SIP path latency and interruption, measured on the wire (the Twilio path's figures, on RTP).

Run: ``python tests/bench/bench_sip.py [--turns 3]``. A gateway with the echo engine listens on
127.0.0.1; a bare caller (SIP by hand, RTP from a plain UDP socket, 20 ms frames on an
absolute schedule) speaks recorded utterances and stamps every packet the gateway sends:

- response: the caller's last voiced frame sent -> the first voiced bot packet received;
- barge-in: the first voiced frame of an utterance spoken over the bot -> the first packet
  after it that is no longer bot speech (outbound RTP stops carrying the bot).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.echo import EchoEngine  # noqa: E402
from gateway.audio.g711 import ulaw_encode  # noqa: E402
from gateway.calls import CallRegistry  # noqa: E402
from gateway.carriers.sip import RtpPacket, SipGateway, SipSettings  # noqa: E402
from gateway.carriers.sip.sdp import SessionDescription  # noqa: E402
from gateway.engines import EngineSet  # noqa: E402
from gateway.sim.script import is_voiced  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
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
