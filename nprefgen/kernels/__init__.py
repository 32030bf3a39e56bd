"""Numba kernels, each beside its NumPy twin.

Each module ``kernels/<name>.py`` holds ``<fn>_numpy`` (the readable oracle) and ``<fn>`` (the
numba fast path) with one contract. Parity tests compare them at rtol 1e-12 on contiguous and
strided inputs; ``NUMBA_DISABLE_JIT=1`` runs the kernels as plain Python and the suite still passes.
A kernel calls no kernel of another module and not itself (numba's cache would keep stale machine
code): wrappers compose kernels in Python (``tests/test_kernel_cache_safety.py``).
"""
from nprefgen.kernels.im2col import col2im, col2im_numpy, im2col, im2col_numpy
from nprefgen.kernels.logsumexp import logsumexp_rows, logsumexp_rows_numpy
from nprefgen.kernels.softplus import (
    softplus, softplus_numpy, softplus_grad, softplus_grad_numpy,
)

__all__ = [
    "im2col", "im2col_numpy", "col2im", "col2im_numpy",
    "logsumexp_rows", "logsumexp_rows_numpy",
    "softplus", "softplus_numpy", "softplus_grad", "softplus_grad_numpy",
]
