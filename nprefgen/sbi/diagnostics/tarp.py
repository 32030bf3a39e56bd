"""TARP: tests of accuracy with random points (derivations/sbi.md, SBI.18-SBI.19).

Lemos, Coogan, Hezaveh & Perreault-Levasseur (2023), "Sampling-based accuracy testing of
posterior estimators for general inference", ICML.

(SBI.18) For each test pair (theta*_i, x_i), L draws theta_il ~ q(theta | x_i) and one reference
point theta^r_i, the fraction of draws closer to the reference than the truth is

    f_i = (1/L) sum_l 1[ d(theta_il, theta^r_i) < d(theta*_i, theta^r_i) ],

and the expected coverage probability is ECP(alpha) = (1/N) sum_i 1[f_i < alpha]: the coverage of
balls around theta^r. Parameters are scaled to [0, 1] by the range of theta* and references are
uniform on the unit box, as in the paper. If q is the posterior then ECP(alpha) = alpha for all
alpha: the condition is NECESSARY. It is not sufficient for these references, which do not depend
on x: an estimator that ignores x and returns the prior passes too (so do PIT, HPD coverage and
SBC; tests/sbi/test_prior_passes_calibration.py). Lemos et al.'s sufficiency result needs
reference distributions that may depend on x. Pair TARP with C2ST or the held-out
log-likelihood, which the prior fails.

(SBI.19) Two areas of the ECP curve. ``abs_area`` = int_0^1 |ECP(alpha) - alpha| d alpha, 0 when
calibrated, large for any miscalibration. ``signed_area`` = int_0^1 (ECP(alpha) - alpha) d alpha
= 1/2 - E[f]: it only sees where the mean of f sits, so over-confidence (f piled at both ends)
barely moves it and a bias can make it positive; it is not an over/under-confidence indicator.
sbi's ``check_tarp`` "ATC" is a third number, the signed sum of ECP - alpha over the grid
points with alpha >= 1/2 (it scales with the grid size); we do not compute it. As ECP is the CDF of f, we also report the KS test
of f against U(0, 1).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from nprefgen._validation import check_array, check_rng, check_scalar
from nprefgen.sbi.diagnostics._checks import check_draws

ALPHAS = np.linspace(0.0, 1.0, 101)


def tarp_fractions(samples, theta_true, *, rng=None, references=None,
                   normalize: bool = True) -> np.ndarray:
    """(SBI.18) f_i: (N, L, p), (N, p) -> (N,). ``references`` (N, p) in the scaled space, or
    None for uniform points on the unit box drawn from ``rng`` (None, an int seed or a
    Generator, SPEC 7)."""
    s, t = check_draws(samples, theta_true)
    rng = check_rng(rng)
    if normalize:
        lo, hi = t.min(axis=0), t.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        s, t = (s - lo) / span, (t - lo) / span
    if references is None:
        ref = rng.uniform(size=t.shape)
    else:
        ref = check_array(references, "references", shape=t.shape)
    d_samples = np.sqrt(np.sum((s - ref[:, None, :]) ** 2, axis=2))   # (N, L)
    d_true = np.sqrt(np.sum((t - ref) ** 2, axis=1))                   # (N,)
    return np.mean(d_samples < d_true[:, None], axis=1)


def tarp_coverage(f, alphas=ALPHAS) -> np.ndarray:
    """(SBI.18) ECP(alpha) = (1/N) sum_i 1[f_i < alpha]. f: (N,) -> (len(alphas),)."""
    f = check_array(f, "f", ndim=1)
    return np.mean(f[None, :] < np.asarray(alphas)[:, None], axis=1)


def tarp_area(ecp, alphas=ALPHAS) -> tuple[float, float]:
    """(SBI.19) (abs_area, signed_area): trapezoidal integrals of |ECP - alpha| and ECP - alpha
    (the second is 1/2 - E[f] up to the grid error)."""
    ecp = check_array(ecp, "ecp", ndim=1)
    a = np.asarray(alphas, dtype=np.float64)
    if a.shape != ecp.shape:
        raise ValueError(f"ecp: expected shape {a.shape} to match alphas, got {ecp.shape}")
    gap = ecp - a
    return float(np.trapezoid(np.abs(gap), a)), float(np.trapezoid(gap, a))


def tarp_test(samples, theta_true, *, rng=None, level: float = 0.01) -> dict:
    """ECP curve, area criterion and KS p-value of f against U(0, 1) in one call."""
    check_scalar(level, "level", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    f = tarp_fractions(samples, theta_true, rng=rng)
    ecp = tarp_coverage(f)
    area, signed = tarp_area(ecp)
    p = float(stats.kstest(f, "uniform").pvalue)
    return {"alphas": ALPHAS, "ecp": ecp, "f": f, "abs_area": area, "signed_area": signed,
            "pvalue": p, "passed": p > level}
