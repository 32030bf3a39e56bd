"""The backward pass of a MAF layer's affine part, after its transcendental functions, in one pass
(derivations/flows.md, FLOW.6, FLOW.12, FLOW.14).

A MAF layer maps z = (x - mu) exp(-alpha) with alpha = b tanh(raw / b) (FLOW.6, FLOW.12), and its
backward (FLOW.14) needs, from the cotangents d_z: (n, D), d_log_det: (n,),

    d_x     = d_z e                       e = exp(-alpha)
    d_mu    = -d_x
    d_alpha = -d_z z - d_log_det
    d_raw   = d_alpha (1 - (alpha / b)^2)            (without a bound, b = 0: d_raw = d_alpha)

and the MADE below takes ``d_out = [d_mu, d_raw]: (n, 2 D)``, whose column sum is its output
layer's bias gradient (NN.2c). NumPy spends about fifteen small calls on that (plus the
concatenation and the sum); the kernel does it in one pass over the rows. The tanh and the exp
stay NumPy ufuncs, computed by the caller (``u = tanh(raw / b)``, ``e = exp(-b u)``), because
NumPy's SIMD tanh and exp differ from the scalar ones a numba loop calls in the last bit for
some inputs, and training must stay bit-identical; the kernel does the remaining arithmetic in
NumPy's order (alpha = b u, then (alpha / b)^2), in the arrays' dtype (float32 stays float32),
and sums the columns of d_out row after row, as NumPy's ``sum(axis=0)`` of a C-contiguous array
does, so it agrees with :func:`maf_affine_backward_numpy` bit for bit.
"""
from __future__ import annotations

import numpy as np

from nprefgen.kernels.jit import kernel


def maf_affine_backward_numpy(d_z, z, d_log_det, u, e, bound: float):
    """(FLOW.14) d_z, z: (n, D), d_log_det: (n,), u = tanh(raw / b) (raw itself when b = 0),
    e = exp(-alpha): (n, D), b = ``bound`` >= 0
    -> d_x = d_z e: (n, D), d_out = [-d_x, d_raw]: (n, 2 D), d_b = d_out.sum(axis=0): (2 D,)."""
    if bound > 0:
        alpha = bound * u                            # (FLOW.6)
        d_clamp = 1.0 - (alpha / bound) ** 2
    else:
        d_clamp = 1.0
    d_x = d_z * e
    d_alpha = -d_z * z - d_log_det[:, None]
    d_out = np.concatenate([-d_x, d_alpha * d_clamp], axis=1)
    return d_x, d_out, d_out.sum(axis=0)


@kernel
def _maf_affine_backward(d_z, z, d_log_det, u, e, bound, one, d_x, d_out, d_b):
    n, dim = d_z.shape
    for j in range(2 * dim):
        d_b[j] = 0.0
    for i in range(n):                               # row after row: the order of sum(axis=0)
        for j in range(dim):
            v = d_z[i, j] * e[i, j]
            d_x[i, j] = v
            d_out[i, j] = -v
            d_b[j] += -v
            d_alpha = -d_z[i, j] * z[i, j] - d_log_det[i]
            if bound > 0:
                q = (bound * u[i, j]) / bound
                d_alpha = d_alpha * (one - q * q)
            d_out[i, dim + j] = d_alpha
            d_b[dim + j] += d_alpha


def maf_affine_backward(d_z, z, d_log_det, u, e, bound: float):
    """(FLOW.14) Numba kernel; same contract as :func:`maf_affine_backward_numpy`, dtypes
    included for any mix of float32 and float64 arguments (NumPy's promotion: d_x in that of
    d_z e, d_out and d_b in that of all five (u only when b > 0), b and 1 - (alpha / b)^2 in
    u's dtype)."""
    t = d_z.dtype
    if z.dtype == t and d_log_det.dtype == t and u.dtype == t and e.dtype == t:
        dt = dt_x = t                                # the training path: one dtype
    else:
        dt_x = np.result_type(d_z, e)                # u enters d_out through the bound only
        dt = np.result_type(d_z, z, d_log_det, e, *((u,) if bound > 0 else ()))
    n, dim = d_z.shape
    d_x = np.empty((n, dim), dtype=dt_x)
    d_out = np.empty((n, 2 * dim), dtype=dt)
    d_b = np.empty(2 * dim, dtype=dt)
    _maf_affine_backward(d_z, z, d_log_det, u, e, u.dtype.type(bound), u.dtype.type(1.0),
                         d_x, d_out, d_b)
    return d_x, d_out, d_b
