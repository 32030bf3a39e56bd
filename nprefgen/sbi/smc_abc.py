"""SMC-ABC: population Monte Carlo ABC with adaptive tolerances (derivations/sbi.md, ABC.1-ABC.3).

Beaumont, Cornuet, Marin & Robert (2009), "Adaptive approximate Bayesian computation",
Biometrika 96(4); the variant sbibm runs as SMC-ABC (Lueckmann et al. 2021): tolerances from
quantiles of the population's distances, a Gaussian perturbation kernel, a simulation budget.

Round 0 is rejection ABC (SBI.8): ``n_initial`` prior draws, the ``n_particles`` closest kept,
equal weights. Round t >= 1:

* (ABC.1) the tolerance eps_t is the ``quantile`` of the current population's distances;
* (ABC.2) proposals theta* = theta_j + L z, j drawn by weight, z ~ N(0, I), L L^T = Sigma_t =
  2 x the weighted covariance of the population (Beaumont et al.'s choice: the covariance of the
  difference of two independent population draws); proposals outside the
  prior's support are redrawn without simulating; a proposal is accepted when its simulation
  lands within eps_t;
* (ABC.3) the new particles get importance weights w_i proportional to
  p(theta_i) / sum_j w_j N(theta_i; theta_j, Sigma_t), the prior over the proposal mixture, so
  the weighted population targets p_eps_t(theta | x_obs) of (SBI.8).

The run stops when the budget ``n_simulations`` is spent. A round the budget cuts short is
discarded (its simulations are counted in ``n_discarded``): the result is the last *complete*
population, an importance sample of p_eps(theta | x_obs) at its tolerance ``eps``. (sbibm's
default instead fills the cut round up with particles of the previous one, mixing two
tolerances.) :class:`nprefgen.sbi.abc.ABCPosterior` draws from the weighted population through
its (weighted) KDE.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nprefgen._validation import (
    check_array, check_callable, check_choice, check_int, check_rng, check_scalar,
)
from nprefgen.sbi.abc import ABCResult, _distances
from nprefgen.sbi.simulate import simulate


@dataclass
class SMCABCResult(ABCResult):
    """The final population: theta (N, p), distances (N,), weights (N,) summing to one, eps its
    tolerance, n_simulations spent; eps_history (one per complete round, decreasing),
    ess_history (effective sample size 1 / sum w^2 per round), n_discarded (simulations of a
    round cut short by the budget)."""

    eps_history: list = field(default_factory=list)
    ess_history: list = field(default_factory=list)
    n_discarded: int = 0


def _log_normal_mixture(theta: np.ndarray, centres: np.ndarray, log_w: np.ndarray,
                        chol: np.ndarray) -> np.ndarray:
    """log sum_j w_j N(theta_i; centres_j, L L^T) up to the constant -p/2 log 2 pi - log det L,
    which is the same for every i and cancels in (ABC.3). theta: (n, p), centres: (N, p) -> (n,)."""
    white_t = np.linalg.solve(chol, theta.T).T          # (n, p)
    white_c = np.linalg.solve(chol, centres.T).T        # (N, p)
    d2 = (np.sum(white_t ** 2, axis=1)[:, None] + np.sum(white_c ** 2, axis=1)[None, :]
          - 2.0 * white_t @ white_c.T)                  # (n, N)
    a = log_w[None, :] - 0.5 * np.maximum(d2, 0.0)
    m = a.max(axis=1, keepdims=True)
    return m[:, 0] + np.log(np.sum(np.exp(a - m), axis=1))


def importance_weights(theta, prior, prev_theta, prev_weights, kernel_cov) -> np.ndarray:
    """(ABC.3) w_i proportional to p(theta_i) / sum_j w_j N(theta_i; theta_j, Sigma), normalised.

    theta: (N, p) new particles, prev_theta: (M, p), prev_weights: (M,) summing to one,
    kernel_cov: (p, p) -> (N,) weights summing to one."""
    chol = np.linalg.cholesky(kernel_cov)
    log_w = np.log(np.where(prev_weights > 0, prev_weights, np.finfo(float).tiny))
    log_w = prior.log_prob(theta) - _log_normal_mixture(theta, prev_theta, log_w, chol)
    log_w = log_w - np.max(log_w)
    w = np.exp(log_w)
    return w / np.sum(w)


def kernel_covariance(theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(ABC.2) Sigma = 2 x the weighted covariance of the population. theta: (N, p) -> (p, p)."""
    p = theta.shape[1]
    cov = np.atleast_2d(np.cov(theta, rowvar=False, aweights=weights))
    return 2.0 * cov + 1e-12 * np.eye(p)


def _propose(theta, weights, chol, prior, m, rng) -> np.ndarray:
    """m draws of the perturbed-population mixture restricted to the prior's support (ABC.2)."""
    out, have = [], 0
    for _ in range(1000):
        idx = rng.choice(theta.shape[0], size=m - have, p=weights)
        cand = theta[idx] + rng.standard_normal((m - have, theta.shape[1])) @ chol.T
        cand = cand[prior.in_support(cand)]
        out.append(cand)
        have += cand.shape[0]
        if have >= m:
            return np.concatenate(out)[:m]
    raise ValueError("prior: the perturbation kernel puts almost no mass inside the prior")


