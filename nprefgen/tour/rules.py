"""The tour's rules for diagnostics, each recorded with :meth:`nprefgen.tour.report.Report.check`.

One function per kind of diagnostic, so every section states the same rule in the same words:

- :func:`ks_uniform`: a Kolmogorov-Smirnov p-value of uniformity (PIT values, HPD levels, TARP)
  is flagged below 0.01.
- :func:`rhat`: the split R-hat of MCMC chains (MCMC.8) is flagged at 1.01 or above, the bar
  Vehtari et al. (2021) recommend.
- :func:`ess`: an effective sample size (MCMC.9) below 100 is flagged (too few for stable means
  and quantiles; Vehtari et al. 2021 ask for 100 per chain).
- :func:`mcmc_converged`: every observation of a batched MCMC run passes the posterior's own
  check (MCMC.13: split R-hat below max(1.05, its fluctuation for independent draws), ESS at least
  min(100, a tenth of the draws)), read from the posterior's kept ``diagnostics_``.
- :func:`leakage`: an NPE posterior (DirectPosterior) keeps at least 90 % of its mass inside the
  prior for every observation of a batched run (its ``acceptance_rates_``, SBI.12), the bar the
  posterior warns at.
- :func:`chi2_per_bin`: chi2 / B of B z-scores is flagged outside the central 99 % interval of
  chi2_B / B, so "far from 1" shrinks as sqrt(2 / B) with the number of bins.
- :func:`c2st`: a C2ST accuracy of n + n draws is flagged above 0.5 + z_0.99 * 0.5 / sqrt(2 n),
  the one-sided 1 % bar of a classifier at chance over 2 n held-out predictions (SBI.20).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

KS_ALPHA = 0.01
RHAT_MAX = 1.01
ESS_MIN = 100.0
LEVEL = 0.99


def ks_uniform(report, name: str, pvalue: float, *, show: bool = False):
    """Flag a KS p-value of uniformity below 0.01."""
    p = float(pvalue)
    return report.check(name, p, f"KS p >= {KS_ALPHA:g} (uniform when calibrated)",
                        bool(p >= KS_ALPHA), show=show)


def rhat(report, name: str, value: float, *, show: bool = False):
    """Flag the largest R-hat over parameters at 1.01 or above."""
    v = float(value)
    return report.check(name, v, f"R-hat < {RHAT_MAX:g} (Vehtari et al. 2021)",
                        bool(v < RHAT_MAX), show=show)


def ess(report, name: str, value: float, *, show: bool = False):
    """Flag the smallest effective sample size below 100."""
    v = float(value)
    return report.check(name, v, f"ESS >= {ESS_MIN:g}", bool(v >= ESS_MIN), show=show)


def mcmc_converged(report, name: str, diagnostics: dict, *, show: bool = False):
    """Flag a batched MCMC run in which any observation's chains fail their check (MCMC.13);
    the value is the number of failing observations out of the total."""
    failed = int(np.size(diagnostics["failed"]))
    total = int(np.size(diagnostics["ok"]))
    return report.check(name, f"{failed} of {total} fail",
                        "every observation's chains pass R-hat / ESS (MCMC.13)", failed == 0,
                        show=show)


def leakage(report, name: str, posterior, *, show: bool = False):
    """Flag a batched NPE run in which any observation keeps less than the posterior's
    ``leakage_threshold`` (0.9) of its mass inside the prior; the value is the lowest rate."""
    rates = np.asarray(posterior.acceptance_rates_)
    bar = posterior.leakage_threshold
    low = int(np.sum(rates < bar))
    return report.check(name, f"{float(rates.min()):.3f} (lowest; {low} of {rates.size} below)",
                        f"acceptance >= {bar:g} for every observation (SBI.12)", low == 0,
                        show=show)


def chi2_bounds(n_bins: int, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` interval of chi2_B / B: where chi2 / bin of B unit z-scores lies."""
    a = (1.0 - level) / 2.0
    return (float(stats.chi2.ppf(a, n_bins) / n_bins), float(stats.chi2.ppf(1.0 - a, n_bins) / n_bins))


def chi2_per_bin(report, name: str, value: float, n_bins: int, *, show: bool = False):
    """Flag chi2 / bin outside the central 99 % interval of chi2_B / B."""
    lo, hi = chi2_bounds(n_bins)
    v = float(value)
    return report.check(name, v, f"{lo:.2f} <= chi2/bin <= {hi:.2f} (central 99 % of "
                                 f"chi2_{n_bins} / {n_bins})", bool(lo <= v <= hi), show=show)


def c2st_bar(n_each: int, level: float = LEVEL) -> float:
    """The accuracy a chance-level classifier exceeds with probability 1 - level, over 2 n
    held-out predictions (every draw is predicted once across the folds)."""
    return float(0.5 + stats.norm.ppf(level) * 0.5 / np.sqrt(2.0 * n_each))


def c2st(report, name: str, score: float, n_each: int, *, show: bool = False):
    """Flag a C2ST accuracy above the 1 % bar of chance for n + n draws."""
    bar = c2st_bar(n_each)
    v = float(score)
    return report.check(name, v, f"C2ST <= {bar:.3f} (chance at the 1 % level, {n_each} + "
                                 f"{n_each} draws)", bool(v <= bar), show=show)
