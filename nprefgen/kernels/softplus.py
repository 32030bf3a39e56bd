"""Softplus and its derivative, elementwise (derivations/nn.md, NN.8), and ReLU's VJP (NN.4).

(NN.8) softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^{-|x|});
       softplus'(x) = sigmoid(x) = 1 / (1 + e^{-x}), evaluated without overflow.
(NN.4) relu(x) = max(x, 0); its VJP d_x = d_y 1[x > 0] as one select per element (the NumPy
       twin multiplies by a boolean mask, two passes and a temporary).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array
from nprefgen.kernels.jit import kernel


def _as_float(x) -> np.ndarray:
    """Finite, non-empty x of any shape; float32/float64 keep their dtype, anything else (ints,
    bools, lists) becomes float64."""
    return check_array(x, "x")


def softplus_numpy(x: np.ndarray) -> np.ndarray:
    """(NN.8) any shape -> same shape. The NumPy oracle (logaddexp is exact and stable)."""
    x = _as_float(x)
    return np.logaddexp(0.0, x).astype(x.dtype, copy=False)


def softplus_grad_numpy(x: np.ndarray) -> np.ndarray:
    """(NN.8) softplus'(x) = sigmoid(x), stable for large |x|."""
    x = _as_float(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


@kernel
def _softplus_flat(x, out):
    for i in range(x.shape[0]):
        v = x[i]
        out[i] = max(v, 0.0) + np.log1p(np.exp(-abs(v)))


@kernel
def _softplus_grad_flat(x, out):
    for i in range(x.shape[0]):
        v = x[i]
        e = np.exp(-abs(v))
        if v >= 0:
            out[i] = 1.0 / (1.0 + e)
        else:
            out[i] = e / (1.0 + e)


def _elementwise(flat_kernel, x: np.ndarray) -> np.ndarray:
    x = _as_float(x)
    out = np.empty(x.shape, dtype=x.dtype)
    # reshape(-1) of a strided array copies; the kernel itself also accepts strided 1-D input.
    flat_kernel(x.reshape(-1), out.reshape(-1))
    return out


def softplus(x: np.ndarray) -> np.ndarray:
    """(NN.8) Numba kernel; same contract as ``softplus_numpy``."""
    return _elementwise(_softplus_flat, x)


def softplus_grad(x: np.ndarray) -> np.ndarray:
    """(NN.8) Numba kernel; same contract as ``softplus_grad_numpy``."""
    return _elementwise(_softplus_grad_flat, x)


def relu_backward_numpy(x: np.ndarray, d_y: np.ndarray) -> np.ndarray:
    """(NN.4) d_x = d_y 1[x > 0]. x, d_y: same shape (any) -> d_x: d_y's shape and dtype.
    Unchecked (the ReLU layer checks); internal fast path of ``ReLU.backward``."""
    return np.multiply(d_y, x > 0)


@kernel
def _relu_backward_flat(x, d_y, out):
    for i in range(x.shape[0]):
        out[i] = d_y[i] if x[i] > 0 else 0.0


def relu_backward(x: np.ndarray, d_y: np.ndarray) -> np.ndarray:
    """(NN.4) Numba kernel; same contract as ``relu_backward_numpy``. Unchecked, like every
    kernel: ``ReLU.backward`` validates its inputs first and calls it."""
    out = np.empty(d_y.shape, dtype=d_y.dtype)
    _relu_backward_flat(x.reshape(-1), d_y.reshape(-1), out.reshape(-1))
    return out
