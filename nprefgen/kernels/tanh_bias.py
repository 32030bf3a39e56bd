"""The VJP of a tanh layer fused with the bias gradient of the affine layer below it
(derivations/nn.md, NN.6 and NN.2c).

In an MLP ``... -> a = h W^T + b -> y = tanh a -> ...`` the backward pass reaches y with
``d_y: (n, H)`` and needs

    d_a = d_y (1 - y^2)                                   (NN.6)
    d_b = sum_i d_a[i, :]                                  (NN.2c) of the layer below

NumPy spends four passes and three temporaries on that (``y * y``, ``1 - .``, ``d_y * .``, the
column sum); the kernel does it in one pass with no temporary, keeping the row order of the sum
that ``d_a.sum(axis=0)`` uses for a C-contiguous array (rows added one after another), so the two
agree bit for bit there; float32 inputs are computed in float32. Used by the MADE's training
path (nprefgen/flows/made.py); the tanh itself stays a NumPy ufunc (its SIMD loop is ~10x faster
than numba's scalar tanh on this build).
"""
from __future__ import annotations

import numpy as np

from nprefgen.kernels.jit import kernel


def tanh_backward_bias_numpy(y: np.ndarray, d_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(NN.6), (NN.2c) y = tanh(a), d_y: (n, H) -> d_a = d_y (1 - y^2): (n, H), d_b: (H,).

    Unchecked (internal fast path; the callers produce both arrays). dtype: that of y and d_y
    together (1 - y^2 in y's precision).
    """
    d_a = d_y * (1.0 - y * y)            # (NN.6)
    return d_a, d_a.sum(axis=0)          # (NN.2c)


@kernel
def _tanh_backward_bias(y, d_y, one, d_a, d_b):
    n, h = y.shape
    for j in range(h):
        d_b[j] = 0.0
    for i in range(n):                   # row after row: the order of d_a.sum(axis=0)
        for j in range(h):
            v = d_y[i, j] * (one - y[i, j] * y[i, j])
            d_a[i, j] = v
            d_b[j] += v


def tanh_backward_bias(y: np.ndarray, d_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(NN.6), (NN.2c) Numba kernel; same contract as ``tanh_backward_bias_numpy``."""
    dt = np.result_type(y, d_y)
    d_a = np.empty(d_y.shape, dtype=dt)
    d_b = np.empty(d_y.shape[1], dtype=dt)
    # `one` in y's dtype, as NumPy's weak 1.0 in the twin: 1 - y^2 is formed in y's precision
    _tanh_backward_bias(y, d_y, y.dtype.type(1.0), d_a, d_b)
    return d_a, d_b
