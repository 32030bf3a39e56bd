"""The calibration diagnostics pass the exact posterior and flag an over-confident and a biased
one (derivations/sbi.md, SBI.14-SBI.19).

Set-up: 2-D gaussian_linear with analytic posterior N(mu_N, var_N I) (SBI.2); N = 400 test
observations, L = 200 draws each. "over-confident": the exact mean with half the standard
deviation; "biased": the exact spread shifted by one posterior standard deviation. Every test
uses KS at level 0.01, whose false-alarm rate for the exact posterior is 1 %, fixed by the seed.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nprefgen.sbi import diagnostics as dg
from nprefgen.sbi.tasks import gaussian_linear, gaussian_linear_posterior

N, L = 400, 200


def _case(kind, rng):
    task = gaussian_linear(dim=2)
    theta, x = task.observations(N, rng=rng)
    # (SBI.2) with one observation each: var = (1/0.1 + 1/0.1)^-1, mu = var x / 0.1
    mus = [gaussian_linear_posterior(x[i:i + 1], 0.0, 0.1, 0.1) for i in range(2)]
    var = mus[0][1]
    mu = var * x / 0.1
    np.testing.assert_allclose(mus[1][0], mu[1])
    sd = np.sqrt(var)
    if kind == "overconfident":
        sd_q, mu_q = 0.5 * sd, mu
    elif kind == "biased":
        sd_q, mu_q = sd, mu + sd
    else:
        sd_q, mu_q = sd, mu
    samples = mu_q[:, None, :] + sd_q * rng.standard_normal((N, L, 2))

    def log_q(t, m):
        return stats.norm.logpdf(t, m, sd_q).sum(-1)

    lq_samples = log_q(samples, mu_q[:, None, :])
    lq_true = log_q(theta, mu_q)
    return theta, x, samples, lq_samples, lq_true


@pytest.fixture(scope="module")
def cases():
    r = np.random.default_rng(404)
    return {k: _case(k, r) for k in ("exact", "overconfident", "biased")}


def test_pit_and_pp_curve(cases):
    """(SBI.15) PIT values are uniform for the exact posterior, not for the broken ones; the
    over-confident P-P curve leaves the diagonal in an S (above at small alpha: PIT piles at 0),
    the biased one sits on one side (theta* below the shifted draws: PIT small: curve above)."""
    rng = np.random.default_rng(1)
    flags = {k: dg.calibration_flags(dg.pit_values(c[2], c[0], rng=rng)) for k, c in cases.items()}
    assert flags["exact"]["passed"]
    assert not flags["overconfident"]["passed"]
    assert not flags["biased"]["passed"]
    u = dg.pit_values(cases["overconfident"][2], cases["overconfident"][0])
    curve = dg.pp_curve(u)
    assert np.all(curve[10] > 0.1 + 0.05) and np.all(curve[90] < 0.9 - 0.05)
    ub = dg.pit_values(cases["biased"][2], cases["biased"][0])
    assert np.all(dg.pp_curve(ub)[50] > 0.5 + 0.15)
    assert np.all(np.abs(dg.pp_curve(dg.pit_values(cases["exact"][2], cases["exact"][0]))
                         - dg.ALPHAS[:, None]) < 1.63 / np.sqrt(N) + 1.0 / L)


def test_expected_coverage(cases):
    """(SBI.16) HPD coverage is on the diagonal for the exact posterior, under it for the
    over-confident and the biased ones; marginal central intervals agree."""
    cover = {}
    for k, (theta, x, s, lq_s, lq_t) in cases.items():
        f = dg.hpd_levels(lq_s, lq_t)
        cover[k] = dg.expected_coverage(f)
        passed = stats.kstest(f, "uniform").pvalue > 0.01
        assert passed == (k == "exact"), k
    tol = 1.63 / np.sqrt(N) + 1.0 / L
    assert np.max(np.abs(cover["exact"] - dg.ALPHAS)) < tol
    for k in ("overconfident", "biased"):
        assert np.min(cover[k] - dg.ALPHAS) < -0.1, k
        assert cover[k][68] < 0.68 - 0.1
    mc = dg.marginal_coverage(dg.pit_values(cases["exact"][2], cases["exact"][0]))
    assert np.max(np.abs(mc - dg.ALPHAS[:, None])) < tol


def test_sbc_ranks(cases):
    """(SBI.17) SBC ranks: uniform (KS and chi^2 p > 0.01) only for the exact posterior."""
    rng = np.random.default_rng(2)
    for k, (theta, x, s, _, _) in cases.items():
        ranks = dg.sbc_ranks(s, theta)
        assert ranks.shape == (N, 2) and ranks.min() >= 0 and ranks.max() <= L
        res = dg.sbc_uniformity(ranks, L, rng=rng)
        ok = bool(np.all(res["ks_pvalues"] > 0.01) and np.all(res["chi2_pvalues"] > 0.01))
        assert ok == (k == "exact"), (k, res)


def test_tarp(cases):
    """(SBI.18) (SBI.19) TARP: ECP on the diagonal (small |area|, KS passes) for the exact
    posterior; both broken ones fail and have a larger |area|; the signed area is 1/2 - E[f]
    (up to the trapezoid's grid error, at most the grid step 0.01), not a confidence sign."""
    rng = np.random.default_rng(3)
    res = {k: dg.tarp_test(c[2], c[0], rng=rng) for k, c in cases.items()}
    assert res["exact"]["passed"] and res["exact"]["abs_area"] < 0.05
    for k in ("overconfident", "biased"):
        assert not res[k]["passed"], k
        assert res[k]["abs_area"] > 2 * res["exact"]["abs_area"], k
    for k, r in res.items():
        assert abs(r["signed_area"] - (0.5 - np.mean(r["f"]))) <= 0.01, k


def test_tarp_with_fixed_references_is_deterministic(cases):
    theta, _, s, _, _ = cases["exact"]
    ref = np.full(theta.shape, 0.5)
    a = dg.tarp_fractions(s, theta, rng=np.random.default_rng(0), references=ref)
    b = dg.tarp_fractions(s, theta, rng=np.random.default_rng(1), references=ref)
    np.testing.assert_array_equal(a, b)


def test_heldout_log_likelihood_ranks_posteriors(cases):
    """(SBI.14) the exact posterior has the highest mean test log-likelihood."""
    theta, x = cases["exact"][0], cases["exact"][1]
    var = 0.05
    scores = {}
    for name, sd, shift in (("exact", np.sqrt(var), 0.0), ("over", 0.5 * np.sqrt(var), 0.0),
                            ("biased", np.sqrt(var), np.sqrt(var))):
        def lp(t, xx, sd=sd, shift=shift):
            return stats.norm.logpdf(t, var * xx / 0.1 + shift, sd).sum(-1)
        scores[name] = dg.heldout_log_likelihood(lp, theta, x, batch_size=128)
    assert scores["exact"]["mean"] > scores["over"]["mean"] + 3 * scores["over"]["sem"]
    assert scores["exact"]["mean"] > scores["biased"]["mean"] + 3 * scores["biased"]["sem"]
    # the exact expected value: -(p/2) log(2 pi e var)
    assert abs(scores["exact"]["mean"] + np.log(2 * np.pi * np.e * var)) < 4 * scores["exact"]["sem"]


def test_bad_inputs_raise():
    s = np.zeros((5, 10, 2))
    with pytest.raises(ValueError, match="theta_true"):
        dg.pit_values(s, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="samples"):
        dg.sbc_ranks(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="ranks"):
        dg.sbc_uniformity(np.array([[0], [11]]), 10, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="log_prob_true"):
        dg.hpd_levels(np.zeros((5, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="x"):
        dg.heldout_log_likelihood(lambda t, x: t[:, 0], np.zeros((5, 2)), np.zeros((4, 2)))


def test_pit_ties_random_or_half():
    """(SBI.15) with discrete draws: ties="half" counts each tie as 1/2 (deterministic); the
    default ties="random" splits them by U(0, 1) from rng (an int seed repeats), within
    [#below, #below + #ties] / L and with mean #below + #ties / 2 over many observations."""
    rng = np.random.default_rng(0)
    s = rng.integers(0, 3, size=(4000, 10, 1)).astype(float)
    t = rng.integers(0, 3, size=(4000, 1)).astype(float)
    n_below, n_tied = np.sum(s < t[:, None, :], axis=1), np.sum(s == t[:, None, :], axis=1)
    np.testing.assert_array_equal(dg.pit_values(s, t, ties="half"), (n_below + 0.5 * n_tied) / 10)
    below, tied = n_below / 10, n_tied / 10
    u = dg.pit_values(s, t, rng=1)
    np.testing.assert_array_equal(u, dg.pit_values(s, t, rng=1))
    assert np.all((u >= below - 1e-15) & (u <= below + tied + 1e-15))
    assert not np.allclose(u, below + 0.5 * tied)
    frac = (u - below)[tied > 0] / tied[tied > 0]           # U(0, 1): mean 1/2, sd 1/sqrt(12 m)
    assert abs(frac.mean() - 0.5) < 4.0 / np.sqrt(12 * frac.size)
    with pytest.raises(ValueError, match="^ties"):
        dg.pit_values(s, t, ties="third")
