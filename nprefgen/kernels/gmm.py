"""Gaussian-mixture EM kernels (derivations/gmm.md): log-densities, responsibilities, statistics.

Each function has a NumPy twin ``<fn>_numpy`` (the readable oracle) and a numba fast path
``<fn>`` with the same contract:

- ``log_gaussian_prob_full`` / ``_diag``  (GMM.3)  log N(x_i | mu_k, Sigma_k) from the Cholesky
  factor of the precision, U_k U_k^T = Sigma_k^{-1}; ``(n, d) -> (n, K)``.
- ``log_responsibilities``                 (GMM.4)  log r_ik = a_ik - logsumexp_j a_ij, reusing
  the row-wise log-sum-exp kernel of ``kernels/logsumexp.py`` (NN.20); ``(n, K) -> (n,), (n, K)``.
- ``weighted_sums``                        (GMM.5)  N_k = sum_i r_ik and s_k = sum_i r_ik x_i.
- ``weighted_scatter_full`` / ``_diag``    (GMM.6)  S_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T,
  the centred (two-pass) form of sum_i r_ik x_i x_i^T - N_k mu_k mu_k^T, and its diagonal.

The full-covariance kernels hand the O(n K d^2) products to BLAS (``np.dot`` inside numba, in
row blocks of ``_BLOCK`` so that scratch memory stays O(_BLOCK d)) and fuse the cheap O(n K d)
work around them (centring, weighting, squaring, summing) into single loops. Measured
single-threaded: about 5x faster than explicit triangular loops at d = 64, and 2-5x faster than
the per-component NumPy formulation at d = 2 (where NumPy's temporaries dominate); see
benchmarks/bench_gmm.py.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array
from nprefgen.kernels.jit import kernel
from nprefgen.kernels.logsumexp import _logsumexp_rows, logsumexp_rows_numpy

_BLOCK = 2048  # rows per BLAS block in the full-covariance kernels
_LOG_2PI = float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------------------------
# Input checks, shared by each NumPy twin and its numba kernel (which must never see arrays of
# mismatched shapes: numba does not check bounds)
# --------------------------------------------------------------------------------------------
def _check_gaussian(X, means, prec_chol, full: bool):
    """X: (n, d), means: (K, d), prec_chol: (K, d, d) upper-triangular (``full``) or (K, d),
    with a positive diagonal. Also returns log|U_k| = sum_j log U_k[j, j] (K,) (GMM.3)."""
    X = check_array(X, "X", ndim=2)
    means = check_array(means, "means", shape=(None, X.shape[1]))
    K, d = means.shape
    prec_chol = check_array(prec_chol, "prec_chol", shape=(K, d, d) if full else (K, d))
    diag = np.diagonal(prec_chol, axis1=1, axis2=2) if full else prec_chol       # (K, d)
    if not np.all(diag > 0):
        raise ValueError(f"prec_chol: expected Cholesky factors with a positive diagonal, got "
                         f"a diagonal entry {diag.min():.4g}")
    if full and np.any(np.tril(prec_chol, -1)):
        raise ValueError("prec_chol: expected upper-triangular factors U_k (Sigma_k^{-1} = "
                         "U_k U_k^T), got non-zero entries below the diagonal")
    return X, means, prec_chol, np.sum(np.log(diag), axis=1)


def _check_weighted_log_prob(a) -> np.ndarray:
    """a: (n, K) log-densities: -inf (a zero weight) is valid, NaN and +inf are not."""
    a = check_array(a, "weighted_log_prob", ndim=2, allow_inf=True)
    if np.any(a == np.inf):
        raise ValueError("weighted_log_prob: expected log-densities below +inf, got +inf entries")
    return a


def _check_log_norm(log_norm: np.ndarray) -> np.ndarray:
    """A row of -inf (zero density under every component) has log p = -inf and no
    responsibilities (GMM.4); checked on log p (n,) rather than by row maxima of a (slow)."""
    empty = np.flatnonzero(log_norm == -np.inf)
    if empty.size:
        raise ValueError(f"weighted_log_prob: row {int(empty[0])} is -inf in every component, "
                         f"so its responsibilities (GMM.4) are undefined")
    return log_norm


def _check_stats(X, resp, means=None, finite: bool = True):
    """X: (n, d), resp: (n, K), means: (K, d) when given. The numba paths pass
    ``finite=False`` and check their result instead (:func:`_check_result`)."""
    X = check_array(X, "X", ndim=2, finite=finite)
    resp = check_array(resp, "resp", shape=(X.shape[0], None), finite=finite)
    if means is None:
        return X, resp
    return X, resp, check_array(means, "means", shape=(resp.shape[1], X.shape[1]), finite=finite)


def _check_result(out, X, resp, means=None):
    """The kernels' sums are non-finite exactly when an input is (NaN and inf propagate, and
    0 * inf is NaN in their explicit loops), so checking the (K, ...) result replaces two
    passes over the (n, d) and (n, K) inputs in every EM iteration; on failure the inputs are
    scanned to name the culprit."""
    if all(np.all(np.isfinite(o)) for o in out):
        return out
    _check_stats(X, resp, means)
    raise ValueError("X: the statistics overflowed for finite inputs; rescale X")


# --------------------------------------------------------------------------------------------
# (GMM.3) log N(x | mu, Sigma) through the Cholesky factor U of the precision, Sigma^{-1} = U U^T
# --------------------------------------------------------------------------------------------
def log_gaussian_prob_full_numpy(X: np.ndarray, means: np.ndarray,
                                 prec_chol: np.ndarray) -> np.ndarray:
    """(GMM.3) X: (n, d), means: (K, d), prec_chol: (K, d, d) upper-triangular U_k -> (n, K).

    log N(x | mu_k, Sigma_k) = -d/2 log(2 pi) + sum_j log U_k[j, j] - 1/2 ||(x - mu_k)^T U_k||^2.
    """
    X, means, prec_chol, log_det = _check_gaussian(X, means, prec_chol, full=True)
    n, d = X.shape
    K = means.shape[0]
    out = np.empty((n, K), dtype=np.float64)
    for k in range(K):
        y = (X - means[k]) @ prec_chol[k]                       # (n, d)
        out[:, k] = -0.5 * d * _LOG_2PI + log_det[k] - 0.5 * np.sum(y * y, axis=1)
    return out


@kernel
def _log_gaussian_prob_full(X, means, prec_chol, log_det, out):
    n, d = X.shape
    K = means.shape[0]
    c0 = -0.5 * d * np.log(2.0 * np.pi)
    diff = np.empty((min(n, _BLOCK), d))
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        m = stop - start
        for k in range(K):
            for i in range(m):                                   # centre the block on mu_k
                for a in range(d):
                    diff[i, a] = X[start + i, a] - means[k, a]
            Uk = np.ascontiguousarray(prec_chol[k])
            y = np.dot(diff[:m], Uk)                             # (m, d) by BLAS
            for i in range(m):
                s = 0.0
                for j in range(d):
                    s += y[i, j] * y[i, j]
                out[start + i, k] = c0 + log_det[k] - 0.5 * s


def log_gaussian_prob_full(X: np.ndarray, means: np.ndarray, prec_chol: np.ndarray) -> np.ndarray:
    """(GMM.3) Numba kernel; same contract as ``log_gaussian_prob_full_numpy``."""
    X, means, prec_chol, log_det = _check_gaussian(X, means, prec_chol, full=True)
    out = np.empty((X.shape[0], means.shape[0]), dtype=np.float64)
    _log_gaussian_prob_full(X, means, prec_chol, log_det, out)
    return out


def log_gaussian_prob_diag_numpy(X: np.ndarray, means: np.ndarray,
                                 prec_chol: np.ndarray) -> np.ndarray:
    """(GMM.3) Diagonal case: prec_chol: (K, d) holds 1/sigma_kj; X: (n, d), means: (K, d) -> (n, K).

    Evaluated in the centred form sum_j ((x_j - mu_kj) / sigma_kj)^2 (no cancellation).
    """
    X, means, prec_chol, log_det = _check_gaussian(X, means, prec_chol, full=False)   # (K,)
    d = X.shape[1]
    y = (X[:, None, :] - means[None, :, :]) * prec_chol[None, :, :]   # (n, K, d)
    return -0.5 * d * _LOG_2PI + log_det[None, :] - 0.5 * np.sum(y * y, axis=2)


@kernel
def _log_gaussian_prob_diag(X, means, prec_chol, log_det, out):
    n, d = X.shape
    K = means.shape[0]
    c0 = -0.5 * d * np.log(2.0 * np.pi)
    for i in range(n):
        for k in range(K):
            s = 0.0
            for j in range(d):
                t = (X[i, j] - means[k, j]) * prec_chol[k, j]
                s += t * t
            out[i, k] = c0 + log_det[k] - 0.5 * s


def log_gaussian_prob_diag(X: np.ndarray, means: np.ndarray, prec_chol: np.ndarray) -> np.ndarray:
    """(GMM.3) Numba kernel; same contract as ``log_gaussian_prob_diag_numpy``."""
    X, means, prec_chol, log_det = _check_gaussian(X, means, prec_chol, full=False)
    out = np.empty((X.shape[0], means.shape[0]), dtype=np.float64)
    _log_gaussian_prob_diag(X, means, prec_chol, log_det, out)
    return out


# --------------------------------------------------------------------------------------------
# (GMM.4) responsibilities in log space
# --------------------------------------------------------------------------------------------
def log_responsibilities_numpy(weighted_log_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(GMM.4) a: (n, K) with a_ik = log pi_k + log N(x_i | mu_k, Sigma_k).

    Returns ``log_norm`` (n,) = log p(x_i) = logsumexp_k a_ik (NN.20) and
    ``log_resp`` (n, K) = a_ik - log_norm_i. Entries may be -inf (a zero weight), but every row
    needs a finite entry.
    """
    weighted_log_prob = _check_weighted_log_prob(weighted_log_prob)
    log_norm = _check_log_norm(logsumexp_rows_numpy(weighted_log_prob))
    return log_norm, weighted_log_prob - log_norm[:, None]


