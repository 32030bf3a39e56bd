"""The Gaussian mixture as a density (derivations/gmm.md): log-densities, responsibilities and
sampling, for given parameters.

* :func:`log_gaussian_prob` (GMM.3): log N(x_i | mu_k, Sigma_k) through the precision Cholesky
  factors (:mod:`nprefgen.models.gmm_params`);
* :func:`e_step` (GMM.1, GMM.4): log p(x_i) by log-sum-exp and the log-responsibilities -- the
  E-step of EM and the scoring of a fitted mixture (``score_samples``, ``predict_proba``);
* :func:`sample_mixture` (GMM.14): ancestral sampling, z ~ Categorical(pi), x = mu_z + C_z eps.

Hot loops run in ``nprefgen/kernels/gmm.py`` (numba, each beside its NumPy twin).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_alloc, check_array, check_int, check_rng
from nprefgen.kernels.gmm import (
    log_gaussian_prob_diag, log_gaussian_prob_full, log_responsibilities,
)
from nprefgen.models.gmm_params import (
    _check_components, _check_type, _check_weights, _check_X_means, covariance_cholesky,
)


def log_gaussian_prob(X: np.ndarray, means: np.ndarray, prec_chol: np.ndarray,
                      covariance_type: str) -> np.ndarray:
    """(GMM.3) log N(x_i | mu_k, Sigma_k). X: (n, d), means: (K, d) -> (n, K)."""
    covariance_type = _check_type(covariance_type)
    X, means = _check_X_means(X, means)
    prec_chol = _check_components(prec_chol, "prec_chol", covariance_type, *means.shape)
    if covariance_type == "full":
        return log_gaussian_prob_full(X, means, np.ascontiguousarray(prec_chol))
    if covariance_type == "spherical":
        prec_chol = np.repeat(prec_chol[:, None], X.shape[1], axis=1)   # (K,) -> (K, d)
    return log_gaussian_prob_diag(X, means, prec_chol)


def e_step(X: np.ndarray, weights: np.ndarray, means: np.ndarray, prec_chol: np.ndarray,
           covariance_type: str) -> tuple[np.ndarray, np.ndarray]:
    """(GMM.4) log p(x_i) (n,) and log-responsibilities log r_ik (n, K).

    a_ik = log pi_k + log N(x_i | mu_k, Sigma_k); log p(x_i) = logsumexp_k a_ik (GMM.1);
    log r_ik = a_ik - log p(x_i).
    """
    X, means = _check_X_means(X, means)
    weights = _check_weights(weights, means.shape[0])
    with np.errstate(divide="ignore"):                 # a zero weight gives log pi_k = -inf
        log_w = np.log(weights)
    a = log_gaussian_prob(X, means, prec_chol, covariance_type)          # (n, K), fresh array
    a += log_w[None, :]                                # in place: no second (n, K) temporary
    return log_responsibilities(a)


def sample_mixture(n: int, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray,
                   covariance_type: str, *, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """(GMM.14) z_i ~ Categorical(pi), x_i = mu_{z_i} + C_{z_i} eps_i, eps_i ~ N(0, I).

    Returns x: (n, d) and the component labels z: (n,), in draw order (not grouped).
    """
    n = check_int(n, "n", low=1)
    covariance_type = _check_type(covariance_type)
    means = check_array(means, "means", ndim=2, dtype=np.float64)
    K, d = means.shape
    check_alloc((n, d), "n")
    weights = _check_weights(weights, K)
    covariances = _check_components(covariances, "covariances", covariance_type, K, d)
    rng = check_rng(rng)
    labels = rng.choice(K, size=n, p=weights / weights.sum())
    eps = rng.standard_normal((n, d))
    chol = covariance_cholesky(covariances, covariance_type)
    x = np.empty((n, d))
    for k in range(K):
        idx = labels == k
        if covariance_type == "full":
            x[idx] = means[k] + eps[idx] @ chol[k].T
        else:
            x[idx] = means[k] + eps[idx] * chol[k]
    return x, labels
