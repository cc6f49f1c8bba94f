"""Port 0: UDP and TCP signalling share one number even when TCP finds it taken."""

import asyncio
import errno
import socket

import pytest

from gateway.carriers.sip import aio
from gateway.ops.lifecycle import CannotListen
from tests.sip.conftest import StartGateway


async def test_port_zero_chooses_again_when_tcp_finds_the_number_taken(
    start_gateway: StartGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = asyncio.start_server
    refused: list[int] = []

    async def start_server(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not refused:
            refused.append(args[2])
            raise OSError(errno.EADDRINUSE, "address already in use")
        return await real(*args, **kwargs)

    monkeypatch.setattr(aio.asyncio, "start_server", start_server)
    gateway, _, _ = await start_gateway(transports=("udp", "tcp"))
    assert refused, "the first TCP bind was not attempted"
    # Both transports listen on the number the gateway reports.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        with pytest.raises(OSError):
            probe.bind(("127.0.0.1", gateway.port))
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.close()
    await writer.wait_closed()
    assert gateway.ua is not None and gateway.ua.config.port == gateway.port


async def test_a_fixed_port_that_is_taken_is_an_error_at_once(
    start_gateway: StartGateway,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(CannotListen) as raised:
            await start_gateway(transports=("tcp",), port=port)
    assert f"SIP cannot listen on 127.0.0.1:{port} (tcp)" in str(raised.value)
    assert isinstance(raised.value.__cause__, OSError)
