"""Tasks, priors, simulate() and rejection ABC (derivations/sbi.md, SBI.1-SBI.9)."""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from scipy import stats

from nprefgen.sbi.abc import ABCPosterior, rejection_abc
from nprefgen.sbi.priors import BoxUniform, Gaussian
from nprefgen.sbi.simulate import simulate, simulate_from_prior
from nprefgen.sbi.tasks import (
    gaussian_linear, gaussian_linear_posterior, gaussian_mixture, get_task, two_moons,
)


class NaNEveryThird:
    """A simulator that fails (NaN) when theta_0 > 0.5 and returns inf when theta_0 < -0.8."""

    def __call__(self, theta, rng):
        x = theta + rng.standard_normal(theta.shape)
        x[theta[:, 0] > 0.5, 0] = np.nan
        x[theta[:, 0] < -0.8, 1] = np.inf
        return x


def test_priors(rng):
    box = BoxUniform([-1, 0], [1, 2])
    t = box.sample(1000, rng=rng)
    assert np.all(box.in_support(t))
    np.testing.assert_allclose(box.log_prob(t), -np.log(4.0))
    assert box.log_prob(np.array([[2.0, 1.0]]))[0] == -np.inf
    g = Gaussian([1.0, 2.0], [0.5, 2.0])
    np.testing.assert_allclose(g.log_prob(np.array([[1.0, 2.0]])),
                               stats.multivariate_normal([1, 2], np.diag([0.5, 2.0])).logpdf([1, 2]))
    with pytest.raises(ValueError, match="theta"):
        box.check_in_support(np.array([[0.0, 3.0]]))
    with pytest.raises(ValueError, match="high"):
        BoxUniform([0.0], [0.0])
    with pytest.raises(ValueError, match="cov"):
        Gaussian([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])


def test_gaussian_linear_posterior_is_bayes_rule():
    """(SBI.1) (SBI.2) the closed-form posterior equals prior x likelihood normalised on a grid
    (1-D, three iid observations)."""
    x = np.array([[0.3], [0.1], [0.5]])
    mu, var = gaussian_linear_posterior(x, 0.0, 0.1, 0.1)
    grid = np.linspace(-2, 2, 40001)
    log_post = stats.norm.logpdf(grid, 0, np.sqrt(0.1)) + sum(
        stats.norm.logpdf(xi, grid, np.sqrt(0.1)) for xi in x[:, 0])
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    m = np.sum(w * grid)
    assert m == pytest.approx(mu[0], abs=1e-8)
    assert np.sum(w * (grid - m) ** 2) == pytest.approx(var, rel=1e-6)


def test_two_moons_simulator_and_reference(rng):
    """(SBI.3) x - shift(theta) lies on the crescent of radius ~0.1 around (0.25, 0);
    (SBI.4) reference draws, pushed through the simulator's deterministic part, land on the
    same crescent around x_obs, and lie inside the prior."""
    task = two_moons()
    theta = task.prior.sample(2000, rng=rng)
    x = task.simulator(theta, rng)
    shift = np.stack([-np.abs(theta.sum(1)), theta[:, 1] - theta[:, 0]], 1) / np.sqrt(2)
    p = x - shift
    r = np.hypot(p[:, 0] - 0.25, p[:, 1])
    assert abs(r.mean() - 0.1) < 4 * 0.01 / np.sqrt(2000) and abs(r.std() - 0.01) < 0.001
    assert np.all(p[:, 0] - 0.25 >= -4 * 0.01)          # a in (-pi/2, pi/2): right half circle
    x_obs = np.array([0.0, 0.0])
    post = task.reference_posterior(x_obs, 3000, rng=rng)
    assert np.all(task.prior.in_support(post))
    shift = np.stack([-np.abs(post.sum(1)), post[:, 1] - post[:, 0]], 1) / np.sqrt(2)
    p_post = x_obs - shift
    r_post = np.hypot(p_post[:, 0] - 0.25, p_post[:, 1])
    assert abs(r_post.mean() - 0.1) < 0.002
    # bimodal in theta1 + theta2 (the |.| branch), both signs about equally likely
    frac = np.mean(post.sum(1) > 0)
    assert abs(frac - 0.5) < 4 * 0.5 / np.sqrt(3000)


def test_two_moons_reference_matches_rejection_abc_limit(rng):
    """(SBI.8) as eps -> 0 ABC converges to the posterior: with 2e5 simulations and the 400
    closest, each marginal is within KS distance of the inverted-simulator reference."""
    task = two_moons()
    x_obs = np.array([0.05, -0.1])
    theta = task.prior.sample(200000, rng=rng)
    x = task.simulator(theta, rng)
    res = rejection_abc(x_obs, theta, x, n_keep=400, scale=None)
    ref = task.reference_posterior(x_obs, 4000, rng=rng)
    for k in range(2):
        assert stats.ks_2samp(res.theta[:, k], ref[:, k]).pvalue > 1e-3
    assert res.eps == pytest.approx(res.distances[-1]) and res.acceptance_rate == 400 / 200000


