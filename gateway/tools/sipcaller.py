"""A bare SIP caller for load runs (``overtalk bench --soak``, ``--overload``): INVITE with a
PCMU offer, ACK, 20 ms RTP frames on an absolute schedule, BYE.

It shares only the message codec with the gateway's user agent, so a fault on either side
shows up as a failed call rather than being hidden by the same code on both ends. Not a user
agent: no retransmission, no authentication; the gateway it calls is on the same host.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass, field

from gateway.carriers.sip.errors import RemoteProtocolError
from gateway.carriers.sip.media_clock import PortPool
from gateway.carriers.sip.message import SipMessage
from gateway.carriers.sip.rtp import RtpError, RtpPacket
from gateway.carriers.sip.sdp import SessionDescription

__all__ = ["CallResult", "SipCaller"]

FRAME = 0.020
#: The callers' RTP/RTCP pairs come from here (bound, so never another socket's port): with
#: RTP on an ephemeral port, the gateway's RTCP to RTP + 1 reached whichever socket held that
#: port, once another call's SIP socket.
CALLER_PORTS = (41000, 49000)


class _Inbox(asyncio.DatagramProtocol):
    """SIP responses as parsed messages; a datagram that is not one is dropped."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[SipMessage] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.queue.put_nowait(SipMessage.parse(data))
        except RemoteProtocolError:
            pass


class _Drain(asyncio.DatagramProtocol):
    """The gateway's RTCP: received so the port is taken, and not looked at."""


class _RtpIn(asyncio.DatagramProtocol):
    """Arrival times of the gateway's RTP packets (payload kept for a voiced check)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bytes]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return
        if packet.payload_type == 0:
            self.arrivals.append((time.monotonic(), packet.payload))


@dataclass
class CallResult:
    """What one call got: the final status of its INVITE, and the RTP it received."""

    status: int = 0
    retry_after: str = ""
    frames_sent: int = 0
    arrivals: list[tuple[float, bytes]] = field(default_factory=list)
    #: When each frame was sent (monotonic), by index.
    sent_at: list[float] = field(default_factory=list)


class SipCaller:
    """Places calls to ``gateway`` (host, port) over UDP; see the module docstring."""

    def __init__(
        self, gateway: tuple[str, int], to: str = "+15551230000", ports: PortPool | None = None
    ) -> None:
        self.gateway = gateway
        self.to = to
        self.ports = ports or PortPool("127.0.0.1", *CALLER_PORTS)

    async def call(self, frames: list[bytes], *, answer_wait: float = 20.0) -> CallResult:
        """One call that sends ``frames`` (160 bytes of mu-law each) and hangs up."""
        loop = asyncio.get_running_loop()
        result = CallResult()
        inbox = _Inbox()
        rtp_in = _RtpIn()
        sip, _ = await loop.create_datagram_endpoint(lambda: inbox, local_addr=("127.0.0.1", 0))
        rtp_port, rtp_sock, rtcp_sock = self.ports.allocate()
        rtp, _ = await loop.create_datagram_endpoint(lambda: rtp_in, sock=rtp_sock)
        rtcp, _ = await loop.create_datagram_endpoint(_Drain, sock=rtcp_sock)
        port = sip.get_extra_info("sockname")[1]
        dialog = _Dialog(self.gateway, port, self.to)
        try:
            sip.sendto(dialog.request("INVITE", 1, _offer(rtp_port)), self.gateway)
            deadline = loop.time() + answer_wait
            while True:
                msg = await asyncio.wait_for(inbox.queue.get(), max(0.01, deadline - loop.time()))
                if msg.is_request:
                    continue
                if msg.cseq.method == "INVITE" and msg.status >= 200:
                    break
            result.status = msg.status
            result.retry_after = msg.get("Retry-After") or ""
            if msg.status >= 300:
                return result
            dialog.remote_tag = msg.to.tag
            sip.sendto(dialog.request("ACK", 1), self.gateway)
            media = SessionDescription.parse(msg.body).media[0]
            target = ("127.0.0.1", media.port)
            t0 = time.monotonic()
            for i, frame in enumerate(frames):
                delay = t0 + i * FRAME - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                result.sent_at.append(time.monotonic())
                rtp.sendto(bytes(RtpPacket(0, i + 1, i * 160, 0x4242, frame, i == 0)), target)
            result.frames_sent = len(frames)
            sip.sendto(dialog.request("BYE", 2), self.gateway)
            with contextlib.suppress(TimeoutError):
                while True:
                    msg = await asyncio.wait_for(inbox.queue.get(), 5.0)
                    if not msg.is_request and msg.cseq.method == "BYE":
                        break
            return result
        finally:
            result.arrivals = rtp_in.arrivals
            sip.close()
            rtp.close()
            rtcp.close()
            self.ports.release(rtp_port)


class _Dialog:
    def __init__(self, gateway: tuple[str, int], port: int, to: str) -> None:
        self.gateway = gateway
        self.port = port
        self.to = to
        self.call_id = secrets.token_hex(8)
        self.tag = secrets.token_hex(4)
        self.remote_tag = ""

    def request(self, method: str, seq: int, body: bytes = b"") -> bytes:
        host, port = self.gateway
        to_tag = f";tag={self.remote_tag}" if self.remote_tag else ""
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        head = (
            f"{method} sip:{self.to}@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
            f"From: <sip:+15557654321@127.0.0.1>;tag={self.tag}\r\n"
            f"To: <sip:{self.to}@{host}>{to_tag}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {seq} {method}\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:caller@127.0.0.1:{self.port}>\r\n{ctype}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


def _offer(rtp_port: int) -> bytes:
    return (
        "v=0\r\no=load 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"
    ).encode()
