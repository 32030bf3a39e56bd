"""Rejection ABC (derivations/sbi.md, SBI.8-SBI.9).

(SBI.8) Keep the simulated theta_i whose summaries land within eps of the observed ones,
d(s(x_i), s(x_obs)) <= eps. The kept draws follow

    p_eps(theta | x_obs)  proportional to  p(theta) P(d(s(x), s(x_obs)) <= eps | theta),

which tends to p(theta | s(x_obs)) as eps -> 0 (and to the full posterior if s is sufficient).
In practice eps is set as a quantile of the distances (keep the closest ``n_keep`` or a
``quantile`` of the simulations), trading bias (large eps) for variance (few draws).

(SBI.9) To draw more samples than were kept (for C2ST against 10 000 reference draws, as sbibm
does), :class:`ABCPosterior` smooths the kept draws with a Gaussian kernel density estimate
(bandwidth by Scott's rule on the kept draws' covariance) and rejects draws outside the prior.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nprefgen._validation import (
    check_alloc, check_array, check_callable, check_choice, check_finite_result, check_int,
    check_rng, check_scalar,
)
from nprefgen.sbi.priors import check_prior


def _distances(s_sim: np.ndarray, s_obs: np.ndarray, distance: str) -> np.ndarray:
    diff = s_sim - s_obs
    if distance == "euclidean":
        return np.sqrt(np.sum(diff * diff, axis=1))
    if distance == "manhattan":
        return np.sum(np.abs(diff), axis=1)
    return np.max(np.abs(diff), axis=1)   # chebyshev


@dataclass
class ABCResult:
    """theta_kept (k, p), distances (k,), eps the acceptance radius, n_simulations, and weights
    (k,) summing to one for an importance-weighted population (SMC-ABC, ABC.3), else None."""

    theta: np.ndarray
    distances: np.ndarray
    eps: float
    n_simulations: int
    weights: np.ndarray | None = None

    @property
    def acceptance_rate(self) -> float:
        return self.theta.shape[0] / self.n_simulations


def rejection_abc(x_obs, theta, x, *, summary=None, distance: str = "euclidean",
                  scale: str | None = "mad", n_keep: int | None = None,
                  quantile: float | None = None, eps: float | None = None) -> ABCResult:
    """(SBI.8) rejection ABC on precomputed simulations.

    Parameters
    ----------
    x_obs : (dx,) the observation.
    theta : (n, p), x : (n, dx) simulations from the joint (e.g. ``simulate_from_prior``).
    summary : callable (m, dx) -> (m, ds), or None (identity).
    distance : "euclidean", "manhattan" or "chebyshev".
    scale : "mad" (divide each summary by its median absolute deviation over the simulations)
        or None (raw summaries, as sbibm's REJ-ABC).
    n_keep, quantile, eps : exactly one: keep the n_keep closest, the closest fraction
        ``quantile``, or all within ``eps``.
    """
    theta = check_array(theta, "theta", ndim=2)
    x = check_array(x, "x", ndim=2)
    if x.shape[0] != theta.shape[0]:
        raise ValueError(f"x: expected {theta.shape[0]} rows to match theta, got {x.shape[0]}")
    x_obs = check_array(x_obs, "x_obs", ndim=(1, 2))
    if x_obs.ndim == 2:
        if x_obs.shape[0] != 1:
            raise ValueError(f"x_obs: expected one observation (dx,), got shape {x_obs.shape}")
        x_obs = x_obs[0]
    if x_obs.shape[0] != x.shape[1]:
        raise ValueError(f"x_obs: expected shape ({x.shape[1]},) to match x, got {x_obs.shape}")
    check_choice(distance, "distance", ("euclidean", "manhattan", "chebyshev"))
    if sum(v is not None for v in (n_keep, quantile, eps)) != 1:
        raise ValueError("n_keep: expected exactly one of n_keep, quantile, eps to be given")
    s_sim, s_obs = x, x_obs[None, :]
    if summary is not None:
        check_callable(summary, "summary")
        s_sim = check_array(summary(x), "summary(x)", ndim=2)
        s_obs = check_array(summary(x_obs[None, :]), "summary(x_obs)", ndim=2)
    if scale is not None:
        check_choice(scale, "scale", ("mad",))
        med = np.median(s_sim, axis=0)
        mad = np.median(np.abs(s_sim - med), axis=0)
        mad = np.where(mad > 0, mad, 1.0)
        s_sim, s_obs = s_sim / mad, s_obs / mad
    d = _distances(s_sim, s_obs, distance)
    order = np.argsort(d, kind="stable")
    n = theta.shape[0]
    if n_keep is not None:
        k = check_int(n_keep, "n_keep", low=1, high=n)
    elif quantile is not None:
        k = max(1, int(round(check_scalar(quantile, "quantile", low=0.0, high=1.0,
                                          low_inclusive=False) * n)))
    else:
        eps = check_scalar(eps, "eps", low=0.0)
        k = int(np.sum(d <= eps))
        if k == 0:
            raise ValueError(f"eps: no simulation within eps={eps} (closest {d[order[0]]:.4g})")
    keep = order[:k]
    radius = float(d[keep[-1]]) if eps is None else float(eps)
    return ABCResult(theta[keep], d[keep], radius, n)


def _check_weights(weights, k: int) -> np.ndarray | None:
    """None, or k non-negative finite importance weights, returned normalised to sum to one."""
    if weights is None:
        return None
    w = check_array(weights, "weights", ndim=1)
    if w.shape[0] != k or np.any(w < 0) or not np.sum(w) > 0:
        raise ValueError(f"weights: expected {k} non-negative weights with a positive sum, got "
                         f"shape {w.shape}, min {w.min() if w.size else 'n/a'}")
    return w / np.sum(w)


def _weighted_cov(theta: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):                     # checked by callers
        if w is None:
            return np.atleast_2d(np.cov(theta, rowvar=False))
        return np.atleast_2d(np.cov(theta, rowvar=False, aweights=w))


def scott_bandwidth(theta: np.ndarray, weights=None) -> np.ndarray:
    """(SBI.9) kernel covariance H = n^{-2/(p+4)} Cov(theta) (Scott's rule). theta: (k, p).

    With importance ``weights`` (k,), Cov is the weighted covariance and n the effective sample
    size 1 / sum w_i^2 (w normalised)."""
    theta = check_array(theta, "theta", ndim=2)
    k, p = theta.shape
    w = _check_weights(weights, k)
    cov = _weighted_cov(theta, w) if k > 1 else np.eye(p) * 1e-6
    check_finite_result(cov, "theta", "covariance", theta)
    n = k if w is None else 1.0 / np.sum(w * w)
    return cov * n ** (-2.0 / (p + 4.0)) + 1e-12 * np.eye(p)


def cv_bandwidth(theta: np.ndarray, factors=None, weights=None, *,
                 isotropic: bool = False) -> np.ndarray:
    """(SBI.9) H = f^2 Cov(theta) with f maximising the leave-one-out log-likelihood of the KDE,

        LOO(f) = sum_i log (1/(k-1)) sum_{j != i} N(theta_i; theta_j, f^2 Cov),

    over a grid of factors (sbibm's ``kde_bandwidth="cv"`` in spirit). theta: (k, p) -> (p, p).
    With importance ``weights`` w (k,): Cov is weighted and the score is
    sum_i w_i log sum_{j != i} w_j N(theta_i; theta_j, f^2 Cov) / sum_{j != i} w_j.

    ``isotropic``: H = f^2 s^2 I with s^2 the mean of the coordinates' variances (a round kernel,
    the shape of sbibm's KDE), f on a grid reaching lower, geomspace(0.005, 2, 60). The kept
    draws of a crescent or of two modes have a covariance elongated along the line between
    them, which a Cov-shaped kernel copies; a round kernel does not."""
    theta = check_array(theta, "theta", ndim=2)
    k, p = theta.shape
    w = _check_weights(weights, k)
    if factors is not None:
        factors = check_array(factors, "factors", ndim=1)
        if np.any(factors <= 0):
            raise ValueError(f"factors: expected positive values, got min {factors.min():.3g}")
    if k < 3:
        return scott_bandwidth(theta, w)
    cov = _weighted_cov(theta, w) + 1e-12 * np.eye(p)
    check_finite_result(cov, "theta", "covariance", theta)
    if isotropic:
        cov = np.mean(np.diag(cov)) * np.eye(p)
    white = np.linalg.solve(np.linalg.cholesky(cov), theta.T).T       # Cov -> I
    d2 = np.sum((white[:, None, :] - white[None, :, :]) ** 2, axis=2)
    np.fill_diagonal(d2, np.inf)
    if factors is None:
        factors = np.geomspace(0.005, 2.0, 60) if isotropic else np.geomspace(0.02, 2.0, 40)
    scores = []
    log_w = None if w is None else np.log(np.where(w > 0, w, np.finfo(float).tiny))
    for f in factors:
        a = -0.5 * d2 / (f * f)
        if log_w is not None:
            a = a + log_w[None, :]
        m = a.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.sum(np.exp(a - m), axis=1))
        if w is None:
            scores.append(np.sum(lse) - k * p * np.log(f))   # constants in f dropped
        else:
            scores.append(np.sum(w * (lse - np.log1p(-np.minimum(w, 1 - 1e-12)))) - p * np.log(f))
    f = factors[int(np.argmax(scores))]
    return f * f * cov


class ABCPosterior:
    """Kept ABC draws, resampled through a Gaussian KDE restricted to the prior (SBI.9).

    ``sample(n, rng=...)`` -> (n, p). ``bandwidth``: "scott" (default), "cv" (leave-one-out
    likelihood, kernel shaped like the draws' covariance), "cv_iso" (leave-one-out, round
    kernel: the best on two_moons, benchmarks/RESULTS.md) or None (resample the kept draws with replacement, no smoothing).
    """

    def __init__(self, result: ABCResult, prior=None, bandwidth: str | None = "scott") -> None:
        self.theta = result.theta
        self.result = result
        self.prior = None if prior is None else check_prior(prior)
        self.weights = _check_weights(getattr(result, "weights", None), self.theta.shape[0])
        self.kde = bandwidth is not None
        if bandwidth is not None:
            check_choice(bandwidth, "bandwidth", ("scott", "cv", "cv_iso"))
            if bandwidth == "scott":
                h = scott_bandwidth(self.theta, weights=self.weights)
            else:
                h = cv_bandwidth(self.theta, weights=self.weights,
                                 isotropic=bandwidth == "cv_iso")
            self.chol = np.linalg.cholesky(h)

    def sample(self, n: int, *, rng=None) -> np.ndarray:
        """n draws (n, p) for the observation the ABC run was made for; ``rng``: None, an int
        seed or a Generator (SPEC 7)."""
        n = check_int(n, "n", low=1)
        check_alloc((2 * n + 10, self.theta.shape[1]), "n")          # the first round's draws
        rng = check_rng(rng)
        out, have = [], 0
        for _ in range(1000):
            m = 2 * (n - have) + 10
            if self.weights is None:
                idx = rng.integers(0, self.theta.shape[0], size=m)
            else:                                   # an SMC-ABC population: draw by weight
                idx = rng.choice(self.theta.shape[0], size=m, p=self.weights)
            draw = self.theta[idx]
            if self.kde:
                draw = draw + rng.standard_normal(draw.shape) @ self.chol.T
            if self.prior is not None:
                draw = draw[self.prior.in_support(draw)]
            out.append(draw)
            have += draw.shape[0]
            if have >= n:
                return np.concatenate(out)[:n]
        raise ValueError("prior: the ABC kernel density puts almost no mass inside the prior")