def test_gaussian_mixture(rng):
    """(SBI.5) half the simulations with sd 1, half with sd 0.1."""
    task = gaussian_mixture()
    theta = np.zeros((20000, 2))
    x = task.simulator(theta, rng)
    small = np.mean(np.abs(x[:, 0]) < 0.05)
    expected = 0.5 * (2 * stats.norm.cdf(0.5) - 1) + 0.5 * (2 * stats.norm.cdf(0.05) - 1)
    assert abs(small - expected) < 4 * np.sqrt(expected / 20000)
    post = task.reference_posterior(np.array([9.95, 0.0]), 2000, rng=rng)
    assert np.all(task.prior.in_support(post))
    assert get_task("gaussian_mixture").name == "gaussian_mixture"
    with pytest.raises(ValueError, match="name"):
        get_task("three_moons")


def test_gaussian_linear_reference(rng):
    task = gaussian_linear(dim=3)
    theta, x = task.observations(1, rng=rng)
    x_iid = task.simulator(np.repeat(theta, 4, 0), rng)
    post = task.reference_posterior(x_iid, 20000, rng=rng)
    mu, var = gaussian_linear_posterior(x_iid, 0.0, 0.1, 0.1)
    assert np.all(np.abs(post.mean(0) - mu) < 4 * np.sqrt(var / 20000))
    with pytest.raises(ValueError, match="x_obs"):
        task.reference_posterior(np.zeros(2), 5, rng=rng)


def test_simulate_is_the_same_whatever_the_executor(rng):
    """Per-batch seeds from one SeedSequence: in-process, threads and a process pool agree
    bit for bit."""
    task = gaussian_mixture()
    theta = task.prior.sample(250, rng=rng)
    a = simulate(task.simulator, theta, rng=np.random.default_rng(9), batch_size=64)
    with ThreadPoolExecutor(2) as ex:
        b = simulate(task.simulator, theta, rng=np.random.default_rng(9), executor=ex, batch_size=64)
    with ProcessPoolExecutor(2) as ex:
        c = simulate(task.simulator, theta, rng=np.random.default_rng(9), executor=ex, batch_size=64)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.x, c.x)
    d = simulate(task.simulator, theta, rng=np.random.default_rng(10), batch_size=64)
    assert not np.array_equal(a.x, d.x)


def test_nan_simulations_are_dropped_and_counted(rng):
    prior = BoxUniform([-1, -1], [1, 1])
    sims = simulate_from_prior(prior, NaNEveryThird(), 1000, rng=rng, batch_size=100)
    bad = (sims.dropped_theta[:, 0] > 0.5) | (sims.dropped_theta[:, 0] < -0.8)
    assert np.all(bad)
    assert sims.n_dropped == sims.dropped_theta.shape[0] > 0
    assert sims.n_total == 1000 and sims.theta.shape[0] == 1000 - sims.n_dropped
    assert np.all(np.isfinite(sims.x))
    assert np.all((sims.theta[:, 0] <= 0.5) & (sims.theta[:, 0] >= -0.8))
    theta, x = sims
    assert theta.shape[0] == x.shape[0]


def test_simulate_bad_inputs(rng):
    with pytest.raises(ValueError, match="simulator"):
        simulate(lambda t, r: t[:-1], np.zeros((5, 2)), rng=rng)
    with pytest.raises(ValueError, match="theta"):
        simulate(lambda t, r: t, np.zeros(5), rng=rng)
    with pytest.raises(ValueError, match="batch_size"):
        simulate(lambda t, r: t, np.zeros((5, 2)), rng=rng, batch_size=0)
    with pytest.raises(ValueError, match="executor"):
        simulate(lambda t, r: t, np.zeros((5, 2)), rng=rng, executor=object())


def test_abc_modes_and_kde(rng):
    """(SBI.8) eps / quantile / n_keep select the same closest draws; (SBI.9) the KDE sample has
    the kept draws' mean and a slightly larger spread, and stays in the prior."""
    task = gaussian_linear(dim=2)
    theta = task.prior.sample(5000, rng=rng)
    x = task.simulator(theta, rng)
    x_obs = np.array([0.2, -0.1])
    a = rejection_abc(x_obs, theta, x, n_keep=250)
    b = rejection_abc(x_obs, theta, x, quantile=0.05)
    c = rejection_abc(x_obs, theta, x, eps=a.eps)
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.theta, c.theta)
    assert np.all(np.diff(a.distances) >= 0)
    post = ABCPosterior(a, task.prior).sample(20000, rng=rng)
    assert np.all(np.abs(post.mean(0) - a.theta.mean(0)) < 4 * a.theta.std(0) / np.sqrt(250))
    assert np.all(post.std(0) > a.theta.std(0))
    box = two_moons()
    th = box.prior.sample(2000, rng=rng)
    res = rejection_abc(np.zeros(2), th, box.simulator(th, rng), n_keep=100)
    assert np.all(box.prior.in_support(ABCPosterior(res, box.prior).sample(3000, rng=rng)))


