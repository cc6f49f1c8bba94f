"""Native memory of the models: a fixed glibc mmap threshold, a bounded oneDNN primitive cache.

glibc starts with large blocks (over 128 KiB) served by ``mmap`` and unmapped on free, but each
such free raises the threshold (up to 32 MiB), after which the models' per-phrase and
per-utterance buffers (onnxruntime, CTranslate2, torch, from several threads) come from the
arenas instead and stay resident, fragmented, after they are freed: the embedded engine's RSS
crept up over hundreds of calls though nothing was kept. Setting ``M_MMAP_THRESHOLD`` turns the
dynamic adjustment off (mallopt(3): setting it "disables dynamic adjustment"), the same as
``MALLOC_MMAP_THRESHOLD_`` in the environment. Elsewhere than glibc it does nothing.

The second is CTranslate2's oneDNN, which keeps a compiled primitive per input shape; see
:func:`cap_primitive_cache`. (What calls leave behind in Python, the gateway's side, is in
``gateway.ops.heap``.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["M_MMAP_THRESHOLD", "PRIMITIVE_CACHE", "cap_primitive_cache", "fix_mmap_threshold"]

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


#: oneDNN primitives kept by this process; oneDNN's own default is 1024.
PRIMITIVE_CACHE = 32


def cap_primitive_cache(capacity: int = PRIMITIVE_CACHE) -> None:
    """Keep at most ``capacity`` oneDNN primitives, unless ``ONEDNN_PRIMITIVE_CACHE_CAPACITY``
    is already set (an operator's choice wins).

    CTranslate2 (statically linked oneDNN) builds a primitive, with its JIT-compiled kernel
    and buffers, for each input shape of Whisper's encoder, and keeps up to 1024 of them: with
    utterances of every length in a batch of every size, recognition alone grew by ~1.3 MiB
    per new shape (151 -> 289 MiB over 90 batches) and never gave it back. oneDNN reads the
    variable once, when it creates its first primitive, so this runs before the model loads.
    Together with lengths padded to whole seconds (engine.local.asr), the shapes in use stay
    in the cache and the rest are dropped least recently used first.
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(capacity))
