"""Iterated SIR jumps between modes and the convergence check (derivations/sbi.md, MCMC.10-MCMC.13).

(MCMC.10) (MCMC.11) (MCMC.12) (MCMC.13)

Targets: 2-D mixtures of 2 and of 4 mirror-image Gaussian modes (sd 0.1, centres at distance
>= 2 apart) with unequal, known weights, under a flat box prior. The local samplers never cross
between such modes, so the fraction of draws per mode checks the jumps directly. Tolerances: the
fraction of draws in mode k is a mean of an indicator whose effective sample size ESS_k is
estimated from the chains (MCMC.9), so it lies within 4 sqrt(w_k (1 - w_k) / ESS_k) of w_k
(4 standard errors, Bonferroni over the <= 4 modes at ~1e-4 each); for the i-SIR kernel alone the
chains are independent and the count is binomial.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from nprefgen.samplers import (
    ISIRMove, MCMCConvergenceWarning, effective_sample_size, isir_update, rhat_bar,
    slice_sampling, split_rhat,
)
from nprefgen.samplers.mcmc import CountingLogProb
from nprefgen.sbi import BoxUniform, Gaussian, MCMCPosterior

SD = 0.1


def mixture(n_modes):
    if n_modes == 2:
        centres, weights = np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([0.3, 0.7])
    else:
        centres = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
        weights = np.array([0.1, 0.2, 0.3, 0.4])

    def log_p(theta, *_):
        d2 = ((theta[:, None, :] - centres[None]) ** 2).sum(axis=2) / SD ** 2
        a = np.log(weights) - 0.5 * d2 - np.log(2 * np.pi * SD ** 2)
        top = a.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))[:, 0]

    def label(theta):
        return np.argmin(((theta[..., None, :] - centres) ** 2).sum(axis=-1), axis=-1)

    return log_p, weights, label


def isir_chains(proposal, n_modes, n_chains=2000, n_iter=15, seed=0):
    """Run the i-SIR kernel alone from one point; -> final states (n_chains, 2)."""
    log_p, _, _ = mixture(n_modes)
    rng = np.random.default_rng(seed)
    lp_fn = CountingLogProb(log_p, 2)
    x = np.tile([1.0, 1.0] if n_modes == 4 else [1.0, 0.0], (n_chains, 1))
    lp = lp_fn(x)
    for _ in range(n_iter):
        x, lp, _ = isir_update(lp_fn, x, lp, proposal, 30, rng=rng)
    return x


def test_isir_alone_targets_the_mixture():
    """(MCMC.10) (MCMC.11) independent chains under the kernel alone, from one mode, with a
    Gaussian proposal whose density differs between the modes: the mode counts are binomial
    around the weights, and the within-mode spread is the modes' sd."""
    _, weights, label = mixture(4)
    q = Gaussian(np.array([0.5, 0.5]), np.array([1.5, 1.5]))
    x = isir_chains(q, 4)
    frac = np.bincount(label(x), minlength=4) / x.shape[0]
    tol = 4 * np.sqrt(weights * (1 - weights) / x.shape[0])
    assert np.all(np.abs(frac - weights) < tol), (frac, weights, tol)
    resid = x - np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]])[label(x)]
    # sample sd of 2 n normal values: relative standard error 1 / sqrt(2 * 2 n)
    assert abs(resid.std() / SD - 1) < 4 / np.sqrt(4 * x.shape[0])


def test_a_planted_weight_bug_is_caught():
    """The same check fails when the weights forget the proposal density (w = p~ instead of
    p~ / q): the modes nearer q's centre get too much mass."""
    _, weights, label = mixture(4)
    q = Gaussian(np.array([0.5, 0.5]), np.array([1.5, 1.5]))

    class ForgetsQ:
        def sample(self, n, *, rng=None):
            return q.sample(n, rng=rng)

        def log_prob(self, theta):
            return np.zeros(len(theta))

    x = isir_chains(ForgetsQ(), 4)
    frac = np.bincount(label(x), minlength=4) / x.shape[0]
    tol = 4 * np.sqrt(weights * (1 - weights) / x.shape[0])
    assert np.any(np.abs(frac - weights) > tol), (frac, weights)


def indicator_tolerance(groups, label, weights):
    """4 standard errors of each mode's fraction, from the ESS of its indicator (MCMC.9)."""
    lab = label(groups)                                             # (chains, n)
    ess = np.array([effective_sample_size((lab == k).astype(float))[0]
                    for k in range(len(weights))])
    return 4 * np.sqrt(weights * (1 - weights) / ess), ess


@pytest.mark.parametrize("n_modes", [2, 4])
def test_mode_fractions_match_the_known_weights(n_modes):
    """(MCMC.12) MCMCPosterior's defaults (SIR start, slice sampling + a jump per sweep): the
    fraction of draws per mode matches the known weights within the ESS-derived tolerance, and
    the run passes its own convergence check."""
    log_p, weights, label = mixture(n_modes)
    post = MCMCPosterior(BoxUniform([-3.0, -3.0], [3.0, 3.0]), log_p, 1, n_warmup=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MCMCConvergenceWarning)
        draws = post.sample(4000, np.zeros(1), rng=1)
    frac = np.bincount(label(draws), minlength=len(weights)) / draws.shape[0]
    tol, ess = indicator_tolerance(post.mcmc_result.samples, label, weights)
    assert np.all(ess > 200), ess                                  # the tolerance means something
    assert np.all(np.abs(frac - weights) < tol), (frac, weights, tol)
    d = post.diagnostics_
    assert d["ok"].all() and d["rhat_max"][0] < d["rhat_bar"] and np.all(d["jump_rate"] > 0.1)


