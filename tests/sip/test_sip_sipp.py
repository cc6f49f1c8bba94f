"""The gateway against SIPp (Debian ``sip-tester``): its standard UAC scenarios and ours."""

from __future__ import annotations

import asyncio
import math
import random
import socket
import struct
from pathlib import Path

import pytest

from gateway.carriers.sip import CallFailed
from tests.sip.conftest import (
    SCENARIOS,
    RecordingEcho,
    StartGateway,
    need,
    run_tool,
    sipp,
    udp_bound,
    until,
)

pytestmark = pytest.mark.usefixtures("sipp_installed")


@pytest.fixture
def sipp_installed() -> None:
    need("sipp")


def media_port() -> int:
    return random.randrange(40000, 48000, 2)


def tone_ulaw(path: Path, seconds: float = 3.0) -> None:
    """A 440 Hz tone as raw mu-law (what SIPp's rtp_stream plays)."""
    import audioop  # noqa: PLC0415 - only the test needs it

    samples = [
        int(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(int(8000 * seconds))
    ]
    path.write_bytes(audioop.lin2ulaw(struct.pack(f"<{len(samples)}h", *samples), 2))


async def test_sipp_uac_rtp_echo_hears_the_bot(start_gateway: StartGateway, tmp_path: Path) -> None:
    gateway, engine, calls = await start_gateway(engine=RecordingEcho(rate=8000, mode="stream"))
    rc, out = await sipp(
        gateway, tmp_path, "-sn", "uac", "-mi", "127.0.0.1", "-mp", str(media_port()),
        "-rtp_echo", "-d", "1500",
    )  # fmt: skip
    assert rc == 0, out
    await until(lambda: calls.completed == 1, "the call to end")
    (ledger,) = calls.ledgers
    assert engine.contexts[0].called == "service"
    # With the stream echo, every frame the gateway sends comes back through SIPp's echo.
    assert ledger.audio_in_seconds > 1.0 and ledger.frames_out > 50
    assert ledger.outcome == "caller-hung-up" and ledger.protocol_violations == 0


async def test_sipp_uac_pcap_pcma_30ms_and_dtmf(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    pcaps = Path("/usr/share/sip-tester")
    if not (pcaps / "g711a.pcap").exists():
        pytest.skip("sip-tester's pcap files are not installed")
    (tmp_path / "pcap").mkdir()
    for name in ("g711a.pcap", "dtmf_2833_1.pcap"):
        (tmp_path / "pcap" / name).symlink_to(pcaps / name)
    gateway, engine, calls = await start_gateway()
    rc, out = await sipp(gateway, tmp_path, "-sn", "uac_pcap", "-mp", str(media_port()), limit=40)
    assert rc == 0, out
    await until(lambda: calls.completed == 1, "the call to end")
    (session,) = engine.sessions
    assert session.dtmf_digits == ["1"]
    assert calls.ledgers[0].audio_in_seconds > 6  # ~7 s of PCMA in 30 ms packets, decoded


async def test_sipp_pcmu_stream_reaches_the_engine(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    tone_ulaw(tmp_path / "tone_3s.ulaw")
    gateway, engine, calls = await start_gateway()
    rc, out = await sipp(
        gateway, tmp_path, "-sf", str(SCENARIOS / "uac_pcmu_stream.xml"),
        "-mi", "127.0.0.1", "-mp", str(media_port()),
    )  # fmt: skip
    assert rc == 0, out
    await until(lambda: calls.completed == 1, "the call to end")
    (ledger,) = calls.ledgers
    assert ledger.audio_in_seconds >= 2.9
    (session,) = engine.sessions
    assert session.segmenter.samples >= 3 * 8000  # the whole tone reached the engine


async def test_sipp_retransmissions_one_call_200_until_ack(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gateway, engine, calls = await start_gateway()
    rc, out = await sipp(gateway, tmp_path, "-sf", str(SCENARIOS / "uac_retransmissions.xml"))
    assert rc == 0, out
    await until(lambda: calls.completed == 1, "the call to end")
    assert len(engine.sessions) == 1  # the retransmitted INVITE did not make a second call
    (trace,) = await asyncio.to_thread(lambda: list(tmp_path.glob("*_messages.log")))
    received = (await asyncio.to_thread(trace.read_text, errors="replace")).split(
        "message received"
    )
    oks = [m for m in received if "SIP/2.0 200 OK" in m and "CSeq: 1 INVITE" in m]
    assert len(oks) >= 3  # the first 200 and at least two retransmissions before the ACK


async def test_sipp_cancel_while_ringing(start_gateway: StartGateway, tmp_path: Path) -> None:
    gateway, engine, calls = await start_gateway(engine=RecordingEcho(rate=8000, open_delay=2.0))
    rc, out = await sipp(gateway, tmp_path, "-sf", str(SCENARIOS / "uac_cancel.xml"))
    assert rc == 0, out
    await until(lambda: calls.completed == 1, "the cancelled call to be written out")
    await until(lambda: not gateway.calls and not gateway.ports.in_use, "resources released")


async def test_sipp_reinvite_hold_unhold_codec_change(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gateway, engine, calls = await start_gateway()
    rc, out = await sipp(
        gateway, tmp_path, "-sf", str(SCENARIOS / "uac_reinvite.xml"), "-mp", str(media_port())
    )
    assert rc == 0, out
    await until(lambda: calls.completed == 1, "the call to end")


async def test_sipp_bye_from_the_gateway(start_gateway: StartGateway, tmp_path: Path) -> None:
    gateway, engine, calls = await start_gateway()
    task = asyncio.create_task(
        sipp(
            gateway, tmp_path, "-sf", str(SCENARIOS / "uac_wait_bye.xml"), "-mp", str(media_port())
        )
    )
    await until(lambda: bool(calls.active), "the call to be answered")
    await asyncio.sleep(0.3)
    gateway.hangup(next(iter(gateway.calls)), "test hangs up")
    rc, out = await task
    assert rc == 0, out
    await until(lambda: calls.completed == 1, "the call to end")


async def test_sipp_over_tcp(start_gateway: StartGateway, tmp_path: Path) -> None:
    gateway, engine, calls = await start_gateway()
    rc, out = await sipp(
        gateway, tmp_path, "-sf", str(SCENARIOS / "uac_reinvite.xml"), "-mp", str(media_port()),
        transport="t1",
    )  # fmt: skip
    assert rc == 0, out
    await until(lambda: calls.completed == 1, "the call to end")


async def test_gateway_places_call_to_sipp_uas(start_gateway: StartGateway, tmp_path: Path) -> None:
    need("sipp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        uas_port = probe.getsockname()[1]

    uas = asyncio.create_task(
        run_tool(
            "sipp",
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            str(uas_port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(media_port()),
            "-rtp_echo",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "20s",
            cwd=tmp_path,
            limit=30,
        )  # fmt: skip
    )
    gateway, engine, calls = await start_gateway(
        engine=RecordingEcho(rate=8000, mode="stream"), trunk=f"127.0.0.1:{uas_port}"
    )
    await udp_bound(uas_port, "the SIPp UAS")
    call = await gateway.place_call("15550001111", "bot")
    await until(lambda: call.ledger.frames_in > 25, "echoed audio from the callee")
    call.hangup()
    await call.ended.wait()
    rc, out = await uas
    assert rc == 0, out
    assert engine.contexts[0].direction == "outbound-api"


async def test_gateway_place_call_declined_raises(start_gateway: StartGateway) -> None:
    callee, _, _ = await start_gateway(plans=None)
    callee.lifecycle.start_drain()  # a draining gateway declines new calls with 503
    gateway, _, _ = await start_gateway(trunk=f"127.0.0.1:{callee.port}")
    with pytest.raises(CallFailed) as info:
        await gateway.place_call("15550001111", "bot")
    assert info.value.status == 503
    await until(lambda: not gateway.calls and not gateway.ports.in_use, "resources released")


async def test_register_with_digest_to_sipp_registrar(
    start_gateway: StartGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need("sipp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    registrar = asyncio.create_task(
        run_tool(
            "sipp",
            "-sf",
            str(SCENARIOS / "uas_registrar.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "20s",
            "-trace_err",
            cwd=tmp_path,
            limit=30,
        )  # fmt: skip
    )
    await udp_bound(port, "the SIPp registrar")
    gateway, _, _ = await start_gateway(
        registrar=f"sip:127.0.0.1:{port}", aor="sip:bot@sipp.test", username="bot",
        password="s3cret",
    )  # fmt: skip
    await asyncio.wait_for(gateway.registered.wait(), 10)
    rc, out = await registrar
    assert rc == 0, out  # SIPp verified our digest response itself (verifyauth)
