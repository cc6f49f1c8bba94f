"""What keeps the embedded engine's CPU per call down (capacity, issue 11): many calls' VAD
windows share one forward, and the voice's idle threads sleep."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from engine.local.vad import WINDOW, VadState
from engine.local.workers import VadResult, VadStream, VadWorker


class _Counting:
    """Records the batch size of every forward."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def forward(self, windows: np.ndarray, states: list[VadState]) -> np.ndarray:
        self.batches.append(len(states))
        return np.full(len(states), 0.5, np.float32)


async def test_vad_windows_arriving_within_the_interval_share_one_forward() -> None:
    model = _Counting()
    worker = VadWorker(model, min_interval_s=0.5)  # far longer than the submits take
    worker.bind(asyncio.get_running_loop())
    delivered: asyncio.Queue[list[VadResult]] = asyncio.Queue()
    try:
        streams = [VadStream(delivered.put_nowait, None) for _ in range(4)]
        window = np.zeros((1, WINDOW), np.float32)
        worker.submit(streams[0], window, WINDOW)
        first = await asyncio.wait_for(delivered.get(), 10)
        assert [r.end for r in first] == [WINDOW]  # a lone window is scored at once
        for stream in streams[1:]:  # inside the interval: they wait for one forward
            worker.submit(stream, window, WINDOW)
        worker.submit(streams[0], window, 2 * WINDOW)
        got = [await asyncio.wait_for(delivered.get(), 10) for _ in range(4)]
        assert model.batches == [1, 4]
        assert sorted(r.end for scored in got for r in scored) == [WINDOW] * 3 + [2 * WINDOW]
    finally:
        worker.stop()


def test_piper_threads_sleep_between_operators() -> None:
    from engine.local.tts import piper_session_options

    options = piper_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the package's TorchScript loader
def test_vad_in_onnxruntime_scores_an_utterance_as_the_torchscript_export_does() -> None:
    import silero_vad
    import torch

    from engine.local.vad import SileroVad
    from tests.conftest import load_pcm

    audio = load_pcm("speech/pocketsphinx/cards_001.wav", 16000).astype(np.float32) / 32768
    reference = silero_vad.load_silero_vad(onnx=False)._model
    model = SileroVad()
    state = [VadState()]
    h, context = torch.zeros(2, 1, 128), torch.zeros(1, 64)
    probs, expected = [], []
    for k in range(len(audio) // WINDOW):
        window = audio[k * WINDOW : (k + 1) * WINDOW][None]
        probs.append(float(model.forward(window, state)[0]))
        x = torch.cat([context, torch.from_numpy(window)], 1)
        with torch.inference_mode():
            p, h = reference(x, h)
        context = x[:, -64:]
        expected.append(float(p[0, 0]))
    assert max(probs) > 0.9 and min(probs) < 0.1  # speech and silence both in the clip
    assert np.allclose(probs, expected, atol=1e-5)
