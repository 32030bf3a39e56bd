"""MCMC samplers recover known densities (derivations/sbi.md, MCMC.1-MCMC.9).

Tolerances: MCMC draws are correlated, so every statistical bound uses the effective sample size
(MCMC.9) in place of the number of draws: a mean is within 4.5 sd / sqrt(ESS); a KS distance is
below the 0.1 % critical value for n_eff draws against the exact distribution.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nprefgen.samplers import (
    effective_sample_size, hmc, random_walk_metropolis, slice_sampling, split_rhat,
)
from nprefgen.samplers.hmc import hamiltonian, leapfrog
from nprefgen.samplers.metropolis import metropolis_accept

MU = np.array([1.0, -2.0])
COV = np.array([[1.0, 0.8], [0.8, 2.0]])
PREC = np.linalg.inv(COV)
B = 0.5   # banana curvature


def gauss_lp(x):
    r = x - MU
    return -0.5 * np.einsum("ni,ij,nj->n", r, PREC, r)


def gauss_grad(x):
    return -(x - MU) @ PREC


def banana_lp(x):
    """x1 ~ N(0, 1), x2 | x1 ~ N(B (x1^2 - 1), 1)."""
    return -0.5 * x[:, 0] ** 2 - 0.5 * (x[:, 1] - B * (x[:, 0] ** 2 - 1.0)) ** 2


def banana_grad(x):
    r = x[:, 1] - B * (x[:, 0] ** 2 - 1.0)
    return np.stack([-x[:, 0] + 2.0 * B * r * x[:, 0], -r], axis=1)


def banana_exact(n, rng):
    x1 = rng.standard_normal(n)
    return np.stack([x1, B * (x1 ** 2 - 1.0) + rng.standard_normal(n)], axis=1)


def ks_critical(n_eff, m=None, alpha_coef=1.95):
    """0.1 % KS critical distance: one-sample, or two-sample against m exact draws."""
    n_eff = float(n_eff)
    return alpha_coef * (np.sqrt(1.0 / n_eff) if m is None else np.sqrt(1.0 / n_eff + 1.0 / m))


def run(name, lp, grad, x0, rng, n):
    if name == "rwm":
        return random_walk_metropolis(lp, x0, 4 * n, rng=rng, n_warmup=400)
    if name == "slice":
        return slice_sampling(lp, x0, n, rng=rng, n_warmup=60)
    return hmc(lp, grad, x0, n, rng=rng, n_warmup=150)


def gaussian_ok(res):
    """Mean, covariance and KS per marginal against the exact normal, at ESS-based tolerances."""
    s, ess = res.flat(), res.ess()
    sd = np.sqrt(np.diag(COV))
    assert np.all(np.abs(s.mean(0) - MU) < 4.5 * sd / np.sqrt(ess)), (s.mean(0), ess)
    # variance of a sample variance of a normal: 2 sigma^4 / n
    var = s.var(0)
    assert np.all(np.abs(var - np.diag(COV)) < 4.5 * np.sqrt(2.0 / ess) * np.diag(COV)), var
    corr = np.corrcoef(s.T)[0, 1]
    assert abs(corr - COV[0, 1] / np.prod(sd)) < 4.5 * (1 - 0.32) / np.sqrt(ess.min())
    for k in range(2):
        d = stats.kstest(s[:, k], "norm", args=(MU[k], sd[k])).statistic
        assert d < ks_critical(ess[k]), (k, d, ess[k])


@pytest.mark.parametrize("name", ["rwm", "slice", "hmc"])
def test_recovers_a_correlated_gaussian(name):
    """(MCMC.1) (MCMC.3) (MCMC.6) each sampler's chains reproduce N(MU, COV)."""
    rng = np.random.default_rng(11)
    x0 = MU + rng.standard_normal((8, 2))
    res = run(name, gauss_lp, gauss_grad, x0, rng, 500)
    assert res.samples.shape[:2] == (8, 2000 if name == "rwm" else 500)
    assert np.all(res.rhat() < 1.05)
    gaussian_ok(res)
    # (MCMC.2) warm-up tuned the step to the target acceptance rate
    target = {"rwm": 0.234, "hmc": 0.8}.get(name)
    if target is not None:
        assert abs(np.mean(res.acceptance) - target) < 0.08, res.acceptance


@pytest.mark.parametrize("name", ["rwm", "slice", "hmc"])
def test_recovers_a_banana(name):
    """(MCMC.4) (MCMC.7) the curved banana: moments and per-marginal two-sample KS against 20 000
    exact draws; Var x2 = 2 B^2 + 1 analytically."""
    rng = np.random.default_rng(12)
    x0 = rng.standard_normal((8, 2))
    res = run(name, banana_lp, banana_grad, x0, rng, 600)
    s, ess = res.flat(), res.ess()
    assert np.all(res.rhat() < 1.05)
    assert np.all(np.abs(s.mean(0)) < 4.5 * np.sqrt([1.0, 2 * B * B + 1]) / np.sqrt(ess))
    exact = banana_exact(20000, rng)
    for k in range(2):
        d = stats.ks_2samp(s[:, k], exact[:, k]).statistic
        assert d < ks_critical(ess[k], 20000), (k, d, ess[k])


def _accept_everything(lp, x0, n, rng):
    """A deliberately broken Metropolis: the acceptance test (MCMC.1) is skipped."""
    x = x0.copy()
    out = []
    for _ in range(n):
        x = x + 0.5 * rng.standard_normal(x.shape)
        out.append(x.copy())
    return np.stack(out, axis=1)


