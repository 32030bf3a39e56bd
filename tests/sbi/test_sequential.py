"""Sequential rounds: TSNPE and SNLE (derivations/sbi.md, SBI.26-SBI.28).

The rounds run on 2-D gaussian_linear with a small noise variance (0.001): the posterior's sd
(0.03) is a tenth of the prior's (0.32), so a truncation region that shrinks towards it has a
prior mass far below one, which a broken truncation (a threshold on the wrong tail, a proposal
that ignores it) would not produce.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from nprefgen.samplers import MCMCConvergenceWarning
from nprefgen.sbi import BoxUniform, gaussian_linear
from nprefgen.sbi.sequential import (
    SNLE, TSNPE, hpd_threshold, split_budget, truncated_prior_sample,
)

SMALL = dict(flow="nsf", n_transforms=2, hidden=16)
FIT = dict(max_epochs=150, lr=3e-3, patience=15)
# the 99 % HPD region: with epsilon 1e-4 and 2000 draws the threshold is the lowest draw's log q,
# and at 200-400 simulations the estimate's far tails stretch the region into long bands
TRUNC = dict(n_support=2000, epsilon=1e-2)


def _task():
    task = gaussian_linear(dim=2, noise_var=0.001)
    _, x_o = task.observations(1, rng=3)
    return task, x_o[0]


def test_split_budget():
    assert split_budget(1003, 4) == [253, 250, 250, 250]
    assert split_budget(10, 1) == [10]
    with pytest.raises(ValueError, match="rounds"):
        split_budget(100, 0)
    with pytest.raises(ValueError, match="num_simulations"):
        split_budget(39, 4)


def test_hpd_threshold_keeps_one_minus_epsilon():
    """(SBI.26) for q = N(0, I_2): the super-level set {log q >= tau} holds 1 - eps of fresh
    draws (binomial sd), and tau matches the analytic chi^2 quantile's level."""
    rng = np.random.default_rng(0)
    q = stats.multivariate_normal(np.zeros(2), np.eye(2))
    eps, n = 0.05, 200_000
    tau = hpd_threshold(q.logpdf(rng.standard_normal((n, 2))), eps)
    fresh = q.logpdf(rng.standard_normal((n, 2))) >= tau
    assert abs(fresh.mean() - (1 - eps)) < 4 * np.sqrt(eps * (1 - eps) / n) * np.sqrt(2)
    exact = -np.log(2 * np.pi) - 0.5 * stats.chi2(2).ppf(1 - eps)
    assert abs(tau - exact) < 0.02                    # the quantile's own Monte Carlo error
    with pytest.raises(ValueError, match="epsilon"):
        hpd_threshold(np.zeros(3), 0.0)


def test_truncated_prior_sample_acceptance_is_the_region_mass():
    """(SBI.26) box [-1, 1]^2, region = disc of radius 0.5: prior mass pi/16; every kept draw is
    in the region and uniform there (mean ~ 0)."""
    prior = BoxUniform(-np.ones(2), np.ones(2))
    theta, acc, drawn = truncated_prior_sample(prior, lambda t: -np.sum(t * t, axis=1), -0.25,
                                               5000, rng=0)
    assert theta.shape == (5000, 2) and np.all(np.sum(theta ** 2, axis=1) <= 0.25)
    p = np.pi / 16
    assert abs(acc - p) < 4 * np.sqrt(p * (1 - p) / drawn)
    assert np.all(np.abs(theta.mean(0)) < 4 * 0.25 / np.sqrt(5000))
    with pytest.raises(RuntimeError, match="prior mass"):
        truncated_prior_sample(prior, lambda t: -np.sum(t * t, axis=1), 0.0, 10, rng=0,
                               max_draws=5000)


@pytest.fixture(scope="module")
def tsnpe():
    task, x_o = _task()
    with threadpool_limits(limits=1, user_api="blas"):
        seq = TSNPE(task.prior, task.simulator, **TRUNC, **SMALL)
        seq.run(x_o, num_simulations=600, rounds=3, rng=0, **FIT)
    return task, x_o, seq


@pytest.mark.slow          # trains 3 rounds (~2 s)
def test_tsnpe_rounds_shrink_the_proposal(tsnpe):
    """(SBI.26) (SBI.27) after round 1 the truncation region's prior mass falls far below one,
    and the proposal's spread with it; each round's record is complete. The exact 1 - 1e-4 HPD
    region has prior mass 5e-4 (the posterior, sd 0.03, sits 2.6 prior sds from the prior's
    mean); no truncation, or a threshold on the wrong tail, keeps it near 1. (From round to round
    it need not fall: each region comes from a new estimate, whose tails vary.)"""
    task, x_o, seq = tsnpe
    rounds = seq.history_["rounds"]
    acc = [r["acceptance"] for r in rounds]
    assert acc[0] == 1.0 and max(acc[1:]) < 0.3, acc
    assert np.max(rounds[-1]["proposal_std"]) < 0.5 * np.min(task.prior.std)
    for key in ("proposal", "n_simulations", "n_total", "epochs", "seconds", "cpu_train",
                "cpu_propose", "start_val_loss", "best_val_loss"):
        assert all(key in r for r in rounds), key
    assert all("threshold" in r and "prior_draws" in r for r in rounds[1:])
    draws = seq.posterior_.sample(500, x_o, rng=1)
    assert draws.shape == (500, 2)


