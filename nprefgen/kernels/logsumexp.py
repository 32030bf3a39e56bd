"""Row-wise log-sum-exp, the stable form (derivations/nn.md, NN.20).

(NN.20) logsumexp(a)_i = m_i + log sum_j exp(a_ij - m_i), m_i = max_j a_ij.
Rows whose maximum is -inf give -inf (an empty mixture), +inf gives +inf.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array
from nprefgen.kernels.jit import kernel


def _check_a(a) -> np.ndarray:
    """a: (n, k), k >= 1, no NaN (+-inf are valid: the contract above)."""
    return check_array(a, "a", ndim=2, allow_inf=True)


def logsumexp_rows_numpy(a: np.ndarray) -> np.ndarray:
    """(NN.20) a: (n, k) -> (n,). The NumPy oracle."""
    a = _check_a(a)
    m = np.max(a, axis=1)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - m_safe[:, None]), axis=1)) + m_safe
    return out


@kernel
def _logsumexp_rows(a, out):
    n, k = a.shape
    for i in range(n):
        m = -np.inf
        for j in range(k):
            if a[i, j] > m:
                m = a[i, j]
        if m == -np.inf or m == np.inf:
            out[i] = m          # an empty row (all -inf) or an infinite entry
            continue
        s = 0.0
        for j in range(k):
            s += np.exp(a[i, j] - m)
        out[i] = np.log(s) + m


def logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """(NN.20) a: (n, k) -> (n,). Numba kernel; same contract as ``logsumexp_rows_numpy``."""
    a = _check_a(a)
    out = np.empty(a.shape[0], dtype=a.dtype)
    _logsumexp_rows(a, out)
    return out