def test_rwm_and_hmc_take_the_jump_too():
    """The move is the samplers' (``jump=``), not the posterior's: with it RWM and HMC balance
    the 2 modes, and ``extra["jump_rate"]`` says how often it moved."""
    log_p, weights, label = mixture(2)
    post = MCMCPosterior(Gaussian(np.zeros(2), np.full(2, 4.0)), log_p, 1, method="rwm",
                         n_warmup=100)
    draws = post.sample(4000, np.zeros(1), rng=2)
    frac = np.bincount(label(draws), minlength=2) / draws.shape[0]
    tol, _ = indicator_tolerance(post.mcmc_result.samples, label, weights)
    assert np.all(np.abs(frac - weights) < tol), (frac, tol)
    assert 0 < np.mean(post.mcmc_result.extra["jump_rate"]) < 1


def test_without_jumps_the_chains_stay_stuck_and_the_posterior_says_so():
    """(MCMC.13) the old behaviour (no jumps): chains stay in their starting modes, R-hat is far
    above its bar, and an MCMCConvergenceWarning gives the numbers and what to do."""
    log_p, _, label = mixture(4)
    post = MCMCPosterior(BoxUniform([-3.0, -3.0], [3.0, 3.0]), log_p, 1, jump_every=0,
                         n_warmup=50)
    with pytest.warns(MCMCConvergenceWarning, match=r"R-hat up to .*jump_every"):
        post.sample(2000, np.zeros(1), rng=3)
    lab = label(post.mcmc_result.samples)
    assert np.all(lab == lab[:, :1])                       # no chain ever changed mode
    d = post.diagnostics_
    assert d["rhat_max"][0] > 2 and not d["ok"][0] and list(d["failed"]) == [0]
    assert post.convergence()["rhat"].shape == (1, 2)


def test_batched_observations_are_checked_one_by_one():
    """Each observation's chains are a group of their own; the warning names the failing ones."""
    def log_lik(theta, x):                       # a narrow Gaussian around x, or two far modes
        x = x[:, 0, :]
        one = -0.5 * ((theta - x) ** 2).sum(axis=1) / SD ** 2
        two = -0.5 * ((np.abs(theta) - np.abs(x)) ** 2).sum(axis=1) / SD ** 2
        return np.where(x[:, 0] > 0, one, two)
    post = MCMCPosterior(BoxUniform([-3.0, -3.0], [3.0, 3.0]), log_lik, 2, jump_every=0,
                         n_warmup=50)
    xs = np.array([[1.0, 1.0], [-1.5, 1.5], [0.5, 0.5]])
    with pytest.warns(MCMCConvergenceWarning, match=r"1 of 3 observations .*indices \[1\]"):
        post.sample_batched(1000, xs, rng=4)
    assert post.diagnostics_["ok"].tolist() == [True, False, True]


def test_rhat_bar_holds_for_independent_draws():
    """(MCMC.13) for independent Gaussian draws the split R-hat exceeds the 99 % bar in 1 % of
    runs (the F distribution is exact there): checked on 4000 short runs within 4 binomial sd."""
    rng = np.random.default_rng(5)
    m, n, runs = 4, 8, 4000
    bar = rhat_bar(m, n)
    assert bar > 1.05                                      # short: the fluctuation sets the bar
    r = np.array([split_rhat(rng.standard_normal((m, n)))[0] for _ in range(runs)])
    rate = np.mean(r >= bar)
    assert abs(rate - 0.01) < 4 * np.sqrt(0.01 * 0.99 / runs), rate
    assert rhat_bar(20, 1000) == 1.05                      # long runs: rstan's bar


def test_proposals_go_through_the_target_in_blocks(monkeypatch):
    """Many chains x proposals are evaluated in blocks of at most CHUNK rows, with the same
    result as one call."""
    import nprefgen.samplers.isir as isir

    log_p, _, _ = mixture(2)
    sizes = []

    def counted(theta, chains=None):
        sizes.append(len(theta))
        return log_p(theta)
    x = np.tile([1.0, 0.0], (50, 1))
    prior = BoxUniform([-3.0, -3.0], [3.0, 3.0])
    fn = CountingLogProb(counted, 2)
    one = isir_update(fn, x, fn(x), prior, 40, rng=7)
    monkeypatch.setattr(isir, "CHUNK", 300)
    sizes.clear()
    blocks = isir_update(fn, x, fn(x), prior, 40, rng=7)
    assert max(sizes[1:]) == 300 and sum(sizes[1:]) == 2000
    for a, b in zip(one, blocks):
        np.testing.assert_array_equal(a, b)


def test_jump_counts_and_start():
    """``start`` delays the first move; ``extra["jump_moves"]`` counts kept-phase moves."""
    log_p, _, _ = mixture(2)
    jump = ISIRMove(BoxUniform([-3.0, -3.0], [3.0, 3.0]), n_proposals=10, every=2, start=6)
    assert [t for t in range(12) if jump.due(t)] == [7, 9, 11]
    res = slice_sampling(log_p, np.tile([1.0, 0.0], (4, 1)), 10, rng=0, n_warmup=6, jump=jump)
    assert res.extra["jump_moves"] == 5 and res.extra["jump_rate"].shape == (4,)
