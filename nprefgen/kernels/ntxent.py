"""The NT-Xent (SimCLR) loss and its gradient w.r.t. the un-normalised embeddings
(derivations/representation.md, REP.12-REP.15).

Rows ``i`` and ``i + N`` of ``h: (2N, d)`` are the two views of one image (the positive pair);
every other row is a negative. With z_i = h_i / ||h_i|| (REP.12) and s_ij = z_i . z_j / tau,

    (REP.13)  L = 1/(2N) sum_i [ -s_{i,p(i)} + log sum_{k != i} exp(s_ik) ],
    (REP.14)  G = (P - Y) / (2N),  dL/dZ = (G + G^T) Z / tau,
    (REP.15)  dL/dh_i = (g_i - (g_i . z_i) z_i) / ||h_i||,

P the row softmax of S over k != i, Y the 0/1 matrix of positives, g_i the rows of dL/dZ.
Reference: Chen et al. (2020), "A Simple Framework for Contrastive Learning of Visual
Representations" (SimCLR), eq. (1).

``ntxent_numpy`` is the readable oracle. ``ntxent`` is the fast path: the two (2N x 2N x d)
matrix products go to BLAS and a numba kernel does the O(N^2) softmax part in one sweep over
the upper triangle. Because |s_ij| <= 1/tau, shifting every logit by the common bound 1/tau
keeps exp(s_ij - 1/tau) symmetric in i, j, so each exponential is computed once for both rows
i and j, and (G + G^T)_ij = E_ij (1/r_i + 1/r_j) / (2N) - (Y_ij + Y_ji) / (2N) with r_i the row
sums. For tau < 1/350 that common shift could underflow a whole row, and the kernel falls back
to a per-row maximum.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from nprefgen._validation import check_array, check_scalar
from nprefgen.kernels.jit import kernel

# below this temperature exp(-2/tau) may underflow: use the per-row maximum shift
_SYMMETRIC_MIN_TAU = 1.0 / 350.0


def _check(h, tau):
    h = check_array(h, "h", ndim=2, dtype=np.float64)
    n2 = h.shape[0]
    if n2 < 4 or n2 % 2:
        raise ValueError(f"h: expected an even number >= 4 of rows (2N views, N >= 2), got {n2}")
    tau = check_scalar(tau, "tau", low=0.0, low_inclusive=False)
    norms = np.sqrt(np.einsum("ij,ij->i", h, h))
    if np.any(norms == 0.0):
        raise ValueError(f"h: expected non-zero rows (cosine similarity is undefined for zero "
                         f"vectors), got {int(np.sum(norms == 0.0))} zero rows")
    return h, tau


def ntxent_numpy(h: np.ndarray, tau: float = 0.5) -> tuple[float, np.ndarray]:
    """NT-Xent loss (REP.13) and its gradient (REP.14-REP.15), the NumPy oracle.

    h: (2N, d), rows i and i + N positives; tau > 0 -> (loss: float, d_h: (2N, d))
    """
    h, tau = _check(h, tau)
    n2 = h.shape[0]
    half = n2 // 2
    norms = np.linalg.norm(h, axis=1)                      # (2N,)
    Z = h / norms[:, None]                                 # (REP.12) (2N, d)
    S = Z @ Z.T / tau                                      # (2N, 2N) cosine / tau
    np.fill_diagonal(S, -np.inf)                           # k != i
    m = S.max(axis=1, keepdims=True)
    lse = np.log(np.exp(S - m).sum(axis=1)) + m[:, 0]      # (NN.20) log sum_{k != i} exp s_ik
    pos = (np.arange(n2) + half) % n2                      # p(i)
    rows = np.arange(n2)
    loss = float(np.mean(lse - S[rows, pos]))             # (REP.13)
    P = np.exp(S - lse[:, None])                           # row softmax, P_ii = 0
    Y = np.zeros_like(S)
    Y[rows, pos] = 1.0
    G = (P - Y) / n2                                       # (REP.14) dL/dS
    d_Z = (G + G.T) @ Z / tau                              # (REP.14) (2N, d)
    radial = np.sum(d_Z * Z, axis=1, keepdims=True)        # g_i . z_i
    d_h = (d_Z - radial * Z) / norms[:, None]              # (REP.15)
    return loss, d_h


@kernel
def _normalize_rows(h, Z, norms):
    """(REP.12) Z = h / ||h|| row-wise."""
    n, d = h.shape
    for i in range(n):
        s = 0.0
        for j in range(d):
            s += h[i, j] * h[i, j]
        r = np.sqrt(s)
        norms[i] = r
        for j in range(d):
            Z[i, j] = h[i, j] / r


@kernel
def _ntxent_symmetric(C, tau):
    """(REP.13-REP.14) in place on the upper triangle (j > i) of the cosine matrix C: (2N, 2N).

    Returns the loss and leaves M = G + G^T (REP.14, without the 1/tau) in the upper triangle,
    zeros on the diagonal; the lower triangle is neither read nor written. The shift 1/tau is
    shared by all rows, so E_ij = exp((C_ij - 1)/tau) is symmetric: one exp per pair."""
    n2 = C.shape[0]
    half = n2 // 2
    inv_tau = 1.0 / tau
    scale = 1.0 / n2
    loss = 0.0
    for i in range(half):                                  # log-numerators, before overwriting
        loss -= 2.0 * (C[i, i + half] - 1.0) * inv_tau     # rows i and i + N share c_{i,i+N}
    r = np.zeros(n2)
    for i in range(n2):
        C[i, i] = 0.0
        ri = 0.0
        for j in range(i + 1, n2):
            e = np.exp((C[i, j] - 1.0) * inv_tau)
            C[i, j] = e
            ri += e
            r[j] += e
        r[i] += ri
    for i in range(n2):
        loss += np.log(r[i])                               # lse_i - 1/tau
    for i in range(n2):
        inv_ri = 1.0 / r[i]
        for j in range(i + 1, n2):
            C[i, j] *= (inv_ri + 1.0 / r[j]) * scale       # P_ij/(2N) + P_ji/(2N)
    for i in range(half):                                  # - (Y + Y^T)/(2N)
        C[i, i + half] -= 2.0 * scale
    return loss * scale


@kernel
def _ntxent_rowmax(C, tau, M):
    """Same contract as ``_ntxent_symmetric`` with a per-row maximum shift (any tau > 0)."""
    n2 = C.shape[0]
    half = n2 // 2
    inv_tau = 1.0 / tau
    scale = 1.0 / n2
    loss = 0.0
    for i in range(n2):
        m = -np.inf
        for j in range(n2):
            if j != i and C[i, j] > m:
                m = C[i, j]
        s = 0.0
        for j in range(n2):
            if j != i:
                e = np.exp((C[i, j] - m) * inv_tau)
                M[i, j] = e
                s += e
        M[i, i] = 0.0
        p = (i + half) % n2
        loss += np.log(s) - (C[i, p] - m) * inv_tau
        inv_s = scale / s
        for j in range(n2):
            M[i, j] *= inv_s                               # G + Y/(2N), row i
        M[i, p] -= scale                                   # G = (P - Y)/(2N)
    for i in range(n2):                                    # M <- G + G^T
        for j in range(i + 1, n2):
            v = M[i, j] + M[j, i]
            M[i, j] = v
            M[j, i] = v
    return loss * scale


@kernel
def _normalize_backward(Z, norms, d_Z, tau, d_h):
    """(REP.15) d_h_i = (g_i - (g_i . z_i) z_i) / ||h_i|| with g = d_Z / tau."""
    n, d = Z.shape
    for i in range(n):
        radial = 0.0
        for j in range(d):
            radial += d_Z[i, j] * Z[i, j]
        c = 1.0 / (tau * norms[i])
        for j in range(d):
            d_h[i, j] = (d_Z[i, j] - radial * Z[i, j]) * c


def ntxent(h: np.ndarray, tau: float = 0.5) -> tuple[float, np.ndarray]:
    """NT-Xent loss (REP.13) and gradient (REP.14-REP.15); numba + BLAS fast path.

    Same contract as :func:`ntxent_numpy`: h: (2N, d), tau > 0 -> (loss, d_h: (2N, d)).
    The Gram matrix is one BLAS ``syrk`` (one triangle of Z Z^T) and dL/dZ one ``symm`` reading
    the same triangle, both on transposed views so that nothing is copied.
    """
    h, tau = _check(h, tau)
    h = np.ascontiguousarray(h)
    n2, d = h.shape
    Z = np.empty_like(h)
    norms = np.empty(n2)
    _normalize_rows(h, Z, norms)                           # (REP.12)
    # Z.T is Fortran-ordered (d, 2N): syrk(trans=1) gives Z Z^T with its lower triangle filled in
    # Fortran order, i.e. the upper triangle of the C-ordered view C.
    C = blas.dsyrk(1.0, Z.T, trans=1, lower=1).T          # (2N, 2N), upper triangle valid
    if tau >= _SYMMETRIC_MIN_TAU:
        loss = _ntxent_symmetric(C, tau)                   # upper triangle <- G + G^T (REP.14)
    else:
        C = np.triu(C) + np.triu(C, 1).T
        M = np.empty_like(C)
        loss = _ntxent_rowmax(C, tau, M)
        C = M
    # (REP.14) (G + G^T) Z as Z^T M with M symmetric: symm(side=1) on the same triangle
    d_Z = blas.dsymm(1.0, C.T, Z.T, side=1, lower=1).T     # (2N, d), C-ordered view
    d_h = np.empty_like(h)
    _normalize_backward(Z, norms, d_Z, tau, d_h)           # (REP.15)
    return float(loss), d_h
