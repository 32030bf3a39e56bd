"""PIT values, P-P curves and expected coverage (derivations/sbi.md, SBI.15-SBI.16).

All functions take posterior draws for N test observations, ``samples: (N, L, p)``, and the
parameters that generated them, ``theta_true: (N, p)``.

(SBI.15) PIT per marginal: u_ik = F_q,k(theta*_ik | x_i) ~ (1/L) sum_l 1[theta_ilk < theta*_ik].
If q is the posterior, theta* given x is a draw from it, so u_ik ~ U(0, 1) over the joint; the
P-P curve (the empirical CDF of u against alpha) is then the diagonal. Over-confident posteriors
put theta* in the tails: u piles up at 0 and 1 (an S-shaped P-P curve); a biased one shifts u.

(SBI.16) Expected coverage of highest-posterior-density regions: with
f_i = (1/L) sum_l 1[log q(theta_il | x_i) > log q(theta*_i | x_i)], the mass of the HPD region
whose boundary passes through theta*_i, theta*_i lies in the alpha-HPD region iff f_i <= alpha,
and the expected coverage is C(alpha) = (1/N) sum_i 1[f_i <= alpha]. Calibrated: C(alpha) = alpha;
C(alpha) < alpha: over-confident; C(alpha) > alpha: under-confident (conservative).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from nprefgen._validation import check_array, check_choice, check_rng, check_scalar
from nprefgen.sbi.diagnostics._checks import check_draws

ALPHAS = np.linspace(0.0, 1.0, 101)


def pit_values(samples, theta_true, *, rng=None, ties: str = "random") -> np.ndarray:
    """(SBI.15) u_ik = (#{l: theta_ilk < theta*_ik} + U #{ties}) / L. -> (N, p) in [0, 1].

    Ties (discrete or duplicated draws) are split uniformly at random with ``ties="random"``
    (U ~ U(0, 1) from ``rng``: None, an int seed or a Generator, SPEC 7), or counted half with
    ``ties="half"`` (deterministic, ``rng`` unused). Without ties both give the same values.
    """
    s, t = check_draws(samples, theta_true)
    ties = check_choice(ties, "ties", ("random", "half"))
    below = np.sum(s < t[:, None, :], axis=1)
    tied = np.sum(s == t[:, None, :], axis=1)
    frac = check_rng(rng).uniform(size=below.shape) if ties == "random" else 0.5
    return (below + frac * tied) / s.shape[1]


def pp_curve(u, alphas=ALPHAS) -> np.ndarray:
    """Empirical CDF of the PIT values at ``alphas``: (N, p) -> (len(alphas), p)."""
    u = check_array(u, "u", ndim=(1, 2))
    u = u[:, None] if u.ndim == 1 else u
    return np.mean(u[None, :, :] <= np.asarray(alphas)[:, None, None], axis=1)


def uniformity_pvalues(u) -> np.ndarray:
    """KS test of each column against U(0, 1): (N, p) -> (p,) p-values."""
    u = check_array(u, "u", ndim=(1, 2))
    u = u[:, None] if u.ndim == 1 else u
    return np.array([stats.kstest(u[:, k], "uniform").pvalue for k in range(u.shape[1])])


def marginal_coverage(u, alphas=ALPHAS) -> np.ndarray:
    """Coverage of central credible intervals from PIT values: theta* lies inside the central
    alpha-interval iff |u - 1/2| <= alpha/2. (N, p) -> (len(alphas), p)."""
    u = check_array(u, "u", ndim=(1, 2))
    u = u[:, None] if u.ndim == 1 else u
    return np.mean(np.abs(u[None] - 0.5) <= np.asarray(alphas)[:, None, None] / 2.0, axis=1)


def hpd_levels(log_prob_samples, log_prob_true) -> np.ndarray:
    """(SBI.16) f_i = (1/L) sum_l 1[log q(theta_il|x_i) > log q(theta*_i|x_i)].

    log_prob_samples : (N, L) log q of each posterior draw; log_prob_true : (N,). -> (N,).
    """
    lq = check_array(log_prob_samples, "log_prob_samples", ndim=2, allow_inf=True)
    lt = check_array(log_prob_true, "log_prob_true", ndim=1, allow_inf=True)
    if lt.shape[0] != lq.shape[0]:
        raise ValueError(f"log_prob_true: expected {lq.shape[0]} values, got {lt.shape[0]}")
    return np.mean(lq > lt[:, None], axis=1)


def expected_coverage(f, alphas=ALPHAS) -> np.ndarray:
    """(SBI.16) C(alpha) = (1/N) sum_i 1[f_i <= alpha]. f: (N,) -> (len(alphas),)."""
    f = check_array(f, "f", ndim=1)
    return np.mean(f[None, :] <= np.asarray(alphas)[:, None], axis=1)


def calibration_flags(u, level: float = 0.01) -> dict:
    """The KS p-values of the PIT (or HPD level) values and whether each passes at ``level``;
    also the signed largest gap of the P-P curve from the diagonal (negative: under it)."""
    u = check_array(u, "u", ndim=(1, 2))
    check_scalar(level, "level", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    u = u[:, None] if u.ndim == 1 else u
    p = uniformity_pvalues(u)
    curve = pp_curve(u)
    gap = curve - ALPHAS[:, None]
    worst = gap[np.argmax(np.abs(gap), axis=0), np.arange(u.shape[1])]
    return {"pvalues": p, "passed": bool(np.all(p > level)), "max_gap": worst}
