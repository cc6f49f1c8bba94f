"""``overtalk bench --carrier vonage,exotel``: the load generator speaks their wires (binary L16
frames and notify for Vonage, base64 L16 chunks and marks for Exotel) to a real ``overtalk
serve``; this checks only that every frame came back, figures are for the benchmark."""

from __future__ import annotations

from gateway.tools.bench import _overtalk_command, _wire


async def test_bench_wire_load_runs_over_vonage_and_exotel() -> None:
    rows = await _wire([2], 1.0, _overtalk_command, ("vonage", "exotel"))
    assert [row.get("carrier", "twilio") for row in rows] == ["twilio", "vonage", "exotel"]
    for row in rows:
        assert row["failed_calls"] == 0 and row["frames_back_pct"] == 100.0, row
