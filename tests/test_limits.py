"""HTTP limits for the whole app: body size refused before it is read or authenticated, and
deadlines for request heads and bodies (issue 13, finding 6). Raw sockets, since a polite
client cannot be made to misbehave."""

from __future__ import annotations

import asyncio

import pytest

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.config import Settings
from gateway.ops.server import serve


@pytest.fixture
async def gateway():
    settings = Settings(max_body_bytes=4096, header_timeout=0.3, body_timeout=0.3,
                        twilio_auth_token="t" * 32, campaign_store=":memory:")  # fmt: skip
    app = create_app(settings, EchoEngine())
    async with serve(app) as url:
        host, port = url.removeprefix("http://").split(":")
        yield app, host, int(port)


async def exchange(host: str, port: int, data: bytes, read_for: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), read_for)
    finally:
        writer.close()


def refusals(app, kind: str) -> int:
    return app.state.metrics.refusals[kind]


@pytest.mark.parametrize("path", ["/twilio/voice", "/campaigns"])
async def test_gateway_refuses_a_declared_large_body_before_reading_it(gateway, path):
    app, host, port = gateway
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000000\r\n\r\n"
    ).encode()
    answer = await exchange(host, port, head)  # not one byte of the 100 MB sent
    assert answer.startswith(b"HTTP/1.1 413")
    assert refusals(app, "body-too-large") == 1


async def test_gateway_refuses_a_chunked_body_as_it_grows_past_the_limit(gateway):
    app, host, port = gateway
    chunk = b"1000\r\n" + b"x" * 4096 + b"\r\n"
    request = (
        b"POST /twilio/voice HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n" + chunk * 3
    )
    answer = await exchange(host, port, request)
    assert answer.startswith(b"HTTP/1.1 413")
    assert refusals(app, "body-too-large") == 1


async def test_gateway_closes_a_request_whose_head_never_ends(gateway):
    app, host, port = gateway
    answer = await exchange(host, port, b"POST /twilio/voice HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert answer == b""  # closed by the server, not by the read's own limit
    assert refusals(app, "header-timeout") == 1


async def test_gateway_answers_408_to_a_body_that_never_ends(gateway):
    app, host, port = gateway
    head = b"POST /twilio/voice HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nCallSid=CA"
    answer = await exchange(host, port, head)
    assert answer.startswith(b"HTTP/1.1 408")
    assert refusals(app, "body-timeout") == 1


async def test_gateway_small_bodies_still_reach_their_route(gateway):
    app, host, port = gateway
    body = b"CallSid=CA" + b"1" * 32
    request = (
        b"POST /twilio/voice HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answer = await exchange(host, port, request)
    assert answer.startswith(b"HTTP/1.1 403")  # unsigned: refused by the route's own check
    assert not app.state.metrics.refusals.get("body-too-large")