@pytest.mark.slow          # trains 3 rounds (~2 s)
def test_simulation_counts_add_up(tsnpe):
    _, _, seq = tsnpe
    rounds = seq.history_["rounds"]
    assert [r["n_simulations"] for r in rounds] == [200, 200, 200]
    assert seq.history_["num_simulations"] == 600 == seq.theta_.shape[0] == seq.x_.shape[0]
    assert [r["n_total"] for r in rounds] == [200, 400, 600]


@pytest.mark.slow          # trains 3 rounds (~2 s)
def test_tsnpe_is_deterministic_per_seed(tsnpe):
    task, x_o, seq = tsnpe
    with threadpool_limits(limits=1, user_api="blas"):
        again = TSNPE(task.prior, task.simulator, **TRUNC, **SMALL)
        again.run(x_o, num_simulations=600, rounds=3, rng=np.random.default_rng(0), **FIT)
    np.testing.assert_array_equal(again.theta_, seq.theta_)
    assert [r["threshold"] for r in again.history_["rounds"][1:]] == \
        [r["threshold"] for r in seq.history_["rounds"][1:]]


@pytest.mark.slow          # trains 3 rounds (~2 s)
def test_snle_rounds_and_counts():
    """(SBI.28) rounds draw from the MCMC posterior: the proposal shrinks, R-hat and ESS are
    recorded, dropped (NaN) simulations are counted and the counts add up."""
    task, x_o = _task()

    def flaky(theta, rng):              # every simulation with theta_1 > 0.5 fails
        x = task.simulator(theta, rng)
        x[theta[:, 0] > 0.5] = np.nan
        return x

    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        seq = SNLE(task.prior, flaky, n_chains=4, n_warmup=20, **SMALL)
        post = seq.run(x_o, num_simulations=600, rounds=3, rng=0, **FIT)
    rounds = seq.history_["rounds"]
    # the proposals' convergence checks are recorded per round and summarised in one warning
    mcmc = [x for x in w if issubclass(x.category, MCMCConvergenceWarning)]
    failed = [r["round"] for r in rounds[1:] if not r["mcmc_ok"]]
    assert len(mcmc) == (1 if failed else 0)
    if failed:
        assert f"rounds {failed}" in str(mcmc[0].message)
    assert [r["n_simulations"] for r in rounds] == [200, 200, 200]
    assert all(r["n_valid"] + r["n_dropped"] == r["n_simulations"] for r in rounds)
    assert rounds[0]["n_dropped"] > 0                 # P(theta_1 > 0.5) = 0.057 under the prior
    assert rounds[-1]["n_total"] == sum(r["n_valid"] for r in rounds) == seq.theta_.shape[0]
    assert all("rhat" in r and "ess" in r and "jump_rate" in r and "mcmc_ok" in r
               for r in rounds[1:])
    assert np.min(rounds[-1]["proposal_std"]) < 0.5 * np.min(task.prior.std)
    assert post.sample(40, x_o, rng=1).shape == (40, 2)


def test_bad_inputs_name_the_argument():
    task, x_o = _task()
    seq = TSNPE(task.prior, task.simulator, **SMALL)
    with pytest.raises(ValueError, match="rounds"):
        seq.run(x_o, num_simulations=100, rounds=0, rng=0)
    with pytest.raises(ValueError, match="num_simulations"):
        seq.run(x_o, num_simulations=25, rounds=3, rng=0)
    with pytest.raises(ValueError, match="x_o"):
        seq.run(np.zeros(3), num_simulations=30, rounds=1, rng=0, max_epochs=1)
    with pytest.raises(ValueError, match="x_o"):
        seq.run(np.full(2, np.nan), num_simulations=30, rounds=1, rng=0)
    with pytest.raises(ValueError, match="simulator"):
        TSNPE(task.prior, "not a simulator")
    with pytest.raises(ValueError, match="epsilon"):
        TSNPE(task.prior, task.simulator, epsilon=1.5)
    with pytest.raises(ValueError, match="flow"):
        SNLE(task.prior, task.simulator, flow="nope")
    with pytest.raises(ValueError, match="rng"):
        seq.run(x_o, num_simulations=30, rounds=1, rng="42")


def test_snle_summarises_failed_proposal_checks_in_one_warning():
    """30 simulations per round from 20 chains: 2 draws per chain, too few for split R-hat, so
    every proposal fails its check (MCMC.13); the run warns once, naming rounds 2 and 3, and
    the rounds record it."""
    task, x_o = _task()
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        seq = SNLE(task.prior, task.simulator, n_chains=20, n_warmup=5, **SMALL)
        seq.run(x_o, num_simulations=90, rounds=3, rng=0, max_epochs=2)
    mcmc = [x for x in w if issubclass(x.category, MCMCConvergenceWarning)]
    assert len(mcmc) == 1 and "rounds [2, 3]" in str(mcmc[0].message), [str(x.message) for x in w]
    assert [r.get("mcmc_ok") for r in seq.history_["rounds"]] == [None, False, False]
