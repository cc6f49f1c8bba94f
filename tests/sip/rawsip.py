"""A bare SIP caller over a UDP socket, written from RFC 3261 by hand: the tests' and the
benchmark's independent peer (it shares no code with the gateway's UA but the message codec)."""

from __future__ import annotations

import asyncio
import secrets

from gateway.carriers.sip.message import SipMessage


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


class RawUac:
    """One call: INVITE with a given SDP, ACK, BYE; anything else is sent as raw bytes."""

    def __init__(self, gateway: tuple[str, int]) -> None:
        self.gateway = gateway
        self.call_id = secrets.token_hex(6)
        self.tag = secrets.token_hex(4)
        self.remote_tag = ""
        self.transport: asyncio.DatagramTransport | None = None
        self.inbox = _Inbox()
        self.port = 0

    async def open(self) -> RawUac:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self.inbox, local_addr=("127.0.0.1", 0)
        )
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.gateway)

    async def receive(self, wait: float = 5.0) -> SipMessage:
        data, _ = await asyncio.wait_for(self.inbox.queue.get(), wait)
        return SipMessage.parse(data)

    def request(self, method: str, seq: int, body: bytes = b"", extra: str = "") -> bytes:
        to_tag = f";tag={self.remote_tag}" if self.remote_tag else ""
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        head = (
            f"{method} sip:bot@{self.gateway[0]}:{self.gateway[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
            f"From: <sip:+15557654321@127.0.0.1>;tag={self.tag}\r\n"
            f"To: <sip:+15551230000@{self.gateway[0]}>{to_tag}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {seq} {method}\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:caller@127.0.0.1:{self.port}>\r\n{ctype}{extra}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def final(self, seq: int | None = None, wait: float = 10.0) -> SipMessage:
        """The next final response (to CSeq ``seq`` when given; provisional ones skipped)."""
        while True:
            msg = await self.receive(wait)
            if not msg.is_request and msg.status >= 200:
                if seq is None or msg.cseq.seq == seq:
                    return msg

    async def invite(self, sdp: bytes) -> SipMessage:
        self.send(self.request("INVITE", 1, sdp))
        response = await self.final()
        if 200 <= response.status < 300:
            self.remote_tag = response.to.tag
            self.send(self.request("ACK", 1))
        return response

    async def bye(self) -> SipMessage:
        self.send(self.request("BYE", 2))
        while True:
            msg = await self.receive()
            if not msg.is_request and msg.cseq.method == "BYE":
                return msg


def pcmu_offer(rtp_port: int, formats: str = "0 101", extra: str = "") -> bytes:
    return (
        "v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP {formats}\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n" + extra
    ).encode()
