"""The GRF cosmology toy and its Gaussian-likelihood analysis (derivations/sbi.md, SBI.6-SBI.7)."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.samplers import hmc, slice_sampling
from nprefgen.sbi.cosmology import (
    GaussianSummaryLikelihood, cosmology_grf, estimate_covariance,
)
from nprefgen.testing.gradcheck import check_vjp


@pytest.fixture(scope="module")
def task():
    return cosmology_grf(n_side=16, n_bins=5)


def test_mean_summary_matches_simulations(task):
    """(SBI.6) the simulated log spectra average to mu(theta) (SBI.7) within 4.5 standard
    errors plus the delta-method's residual bias (0.05)."""
    rng = np.random.default_rng(0)
    theta = np.array([[1.2, 2.2]])
    s = task.simulator(np.repeat(theta, 400, 0), rng)
    mu, _ = task.simulator.mean_summary(theta)
    se = s.std(0, ddof=1) / np.sqrt(400)
    assert np.all(np.abs(s.mean(0) - mu[0]) < 4.5 * se + 0.05), (s.mean(0), mu[0])
    assert s.shape == (400, 5)


def test_gradients_are_exact(task):
    """(SBI.7) the hand-written Jacobian of mu and the gradient of log L pass the dot-product
    test against central differences."""
    rng = np.random.default_rng(1)
    sim = task.simulator
    theta = np.array([[0.8, 1.5], [1.7, 2.6]])
    res = check_vjp(lambda t: sim.mean_summary(t)[0],
                    lambda v: np.einsum("mb,mbp->mp", v, sim.mean_summary(theta)[1]), theta, rng=rng)
    assert all(r.ok for r in res), [str(r) for r in res]
    like = GaussianSummaryLikelihood(sim.mean_summary, np.diag(np.full(5, 0.04)))
    s_obs = sim(np.array([[1.0, 2.0]]), rng)[0]
    res = check_vjp(lambda t: like.log_prob_and_grad(t, s_obs)[0],
                    lambda v: v[:, None] * like.log_prob_and_grad(theta, s_obs)[1], theta, rng=rng)
    assert all(r.ok for r in res), [str(r) for r in res]
    # the MCMCPosterior interface: values without the Jacobian, gradient separately
    rows = np.broadcast_to(s_obs, (2, 1, 5))
    np.testing.assert_allclose(like(theta, rows), like.log_prob_and_grad(theta, s_obs)[0], rtol=1e-12)
    np.testing.assert_allclose(like.grad(theta, rows), like.log_prob_and_grad(theta, s_obs)[1],
                               rtol=1e-12)


def test_gaussian_likelihood_mcmc_recovers_theta(task):
    """MCMC (slice and HMC) on the Gaussian likelihood of 4 iid fields: the posterior mean is
    within 4 posterior sd of the truth, and both samplers agree."""
    rng = np.random.default_rng(2)
    sim, prior = task.simulator, task.prior
    cov = estimate_covariance(sim, prior.mean, 100, rng=rng)
    like = GaussianSummaryLikelihood(sim.mean_summary, cov)
    truth = np.array([1.4, 1.8])
    s_obs = sim(np.repeat(truth[None], 4, 0), rng)

    def lp(t):
        out = prior.log_prob(t)
        ok = np.isfinite(out)
        if np.any(ok):
            out[ok] += like.log_prob_and_grad(t[ok], s_obs)[0]
        return out

    x0 = prior.sample(6, rng=rng)
    a = slice_sampling(lp, x0, 200, rng=rng, n_warmup=40).flat()
    # HMC on the box: the log-density is -inf outside, so leaving proposals are rejected
    b = hmc(lp, lambda t: like.log_prob_and_grad(t, s_obs)[1], x0, 200, rng=rng, n_warmup=80,
            step_size=0.05).flat()
    sd = a.std(0)
    assert np.all(np.abs(a.mean(0) - truth) < 4 * sd)
    assert np.all(np.abs(a.mean(0) - b.mean(0)) < 0.5 * sd)


def test_bad_inputs(task):
    with pytest.raises(ValueError, match="theta"):
        task.simulator(np.zeros((3, 3)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="cov"):
        GaussianSummaryLikelihood(task.simulator.mean_summary, -np.eye(5))
    with pytest.raises(ValueError, match="n_bins"):
        cosmology_grf(n_side=8, n_bins=9)
