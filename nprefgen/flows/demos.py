"""The digits experiments of issue 3, as functions the tour and the benchmarks call
(derivations/splines.md, SPL.14-SPL.18).

Unconditional: test log-likelihood of a full-covariance Gaussian, RealNVP, MAF and a
rational-quadratic spline flow on the bundled 8x8 digits, in nats per image and bits/dim, and
sample grids. Conditional: p(pixels | central 2x2 pixels), sampled at given centres including
all-zero ones. Both run on MNIST with the same code when the user has the IDX files
(``dataset="mnist", mnist_root=...``).

Preprocessing (SPL.14): integer pixels v in {0..L-1} (L = 17 grey levels for the digits, 256 for
MNIST) are dequantized with uniform noise, squeezed to [lambda, 1 - lambda] and mapped to logit
space, where all models are fitted. Log-likelihoods are reported for the dequantized pixels in
pixel units (SPL.15), a lower bound on the log-probability of the integer image, and in bits/dim
(SPL.16). The test set is dequantized once with a fixed generator, so all models are scored on
the same points.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar

DEFAULT_ALPHA = 0.05          # lambda of (SPL.14)
TEST_NOISE_SEED = 20_190_917  # the test set's one fixed dequantization (SPL.14)
MODELS = ("gaussian", "realnvp", "maf", "spline")


# ---------------------------------------------------------------------------------------------
# preprocessing and units (SPL.14-SPL.16)
# ---------------------------------------------------------------------------------------------


def preprocess(v, levels: int, alpha: float = DEFAULT_ALPHA, *, rng: np.random.Generator | None = None,
               noise=None):
    """(SPL.14) Dequantize integer pixels and map them to logit space.

    Parameters
    ----------
    v : (n, D) integer-valued pixels in [0, levels - 1].
    levels : L, the number of grey levels (17 for the digits, 256 for MNIST).
    alpha : lambda in (0, 0.5), the squeeze away from 0 and 1.
    rng : numpy.random.Generator drawing the noise e ~ U(0, 1)^D (or pass ``noise``).
    noise : (n, D) in [0, 1), the noise itself (tests, fixed test sets).

    Returns
    -------
    y : (n, D), the logit-space data.
    log_jac : (n,), sum_i log |dy_i / d v~_i| (SPL.15), so that
        ``log p(v~) = log q(y) + log_jac`` for a density q in logit space.
    """
    levels = check_int(levels, "levels", low=2)
    alpha = check_scalar(alpha, "alpha", low=0.0, high=0.5, low_inclusive=False, high_inclusive=False)
    v = check_array(v, "v", ndim=2, dtype=np.float64)
    if np.any(v < 0) or np.any(v > levels - 1) or np.any(v != np.round(v)):
        raise ValueError(f"v: expected integers in [0, {levels - 1}], got values in "
                         f"[{v.min():g}, {v.max():g}] (non-integers: {int(np.sum(v != np.round(v)))})")
    if noise is None:
        if rng is None:
            raise ValueError("rng: expected a numpy.random.Generator to draw the dequantization "
                             "noise (or pass noise=), got None")
        noise = check_rng(rng).random(v.shape)
    noise = check_array(noise, "noise", shape=v.shape)
    if np.any(noise < 0) or np.any(noise >= 1):
        raise ValueError("noise: expected values in [0, 1)")
    p = alpha + (1.0 - 2.0 * alpha) * (v + noise) / levels                     # (SPL.14)
    y = np.log(p) - np.log1p(-p)
    log_jac = np.sum(np.log(1.0 - 2.0 * alpha) - np.log(levels) - np.log(p) - np.log1p(-p), axis=1)
    return y, log_jac


def postprocess(y, levels: int, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """Invert (SPL.14) up to the noise: logit-space samples -> integer pixels in [0, levels-1].

    y: (n, D) -> (n, D) float array of integers (floor of the dequantized value, clipped).
    """
    y = check_array(y, "y", ndim=2)
    levels = check_int(levels, "levels", low=2)
    p = 1.0 / (1.0 + np.exp(-np.clip(y, -50.0, 50.0)))
    v = (p - alpha) / (1.0 - 2.0 * alpha) * levels
    return np.clip(np.floor(v), 0, levels - 1)


def pixel_log_likelihood(log_q, log_jac) -> np.ndarray:
    """(SPL.15) log p(v~) = log q(y) + log_jac: logit-space density -> dequantized pixel units.

    log_q, log_jac: (n,) -> (n,).
    """
    return np.asarray(log_q) + np.asarray(log_jac)


def bits_per_dim(log_p, n_dims: int) -> np.ndarray:
    """(SPL.16) -log p / (D ln 2): nats per image -> bits per pixel (lower is better)."""
    n_dims = check_int(n_dims, "n_dims", low=1)
    return -np.asarray(log_p) / (n_dims * np.log(2.0))


# ---------------------------------------------------------------------------------------------
# the Gaussian baseline (SPL.17-SPL.18)
# ---------------------------------------------------------------------------------------------


class GaussianBaseline:
    """Maximum-likelihood full-covariance Gaussian (SPL.17), optionally conditional (SPL.18).

    ``fit(y)`` sets mu and Sigma = cov + ridge I; ``log_prob(y)`` per sample; ``sample(n, rng)``.
    With ``fit(y, context)`` the Gaussian is fitted jointly to [y, context] and ``log_prob``
    and ``sample`` are those of the conditional p(y | context) (SPL.18).
    """

    def __init__(self, ridge: float = 1e-6) -> None:
        self.ridge = check_scalar(ridge, "ridge", low=0.0)
        self.mu = None

    def fit(self, y, context=None) -> "GaussianBaseline":
        y = check_array(y, "y", ndim=2, dtype=np.float64)
        joint = y if context is None else np.concatenate(
            [y, check_array(context, "context", shape=(y.shape[0], None), dtype=np.float64)], axis=1)
        d = y.shape[1]
        mu = joint.mean(axis=0)
        diff = joint - mu
        cov = diff.T @ diff / joint.shape[0] + self.ridge * np.eye(joint.shape[1])
        self.dim, self.context_dim = d, joint.shape[1] - d
        if self.context_dim == 0:
            self.mu, self.cov = mu, cov
            self._gain = None
        else:
            # (SPL.18) y | c ~ N(mu_y + S_yc S_cc^{-1} (c - mu_c), S_yy - S_yc S_cc^{-1} S_cy)
            s_cc = cov[d:, d:]
            gain = np.linalg.solve(s_cc, cov[d:, :d]).T                    # (d, C)
            self.mu, self._mu_c, self._gain = mu[:d], mu[d:], gain
            self.cov = cov[:d, :d] - gain @ cov[d:, :d]
        self.chol = np.linalg.cholesky(self.cov)
        return self

    def _mean(self, n: int, context) -> np.ndarray:
        if self._gain is None:
            if context is not None:
                raise ValueError("context: this Gaussian was fitted without a context, got one")
            return np.broadcast_to(self.mu, (n, self.dim))
        context = check_array(context, "context", shape=(n, self.context_dim), dtype=np.float64)
        return self.mu + (context - self._mu_c) @ self._gain.T

    def log_prob(self, y, context=None) -> np.ndarray:
        """(SPL.17) y: (n, D) [, context: (n, C)] -> (n,) log N(y; mu(c), Sigma)."""
        if self.mu is None:
            raise ValueError("self: call fit before log_prob")
        y = check_array(y, "y", shape=(None, self.dim), dtype=np.float64)
        r = np.linalg.solve(self.chol, (y - self._mean(y.shape[0], context)).T)   # L^{-1}(y - mu)
        return (-0.5 * np.sum(r * r, axis=0) - np.sum(np.log(np.diag(self.chol)))
                - 0.5 * self.dim * np.log(2.0 * np.pi))

    def sample(self, n: int, rng: np.random.Generator, context=None) -> np.ndarray:
        """n draws y = mu(c) + L e, e ~ N(0, I). -> (n, D)."""
        if self.mu is None:
            raise ValueError("self: call fit before sample")
        n = check_int(n, "n", low=1)
        e = check_rng(rng).standard_normal((n, self.dim))
        return self._mean(n, context) + e @ self.chol.T
