"""One SIP call's media and engine, over asyncio: its RTP and RTCP sockets, its stream, and
the :class:`~gateway.call.runner.Carrier` its runner drives.

A :class:`SipCall` is made by :class:`~gateway.carriers.sip.aio.SipGateway`, never by users:
RTP and RTCP datagrams arrive on :meth:`SipCall.on_rtp` and :meth:`SipCall.on_rtcp`, the
media clock ticks :meth:`SipCall.tick`, and everything runs in the call's own context, so the
log lines of a call carry its id and no other.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.call.ledger import CallLedger
from gateway.call.runner import CallRunner
from gateway.carriers.sip.errors import LocalProtocolError
from gateway.carriers.sip.media import FrameSource, RtpStream
from gateway.carriers.sip.sdp import SessionDescription
from gateway.ops.logs import call_id as current_call

if TYPE_CHECKING:
    from gateway.carriers.sip.aio import SipGateway

__all__ = ["RtpTransport", "SipCall"]


class RtpTransport:
    """The call's :class:`~gateway.call.runner.Carrier` on SIP. Its session runs on the media
    clock (``carrier_clock``): each tick pulls the next frame, so nothing is pushed here and
    there is no queue to clear. DTMF goes out as RFC 4733 events; BYE hangs up, REFER
    transfers."""

    __slots__ = ("call",)

    def __init__(self, call: SipCall) -> None:
        self.call = call

    def send_frame(self, frame: bytes) -> None:
        raise LocalProtocolError("SIP frames are pulled by the media clock, never pushed")

    def send_mark(self, name: str) -> None:
        raise LocalProtocolError("SIP needs no marks: what the media clock sends is heard")

    def send_clear(self) -> None:
        """Nothing of the cut speech is buffered past the session: the clear is written."""
        if self.call.runner is not None:
            self.call.runner.clear_written()

    def send_dtmf(self, digits: str) -> bool:
        """RFC 4733 events, when the peer offered telephone-event (else the session plays
        tones in-band)."""
        stream = self.call.stream
        return stream is not None and stream.send_dtmf(digits)

    def flush(self) -> None:
        """Nothing to wake: the media clock sends the next frame when it is due."""

    async def hangup(self) -> None:
        self.call.gateway.hangup(self.call.call_id, "engine hung up")

    async def transfer(self, target: str) -> None:
        await self.call.gateway.transfer(self.call.call_id, target)


class SipCall:
    """One call's media and engine; created by :class:`SipGateway`, never by users."""

    def __init__(self, gateway: SipGateway, call_id: str, ledger: CallLedger) -> None:
        self.gateway = gateway
        self.call_id = call_id
        #: The context this call's tasks, RTP callbacks and media ticks run in: its log lines
        #: carry its id, and no other call's (copies of it seed each task).
        self.context = contextvars.Context()
        self.context.run(current_call.set, call_id)
        self.ledger = ledger
        self.stream: RtpStream | None = None
        self.runner: CallRunner | None = None
        #: Where each media-clock slot's audio comes from: the runner, once the session runs.
        self.source: FrameSource | None = None
        self.port: int | None = None
        self.rtp: asyncio.DatagramTransport | None = None
        self.rtcp: asyncio.DatagramTransport | None = None
        self.offer = b""
        self.local_sdp: SessionDescription | None = None
        self.sdp_version = 1
        self.session_id = random.getrandbits(31)
        #: Set when the call is finished (SIP-wise): its owner then ends its tasks and closes it.
        self.finishing = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_reason = ""
        #: The call's tasks (answering, the engine pump), all under its owner's one TaskGroup.
        self.group: asyncio.TaskGroup | None = None
        self.recording: Path | None = None

    # -- media -------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        stream, rtp = self.stream, self.rtp
        if stream is None or rtp is None:
            return
        remote = stream.remote
        for packet in stream.tick(now, self.source):
            rtp.sendto(packet, remote)
        self._deliver(now)
        report = stream.rtcp_due(now, time.time())
        if report is not None and self.rtcp is not None:
            self.rtcp.sendto(report, stream.remote_rtcp)

    def on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        stream = self.stream
        if stream is None:
            return
        now = time.monotonic()
        stream.receive(data, addr, now)
        self._deliver(now)

    def on_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.stream is not None:
            self.stream.receive_rtcp(data, addr, time.monotonic())

    def _deliver(self, now: float) -> None:
        stream, runner = self.stream, self.runner
        if stream is None or runner is None:
            return
        for ulaw, timestamp_ms in stream.audio_ready(now):
            runner.receive_audio(ulaw, timestamp_ms)
        for digit in stream.dtmf_received():
            runner.receive_dtmf(digit)

    def hangup(self) -> None:
        self.gateway.hangup(self.call_id)

    def settle_ledger(self) -> None:
        """Put the RTP stream's counts into the ledger: garbage and strangers as violations,
        the rest as one timeline entry."""
        stream = self.stream
        if stream is None:
            return
        stats, jitter = stream.stats, stream.jitter.stats
        ledger = self.ledger
        for kind, count in (
            ("rtp-garbage", stats.bad_packets),
            ("rtp-wrong-source", stats.wrong_source),
            ("rtp-unknown-payload", stats.unknown_payload),
        ):
            if count:
                ledger.violation(kind, count)
        ledger.event(
            time.time() - ledger.started_at,
            "rtp",
            f"sent {stats.packets_sent}, received {stats.packets_received}, lost "
            f"{jitter.lost_packets}, late {jitter.late}, duplicates {jitter.duplicates}, "
            f"reordered {jitter.reordered}, concealed {stats.concealed_ms} ms, jitter "
            f"{jitter.jitter / 8:.1f} ms, rtcp in {stats.rtcp_received}, dtmf out "
            f"{stats.dtmf_sent}",
        )
