"""Priors p(theta): sample, log_prob, support (derivations/sbi.md, SBI.1).

Each prior is a small object with

    theta = prior.sample(n, rng=rng)      # (n, p); rng: None, an int seed or a Generator
    lp = prior.log_prob(theta)            # (n,), -inf outside the support
    ok = prior.in_support(theta)          # (n,) bool
    prior.mean, prior.std                 # (p,), used for z-scoring and reference points
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import (
    check_alloc, check_array, check_finite_result, check_int, check_rng, check_spd,
)


def check_theta(theta, dim: int, name: str = "theta") -> np.ndarray:
    """A batch of parameters: (n, dim) float64 (a single (dim,) vector becomes (1, dim))."""
    theta = check_array(theta, name, ndim=(1, 2), dtype=np.float64)
    if theta.ndim == 1:
        theta = theta[None, :]
    if theta.shape[1] != dim:
        raise ValueError(f"{name}: expected shape (n, {dim}), got {theta.shape}")
    return theta


class Prior:
    """Base class; subclasses set ``dim`` and implement the methods below."""

    dim: int

    def sample(self, n: int, *, rng=None) -> np.ndarray:
        """n draws (n, p); ``rng`` None, an int seed or a Generator (SPEC 7)."""
        raise NotImplementedError

    def log_prob(self, theta) -> np.ndarray:
        raise NotImplementedError

    def in_support(self, theta) -> np.ndarray:
        theta = check_theta(theta, self.dim)
        return np.ones(theta.shape[0], dtype=bool)

    def check_in_support(self, theta, name: str = "theta") -> np.ndarray:
        """Raise a ValueError naming ``name`` if any row lies outside the support."""
        theta = check_theta(theta, self.dim, name)
        bad = ~self.in_support(theta)
        if np.any(bad):
            raise ValueError(f"{name}: expected values inside the prior support, got "
                             f"{int(bad.sum())} of {theta.shape[0]} rows outside (first: "
                             f"{theta[np.argmax(bad)].tolist()})")
        return theta


class BoxUniform(Prior):
    """Uniform on the box [low, high] (inclusive), low, high: (p,)."""

    def __init__(self, low, high) -> None:
        self.low = check_array(low, "low", ndim=1, copy=True)
        self.high = check_array(high, "high", shape=self.low.shape, copy=True)
        if np.any(self.high <= self.low):
            raise ValueError(f"high: expected every entry above low={self.low.tolist()}, "
                             f"got {self.high.tolist()}")
        self.dim = self.low.shape[0]
        with np.errstate(over="ignore"):
            check_finite_result(self.high - self.low, "high", "width high - low", self.high)
        self.mean = 0.5 * self.low + 0.5 * self.high
        self.std = (self.high - self.low) / np.sqrt(12.0)
        self._log_density = -float(np.sum(np.log(self.high - self.low)))

    def sample(self, n, *, rng=None):
        n = check_int(n, "n", low=0)
        check_alloc((n, self.dim), "n")
        rng = check_rng(rng)
        return self.low + (self.high - self.low) * rng.uniform(size=(n, self.dim))

    def in_support(self, theta):
        theta = check_theta(theta, self.dim)
        return np.all((theta >= self.low) & (theta <= self.high), axis=1)

    def log_prob(self, theta):
        theta = check_theta(theta, self.dim)
        return np.where(self.in_support(theta), self._log_density, -np.inf)

    def grad_log_prob(self, theta):
        """Zero inside the box. theta: (n, p) -> (n, p)."""
        return np.zeros_like(check_theta(theta, self.dim))

    def __repr__(self):
        return f"BoxUniform(low={self.low.tolist()}, high={self.high.tolist()})"


class Gaussian(Prior):
    """N(mean, cov); ``cov`` a (p, p) symmetric positive definite matrix or a (p,) diagonal of
    positive variances (a non-symmetric matrix is refused: sampling, which uses its Cholesky
    factor, and log_prob, which uses its inverse, would describe two different densities)."""

    def __init__(self, mean, cov) -> None:
        self.mean = check_array(mean, "mean", ndim=1, copy=True)
        self.dim = self.mean.shape[0]
        cov = check_array(cov, "cov", ndim=(1, 2), copy=True)
        cov = np.diag(cov) if cov.ndim == 1 else cov
        if cov.shape != (self.dim, self.dim):
            raise ValueError(f"cov: expected shape ({self.dim}, {self.dim}) or ({self.dim},), got {cov.shape}")
        cov = check_spd(cov, "cov")
        self.chol = np.linalg.cholesky(cov)
        self.cov = cov
        self.std = np.sqrt(np.diag(cov))
        self.prec = np.linalg.inv(cov)
        check_finite_result(self.prec, "cov", "inverse", cov)
        self._log_norm = -0.5 * self.dim * np.log(2 * np.pi) - float(np.sum(np.log(np.diag(self.chol))))

    def sample(self, n, *, rng=None):
        n = check_int(n, "n", low=0)
        check_alloc((n, self.dim), "n")
        rng = check_rng(rng)
        return self.mean + rng.standard_normal((n, self.dim)) @ self.chol.T

    def log_prob(self, theta):
        theta = check_theta(theta, self.dim)
        with np.errstate(over="ignore", invalid="ignore"):
            r = theta - self.mean
            q = np.einsum("ni,ij,nj->n", r, self.prec, r)
        # q > 0 (prec is SPD): where it overflows (|theta| ~ 1e154+), log p underflows to -inf
        q = np.where(np.isfinite(q), q, np.inf)
        return self._log_norm - 0.5 * q

    def grad_log_prob(self, theta):
        theta = check_theta(theta, self.dim)
        with np.errstate(over="ignore", invalid="ignore"):
            g = -(theta - self.mean) @ self.prec
        return check_finite_result(g, "theta", "prior gradient", theta)

    def __repr__(self):
        return f"Gaussian(mean={self.mean.tolist()}, std={self.std.tolist()})"
