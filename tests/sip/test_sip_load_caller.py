"""The load runs' bare SIP caller against a live gateway: answered, echoed, hung up; and
refused with the gateway's busy answer when the engine is full."""

from __future__ import annotations

import asyncio
import time

from gateway.tools.bench import flatness
from gateway.tools.sipcaller import SipCaller
from tests.sip.conftest import StartGateway, until


async def test_load_caller_call_is_answered_echoed_and_ended(start_gateway: StartGateway) -> None:
    gateway, _, calls = await start_gateway()
    frames = [bytes([0x10 + i % 64]) * 160 for i in range(30)]
    result = await SipCaller(("127.0.0.1", gateway.port)).call(frames)
    assert result.status == 200 and result.frames_sent == 30
    assert len(result.arrivals) > 10  # the echo came back over RTP
    await until(lambda: len(calls.ledgers) == 1, "the call to end")
    assert calls.ledgers[0].outcome == "caller-hung-up"


async def test_load_caller_sees_busy_with_retry_after(start_gateway: StartGateway) -> None:
    gateway, _, _ = await start_gateway()
    gateway.admission.capacity = {"*": 1}
    assert gateway.admission.admit("held", "echo", "sip", time.monotonic())  # a call ringing
    result = await SipCaller(("127.0.0.1", gateway.port)).call([b"\xff" * 160])
    assert (result.status, result.retry_after) == (503, "30")


async def test_load_caller_keeps_rtcp_to_itself_and_drops_non_sip(
    start_gateway: StartGateway,
) -> None:
    """The gateway's RTCP goes to the caller's RTP port + 1: the caller holds that port, and
    a datagram on its SIP socket that is not SIP (RTCP, garbage) is dropped, not raised."""
    import socket

    from gateway.carriers.sip.media_clock import PortPool
    from gateway.tools.sipcaller import _Inbox

    inbox = _Inbox()
    inbox.datagram_received(b"\x81\xc8\x00\x0c" + bytes(48), ("127.0.0.1", 9))
    inbox.datagram_received(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", ("127.0.0.1", 9))
    assert inbox.queue.qsize() == 1 and inbox.queue.get_nowait().status == 200

    class Watched(PortPool):
        def allocate(self) -> tuple[int, socket.socket, socket.socket]:
            port, rtp, rtcp = super().allocate()
            taken.append(port)
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with probe:
                try:
                    probe.bind(("127.0.0.1", port + 1))
                except OSError:
                    return port, rtp, rtcp
            raise AssertionError(f"RTCP port {port + 1} was free during the call")

    taken: list[int] = []
    gateway, _, _ = await start_gateway()
    ports = Watched("127.0.0.1", 41000, 49000)
    result = await SipCaller(("127.0.0.1", gateway.port), ports=ports).call([b"\xff" * 160] * 5)
    assert result.status == 200 and taken and taken[0] % 2 == 0
    assert not ports.in_use  # released with the call


def test_soak_flatness_measures_rise_after_warmup() -> None:
    rss = [50, 80, 100, 104, 103, 108, 106, 105, 107, 109]
    flat = flatness([{"rss_mib": float(v)} for v in rss])
    assert flat["after_warmup_mib"] == 100 and flat["max_mib"] == 109
    assert round(flat["rise_pct"], 1) == 9.0


async def test_gateway_keeps_nothing_of_ended_calls(start_gateway: StartGateway) -> None:
    import gc

    from gateway.call.session import CallSession
    from gateway.carriers.sip.calls import SipCall
    from gateway.carriers.sip.transaction import Timings

    gateway, _, calls = await start_gateway()
    assert gateway.ua is not None
    fast = Timings(t1=0.01, t2=0.04, t4=0.05)  # completed transactions linger 64 * T1
    gateway.ua.timings = gateway.ua.transactions.timings = fast
    frames = [b"\x55" * 160] * 10
    caller = SipCaller(("127.0.0.1", gateway.port))
    for _ in range(3):
        results = await asyncio.gather(*(caller.call(frames) for _ in range(5)))
        assert [r.status for r in results] == [200] * 5
    await until(lambda: len(calls.ledgers) == 15, "every call to end")
    await until(lambda: not gateway.ua.transactions._transactions, "transactions to expire")  # type: ignore[union-attr]
    gc.collect()
    live = [o for o in gc.get_objects() if isinstance(o, SipCall | CallSession)]
    assert live == []
    assert not gateway.calls and not gateway.media.calls and not gateway._tasks
    assert not gateway.ua.calls and not gateway.ua._client
    assert not gateway.admission._pending and not calls.active