def smc_abc(x_obs, prior, simulator, n_simulations: int, *, rng=None,
            n_particles: int | None = None, n_initial: int | None = None, quantile: float = 0.2,
            summary=None, distance: str = "euclidean", scale: str | None = "mad",
            batch_size: int = 1000, executor=None) -> SMCABCResult:
    """(ABC.1-ABC.3) population Monte Carlo ABC within a simulation budget.

    Parameters
    ----------
    x_obs : (dx,) the observation.
    prior : a Prior (``sample``, ``log_prob``, ``in_support``).
    simulator : callable (theta: (m, p), rng) -> x: (m, dx).
    n_simulations : the budget (all simulator calls, the initial round included).
    rng : None, an int seed or a Generator (SPEC 7), the only source of randomness.
    n_particles : population size N (default as sbibm: 100, or 1000 above 10^4 simulations).
    n_initial : prior draws of round 0 (default 5 N, at most half the budget, at least N).
    quantile : eps_t is this quantile of the current population's distances (sbibm: 0.2).
    summary, distance, scale : as :func:`nprefgen.sbi.abc.rejection_abc`; the MAD scale is
        computed once, on round 0's simulations.
    batch_size, executor : passed to :func:`nprefgen.sbi.simulate.simulate`.

    Returns
    -------
    SMCABCResult: the last complete population with its weights and tolerance.
    """
    n_simulations = check_int(n_simulations, "n_simulations", low=1)
    rng = check_rng(rng)
    for attr in ("sample", "log_prob", "in_support"):
        if not callable(getattr(prior, attr, None)):
            raise ValueError(f"prior: expected an object with sample, log_prob and in_support, "
                             f"got {type(prior).__name__} without {attr}")
    check_callable(simulator, "simulator")
    if n_particles is None:
        n_particles = 1000 if n_simulations > 10_000 else 100
    n_particles = check_int(n_particles, "n_particles", low=2, high=n_simulations)
    if n_initial is None:
        n_initial = int(min(max(5 * n_particles, n_particles), max(n_simulations // 2, n_particles)))
    n_initial = check_int(n_initial, "n_initial", low=n_particles, high=n_simulations)
    quantile = check_scalar(quantile, "quantile", low=0.0, high=1.0, low_inclusive=False,
                            high_inclusive=False)
    check_choice(distance, "distance", ("euclidean", "manhattan", "chebyshev"))
    if scale is not None:
        check_choice(scale, "scale", ("mad",))
    if summary is not None:
        check_callable(summary, "summary")
    x_obs = check_array(x_obs, "x_obs", ndim=(1, 2))
    if x_obs.ndim == 2:
        if x_obs.shape[0] != 1:
            raise ValueError(f"x_obs: expected one observation (dx,), got shape {x_obs.shape}")
        x_obs = x_obs[0]

    def run(theta):
        sims = simulate(simulator, theta, rng=rng, executor=executor, batch_size=batch_size)
        if sims.x.ndim != 2 or sims.x.shape[1] != x_obs.shape[0]:
            raise ValueError(f"x_obs: expected shape {sims.x.shape[1:]} to match the "
                             f"simulator's output, got {x_obs.shape}")
        return sims

    def summaries(x):
        return x if summary is None else check_array(summary(x), "summary(x)", ndim=2)

    # round 0: rejection ABC (SBI.8)
    sims = run(prior.sample(n_initial, rng=rng))
    s_sim, s_obs = summaries(sims.x), summaries(x_obs[None, :])
    mad = np.ones(s_sim.shape[1])
    if scale is not None:
        med = np.median(s_sim, axis=0)
        mad = np.median(np.abs(s_sim - med), axis=0)
        mad = np.where(mad > 0, mad, 1.0)

    def dist(x):
        return _distances(summaries(x) / mad, s_obs / mad, distance)

    d = dist(sims.x)
    if d.shape[0] < n_particles:
        raise ValueError(f"simulator: only {d.shape[0]} of {n_initial} initial simulations were "
                         f"finite, fewer than n_particles={n_particles}")
    keep = np.argsort(d, kind="stable")[:n_particles]
    theta, d = sims.theta[keep], d[keep]
    w = np.full(n_particles, 1.0 / n_particles)
    eps = float(d.max())
    used, eps_hist, ess_hist, discarded = n_initial, [eps], [float(n_particles)], 0

    while used < n_simulations:
        eps_t = float(np.quantile(d, quantile))                                  # (ABC.1)
        cov = kernel_covariance(theta, w)                                        # (ABC.2)
        chol = np.linalg.cholesky(cov)
        acc_theta, acc_d, n_acc, spent = [], [], 0, 0
        while n_acc < n_particles and used + spent < n_simulations:
            m = min(n_particles, n_simulations - used - spent)
            sims = run(_propose(theta, w, chol, prior, m, rng))
            spent += m
            dm = dist(sims.x)
            ok = dm <= eps_t
            acc_theta.append(sims.theta[ok])
            acc_d.append(dm[ok])
            n_acc += int(ok.sum())
        used += spent
        if n_acc < n_particles:                       # the budget ran out inside this round
            discarded = spent
            break
        new_theta = np.concatenate(acc_theta)[:n_particles]
        d = np.concatenate(acc_d)[:n_particles]
        w = importance_weights(new_theta, prior, theta, w, cov)                  # (ABC.3)
        theta, eps = new_theta, eps_t
        eps_hist.append(eps)
        ess_hist.append(float(1.0 / np.sum(w * w)))
    return SMCABCResult(theta, d, eps, used, w, eps_hist, ess_hist, discarded)
