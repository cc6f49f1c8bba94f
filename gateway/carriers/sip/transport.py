"""SIP's sockets over asyncio (RFC 3261 18): UDP, and TCP whose byte stream ``SipFramer``
cuts into messages.

:class:`SipTransport` owns the sockets and nothing else: what arrives goes to one callback
with the peer it came from, and :meth:`SipTransport.send` writes a message to a peer over the
peer's transport, opening a TCP connection the first time one is needed (what is sent
meanwhile waits for it, in order). A TCP stream that cannot be framed is closed; only that
connection ends. The user agent above is sans-I/O (``ua.py``); the gateway
(``aio.py``) joins the two.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.carriers.sip.errors import RemoteProtocolError
from gateway.carriers.sip.message import LIMITS, SipFramer, SipLimits
from gateway.carriers.sip.transaction import Peer

log = logging.getLogger("overtalk.sip")

__all__ = ["Datagrams", "SipTransport"]

#: What the transport hands up: the messages one read produced, and who sent them.
Receive = Callable[[list[bytes], Peer], None]


class Datagrams(asyncio.DatagramProtocol):
    """A UDP socket's datagrams to a callback (SIP here, RTP and RTCP for calls)."""

    def __init__(self, receive: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.receive = receive

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.receive(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("x datagram error: %s", exc)  # ICMP unreachable from a peer that left


class SipTransport:
    """The SIP sockets of one gateway; see the module docstring."""

    def __init__(
        self,
        receive: Receive,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        limits: SipLimits = LIMITS,
    ) -> None:
        self.receive = receive
        self.spawn = spawn
        self.limits = limits
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.Server | None = None
        self._tcp: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._tcp_pending: dict[tuple[str, int], list[bytes]] = {}

    async def listen(self, host: str, port: int, transports: tuple[str, ...]) -> int:
        """Bind UDP and/or TCP on one port number (``port`` 0: the system's choice); returns
        it. Raises OSError when the address is taken, with nothing left bound."""
        loop = asyncio.get_running_loop()
        self.port = port
        try:
            if "udp" in transports:
                self._udp, _ = await loop.create_datagram_endpoint(
                    lambda: Datagrams(self._on_udp), local_addr=(host, port)
                )
                self.port = self._udp.get_extra_info("sockname")[1]
            if "tcp" in transports:
                self._tcp_server = await asyncio.start_server(
                    self._on_tcp_connection, host, self.port
                )
                self.port = self._tcp_server.sockets[0].getsockname()[1]
        except OSError:
            if self._udp is not None:
                self._udp.close()
                self._udp = None
            raise
        return self.port

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
            for writer in list(self._tcp.values()):
                writer.close()
            await self._tcp_server.wait_closed()

    # -- in ----------------------------------------------------------------------------------

    def _on_udp(self, data: bytes, addr: tuple[str, int]) -> None:
        self.receive([data], Peer("udp", addr[0], addr[1]))

    async def _on_tcp_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        await self._read_tcp(reader, writer, (str(host), int(port)))

    async def _read_tcp(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: tuple[str, int]
    ) -> None:
        self._tcp[key] = writer
        framer = SipFramer(self.limits)
        peer = Peer("tcp", *key)
        try:
            while data := await reader.read(65536):
                try:
                    messages = framer.feed(data)
                except RemoteProtocolError as exc:
                    log.warning("x SIP over TCP from %s:%d: %s; closing", *key, exc.reason)
                    return
                if framer.pings:
                    framer.pings = 0
                    writer.write(b"\r\n")  # RFC 5626 4.4.1: a pong
                if messages:
                    self.receive(messages, peer)
        except (ConnectionError, OSError) as exc:
            log.debug("x TCP connection %s:%d: %s", *key, exc)
        finally:
            if self._tcp.get(key) is writer:
                del self._tcp[key]
            writer.close()

    # -- out ---------------------------------------------------------------------------------

    def send(self, data: bytes, peer: Peer) -> None:
        """Write one message to ``peer``; never blocks (TCP connects in a task)."""
        log.debug(
            "> %s:%d %s", peer.host, peer.port, data[: data.find(b"\r\n")].decode(errors="replace")
        )
        if peer.transport == "udp":
            if self._udp is not None:
                self._udp.sendto(data, (peer.host, peer.port))
            return
        key = (peer.host, peer.port)
        writer = self._tcp.get(key)
        if writer is not None:
            writer.write(data)
            return
        pending = self._tcp_pending.get(key)
        if pending is not None:
            pending.append(data)
            return
        self._tcp_pending[key] = [data]
        self.spawn(self._connect_tcp(key))

    async def _connect_tcp(self, key: tuple[str, int]) -> None:
        try:
            reader, writer = await asyncio.open_connection(*key)
        except OSError as exc:
            log.warning("x cannot connect to %s:%d over TCP: %s", *key, exc)
            self._tcp_pending.pop(key, None)
            return
        for data in self._tcp_pending.pop(key, []):
            writer.write(data)
        await self._read_tcp(reader, writer, key)
