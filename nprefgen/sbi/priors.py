"""Priors p(theta) and the prior protocol (derivations/sbi.md, SBI.1; derivations/README.md,
"The prior protocol").

The prior protocol: what nprefgen's SBI code calls on a prior, in one place. Any object works as
a prior (a subclass of :class:`Prior` is not needed) if it has

    prior.dim                             # int p, the number of parameters
    theta = prior.sample(n, rng=rng)      # (n, p); rng keyword: None, an int seed or a Generator
    lp = prior.log_prob(theta)            # theta (n, p) -> (n,), -inf outside the support
    ok = prior.in_support(theta)          # theta (n, p) -> (n,) bool

and, optionally (only where a method uses it),

    prior.std                             # (p,) the prior's standard deviations: MCMC step
                                          #   widths; without it, estimated from 1000 draws
    prior.mean                            # (p,) reference point (tasks, the cosmology example)
    g = prior.grad_log_prob(theta)        # (n, p): HMC (method="hmc") only

:func:`check_prior` is what every SBI entry point calls (NPE, NLE, NPSE, the posteriors,
simulate_from_prior, rejection ABC's posterior): a prior without a needed method is refused with a
ValueError naming ``prior`` and listing what is missing, and a prior whose ``sample``,
``log_prob`` or ``in_support`` return the wrong shape is refused the same way. Everything else the
code needs it derives from these (:func:`check_in_support`, :func:`prior_scale`).
:class:`PriorProtocol` is the same contract as a ``typing.Protocol`` for type checkers.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from nprefgen._validation import (
    check_alloc, check_array, check_finite_result, check_int, check_rng, check_spd,
)

REQUIRED = ("dim", "sample", "log_prob", "in_support")
OPTIONAL = ("std", "mean", "grad_log_prob")


@runtime_checkable
class PriorProtocol(Protocol):
    """The methods every prior has (see the module docstring for the optional ones)."""

    dim: int

    def sample(self, n: int, *, rng=None) -> np.ndarray: ...

    def log_prob(self, theta) -> np.ndarray: ...

    def in_support(self, theta) -> np.ndarray: ...


def check_prior(prior, *, needs=()):
    """Validate a prior against the prior protocol; returns it unchanged.

    ``needs``: optional methods the caller uses beyond :data:`REQUIRED` (e.g.
    ``("grad_log_prob",)`` for HMC). Missing attributes give one ValueError naming ``prior`` and
    listing all of them; then ``sample(3, rng=0)``, ``log_prob`` and ``in_support`` on those
    draws are called once (a fixed seed: no user randomness is consumed) and their shapes checked.
    """
    if prior is None:
        raise ValueError(f"prior: expected an object with {', '.join(REQUIRED)} (the prior "
                         f"protocol, nprefgen.sbi.priors), got None")
    wanted = REQUIRED + tuple(n for n in needs if n not in REQUIRED)
    missing = [n for n in wanted if not hasattr(prior, n)
               or (n != "dim" and n not in ("std", "mean") and not callable(getattr(prior, n)))]
    if missing:
        raise ValueError(f"prior: {type(prior).__name__} lacks {missing} of the prior protocol "
                         f"(needed: {list(wanted)}; see nprefgen.sbi.priors and "
                         f"derivations/README.md)")
    dim = prior.dim
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"prior: expected prior.dim a positive int, got {dim!r}")
    try:
        theta = np.asarray(prior.sample(3, rng=np.random.default_rng(0)))
    except TypeError as exc:
        raise ValueError(f"prior: expected prior.sample(n, *, rng) (rng a keyword), got "
                         f"{type(exc).__name__}: {exc}") from exc
    if theta.shape != (3, dim):
        raise ValueError(f"prior: expected prior.sample(3, rng=...) of shape (3, {dim}), got "
                         f"{theta.shape}")
    for name in ("log_prob", "in_support"):
        out = np.asarray(getattr(prior, name)(theta))
        if out.shape != (3,):
            raise ValueError(f"prior: expected prior.{name}(theta (3, {dim})) of shape (3,), got "
                             f"{out.shape}")
    if not np.all(np.asarray(prior.in_support(theta), dtype=bool)):
        raise ValueError("prior: prior.in_support is False at some of prior.sample's own draws")
    return prior


def check_in_support(prior, theta, name: str = "theta") -> np.ndarray:
    """theta (n, p) as float64; a ValueError naming ``name`` if a row lies outside the support
    (uses only ``prior.in_support``, so any protocol prior works)."""
    theta = check_theta(theta, prior.dim, name)
    bad = ~np.asarray(prior.in_support(theta), dtype=bool)
    if np.any(bad):
        raise ValueError(f"{name}: expected values inside the prior support, got "
                         f"{int(bad.sum())} of {theta.shape[0]} rows outside (first: "
                         f"{theta[np.argmax(bad)].tolist()})")
    return theta


def prior_scale(prior) -> np.ndarray:
    """(p,) a positive scale per parameter: ``prior.std`` if the prior has it, else the standard
    deviation of 1000 draws (fixed seed) -- for MCMC step widths."""
    std = getattr(prior, "std", None)
    if std is None:
        std = np.std(np.asarray(prior.sample(1000, rng=np.random.default_rng(0))), axis=0)
    std = np.broadcast_to(np.asarray(std, dtype=np.float64), (prior.dim,))
    if not np.all(np.isfinite(std) & (std > 0)):
        raise ValueError(f"prior: expected a positive, finite scale per parameter (prior.std or "
                         f"the spread of its draws), got {std.tolist()}")
    return std.copy()


def check_theta(theta, dim: int, name: str = "theta") -> np.ndarray:
    """A batch of parameters: (n, dim) float64 (a single (dim,) vector becomes (1, dim))."""
    theta = check_array(theta, name, ndim=(1, 2), dtype=np.float64)
    if theta.ndim == 1:
        theta = theta[None, :]
    if theta.shape[1] != dim:
        raise ValueError(f"{name}: expected shape (n, {dim}), got {theta.shape}")
    return theta


class Prior:
    """Base class of nprefgen's priors (optional for user priors: see the prior protocol in the
    module docstring); subclasses set ``dim`` and implement the methods below."""

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
        """Raise a ValueError naming ``name`` if any row lies outside the support
        (:func:`check_in_support`)."""
        return check_in_support(self, theta, name)


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
