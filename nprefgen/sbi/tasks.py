"""Benchmark tasks: a prior, a simulator and, where known, the reference posterior.

The three sbibm tasks (Lueckmann et al. 2021, "Benchmarking Simulation-Based Inference", AISTATS;
definitions in /work/shared/REFERENCES.md), derivations/sbi.md SBI.2-SBI.5:

* ``gaussian_linear``  theta ~ N(0, 0.1 I), x ~ N(theta, 0.1 I); analytic posterior (SBI.2).
* ``two_moons``        theta ~ U(-1, 1)^2, a crescent-shaped likelihood (SBI.3); reference
  posterior by inverting the simulator (SBI.4).
* ``gaussian_mixture`` theta ~ U(-10, 10)^2, x ~ 0.5 N(theta, I) + 0.5 N(theta, 0.01 I) (SBI.5).
* ``slcp`` and ``gaussian_linear_uniform``: :mod:`nprefgen.sbi.tasks_more` (TASK.1-TASK.3).

Simulators are picklable objects ``simulator(theta: (n, p), rng) -> x: (n, dx)`` so that they
run in a process pool (:func:`nprefgen.sbi.simulate.simulate`). Any user function with that
signature works in their place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from nprefgen._validation import check_array, check_int, check_rng, check_scalar
from nprefgen.sbi.priors import BoxUniform, Gaussian, Prior, check_theta
from nprefgen.sbi.tasks_more import gaussian_linear_uniform, slcp


def check_x_obs(x_obs, dim_x: int, name: str = "x_obs") -> np.ndarray:
    """One observation (dx,) or several iid observations (n_iid, dx) -> (n_iid, dx)."""
    x = check_array(x_obs, name, ndim=(1, 2), dtype=np.float64)
    x = x[None, :] if x.ndim == 1 else x
    if x.shape[1] != dim_x:
        raise ValueError(f"{name}: expected shape ({dim_x},) or (n_iid, {dim_x}), got {x.shape}")
    return x


@dataclass
class Task:
    """A named inference problem.

    Attributes
    ----------
    name : str
    prior : Prior with ``dim`` = p
    simulator : callable (theta: (n, p), rng) -> x: (n, dx)
    dim_x : int
    reference_sampler : callable (x_obs: (n_iid, dx), n, rng) -> (n, p), or None
    """

    name: str
    prior: Prior
    simulator: Callable
    dim_x: int
    reference_sampler: Callable | None = None

    @property
    def dim_theta(self) -> int:
        return self.prior.dim

    def observations(self, n: int, *, rng=None):
        """``n`` (theta_true, x_obs) pairs from the prior predictive: (n, p), (n, dx).

        ``rng``: None, an int seed or a Generator (SPEC 7); the simulator gets the Generator.
        """
        n = check_int(n, "n", low=1)
        rng = check_rng(rng)
        theta = self.prior.sample(n, rng=rng)
        return theta, self.simulator(theta, rng)

    def reference_posterior(self, x_obs, n: int, *, rng=None) -> np.ndarray:
        """n draws from p(theta | x_obs): (n, p). ``x_obs``: (dx,) or (n_iid, dx).

        ``rng``: None, an int seed or a Generator (SPEC 7); the reference sampler gets the
        Generator.
        """
        if self.reference_sampler is None:
            raise ValueError(f"task: {self.name} has no reference posterior")
        x = check_x_obs(x_obs, self.dim_x)
        return self.reference_sampler(x, check_int(n, "n", low=1), check_rng(rng))


# --- gaussian_linear ---------------------------------------------------------------------------
class GaussianLinearSimulator:
    """x = theta + sqrt(noise_var) e, e ~ N(0, I)."""

    def __init__(self, noise_var: float = 0.1) -> None:
        self.noise_var = check_scalar(noise_var, "noise_var", low=0.0, low_inclusive=False)

    def __call__(self, theta, rng):
        theta = check_array(theta, "theta", ndim=2)
        return theta + np.sqrt(self.noise_var) * rng.standard_normal(theta.shape)


def gaussian_linear_posterior(x_obs, prior_mean, prior_var: float, noise_var: float):
    """(SBI.2) posterior of theta ~ N(m0, v0 I), x_i ~ N(theta, v I), i = 1..n_iid, by Bayes'
    rule (SBI.1) in closed form:

        Sigma_post = (1/v0 + n_iid/v)^{-1} I,   mu_post = Sigma_post (m0/v0 + sum_i x_i / v).

    x_obs: (n_iid, p) -> mu_post: (p,), var_post: float (the diagonal of Sigma_post).
    """
    x = check_array(x_obs, "x_obs", ndim=2)
    prior_mean = check_array(prior_mean, "prior_mean", ndim=(0, 1))
    check_scalar(prior_var, "prior_var", low=0.0, low_inclusive=False)
    check_scalar(noise_var, "noise_var", low=0.0, low_inclusive=False)
    n_iid = x.shape[0]
    var_post = 1.0 / (1.0 / prior_var + n_iid / noise_var)
    mu_post = var_post * (np.asarray(prior_mean) / prior_var + x.sum(axis=0) / noise_var)
    return mu_post, var_post


def gaussian_linear(dim: int = 10, prior_var: float = 0.1, noise_var: float = 0.1) -> Task:
    """sbibm's gaussian_linear (dim 10, variances 0.1); smaller ``dim`` for fast tests."""
    dim = check_int(dim, "dim", low=1)
    prior_var = check_scalar(prior_var, "prior_var", low=0.0, low_inclusive=False)
    noise_var = check_scalar(noise_var, "noise_var", low=0.0, low_inclusive=False)
    prior = Gaussian(np.zeros(dim), np.full(dim, prior_var))

    def reference(x, n, rng):
        mu, var = gaussian_linear_posterior(x, prior.mean, prior_var, noise_var)   # (SBI.2)
        return mu + np.sqrt(var) * rng.standard_normal((n, dim))

    return Task("gaussian_linear", prior, GaussianLinearSimulator(noise_var), dim, reference)


