"""The prior protocol (nprefgen.sbi.priors, derivations/README.md) and the mass a posterior
estimate leaks outside the prior, per observation (SBI.12)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from nprefgen.sbi import (
    NLE, NPE, NPSE, ABCPosterior, BoxUniform, DirectPosterior, MCMCPosterior, rejection_abc,
    simulate_from_prior,
)
from nprefgen.sbi.diagnostics.sbc import run_sbc
from nprefgen.sbi.posterior import LeakageWarning
from nprefgen.sbi.priors import PriorProtocol, check_prior, prior_scale


class UniformSquare:
    """A prior as a user writes it: no nprefgen base class, no std, no grad_log_prob, no
    check_in_support; only the required methods."""

    dim = 2

    def sample(self, n, *, rng=None):
        return np.random.default_rng(rng).uniform(-1.0, 1.0, size=(n, 2))

    def in_support(self, theta):
        return np.all(np.abs(np.asarray(theta)) <= 1.0, axis=1)

    def log_prob(self, theta):
        return np.where(self.in_support(theta), -np.log(4.0), -np.inf)


class NoLogProb:
    dim = 2

    def sample(self, n, *, rng=None):
        return np.zeros((n, 2))


def simulator(theta, rng):
    return theta + 0.1 * rng.standard_normal(theta.shape)


def test_a_foreign_prior_works_everywhere():
    prior = UniformSquare()
    assert isinstance(prior, PriorProtocol) and check_prior(prior) is prior
    np.testing.assert_allclose(prior_scale(prior), 2 / np.sqrt(12), rtol=0.1)   # from draws
    sims = simulate_from_prior(prior, simulator, 200, rng=0)
    npe = NPE(prior, flow="maf", n_transforms=1, hidden=8).train(sims.theta, sims.x, rng=0,
                                                                 max_epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeakageWarning)
        assert npe.sample(5, np.zeros(2), rng=0).shape == (5, 2)
    nle = NLE(prior, flow="maf", n_transforms=1, hidden=8, n_chains=2, n_warmup=4)
    post = nle.train(sims.theta, sims.x, rng=0, max_epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                     # 2 chains x 4 draws: not checkable
        draws = post.sample(8, np.zeros(2), rng=0)
    assert np.all(prior.in_support(draws))
    res = rejection_abc(np.zeros(2), sims.theta, sims.x, n_keep=20)
    assert ABCPosterior(res, prior).sample(5, rng=0).shape == (5, 2)


@pytest.mark.parametrize("make", [
    lambda p: NPE(p), lambda p: NLE(p), lambda p: NPSE(p),
    lambda p: MCMCPosterior(p, lambda t, x: np.zeros(len(t)), 2),
    lambda p: simulate_from_prior(p, simulator, 5, rng=0),
    lambda p: run_sbc(lambda n, x, rng=None: np.zeros((len(x), n, 2)), p, simulator, 3, 2, rng=0),
])
def test_a_prior_without_the_protocol_is_refused_naming_prior(make):
    with pytest.raises(ValueError, match=r"^prior: NoLogProb lacks \['log_prob', 'in_support'\]"):
        make(NoLogProb())


def test_hmc_needs_the_prior_gradient():
    with pytest.raises(ValueError, match=r"^prior: UniformSquare lacks \['grad_log_prob'\]"):
        MCMCPosterior(UniformSquare(), lambda t, x: np.zeros(len(t)), 2, method="hmc",
                      grad_log_likelihood=lambda t, x: np.zeros_like(t))


def test_protocol_shapes_are_checked():
    class WrongShape(UniformSquare):
        def log_prob(self, theta):
            return np.zeros((len(theta), 1))

    class PositionalRngOnly(UniformSquare):
        def sample(self, n, seed):
            return super().sample(n)

    with pytest.raises(ValueError, match=r"^prior: expected prior.log_prob"):
        check_prior(WrongShape())
    with pytest.raises(ValueError, match=r"^prior: expected prior.sample\(n, \*, rng\)"):
        check_prior(PositionalRngOnly())


class ShiftedGaussianFlow:
    """A stand-in for a conditional flow: theta | x ~ N(x, 0.5^2) in 1-D, so the mass inside
    the prior U(-1, 1) is Z(x) = Phi((1 - x) / 0.5) - Phi((-1 - x) / 0.5) exactly (SBI.12)."""

    dim, context_dim, sd = 1, 1, 0.5

    def sample(self, n, context, *, rng=None):
        return context + self.sd * np.random.default_rng(rng).standard_normal((n, 1))

    def log_prob(self, theta, context):
        return stats.norm.logpdf(theta[:, 0], context[:, 0], self.sd)


def test_leakage_is_reported_per_observation():
    """(SBI.12) the acceptance rate of each observation estimates its Z(x) (binomial, 4 sd), the
    pooled rate is kept as before, and the warning names the observations below 0.9."""
    post = DirectPosterior(ShiftedGaussianFlow(), BoxUniform([-1.0], [1.0]))
    xs = np.array([[0.0], [0.8], [-1.5], [0.1]])
    z = stats.norm.cdf((1 - xs[:, 0]) / 0.5) - stats.norm.cdf((-1 - xs[:, 0]) / 0.5)
    assert np.all((z > 0.9) == [True, False, False, True])
    with pytest.warns(LeakageWarning, match=r"2 of 4 observations \(indices \[1, 2\]\)"):
        draws = post.sample_batched(4000, xs, rng=0)
    assert np.all(np.abs(draws) <= 1.0)
    rates = post.acceptance_rates_
    drawn = 1.2 * 4000 / 1.0                   # at least this many draws of q per observation
    assert np.all(np.abs(rates - z) < 4 * np.sqrt(z * (1 - z) / drawn)), (rates, z)
    assert post.diagnostics_["leaking"].tolist() == [1, 2]
    assert min(rates) <= post.acceptance_rate <= max(rates)


def test_no_warning_without_leakage_and_the_threshold_is_a_setting():
    post = DirectPosterior(ShiftedGaussianFlow(), BoxUniform([-1.0], [1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeakageWarning)
        post.sample(2000, np.array([0.0]), rng=1)                   # Z = 0.954 > 0.9
        DirectPosterior(ShiftedGaussianFlow(), BoxUniform([-1.0], [1.0]),
                        leakage_threshold=0.5).sample(2000, np.array([0.8]), rng=1)   # 0.655
    with pytest.raises(ValueError, match="^leakage_threshold"):
        DirectPosterior(ShiftedGaussianFlow(), BoxUniform([-1.0], [1.0]), leakage_threshold=2)


def test_a_planted_pooling_bug_would_be_caught():
    """Pooled over the observations the rate is ~0.73 for every one: the per-observation
    check above would fail on it (the 4-sd tolerance is ~0.01)."""
    z = stats.norm.cdf((1 - np.array([0.0, 0.8, -1.5, 0.1])) / 0.5) \
        - stats.norm.cdf((-1 - np.array([0.0, 0.8, -1.5, 0.1])) / 0.5)
    pooled = np.full(4, z.mean())
    assert np.any(np.abs(pooled - z) > 4 * np.sqrt(z * (1 - z) / 4800))
