"""`overtalk serve --sip`: the app's lifespan runs the SIP carrier next to the HTTP routes."""

import asyncio
import socket

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.carriers.sip import SipMessage, load_sip_settings
from gateway.config import Settings
from gateway.ops.server import serve


async def test_gateway_lifespan_serves_sip_options(tmp_path):
    sip = load_sip_settings(environ={}, enabled=True, port=0, transports=("udp",))
    app = create_app(Settings(), EchoEngine(), sip=sip)
    async with serve(app):
        port = app.state.sip.port  # the port the system chose
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.bind(("127.0.0.1", 0))
            client.setblocking(False)
            here = client.getsockname()[1]
            options = (
                f"OPTIONS sip:overtalk@127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{here};branch=z9hG4bKlifespan1\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@127.0.0.1:{here}>;tag=probe\r\n"
                f"To: <sip:overtalk@127.0.0.1:{port}>\r\n"
                "Call-ID: lifespan-options@127.0.0.1\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            await loop.sock_sendto(client, options.encode(), ("127.0.0.1", port))
            data = await asyncio.wait_for(loop.sock_recv(client, 65535), 5)
    answer = SipMessage.parse(data)
    assert answer.status == 200