# --- two_moons ---------------------------------------------------------------------------------
_MOON_R_MEAN, _MOON_R_STD, _MOON_OFFSET = 0.1, 0.01, 0.25


def _moon_points(n, rng):
    a = rng.uniform(-np.pi / 2, np.pi / 2, size=n)
    r = _MOON_R_MEAN + _MOON_R_STD * rng.standard_normal(n)
    return np.stack([r * np.cos(a) + _MOON_OFFSET, r * np.sin(a)], axis=1)


class TwoMoonsSimulator:
    """(SBI.3) a ~ U(-pi/2, pi/2), r ~ N(0.1, 0.01^2), p = (r cos a + 0.25, r sin a),
    x = p + (-|theta1 + theta2| / sqrt 2, (-theta1 + theta2) / sqrt 2)."""

    def __call__(self, theta, rng):
        theta = check_array(theta, "theta", ndim=2)
        p = _moon_points(theta.shape[0], rng)
        shift = np.stack([-np.abs(theta[:, 0] + theta[:, 1]), -theta[:, 0] + theta[:, 1]],
                         axis=1) / np.sqrt(2.0)
        return p + shift


def two_moons_reference(x, n, prior: BoxUniform, *, rng=None, max_rounds: int = 1000):
    """(SBI.4) invert the simulator: draw p as the simulator does, then
    u = |theta1 + theta2| = -sqrt2 (x1 - p1) (no solution if negative), v = theta2 - theta1 =
    sqrt2 (x2 - p2), theta1 = (s u - v)/2, theta2 = (s u + v)/2 with a random sign s; keep the
    draws inside the prior. The map is piecewise linear with a constant Jacobian, so with a
    uniform prior the kept draws follow the posterior. x: (1, 2) -> (n, 2)."""
    rng = check_rng(rng)
    if x.shape[0] != 1:
        raise ValueError(f"x_obs: two_moons' reference posterior takes one observation, got {x.shape[0]}")
    out, have = [], 0
    for _ in range(max_rounds):
        m = max(2 * (n - have), 1000)
        p = _moon_points(m, rng)
        u = -np.sqrt(2.0) * (x[0, 0] - p[:, 0])
        v = np.sqrt(2.0) * (x[0, 1] - p[:, 1])
        s = rng.choice([-1.0, 1.0], size=m)
        theta = np.stack([(s * u - v) / 2.0, (s * u + v) / 2.0], axis=1)
        keep = (u >= 0) & prior.in_support(theta)
        out.append(theta[keep])
        have += int(keep.sum())
        if have >= n:
            return np.concatenate(out)[:n]
    raise ValueError("x_obs: the reference posterior accepted too few draws; is x_obs possible "
                     "under the two_moons simulator?")


def two_moons() -> Task:
    prior = BoxUniform([-1.0, -1.0], [1.0, 1.0])
    return Task("two_moons", prior, TwoMoonsSimulator(), 2,
                lambda x, n, rng: two_moons_reference(x, n, prior, rng=rng))


# --- gaussian_mixture --------------------------------------------------------------------------
class GaussianMixtureSimulator:
    """(SBI.5) x ~ 0.5 N(theta, I) + 0.5 N(theta, 0.01 I)."""

    def __call__(self, theta, rng):
        theta = check_array(theta, "theta", ndim=2)
        scale = np.where(rng.uniform(size=(theta.shape[0], 1)) < 0.5, 1.0, 0.1)
        return theta + scale * rng.standard_normal(theta.shape)


def gaussian_mixture_reference(x, n, prior: BoxUniform, *, rng=None):
    """The likelihood is symmetric in theta and x, so with a flat prior the posterior of one
    observation is 0.5 N(x, I) + 0.5 N(x, 0.01 I) truncated to the box. x: (1, 2) -> (n, 2)."""
    if x.shape[0] != 1:
        raise ValueError(f"x_obs: gaussian_mixture's reference posterior takes one observation, "
                         f"got {x.shape[0]}")
    rng = check_rng(rng)
    sim = GaussianMixtureSimulator()
    out, have = [], 0
    while have < n:
        theta = sim(np.repeat(x, 2 * (n - have) + 100, axis=0), rng)
        theta = theta[prior.in_support(theta)]
        out.append(theta)
        have += theta.shape[0]
    return np.concatenate(out)[:n]


def gaussian_mixture() -> Task:
    prior = BoxUniform([-10.0, -10.0], [10.0, 10.0])
    return Task("gaussian_mixture", prior, GaussianMixtureSimulator(), 2,
                lambda x, n, rng: gaussian_mixture_reference(x, n, prior, rng=rng))


TASKS = {"gaussian_linear": gaussian_linear, "two_moons": two_moons,
         "gaussian_mixture": gaussian_mixture, "slcp": slcp,
         "gaussian_linear_uniform": gaussian_linear_uniform}


def get_task(name: str, **kwargs) -> Task:
    """A task by name: one of ``TASKS`` (and ``"cosmology_grf"``)."""
    if name == "cosmology_grf":
        from nprefgen.sbi.cosmology import cosmology_grf

        return cosmology_grf(**kwargs)
    if name not in TASKS:
        raise ValueError(f"name: expected one of {sorted(TASKS) + ['cosmology_grf']}, got {name!r}")
    return TASKS[name](**kwargs)


__all__ = ["Task", "gaussian_linear", "two_moons", "gaussian_mixture", "get_task", "slcp",
           "gaussian_linear_uniform",
           "gaussian_linear_posterior", "check_theta", "check_x_obs"]
