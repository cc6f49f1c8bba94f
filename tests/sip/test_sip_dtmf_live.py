"""DTMF from the engine on a live call: to baresip (Debian's package) as RFC 4733 events, which
it reports one by one; to a peer that offered no telephone-event, as tones in the audio."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import soundfile

from engine.base import CallContext, EngineSession, SendDtmf
from gateway.audio.g711 import ulaw_decode
from gateway.carriers.sip.rtp import RtpPacket
from tests.sip.conftest import RecordingEcho, StartGateway, need, run_tool, until
from tests.sip.rawsip import RawUac, pcmu_offer
from tests.sip.test_sip_baresip import CONFIG


class DtmfEcho(RecordingEcho):
    """The echo engine, sending ``digits`` as soon as the call is up."""

    def __init__(self, digits: str, **options: object) -> None:
        super().__init__(**options)
        self.digits = digits

    async def open(self, context: CallContext) -> EngineSession:
        session = await super().open(context)
        session.channel.put(SendDtmf(self.digits))
        return session


async def test_baresip_receives_the_engines_dtmf_as_rfc4733_events(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    need("baresip")
    wav = tmp_path / "caller.wav"
    soundfile.write(wav, np.zeros(8000 * 4, np.int16), 8000, subtype="PCM_16")
    (tmp_path / "config").write_text(CONFIG.format(wav=wav, dir=tmp_path))
    (tmp_path / "accounts").write_text("<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMU\n")
    gateway, _, calls = await start_gateway(engine=DtmfEcho("12w#9", rate=8000))
    rc, out = await run_tool(
        "baresip", "-f", str(tmp_path), "-t", "4", "-e", f"/dial sip:bot@127.0.0.1:{gateway.port}",
        cwd=tmp_path, limit=30,
    )  # fmt: skip
    assert "terminated" in out or "closed" in out, out[-2000:]
    # baresip's telephone-event decoder reports each event's start and its end.
    starts = re.findall(r"received event: '(.)' \(end=0\)", out)
    ends = re.findall(r"received event: '(.)' \(end=1\)", out)
    assert starts == ends == ["1", "2", "#", "9"], out[-3000:]  # in order, the W a pause
    await until(lambda: bool(calls.ledgers), "the call to be written out")
    (ledger,) = calls.ledgers
    assert any(kind == "rtp" and "dtmf out 4" in detail for _, kind, detail in ledger.events)


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(RtpPacket.parse(data))


def _power(pcm: np.ndarray, hz: float) -> float:
    t = np.arange(len(pcm)) / 8000
    return float(abs(np.dot(pcm, np.exp(-2j * np.pi * hz * t))))


async def test_gateway_plays_dtmf_in_band_to_a_peer_without_telephone_event(
    start_gateway: StartGateway,
) -> None:
    gateway, _, _ = await start_gateway(engine=DtmfEcho("5", rate=8000))
    loop = asyncio.get_running_loop()
    rtp, media = await loop.create_datagram_endpoint(_Rtp, local_addr=("127.0.0.1", 0))
    uac = await RawUac(("127.0.0.1", gateway.port)).open()
    try:
        offer = pcmu_offer(rtp.get_extra_info("sockname")[1], formats="0")  # no 101
        assert (await uac.invite(offer)).status == 200
        await until(lambda: len(media.packets) >= 25, "half a second of RTP")
        assert (await uac.bye()).status == 200
    finally:
        uac.close()
        rtp.close()
    assert {p.payload_type for p in media.packets} == {0}  # no event packets
    pcm = np.frombuffer(ulaw_decode(b"".join(p.payload for p in media.packets)), np.int16)
    tone = pcm.astype(np.float64)
    # Q.23 "5": 770 + 1336 Hz, far above a neighbouring key's tones.
    assert _power(tone, 770) > 10 * _power(tone, 697)
    assert _power(tone, 1336) > 10 * _power(tone, 1209)
