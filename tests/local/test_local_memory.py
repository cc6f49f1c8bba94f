"""What keeps the embedded engine's memory flat over many calls (issue 13, finding 8)."""

from __future__ import annotations

import asyncio
import gc
import platform
import weakref

import numpy as np
import pytest

from engine.local.heap import fix_mmap_threshold
from engine.local.tts import piper_session_options
from engine.local.vad import WINDOW, VadState
from engine.local.workers import VadResult, VadStream, VadWorker


def test_piper_session_keeps_no_arena_and_no_per_shape_plans() -> None:
    """Every phrase has its own input length: no arena, no memory pattern cached per shape."""
    options = piper_session_options()
    assert options.enable_cpu_mem_arena is False
    assert options.enable_mem_pattern is False


def test_loaded_voice_uses_those_options(piper) -> None:
    used = piper.voice.session.get_session_options()
    assert used.enable_cpu_mem_arena is False
    assert used.enable_mem_pattern is False
    assert len(piper.synthesize("Hello there.")) > 0


class _Zeros:
    def forward(self, windows: np.ndarray, states: list[VadState]) -> np.ndarray:
        return np.zeros(len(states), np.float32)


async def test_vad_worker_lets_go_of_the_last_batch() -> None:
    """The idle thread holds no call's stream or audio once its results are delivered."""
    worker = VadWorker(_Zeros())
    worker.bind(asyncio.get_running_loop())
    delivered: asyncio.Queue[list[VadResult]] = asyncio.Queue()
    try:
        stream = VadStream(delivered.put_nowait, None)
        gone = weakref.ref(stream)
        worker.submit(stream, np.zeros((2, WINDOW), np.float32), 2 * WINDOW)
        scored = await asyncio.wait_for(delivered.get(), 10)
        assert [r.end for r in scored] == [WINDOW, 2 * WINDOW]
        del stream
        for _ in range(500):  # the thread may still be returning from the batch
            if gone() is None:
                break
            await asyncio.sleep(0.01)
        gc.collect()
        assert gone() is None
    finally:
        worker.stop()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_mmap_threshold_is_fixed() -> None:
    """glibc accepts the fixed threshold (which also turns its dynamic raising off)."""
    assert fix_mmap_threshold() is True
