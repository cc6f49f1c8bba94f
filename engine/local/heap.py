"""A fixed glibc mmap threshold, so the models' large native buffers go back to the system.

glibc starts with large blocks (over 128 KiB) served by ``mmap`` and unmapped on free, but each
such free raises the threshold (up to 32 MiB), after which the models' per-phrase and
per-utterance buffers (onnxruntime, CTranslate2, torch, from several threads) come from the
arenas instead and stay resident, fragmented, after they are freed: the embedded engine's RSS
crept up over hundreds of calls though nothing was kept. Setting ``M_MMAP_THRESHOLD`` turns the
dynamic adjustment off (mallopt(3): setting it "disables dynamic adjustment"), the same as
``MALLOC_MMAP_THRESHOLD_`` in the environment. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["M_MMAP_THRESHOLD", "fix_mmap_threshold"]

#: mallopt's parameter number (glibc malloc.h).
M_MMAP_THRESHOLD = -3


def fix_mmap_threshold(size: int = 128 * 1024) -> bool:
    """Serve blocks of ``size`` bytes and up with mmap from now on; False where unsupported."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, size))
