"""``overtalk sim call --carrier X`` as a user runs it: a separate process against a gateway."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conversation import EchoRecorder, gateway, speech_like

from gateway.config import Settings
from gateway.sim.carriers.telnyx import TelnyxDialer

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("carrier", ["telnyx", "plivo"])
async def test_cli_sim_call_places_a_signed_call_over_the_carrier(
    carrier: str, tmp_path: Path
) -> None:
    wav = tmp_path / "hello.wav"
    soundfile.write(wav, np.frombuffer(speech_like(300), dtype="<i2"), 8000, subtype="PCM_16")
    private, public = TelnyxDialer.new_key()
    if carrier == "telnyx":
        settings, env = Settings(telnyx_public_key=public), {"TELNYX_SIM_PRIVATE_KEY": private}
    else:
        settings, env = Settings(plivo_auth_token="tok"), {"PLIVO_AUTH_TOKEN": "tok"}
    async with gateway(settings, EchoRecorder()) as (url, ended):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.sim", "call", "--carrier", carrier,
            "--gateway", url, "--wav", str(wav), "--silence-ms", "200", "--json",
            env={**env, "PATH": ""},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO,
        )  # fmt: skip
        async with asyncio.timeout(40):
            out, err = await proc.communicate()
        data = json.loads(out)
        record = await ended.record(data["call_sid"])
    assert proc.returncode == 0, err.decode()
    assert data["ended_by"] == "caller" and data["violations"] == []
    assert data["turns"][0]["response_ms"] > 0
    assert record["carrier"] == carrier
