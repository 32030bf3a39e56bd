"""The elementwise work of a masked linear layer in training, in one pass per layer
(derivations/nn.md, NN.1-NN.3, NN.6).

A MADE step at batch 200 with 50-unit layers spends as much time in NumPy's small elementwise
calls around the matrix products as in the products themselves: the masked weight M * W (NN.3)
with the mask cast to the weight's dtype, the broadcast bias add a += b (NN.1; 2.4 us for 200 x 50
float32, one inner loop per row), the masked weight gradient g_W += M * d_W (NN.2b, NN.3; two
passes and a temporary), the bias gradient g_b += d_b (NN.2c) and, below a tanh, the VJP
d_a = d_h (1 - y^2) (NN.6) with its column sum, the bias gradient of the layer below (NN.2c).
The kernels do each group in one pass:

* ``join_columns(x, c)``                 -> [x, c], the first layer's input (0.5 us against
  1.9 us for np.concatenate of two (200, 2) arrays)
* ``masked_weight(w, mask)``             -> M * W                                    (NN.3)
* ``add_bias(a, b)``                     a += b in place                             (NN.1)
* ``accumulate_masked(g_w, d_w, mask, g_b, d_b)``  g_W += M * d_W, g_b += d_b          (NN.2b-c)
* ``masked_tanh_backward(g_w, d_w, mask, g_b, d_b, y, d_h)``  the previous line, then
  d_a = d_h (1 - y^2) and its column sum d_b_below                            (NN.6, NN.2c)

Every ``<fn>_numpy`` is the readable oracle and the kernel does the same operations in the same
order, so the two agree bit for bit: the column sum adds rows one after another, as NumPy's
``sum(axis=0)`` of a C-contiguous array does; float32 arrays are computed in float32. The masks
are float64 0/1 arrays whatever the weight's dtype (Module.astype casts parameters, not buffers):
a float32 entry times a float64 0 or 1 is exact in float64 (the entry itself or a signed zero),
and a float32 sum rounded once from float64 is the correctly rounded float32 sum (53 >= 2 x 24 +
2 bits, so double rounding is innocuous), so the kernels equal NumPy's float32 arithmetic on
the mask cast to float32. The gradient arrays are updated in place; the ``_numpy`` twins do the
same with NumPy.
"""
from __future__ import annotations

import numpy as np

from nprefgen.kernels.jit import kernel
from nprefgen.kernels.tanh_bias import _tanh_backward_bias


# -- NumPy twins ----------------------------------------------------------------------------------
def join_columns_numpy(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """x: (n, D), c: (n, C) -> [x, c]: (n, D + C) in their common dtype."""
    return np.concatenate([x, c], axis=1)


def masked_weight_numpy(w: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(NN.3) w: (out, in), mask: (out, in) 0/1 -> M * W in w's dtype."""
    return w * mask.astype(w.dtype, copy=False)


def add_bias_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(NN.1) a: (n, out) += b: (out,) in place; returns a."""
    a += b
    return a


def accumulate_masked_numpy(g_w, d_w, mask, g_b, d_b) -> None:
    """(NN.2b-c, NN.3) g_w += d_w * M, g_b += d_b in place (g_w, d_w, mask: (out, in); g_b, d_b:
    (out,), both of length 0 for a layer without bias)."""
    g_w += d_w * mask.astype(d_w.dtype, copy=False)
    g_b += d_b


def masked_tanh_backward_numpy(g_w, d_w, mask, g_b, d_b, y, d_h):
    """The backward of a masked layer with a tanh below it: :func:`accumulate_masked_numpy` for
    this layer (NN.2b-c with the mask of NN.3), then (NN.6) d_a = d_h (1 - y^2) with y = tanh(a) the layer's input (n, in), and
    (NN.2c) its column sum, the bias gradient of the layer below.
    -> d_a: (n, in), d_b_below: (in,)."""
    accumulate_masked_numpy(g_w, d_w, mask, g_b, d_b)
    d_a = d_h * (1.0 - y * y)
    return d_a, d_a.sum(axis=0)


# -- numba kernels --------------------------------------------------------------------------------
@kernel
def _join_columns(x, c, out):
    n, d = x.shape
    for i in range(n):
        for j in range(d):
            out[i, j] = x[i, j]
        for j in range(c.shape[1]):
            out[i, d + j] = c[i, j]


@kernel
def _masked_weight(w, mask, out):
    r, c = w.shape
    for i in range(r):
        for j in range(c):
            out[i, j] = w[i, j] * mask[i, j]


@kernel
def _add_bias(a, b):
    n, h = a.shape
    for i in range(n):
        for j in range(h):
            a[i, j] += b[j]


@kernel
def _accumulate_masked(g_w, d_w, mask, g_b, d_b):
    r, c = g_w.shape
    for i in range(r):
        for j in range(c):
            g_w[i, j] = g_w[i, j] + d_w[i, j] * mask[i, j]
    for j in range(g_b.shape[0]):
        g_b[j] += d_b[j]


def join_columns(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Numba kernel; same contract as :func:`join_columns_numpy`."""
    if c.shape[0] != x.shape[0]:                  # the loop reads c's rows by x's count
        raise ValueError(f"c: expected {x.shape[0]} rows to match x, got shape {c.shape}")
    out = np.empty((x.shape[0], x.shape[1] + c.shape[1]), dtype=np.result_type(x, c))
    _join_columns(x, c, out)
    return out


def masked_weight(w: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(NN.3) Numba kernel; same contract as :func:`masked_weight_numpy`."""
    out = np.empty(w.shape, dtype=w.dtype)
    _masked_weight(w, mask, out)
    return out


def add_bias(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(NN.1) Numba kernel; same contract as :func:`add_bias_numpy`."""
    _add_bias(a, b)
    return a


def accumulate_masked(g_w, d_w, mask, g_b, d_b) -> None:
    """(NN.2b-c, NN.3) Numba kernel; same contract as :func:`accumulate_masked_numpy`."""
    _accumulate_masked(g_w, d_w, mask, g_b, d_b)


def masked_tanh_backward(g_w, d_w, mask, g_b, d_b, y, d_h):
    """(NN.2b-c, NN.3, NN.6) Numba kernel; same contract as :func:`masked_tanh_backward_numpy`,
    dtypes included (d_a in the promotion of y's and d_h's, 1 - y^2 rounded in y's)."""
    dt = d_h.dtype if y.dtype == d_h.dtype else np.result_type(y, d_h)
    d_a = np.empty(d_h.shape, dtype=dt)
    d_b_below = np.empty(d_h.shape[1], dtype=dt)
    _accumulate_masked(g_w, d_w, mask, g_b, d_b)
    # (NN.6), (NN.2c): tanh_bias's loop, called from Python, not from a kernel of this module:
    # numba's on-disk cache would keep a caller here compiled against an older tanh_bias.py
    # (it tracks the caller's file only; tests/test_kernel_cache_safety.py)
    _tanh_backward_bias(y, d_h, y.dtype.type(1.0), d_a, d_b_below)
    return d_a, d_b_below
