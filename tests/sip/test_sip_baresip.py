"""baresip (Debian's package) as a real softphone: it calls the gateway, speaks from a WAV file,
hears the echo bot and talks over it; its own recording of what it heard is checked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import soundfile

from tests.conftest import load_pcm
from tests.sip.conftest import RecordingEcho, StartGateway, need, run_tool, until

CONFIG = """\
poll_method\tpoll
sip_listen\t127.0.0.1:0
audio_player\taubridge,nil
audio_source\taufile,{wav}
audio_alert\taubridge,nil
audio_srate\t8000
audio_channels\t1
module_path\t/usr/lib/baresip/modules
module\tg711.so
module\taufile.so
module\taubridge.so
module\tsndfile.so
module_app\taccount.so
module_app\tmenu.so
snd_path\t{dir}
"""


def voiced_seconds(path: Path) -> float:
    audio, rate = soundfile.read(path, dtype="int16")
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160).astype(np.float64)
    rms = np.sqrt((frames**2).mean(axis=1))
    return float((rms > 32768 * 10 ** (-45 / 20)).sum() * 160 / rate)


async def test_baresip_hears_the_bot_and_interrupts_it(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    need("baresip")
    first = load_pcm("speech/cmu-arctic-pyroomacoustics/arctic_a0010.wav", 8000)  # 3.6 s
    second = load_pcm("speech/pocketsphinx/cards_001.wav", 8000)
    # The caller speaks, pauses 0.5 s (the bot starts echoing), and talks over the echo.
    gap = np.zeros(4000, np.int16)
    script = np.concatenate([gap, first, gap, second, np.zeros(16000, np.int16)])
    wav = tmp_path / "caller.wav"
    soundfile.write(wav, script, 8000, subtype="PCM_16")
    (tmp_path / "config").write_text(CONFIG.format(wav=wav, dir=tmp_path))
    (tmp_path / "accounts").write_text("<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMU\n")
    gateway, engine, calls = await start_gateway(engine=RecordingEcho(rate=8000))
    rc, out = await run_tool(
        "baresip", "-f", str(tmp_path), "-t", "12", "-e", f"/dial sip:bot@127.0.0.1:{gateway.port}",
        cwd=tmp_path, limit=30,
    )  # fmt: skip
    assert "terminated" in out, out[-2000:]
    await until(lambda: bool(calls.ledgers), "the call to be written out")
    (ledger,) = calls.ledgers
    assert ledger.clears >= 1  # the bot was interrupted...
    assert 0 < ledger.heard_at_clear[0] < len(first) / 8  # ...part-way through its echo
    # What baresip played to its "speaker", as its sndfile module recorded it.
    (heard,) = await asyncio.to_thread(lambda: list(tmp_path.glob("dump-*-dec.wav")))
    bot = await asyncio.to_thread(voiced_seconds, heard)
    assert 0.2 < bot < len(first) / 8000  # the caller heard the bot, cut short
