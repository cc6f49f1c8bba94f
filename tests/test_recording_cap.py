"""A recording stops growing at its cap, whatever a peer sends (issue 13, finding 6)."""

from __future__ import annotations

import wave

from gateway.call.recording import BYTES_PER_SECOND, CallRecorder


def test_recording_caller_channel_stops_at_the_cap(tmp_path):
    recorder = CallRecorder(0.0, max_seconds=2)
    for _ in range(100):  # 16,000-byte payloads: 200 s of "audio" in no time
        recorder.caller(b"\xff" * 16000)
    recorder.bot(1.0, b"\x00" * 160)
    recorder.bot(5.0, b"\x00" * 160)  # past the cap: not kept
    path = tmp_path / "call.wav"
    recorder.write(path)
    with wave.open(str(path)) as wav:
        assert wav.getnframes() == 2 * BYTES_PER_SECOND
