"""Calibration checks are necessary, not sufficient (derivations/sbi.md, SBI.15-SBI.20).

An "estimator" that ignores x and returns the prior, q(theta | x) = p(theta), is calibrated on
average over the joint: theta* ~ p(theta) and its L draws ~ p(theta) are L + 1 iid prior draws,
so PIT values, HPD levels, SBC ranks and TARP fractions (with references independent of x) are
all exactly uniform. It is nonetheless a bad posterior, and the two checks that compare it with
the posterior observation by observation catch it: C2ST against reference draws at one x_o
(SBI.20) and the held-out log-likelihood (SBI.14), which is lower than the exact posterior's by
the mutual information I(theta; x) = dim * log(2) / 2 here (prior and noise variance 0.1 give a
posterior variance of 0.05 for one observation).

Set-up: gaussian_linear, dim 2, N = 400 test pairs, L = 200 draws, KS at level 0.01 (the prior
passes with probability 0.99 per test; the seed fixes the outcome).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from nprefgen.metrics.c2st import c2st
from nprefgen.sbi import diagnostics as dg
from nprefgen.sbi.tasks import gaussian_linear, gaussian_linear_posterior

N, L, DIM, VAR = 400, 200, 2, 0.1


def _prior_as_posterior():
    rng = np.random.default_rng(14)
    task = gaussian_linear(dim=DIM, prior_var=VAR, noise_var=VAR)
    theta, x = task.observations(N, rng=rng)
    draws = np.sqrt(VAR) * rng.standard_normal((N, L, DIM))          # q(theta | x) = p(theta)

    def log_prior(t):
        return stats.norm.logpdf(t, 0.0, np.sqrt(VAR)).sum(-1)

    return rng, task, theta, x, draws, log_prior


def test_the_prior_passes_pit_hpd_sbc_and_tarp():
    """(SBI.15) (SBI.16) (SBI.17) (SBI.18) all four pass an estimator that ignores x."""
    rng, _, theta, _, draws, log_prior = _prior_as_posterior()
    assert dg.calibration_flags(dg.pit_values(draws, theta, rng=rng))["passed"]
    f = dg.hpd_levels(log_prior(draws), log_prior(theta))
    assert dg.calibration_flags(f)["passed"]
    sbc = dg.sbc_uniformity(dg.sbc_ranks(draws, theta), L, rng=rng)
    assert np.all(sbc["ks_pvalues"] > 0.01) and np.all(sbc["chi2_pvalues"] > 0.01)
    tarp = dg.tarp_test(draws, theta, rng=rng)
    assert tarp["passed"]
    # the KS pass is not luck of a loose test: the TARP curve is as close to the diagonal as
    # the sampling error of N = 400 fractions allows (sup-gap under the KS 1 % quantile)
    assert np.max(np.abs(tarp["ecp"] - dg.ALPHAS)) < stats.kstwo.ppf(0.99, N)


def test_c2st_and_heldout_likelihood_reject_the_prior():
    """(SBI.20) (SBI.14) the prior is told apart from the posterior at one observation, and its
    held-out log-likelihood is lower than the exact posterior's by about I(theta; x)."""
    rng, task, theta, x, _, log_prior = _prior_as_posterior()
    x_o = np.full(DIM, np.sqrt(2 * VAR))               # one standard deviation of p(x)
    n = 600
    reference = task.reference_posterior(x_o, n, rng=rng)
    prior_draws = np.sqrt(VAR) * rng.standard_normal((n, DIM))
    same = c2st(reference, task.reference_posterior(x_o, n, rng=rng), rng=rng)
    prior_score = c2st(reference, prior_draws, rng=rng)
    # at chance, the accuracy over 2n held-out points has sd sqrt(0.25 / 2n) = 0.011
    assert abs(same - 0.5) < 5 * np.sqrt(0.25 / (2 * n))
    assert prior_score > 0.5 + 10 * np.sqrt(0.25 / (2 * n))

    def log_exact(t, xs):                              # (SBI.2) with one observation each
        var = 1.0 / (1.0 / VAR + 1.0 / VAR)
        mu = var * xs / VAR
        return stats.norm.logpdf(t, mu, np.sqrt(var)).sum(-1)

    exact = dg.heldout_log_likelihood(log_exact, theta, x)
    prior = dg.heldout_log_likelihood(lambda t, xs: log_prior(t), theta, x)
    diff = exact["values"] - prior["values"]
    sem = np.std(diff, ddof=1) / np.sqrt(N)
    mutual_information = DIM * np.log(2.0) / 2
    assert np.mean(diff) > 5 * sem
    assert abs(np.mean(diff) - mutual_information) < 4 * sem
