"""Closed-form scores of Gaussians and Gaussian mixtures, clean or perturbed by N(0, sigma^2 I)
(derivations/score.md, SCORE.1-SCORE.3).

The score s(x) = grad_x log p(x) of

    (SCORE.1)  N(mu, Sigma):                 s(x) = -Sigma^{-1} (x - mu),
    (SCORE.2)  sum_k w_k N(mu_k, Sigma_k):   s(x) = sum_k r_k(x) (-Sigma_k^{-1} (x - mu_k)),
    (SCORE.3)  the same convolved with N(0, sigma^2 I): Sigma_k -> Sigma_k + sigma^2 I,

with r_k the responsibilities. These are the exact answers the score network and the samplers
are tested against (``GaussianMixtureScore`` is a score callable ``score(x, sigma)`` for
:func:`nprefgen.samplers.langevin.annealed_langevin`). Everything goes through Cholesky factors;
the responsibilities through log-sum-exp.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from nprefgen._validation import check_array, check_int, check_rng, check_scalar


def _check_sigma(sigma) -> float:
    return check_scalar(sigma, "sigma", low=0.0)


def _check_params(weights, means, covs):
    means = check_array(means, "means", ndim=2, dtype=np.float64)
    k, d = means.shape
    weights = check_array(weights, "weights", shape=(k,), dtype=np.float64)
    if np.any(weights < 0) or abs(weights.sum() - 1.0) > 1e-10:
        raise ValueError(f"weights: expected {k} non-negative weights summing to 1, got {weights}")
    covs = check_array(covs, "covs", shape=(k, d, d), dtype=np.float64)
    return weights, means, covs


def _cholesky(covs: np.ndarray, sigma: float) -> np.ndarray:
    """Cholesky factors of Sigma_k + sigma^2 I (SCORE.3), (K, D, D) lower triangular."""
    d = covs.shape[-1]
    shifted = covs + sigma * sigma * np.eye(d)
    try:
        return np.linalg.cholesky(shifted)
    except np.linalg.LinAlgError:
        raise ValueError("covs: expected symmetric positive-definite covariance matrices "
                         "(Sigma_k + sigma^2 I), got a matrix without a Cholesky factor") from None


def _factors(covs: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """L_k^{-1} (K, D, D) and log det C_k (K,) for C_k = Sigma_k + sigma^2 I = L_k L_k^T (SCORE.3)."""
    chol = _cholesky(covs, sigma)
    eye = np.eye(covs.shape[-1])
    l_inv = np.stack([solve_triangular(c, eye, lower=True) for c in chol])
    log_det = 2.0 * np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
    return l_inv, log_det


def _component_terms(x, means, l_inv, log_det):
    """Per component: log N(x; mu_k, C_k) (n, K) and the score -C_k^{-1}(x - mu_k) (n, K, D).

    With C_k = L L^T and w = L^{-1}(x - mu): the quadratic form is ||w||^2 and the score
    -L^{-T} w, both as matrix products with the (D, D) factor L^{-1} (a triangular solve per
    call costs far more for many rows and small D)."""
    n, d = x.shape
    k = means.shape[0]
    log_n = np.empty((n, k))
    scores = np.empty((n, k, d))
    for j in range(k):
        w = (x - means[j]) @ l_inv[j].T                            # rows L^{-1}(x - mu), (n, D)
        log_n[:, j] = -0.5 * np.sum(w * w, axis=1) - 0.5 * (d * np.log(2 * np.pi) + log_det[j])
        scores[:, j] = -(w @ l_inv[j])                             # (SCORE.1) -C^{-1}(x - mu)
    return log_n, scores


def _log_prob_and_score(x, weights, means, factors):
    """(SCORE.2), (SCORE.3) log p_sigma(x) (n,) and its score (n, D) from the component terms."""
    log_n, scores = _component_terms(x, means, *factors)
    with np.errstate(divide="ignore"):
        log_joint = log_n + np.log(weights)                        # (n, K)
    m = log_joint.max(axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(log_joint - m), axis=1, keepdims=True))   # log-sum-exp
    resp = np.exp(log_joint - lse)                                 # r_k(x) (SCORE.2)
    return lse[:, 0], np.einsum("nk,nkd->nd", resp, scores)


def _check_x(x, d):
    return check_array(x, "x", shape=(None, d), dtype=np.float64)


def mixture_log_prob(x, weights, means, covs, sigma: float = 0.0) -> np.ndarray:
    """log p_sigma(x) of a Gaussian mixture perturbed by N(0, sigma^2 I) (SCORE.3).

    x: (n, D); weights: (K,); means: (K, D); covs: (K, D, D); sigma >= 0 -> (n,)
    """
    weights, means, covs = _check_params(weights, means, covs)
    x = _check_x(x, means.shape[1])
    return _log_prob_and_score(x, weights, means, _factors(covs, _check_sigma(sigma)))[0]


def mixture_score(x, weights, means, covs, sigma: float = 0.0) -> np.ndarray:
    """grad_x log p_sigma(x) of a Gaussian mixture perturbed by N(0, sigma^2 I) (SCORE.2), (SCORE.3).

    x: (n, D); weights: (K,); means: (K, D); covs: (K, D, D); sigma >= 0 -> (n, D)
    """
    weights, means, covs = _check_params(weights, means, covs)
    x = _check_x(x, means.shape[1])
    return _log_prob_and_score(x, weights, means, _factors(covs, _check_sigma(sigma)))[1]


def gaussian_log_prob(x, mean, cov, sigma: float = 0.0) -> np.ndarray:
    """log N(x; mu, Sigma + sigma^2 I) (SCORE.1), (SCORE.3). x: (n, D); mean: (D,); cov: (D, D) -> (n,)"""
    mean = check_array(mean, "mean", ndim=1, dtype=np.float64)
    d = mean.shape[0]
    cov = check_array(cov, "cov", shape=(d, d), dtype=np.float64)
    return mixture_log_prob(x, np.ones(1), mean[None], cov[None], sigma)


def gaussian_score(x, mean, cov, sigma: float = 0.0) -> np.ndarray:
    """-(Sigma + sigma^2 I)^{-1} (x - mu) (SCORE.1), (SCORE.3). x: (n, D); mean: (D,); cov: (D, D) -> (n, D)"""
    mean = check_array(mean, "mean", ndim=1, dtype=np.float64)
    d = mean.shape[0]
    cov = check_array(cov, "cov", shape=(d, d), dtype=np.float64)
    x = _check_x(x, d)
    return _component_terms(x, mean[None], *_factors(cov[None], _check_sigma(sigma)))[1][:, 0]


class GaussianMixtureScore:
    """A Gaussian mixture with its exact perturbed score: ``score(x, sigma=0.0)`` (SCORE.2), (SCORE.3).

    weights: (K,), means: (K, D), covs: (K, D, D). Call it as a score function for the Langevin
    samplers; ``log_prob(x, sigma)`` and ``sample(n, rng=...)`` give the density and draws.
    """

    def __init__(self, weights, means, covs) -> None:
        self.weights, self.means, self.covs = _check_params(weights, means, covs)
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._factors(0.0)                                         # fail early if not SPD

    def _factors(self, sigma) -> tuple[np.ndarray, np.ndarray]:
        """The factors per noise level, cached (a sampler asks for the same L levels again)."""
        sigma = _check_sigma(sigma)
        if sigma not in self._cache:
            if len(self._cache) >= 64:
                self._cache.clear()
            self._cache[sigma] = _factors(self.covs, sigma)
        return self._cache[sigma]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def __call__(self, x, sigma: float = 0.0) -> np.ndarray:
        """(SCORE.2), (SCORE.3) x: (n, D), sigma >= 0 -> (n, D)"""
        factors = self._factors(sigma)
        return _log_prob_and_score(_check_x(x, self.dim), self.weights, self.means, factors)[1]

    def log_prob(self, x, sigma: float = 0.0) -> np.ndarray:
        """(SCORE.3) x: (n, D) -> (n,)"""
        factors = self._factors(sigma)
        return _log_prob_and_score(_check_x(x, self.dim), self.weights, self.means, factors)[0]

    def sample(self, n: int, sigma: float = 0.0, *, rng=None) -> np.ndarray:
        """n draws from p_sigma, (n, D)."""
        n = check_int(n, "n", low=1)
        sigma = _check_sigma(sigma)
        rng = check_rng(rng)
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        chol = _cholesky(self.covs, sigma)
        z = rng.standard_normal((n, self.dim))
        return self.means[comp] + np.einsum("nij,nj->ni", chol[comp], z)

    def __repr__(self) -> str:
        return f"GaussianMixtureScore(K={len(self.weights)}, D={self.dim})"


def song_ermon_mixture() -> GaussianMixtureScore:
    """Song & Ermon's (2019) toy: 0.2 N((-5, -5), I) + 0.8 N((5, 5), I)."""
    return GaussianMixtureScore([0.2, 0.8], [[-5.0, -5.0], [5.0, 5.0]], np.stack([np.eye(2)] * 2))


def mode_weights(x, means) -> tuple[np.ndarray, np.ndarray]:
    """(SCORE.14) the fraction of particles nearest to each mode centre and its binomial sd.

    x: (n, D) samples, means: (K, D) -> (fractions: (K,), sd: (K,)), sd = sqrt(f (1 - f) / n).
    For the equal-covariance toy of Song & Ermon, nearest centre = the side of x_1 + x_2 = 0.
    """
    means = check_array(means, "means", ndim=2, dtype=np.float64)
    x = _check_x(x, means.shape[1])
    d2 = np.sum((x[:, None, :] - means[None]) ** 2, axis=2)       # (n, K)
    frac = np.bincount(np.argmin(d2, axis=1), minlength=len(means)) / x.shape[0]
    return frac, np.sqrt(frac * (1 - frac) / x.shape[0])
