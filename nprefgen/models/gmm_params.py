"""Gaussian mixture parameters (derivations/gmm.md): covariances <-> Cholesky factors of the
precisions, and the count of free parameters.

Parameterisation (GMM.3): each component stores the upper-triangular Cholesky factor U_k of its
precision, Sigma_k^{-1} = U_k U_k^T, so log N(x | mu_k, Sigma_k) needs one triangular product and
the log-determinant is sum_j log U_k[j, j]. ``covariance_type`` is

- ``"full"``: covariances (K, d, d), U (K, d, d);
- ``"diag"``: variances (K, d), U = 1/sigma (K, d);
- ``"spherical"``: one variance per component (K,), U = 1/sigma (K,).

* :func:`precision_cholesky` (GMM.3a): U from the covariances, refusing a singular one;
* :func:`precision_cholesky_from_precisions` (GMM.3b): U from the precisions;
* :func:`covariance_cholesky`: C with C C^T = Sigma, for sampling (GMM.14);
* :func:`precisions_from_cholesky`: Lambda = U U^T;
* :func:`n_parameters` (GMM.12): the free parameters, for BIC and AIC (GMM.13a, GMM.13b).

The ``_check_*`` helpers are the input checks shared by the pure functions of the GMM modules
(gmm_params, gmm_density, gmm_em; the estimator in gmm.py checks its own arguments).
"""
from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dpotrf, dtrtri

from nprefgen._validation import check_array, check_choice, check_int

COVARIANCE_TYPES = ("full", "diag", "spherical")


# --------------------------------------------------------------------------------------------
# Input checks of the pure functions of the GMM modules
# --------------------------------------------------------------------------------------------
def _check_type(covariance_type) -> str:
    return check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)


def _check_components(a, name: str, covariance_type: str, K: int | None = None,
                      d: int | None = None) -> np.ndarray:
    """Per-component (co)variances, precisions or Cholesky factors: (K, d, d) for "full",
    (K, d) for "diag", (K,) for "spherical"; finite float64."""
    shape = {"full": (K, d, d), "diag": (K, d), "spherical": (K,)}[covariance_type]
    a = check_array(a, name, shape=shape, dtype=np.float64)
    if covariance_type == "full" and a.shape[1] != a.shape[2]:
        raise ValueError(f"{name}: expected square (K, d, d) matrices, got shape {a.shape}")
    return a


def _check_weights(weights, K: int) -> np.ndarray:
    """Mixture weights: (K,), non-negative, not all zero."""
    w = check_array(weights, "weights", shape=(K,), dtype=np.float64)
    if np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"weights: expected non-negative weights with a positive sum, got "
                         f"minimum {w.min():.4g} and sum {w.sum():.4g}")
    return w


def _check_X_means(X, means) -> tuple[np.ndarray, np.ndarray]:
    """Shapes only: the GMM kernels check the values (one pass over X per E-step)."""
    X = check_array(X, "X", ndim=2, dtype=np.float64, finite=False)
    return X, check_array(means, "means", shape=(None, X.shape[1]), dtype=np.float64,
                          finite=False)


