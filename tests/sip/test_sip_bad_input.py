"""Bad input against a live gateway: garbage, truncated, oversized and unknown SIP, an offer
with no common codec, RTP from the wrong address, and bursts of loss and reordering. Another
call (SIPp's echo) runs meanwhile and must not notice."""

from __future__ import annotations

import asyncio
import random
import re
import socket
from pathlib import Path

from gateway.carriers.sip.rtp import RtpPacket
from gateway.carriers.sip.sdp import SessionDescription
from tests.sip.conftest import RecordingEcho, StartGateway, need, sipp, until
from tests.sip.rawsip import RawUac, pcmu_offer

DATA = Path(__file__).parent / "data"


async def test_garbage_is_answered_or_dropped_and_other_calls_go_on(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    need("sipp")
    gateway, engine, calls = await start_gateway(engine=RecordingEcho(rate=8000, mode="stream"))
    other = asyncio.create_task(
        sipp(gateway, tmp_path, "-sn", "uac", "-mi", "127.0.0.1",
             "-mp", str(random.randrange(40000, 48000, 2)), "-rtp_echo", "-d", "3000")
    )  # fmt: skip
    await until(lambda: bool(calls.active), "SIPp's call to be up")
    uac = await RawUac(("127.0.0.1", gateway.port)).open()
    try:
        valid = uac.request("OPTIONS", 1)
        hostile = [
            (DATA / "garbage.sip").read_bytes(),
            (DATA / "invite_no_via.sip").read_bytes(),  # nowhere to answer: dropped
            b"\r\n\r\n",  # a keep-alive ping
            b"A" * 70000,  # larger than any datagram we accept
            valid[:-30],  # truncated
        ]
        for data in hostile:
            uac.send(data)
        uac.send((DATA / "invite_truncated.sip").read_bytes().replace(b"203.0.113.10", b"x"))
        # A truncated request with a readable Via gets 400 back (to its Via's address, not us).
        uac.send(uac.request("FOO", 2))
        assert (await uac.final(2)).status == 501
        uac.send(uac.request("OPTIONS", 3).replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1))
        assert (await uac.final(3)).status == 505
        uac.send(uac.request("INVITE", 4, b"v=0\r\nnonsense"))
        assert (await uac.final(4)).status == 400
        uac.send(uac.request("OPTIONS", 5))
        ok = await uac.final(5)
        assert ok.status == 200 and ok.cseq.method == "OPTIONS"
    finally:
        uac.close()
    rc, out = await other
    assert rc == 0, out
    await until(lambda: calls.completed >= 1, "SIPp's call to end")
    assert calls.ledgers[0].outcome == "caller-hung-up"
    assert gateway.ua is not None and gateway.ua.bad_messages >= 4


async def test_offer_without_common_codec_gets_488(start_gateway: StartGateway) -> None:
    gateway, engine, calls = await start_gateway()
    uac = await RawUac(("127.0.0.1", gateway.port)).open()
    try:
        offer = pcmu_offer(4000, "18", "a=rtpmap:18 G729/8000\r\n").replace(
            b"a=rtpmap:0 PCMU/8000\r\n", b""
        )
        response = await uac.invite(offer)
        assert response.status == 488
    finally:
        uac.close()
    assert engine.sessions == [] and not gateway.calls


async def test_rtp_from_wrong_address_loss_and_reordering(start_gateway: StartGateway) -> None:
    gateway, engine, calls = await start_gateway()
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    caller.bind(("127.0.0.1", 0))
    stranger.bind(("127.0.0.1", 0))
    uac = await RawUac(("127.0.0.1", gateway.port)).open()
    try:
        answer = await uac.invite(pcmu_offer(caller.getsockname()[1]))
        assert answer.status == 200
        media = SessionDescription.parse(answer.body).media[0]
        target = ("127.0.0.1", media.port)
        voice = bytes(random.Random(1).randrange(0, 0x7F) for _ in range(160))
        order = list(range(100))
        for i in range(1, 98, 7):  # neighbours swapped now and then, and a burst of 4 lost
            order[i], order[i + 1] = order[i + 1], order[i]
        lost = {40, 41, 42, 43}
        for n in order:
            if n in lost:
                continue
            packet = bytes(RtpPacket(0, 1000 + n, 8000 + n * 160, 77, voice))
            caller.sendto(packet, target)
            if n == 50:
                stranger.sendto(bytes(RtpPacket(0, 5000, 1, 99, voice)), target)
            await asyncio.sleep(0.02)  # the caller's own 20 ms packet clock

        def all_arrived() -> bool:
            return any(ledger.frames_in >= 96 for ledger in calls.active.values())

        await until(all_arrived, "the 96 packets sent to reach the session")
        assert (await uac.bye()).status == 200
    finally:
        uac.close()
        caller.close()
        stranger.close()
    await until(lambda: calls.completed == 1, "the call to end")
    (ledger,) = calls.ledgers
    assert ledger.violations.get("rtp-wrong-source") == 1
    rtp = [detail for _, kind, detail in ledger.events if kind == "rtp"][0]
    counts = dict(re.findall(r"(lost|late|duplicates|reordered) (\d+)", rtp))
    lost, late = int(counts["lost"]), int(counts["late"])
    # The burst of 4 is concealed and the swaps repaired; a packet the loaded machine delayed
    # past its playout time counts as late (and so lost) too, never as a duplicate.
    assert lost - late == 4 and counts["duplicates"] == "0" and int(counts["reordered"]) > 0
    assert ledger.audio_in_seconds >= 1.9  # 96 packets plus 4 concealed, 20 ms each