def test_abc_bad_inputs(rng):
    theta, x = np.zeros((10, 2)), np.zeros((10, 3))
    with pytest.raises(ValueError, match="x"):
        rejection_abc(np.zeros(3), theta, x[:5], n_keep=2)
    with pytest.raises(ValueError, match="x_obs"):
        rejection_abc(np.zeros(2), theta, x, n_keep=2)
    with pytest.raises(ValueError, match="n_keep"):
        rejection_abc(np.zeros(3), theta, x)
    with pytest.raises(ValueError, match="distance"):
        rejection_abc(np.zeros(3), theta, x, n_keep=2, distance="cosine")
    with pytest.raises(ValueError, match="eps"):
        rejection_abc(np.ones(3), theta, x, eps=0.1)


def test_cv_bandwidth(rng):
    """(SBI.9) cross-validated bandwidth: near Scott's factor for a Gaussian sample, much
    narrower than it for two well-separated clusters (where Cov is dominated by the gap)."""
    from nprefgen.sbi.abc import cv_bandwidth, scott_bandwidth

    g = rng.standard_normal((300, 2))
    ratio = np.sqrt(np.diag(cv_bandwidth(g)) / np.diag(scott_bandwidth(g)))
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    two = np.concatenate([rng.standard_normal((150, 2)) * 0.05, 5 + rng.standard_normal((150, 2)) * 0.05])
    ratio = np.sqrt(np.diag(cv_bandwidth(two)) / np.diag(scott_bandwidth(two)))
    assert np.all(ratio < 0.3), ratio
    kept = rejection_abc(np.zeros(2), two, two, n_keep=300)
    draws = ABCPosterior(kept, bandwidth="cv").sample(2000, rng=rng)
    assert np.mean(np.min(np.abs(draws[:, :1] - np.array([0.0, 5.0])), axis=1) < 0.5) > 0.95
    with pytest.raises(ValueError, match="bandwidth"):
        ABCPosterior(kept, bandwidth="silverman")


def test_isotropic_cv_bandwidth(rng):
    """(SBI.9) the round kernel (``bandwidth="cv_iso"``): H is a multiple of I; near the
    Cov-shaped choice for an isotropic Gaussian sample; and on two_moons (the 100 closest of
    10^5 simulations, 5 observations) it gives exact posterior draws a higher log-likelihood than
    the Cov-shaped kernel, whose long axis follows the kept draws' overall spread across the
    crescent. The mean per-draw difference is compared with 4 of its standard errors."""
    from nprefgen.sbi.abc import cv_bandwidth

    g = rng.standard_normal((300, 2))
    h_iso = cv_bandwidth(g, isotropic=True)
    np.testing.assert_allclose(h_iso, h_iso[0, 0] * np.eye(2), rtol=0, atol=0)
    ratio = np.sqrt(h_iso[0, 0] / np.mean(np.diag(cv_bandwidth(g))))
    assert 0.5 < ratio < 2.0, ratio

    def kde_log_lik(h, centres, points):
        chol_inv = np.linalg.inv(np.linalg.cholesky(h))
        d = (points[:, None, :] - centres[None, :, :]) @ chol_inv.T
        a = -0.5 * np.sum(d * d, axis=2)
        m = a.max(axis=1, keepdims=True)
        return m[:, 0] + np.log(np.mean(np.exp(a - m), axis=1)) - np.log(np.linalg.det(h)) / 2

    task = two_moons()
    sims = simulate_from_prior(task.prior, task.simulator, 100_000, rng=rng)
    _, x_obs = task.observations(5, rng=rng)
    diffs = []
    for x in x_obs:
        kept = rejection_abc(x, sims.theta, sims.x, n_keep=100, scale=None)
        ref = task.reference_posterior(x, 1000, rng=rng)
        diffs.append(kde_log_lik(cv_bandwidth(kept.theta, isotropic=True), kept.theta, ref)
                     - kde_log_lik(cv_bandwidth(kept.theta), kept.theta, ref))
    diff = np.concatenate(diffs)
    assert diff.mean() > 4 * diff.std() / np.sqrt(diff.size), (diff.mean(), diff.std())
    draws = ABCPosterior(kept, task.prior, bandwidth="cv_iso").sample(500, rng=rng)
    assert draws.shape == (500, 2) and np.all(task.prior.in_support(draws))
