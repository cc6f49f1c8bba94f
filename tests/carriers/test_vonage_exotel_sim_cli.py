"""``overtalk sim call --carrier vonage|exotel`` as a user runs it: a separate process."""

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

REPO = Path(__file__).resolve().parents[2]
SECRET = "vonage-signature-secret-0123456789"
CASES = {
    "vonage": (Settings(vonage_signature_secret=SECRET), {"VONAGE_SIGNATURE_SECRET": SECRET}),
    "exotel": (
        Settings(exotel_api_key="k", exotel_api_token="t0k"),
        {"EXOTEL_SIM_AUTH": "k:t0k"},
    ),
}


@pytest.mark.parametrize("carrier", sorted(CASES))
async def test_cli_sim_call_places_an_authenticated_call(carrier: str, tmp_path: Path) -> None:
    wav = tmp_path / "hello.wav"
    soundfile.write(wav, np.frombuffer(speech_like(300), dtype="<i2"), 8000, subtype="PCM_16")
    settings, env = CASES[carrier]
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
