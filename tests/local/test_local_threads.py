"""The embedded engine's process-wide thread limits (engine/local/threads.py)."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info

from engine.local.threads import single_threaded_blas


def test_blas_runs_on_the_calling_thread_only() -> None:
    """numpy's OpenBLAS would start a spinning team of one thread per core."""
    np.ones((64, 64)) @ np.ones((64, 64))  # BLAS loaded and used
    single_threaded_blas()
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert blas, "numpy's BLAS was not found"
    assert all(lib["num_threads"] == 1 for lib in blas)


async def test_recognition_passes_run_at_once_on_their_threads() -> None:
    """With two threads, two passes overlap (a burst of turns is not served one by one), and
    every request's result reaches its own callback."""
    import asyncio
    import threading
    from collections.abc import Sequence

    from engine.local.asr import AsrRequest, Transcription
    from engine.local.workers import AsrWorker

    both = threading.Barrier(2, timeout=5)  # passes only if two passes are inside at once

    class Overlapping:
        def transcribe(self, requests: Sequence[AsrRequest]) -> list[Transcription]:
            both.wait()
            return [Transcription(r.prompt) for r in requests]

    worker = AsrWorker(Overlapping(), max_batch=1, threads=2)
    loop = asyncio.get_running_loop()
    worker.bind(loop)
    got: dict[str, asyncio.Future[str]] = {k: loop.create_future() for k in ("a", "b")}
    try:
        for key, future in got.items():
            worker.submit(
                AsrRequest(np.zeros(160, np.float32), key),
                lambda result, _s, f=future: f.set_result(result.text if result else ""),
            )
        assert await asyncio.wait_for(asyncio.gather(*got.values()), 10) == ["a", "b"]
    finally:
        worker.stop()
    assert (worker.requests, worker.calls) == (2, 2)
    assert not both.broken