@kernel
def _subtract_rows(a, log_norm, log_resp):
    n, K = a.shape
    for i in range(n):
        for k in range(K):
            log_resp[i, k] = a[i, k] - log_norm[i]


def log_responsibilities(weighted_log_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(GMM.4) Numba kernel; same contract as ``log_responsibilities_numpy``."""
    weighted_log_prob = _check_weighted_log_prob(weighted_log_prob)
    n, K = weighted_log_prob.shape
    log_norm = np.empty(n, dtype=np.float64)
    log_resp = np.empty((n, K), dtype=np.float64)
    with np.errstate(invalid="ignore"):    # (-inf) - (-inf) in an empty row, refused next
        # (NN.20), logsumexp's own kernel, called from Python: a kernel calling another
        # module's kernel would keep stale machine code in numba's cache when that module changes
        _logsumexp_rows(weighted_log_prob, log_norm)
        _subtract_rows(weighted_log_prob, log_norm, log_resp)
    return _check_log_norm(log_norm), log_resp


# --------------------------------------------------------------------------------------------
# (GMM.5), (GMM.6) sufficient statistics of the M-step
# --------------------------------------------------------------------------------------------
def weighted_sums_numpy(X: np.ndarray, resp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(GMM.5) X: (n, d), resp: (n, K) -> N_k = sum_i r_ik (K,), s_k = sum_i r_ik x_i (K, d)."""
    X, resp = _check_stats(X, resp)
    return resp.sum(axis=0), resp.T @ X


@kernel
def _weighted_sums(X, resp, nk, sx):
    n, d = X.shape
    K = resp.shape[1]
    nk[:] = 0.0
    sx[:] = 0.0
    for i in range(n):
        for k in range(K):
            r = resp[i, k]
            nk[k] += r
            for a in range(d):
                sx[k, a] += r * X[i, a]


def weighted_sums(X: np.ndarray, resp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(GMM.5) Numba kernel; same contract as ``weighted_sums_numpy``."""
    X, resp = _check_stats(X, resp, finite=False)
    K = resp.shape[1]
    nk = np.empty(K, dtype=np.float64)
    sx = np.empty((K, X.shape[1]), dtype=np.float64)
    with np.errstate(all="ignore"):   # bad values surface in the result, checked next
        _weighted_sums(X, resp, nk, sx)
    return _check_result((nk, sx), X, resp)


def weighted_scatter_full_numpy(X: np.ndarray, resp: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(GMM.6) X: (n, d), resp: (n, K), means: (K, d) -> S: (K, d, d),
    S_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T (centred, two-pass)."""
    X, resp, means = _check_stats(X, resp, means)
    K, d = means.shape
    S = np.empty((K, d, d), dtype=np.float64)
    for k in range(K):
        diff = X - means[k]                                      # (n, d)
        S[k] = (resp[:, k, None] * diff).T @ diff
    return S


@kernel
def _weighted_scatter_full(X, resp, means, S):
    n, d = X.shape
    K = means.shape[0]
    S[:] = 0.0
    b = min(n, _BLOCK)
    diff = np.empty((b, d))
    rdiff = np.empty((b, d))
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        m = stop - start
        for k in range(K):
            for i in range(m):
                r = resp[start + i, k]
                for a in range(d):
                    t = X[start + i, a] - means[k, a]
                    diff[i, a] = t
                    rdiff[i, a] = r * t
            S[k] += np.dot(rdiff[:m].T, diff[:m])                # (d, d) by BLAS


def weighted_scatter_full(X: np.ndarray, resp: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(GMM.6) Numba kernel; same contract as ``weighted_scatter_full_numpy``."""
    X, resp, means = _check_stats(X, resp, means, finite=False)
    K, d = means.shape
    S = np.empty((K, d, d), dtype=np.float64)
    with np.errstate(all="ignore"):   # bad values surface in the result, checked next
        _weighted_scatter_full(X, resp, means, S)
    return _check_result((S,), X, resp, means)[0]


def weighted_scatter_diag_numpy(X: np.ndarray, resp: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(GMM.6) Diagonal of S_k: X: (n, d), resp: (n, K), means: (K, d) -> (K, d),
    sum_i r_ik (x_ij - mu_kj)^2."""
    X, resp, means = _check_stats(X, resp, means)
    diff = X[:, None, :] - means[None, :, :]                     # (n, K, d)
    return np.einsum("nk,nkd->kd", resp, diff * diff)


@kernel
def _weighted_scatter_diag(X, resp, means, S):
    n, d = X.shape
    K = means.shape[0]
    S[:] = 0.0
    for i in range(n):
        for k in range(K):
            r = resp[i, k]
            for a in range(d):
                t = X[i, a] - means[k, a]
                S[k, a] += r * t * t


def weighted_scatter_diag(X: np.ndarray, resp: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(GMM.6) Numba kernel; same contract as ``weighted_scatter_diag_numpy``."""
    X, resp, means = _check_stats(X, resp, means, finite=False)
    S = np.empty(means.shape, dtype=np.float64)
    with np.errstate(all="ignore"):   # bad values surface in the result, checked next
        _weighted_scatter_diag(X, resp, means, S)
    return _check_result((S,), X, resp, means)[0]
