"""One place for the BLAS thread policy of small-network training.

nprefgen's tour and demos train networks whose matrices are (64..256) x (64..256): too small for
BLAS threads to pay off. On a busy 2-core machine OpenBLAS's spinning worker threads also take
the core that the numba kernels and the rest of a step need; measured during development, a
spline-flow step took 31 ms with one BLAS thread and 250 ms with two (load 6), and the
representation tour sections 29 s vs 461 s. ``threadpoolctl`` (a runtime dependency) sets the
limit on the BLAS library numpy actually loaded, which environment variables cannot do once
numpy is imported.
"""
from __future__ import annotations

from contextlib import nullcontext

from nprefgen._validation import check_int


def blas_threads(n: int | None = 1):
    """Context manager limiting numpy's BLAS to ``n`` threads; ``None`` leaves it alone."""
    if n is None:
        return nullcontext()
    n = check_int(n, "n", low=1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; kept for stripped-down installs
        return nullcontext()
    return threadpool_limits(limits=n, user_api="blas")
