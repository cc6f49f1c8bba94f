"""``overtalk bench --carrier``: the load generator speaks each carrier's wire to a real
``overtalk serve`` (figures are for benchmarks; this checks only that every frame came back)."""

from __future__ import annotations

from gateway.tools.bench import _overtalk_command, _wire


async def test_bench_wire_load_runs_over_each_carrier_on_one_server() -> None:
    rows = await _wire([2], 1.0, _overtalk_command, ("telnyx", "plivo"))
    assert [row.get("carrier", "twilio") for row in rows] == ["twilio", "telnyx", "plivo"]
    for row in rows:
        assert row["failed_calls"] == 0 and row["frames_back_pct"] == 100.0, row
