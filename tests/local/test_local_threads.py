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
