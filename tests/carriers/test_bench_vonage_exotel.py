"""``overtalk bench --carrier vonage,exotel``: the load generator speaks their wires (binary L16
frames and notify for Vonage, base64 L16 chunks and marks for Exotel). Run here against an
in-process gateway, so no server has to start under a loaded machine; this checks only that
every frame came back, figures are for the benchmark."""

from __future__ import annotations

import os

import pytest
from conversation import gateway

from engine.echo import EchoEngine
from gateway.config import Settings
from gateway.tools.bench import STREAM_SECRET, _dialects, _wire_run


@pytest.mark.parametrize("carrier", ["vonage", "exotel"])
async def test_bench_wire_load_runs_over_the_carrier(carrier: str) -> None:
    engine = EchoEngine(rate=8000, mode="stream")
    async with gateway(Settings(stream_secret=STREAM_SECRET), engine) as (url, _):
        row = await _wire_run(
            url.replace("http", "ws", 1), 2, 1.0, os.getpid(), _dialects()[carrier]
        )
    assert row["failed_calls"] == 0 and row["frames_back_pct"] == 100.0, row
