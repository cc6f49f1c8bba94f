"""The gateway serves the campaign API when a campaign store is configured."""

import httpx

from engine.echo import EchoEngine
from gateway.app import create_app
from gateway.config import Settings


async def test_gateway_mounts_campaign_api_with_a_store(tmp_path, monkeypatch):
    monkeypatch.setenv("OVERTALK_CAMPAIGN_TOKEN", "s3cret")
    app = create_app(Settings(campaign_store=str(tmp_path / "c.db")), EchoEngine())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        denied = await client.get("/campaigns")
        listed = await client.get("/campaigns", headers={"Authorization": "Bearer s3cret"})
    assert denied.status_code == 401
    assert listed.status_code == 200 and listed.json() == []


async def test_gateway_without_store_has_no_campaign_api():
    app = create_app(Settings(), EchoEngine())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        assert (await client.get("/campaigns")).status_code == 404