def test_the_checks_catch_a_broken_sampler():
    """Without the accept step (MCMC.1) the chains are a random walk: R-hat and KS both fail."""
    rng = np.random.default_rng(3)
    s = _accept_everything(gauss_lp, MU + rng.standard_normal((8, 2)), 2000, rng)
    assert np.max(split_rhat(s)) > 1.1
    ess = effective_sample_size(s)
    d = stats.kstest(s[:, :, 0].ravel(), "norm", args=(MU[0], 1.0)).statistic
    assert d > ks_critical(max(ess[0], 100.0))


def test_metropolis_accept_rule():
    """(MCMC.1) accept iff log u < log p(x') - log p(x); -inf proposals never accepted."""
    lp0 = np.array([0.0, 0.0, -1.0, -2.0])
    lp1 = np.array([1.0, -np.inf, -2.0, -1.0])
    log_u = np.log(np.array([0.99, 1e-300, 0.5, 0.999]))
    np.testing.assert_array_equal(metropolis_accept(lp0, lp1, log_u), [True, False, False, True])


def test_leapfrog_is_reversible_and_nearly_conserves_energy(rng):
    """(MCMC.5) (MCMC.6) flipping the momentum retraces the path exactly; the energy error of
    the leapfrog is O(eps^2): halving eps quarters it."""
    x = MU + rng.standard_normal((5, 2))
    p = rng.standard_normal((5, 2))
    inv_m = np.array([1.0, 0.5])
    eps = np.full(5, 0.05)
    x1, p1, g1 = leapfrog(gauss_grad, x, p, gauss_grad(x), eps, 20, inv_m)
    x2, p2, _ = leapfrog(gauss_grad, x1, -p1, g1, eps, 20, inv_m)
    np.testing.assert_allclose(x2, x, atol=1e-12)
    np.testing.assert_allclose(-p2, p, atol=1e-12)
    errs = []
    for e in (0.1, 0.05):
        xe, pe, _ = leapfrog(gauss_grad, x, p, gauss_grad(x), np.full(5, e), int(1.0 / e), inv_m)
        errs.append(np.abs(hamiltonian(gauss_lp(xe), pe, inv_m) - hamiltonian(gauss_lp(x), p, inv_m)))
    ratio = errs[0] / errs[1]
    assert np.all((ratio > 3.0) & (ratio < 5.5)), ratio


def test_rhat_flags_chains_in_different_places(rng):
    """(MCMC.8) iid chains give R-hat ~ 1; chains centred apart give R-hat >> 1; a trend inside
    each chain (caught by the split) too."""
    iid = rng.standard_normal((4, 1000, 2))
    assert np.all(np.abs(split_rhat(iid) - 1.0) < 0.01)
    apart = iid + np.arange(4)[:, None, None]
    assert np.all(split_rhat(apart) > 1.5)
    trend = iid + np.linspace(0, 3, 1000)[None, :, None]
    assert np.all(split_rhat(trend) > 1.2)


def test_ess_of_iid_and_ar1(rng):
    """(MCMC.9) iid: ESS ~ M N; AR(1) with coefficient phi: ESS ~ M N (1 - phi)/(1 + phi)."""
    m, n = 4, 5000
    iid = rng.standard_normal((m, n))
    assert abs(effective_sample_size(iid)[0] / (m * n) - 1.0) < 0.1
    phi = 0.8
    x = np.empty((m, n))
    x[:, 0] = rng.standard_normal(m) / np.sqrt(1 - phi ** 2)
    e = rng.standard_normal((m, n))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    expected = m * n * (1 - phi) / (1 + phi)
    assert abs(effective_sample_size(x)[0] / expected - 1.0) < 0.2


def test_bad_inputs_raise_naming_the_argument(rng):
    x0 = np.zeros((2, 2))
    with pytest.raises(ValueError, match="x0"):
        random_walk_metropolis(lambda x: np.where(x[:, 0] > 1, 0.0, -np.inf), x0, 10, rng=rng)
    with pytest.raises(ValueError, match="n_steps"):
        slice_sampling(gauss_lp, x0, 0, rng=rng)
    with pytest.raises(ValueError, match="log_prob"):
        slice_sampling(lambda x: np.zeros(3), x0, 5, rng=rng)
    with pytest.raises(ValueError, match="grad_log_prob"):
        hmc(gauss_lp, lambda x: np.zeros((1, 2)), x0, 5, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        hmc(gauss_lp, gauss_grad, x0, 5, rng="0")
    with pytest.raises(ValueError, match="x0"):
        hmc(gauss_lp, gauss_grad, np.zeros(2), 5, rng=rng)
    with pytest.raises(ValueError, match="width"):
        slice_sampling(gauss_lp, x0, 5, rng=rng, width=-1.0)


@pytest.mark.parametrize("name", ["rwm", "slice", "hmc"])
def test_one_target_per_chain(name):
    """With chain_index=True chain c samples N(c, 0.5^2): one batched run serves many
    posteriors (as NLE over many observations)."""
    rng = np.random.default_rng(21)
    centres = np.arange(6.0)

    def lp(x, chains):
        return -0.5 * np.sum((x - centres[chains, None]) ** 2, axis=1) / 0.25

    def grad(x, chains):
        return -(x - centres[chains, None]) / 0.25

    x0 = np.repeat(centres[:, None], 2, 1)
    if name == "rwm":
        res = random_walk_metropolis(lp, x0, 1200, rng=rng, n_warmup=300, chain_index=True)
    elif name == "slice":
        res = slice_sampling(lp, x0, 300, rng=rng, n_warmup=30, chain_index=True)
    else:
        res = hmc(lp, grad, x0, 300, rng=rng, n_warmup=100, chain_index=True)
    means = res.samples.mean(axis=1)                       # (chains, 2)
    ess = np.array([effective_sample_size(res.samples[c:c + 1]) for c in range(6)])
    assert np.all(np.abs(means - centres[:, None]) < 4.5 * 0.5 / np.sqrt(ess)), means