# --------------------------------------------------------------------------------------------
# Parameters: covariances <-> Cholesky factors of the precisions
# --------------------------------------------------------------------------------------------
def precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """(GMM.3a) U_k = C_k^{-T} with C_k = chol(Sigma_k) lower, so that Sigma_k^{-1} = U_k U_k^T.

    covariances: (K, d, d) | (K, d) | (K,) -> the same shape.

    Raises ``ValueError`` naming ``reg_covar`` when a covariance is (numerically) singular: a
    Cholesky pivot C_jj^2 at or below d * eps * max_j Sigma_jj (pivots bound the smallest
    eigenvalue from above), e.g. collinear data fitted with ``reg_covar=0``. Covariances that
    EM cannot produce (a negative variance, an asymmetric matrix) raise naming ``covariances``.
    """
    covariance_type = _check_type(covariance_type)
    covariances = _check_components(covariances, "covariances", covariance_type)
    variances = (np.diagonal(covariances, axis1=1, axis2=2) if covariance_type == "full"
                 else covariances)
    if np.any(variances < 0):
        raise ValueError(f"covariances: expected non-negative variances, got {variances.min():.4g}")
    if covariance_type == "full":
        asym = np.abs(covariances - np.swapaxes(covariances, 1, 2)).max()
        if asym > 1e-10 * np.abs(covariances).max():
            raise ValueError(f"covariances: expected symmetric matrices, got an asymmetry of "
                             f"{asym:.3g}")
    eps = np.finfo(np.float64).eps
    msg = ("reg_covar: component {k} has a singular covariance (smallest Cholesky pivot^2 "
           "{piv:.3g} vs largest variance {big:.3g}): collinear data or a collapsed component; "
           "expected reg_covar > 0 large enough to make every covariance positive definite "
           "(or fewer components / rescaled data)")
    if covariance_type == "full":
        K, d, _ = covariances.shape
        out = np.empty_like(covariances)
        for k in range(K):
            big = float(np.max(np.diagonal(covariances[k])))
            C, info = dpotrf(covariances[k], lower=1, clean=1)      # LAPACK Cholesky, lower
            if info != 0:
                raise ValueError(msg.format(k=k, piv=float("nan"), big=big))
            piv = float(np.min(np.diagonal(C))) ** 2
            if not piv > d * eps * big:
                raise ValueError(msg.format(k=k, piv=piv, big=big))
            C_inv, info = dtrtri(C, lower=1)                         # triangular inverse
            out[k] = C_inv.T                                          # U = C^{-T}, upper
        return out
    var = covariances.reshape(covariances.shape[0], -1)                   # (K, d) or (K, 1)
    big = np.max(var, axis=1)
    bad = np.flatnonzero(~(var.min(axis=1) > var.shape[1] * eps * big))
    if bad.size:
        k = int(bad[0])
        raise ValueError(msg.format(k=k, piv=float(var[k].min()), big=float(big[k])))
    return 1.0 / np.sqrt(covariances)


def precision_cholesky_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """(GMM.3b) The upper-triangular U with U U^T = Lambda, from the precisions Lambda.

    With J the exchange matrix (ones on the anti-diagonal), J Lambda J = L L^T (lower Cholesky)
    gives Lambda = (J L J)(J L J)^T and J L J is upper-triangular. precisions: like covariances.
    """
    covariance_type = _check_type(covariance_type)
    precisions = _check_components(precisions, "precisions", covariance_type)
    if covariance_type != "full" and np.any(precisions <= 0):
        raise ValueError("precisions: expected positive precisions")
    if covariance_type == "full":
        out = np.empty_like(precisions)
        for k in range(precisions.shape[0]):
            L, info = dpotrf(np.ascontiguousarray(precisions[k][::-1, ::-1]), lower=1, clean=1)
            if info != 0:
                raise ValueError(f"precisions: expected symmetric positive-definite "
                                 f"matrices, component {k} is not")
            out[k] = L[::-1, ::-1]
        return out
    return np.sqrt(precisions)


def covariance_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """C_k with C_k C_k^T = Sigma_k, used by (GMM.14): (K, d, d) lower, or sigma (K, d) | (K,)."""
    covariance_type = _check_type(covariance_type)
    covariances = _check_components(covariances, "covariances", covariance_type)
    if covariance_type == "full":
        try:
            return np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError as exc:
            raise ValueError(f"covariances: expected positive-definite matrices ({exc})") from exc
    if np.any(covariances <= 0):
        raise ValueError(f"covariances: expected positive variances, got {covariances.min():.4g}")
    return np.sqrt(covariances)


def precisions_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """Lambda_k = U_k U_k^T (full) or U_k^2 (diag, spherical)."""
    covariance_type = _check_type(covariance_type)
    prec_chol = _check_components(prec_chol, "prec_chol", covariance_type)
    if covariance_type == "full":
        return prec_chol @ np.swapaxes(prec_chol, 1, 2)
    return prec_chol ** 2


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """(GMM.12) Free parameters: K - 1 weights, K d means, and K d(d+1)/2 | K d | K covariances."""
    K = check_int(n_components, "n_components", low=1)
    d = check_int(n_features, "n_features", low=1)
    covariance_type = _check_type(covariance_type)
    cov = {"full": K * d * (d + 1) // 2, "diag": K * d, "spherical": K}[covariance_type]
    return (K - 1) + K * d + cov
