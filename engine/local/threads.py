"""Process-wide thread-pool limits for the embedded engine's numerical libraries.

numpy's OpenBLAS starts a team of one thread per core at its first matrix product, and its
threads spin-wait after each product before they sleep. The engine makes such products on
every recognition request (the recogniser's mel filterbank, a 80 x 201 by 201 x 600 matrix
product) and each one left a second core spinning for about as long as the request took:
one primed request cost 274-285 ms of CPU against 177-180 ms with OpenBLAS at one thread, at
the same wall time (``python tests/bench/bench_sip.py --overload`` prints the CPU per call
by thread). A gateway's parallelism is its calls, each product is small, and the cores the
spinning took are the ones the other calls' frames need.
"""

from __future__ import annotations

__all__ = ["single_threaded_blas"]


def single_threaded_blas() -> None:
    """Set every BLAS library loaded in the process (numpy's OpenBLAS) to one thread.

    Process-wide and lasting; idempotent. ``threadpoolctl`` finds the libraries already
    loaded, so this runs after numpy is imported (any import of this package does that).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
