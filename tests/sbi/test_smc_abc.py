"""SMC-ABC (derivations/sbi.md, ABC.1-ABC.3): population Monte Carlo ABC with adaptive tolerances.

On gaussian_linear the eps-posterior is known to second order: accepting when
|theta + e - x_o| <= eps (e ~ N(0, v I), 2-D Euclidean ball) convolves the likelihood with the
uniform disc of radius eps, whose per-coordinate variance is eps^2 / 4, so with the prior
N(0, v0 I) the population should have mean x_o v0 / (v0 + v_eff) and variance
v0 v_eff / (v0 + v_eff), v_eff = v + eps^2 / 4. Conditional on the previous population the
accepted particles are an importance sample with effective size ESS, so the weighted mean has
standard error sqrt(var / ESS) and the weighted variance relative standard error sqrt(2 / ESS);
the z-scores are pooled over observations and coordinates (mean of K values: sd 1 / sqrt K).
"""
from __future__ import annotations

import numpy as np
import pytest

import importlib
from nprefgen.sbi.abc import ABCPosterior, rejection_abc
from nprefgen.sbi.simulate import simulate_from_prior
from nprefgen.sbi.smc_abc import SMCABCResult, importance_weights, kernel_covariance, smc_abc
from nprefgen.sbi.tasks import gaussian_linear, gaussian_linear_posterior, two_moons

smc_module = importlib.import_module("nprefgen.sbi.smc_abc")   # nprefgen.sbi.smc_abc is the function

N_OBS = 12


def _pooled_z(n_obs=N_OBS):
    """Mean z-scores (over observations and the 2 coordinates) of the weighted population's mean
    and variance against the eps-posterior's (module docstring)."""
    task = gaussian_linear(dim=2, prior_var=1.0, noise_var=0.001)
    z_mean, z_var = [], []
    for seed in range(n_obs):
        _, x_o = task.observations(1, rng=np.random.default_rng(seed))
        res = smc_abc(x_o[0], task.prior, task.simulator, 20_000, rng=seed, n_particles=400,
                      scale=None)
        v_eff = 0.001 + res.eps ** 2 / 4.0
        mu, var = x_o[0] * 1.0 / (1.0 + v_eff), v_eff / (1.0 + v_eff)
        m = res.weights @ res.theta
        v = res.weights @ (res.theta - m) ** 2
        ess = 1.0 / np.sum(res.weights ** 2)
        z_mean.extend((m - mu) / np.sqrt(var / ess))
        z_var.extend((v / var - 1.0) / np.sqrt(2.0 / ess))
    return np.mean(z_mean), np.mean(z_var), len(z_mean)


def test_population_matches_the_eps_posterior():
    """(ABC.1-ABC.3) the weighted population has the eps-posterior's mean and variance: pooled
    z-scores within 4 standard errors (1 / sqrt K each)."""
    zm, zv, k = _pooled_z()
    assert abs(zm) < 4.0 / np.sqrt(k), zm
    assert abs(zv) < 4.0 / np.sqrt(k), zv


def test_unweighted_population_is_caught(monkeypatch):
    """A planted bug: dropping the importance weights (ABC.3) leaves the population distributed as
    the proposal mixture times the acceptance, narrower than the eps-posterior; the same check
    rejects it."""
    monkeypatch.setattr(smc_module, "importance_weights",
                        lambda theta, *a: np.full(theta.shape[0], 1.0 / theta.shape[0]))
    _, zv, k = _pooled_z()
    assert zv < -4.0 / np.sqrt(k), zv


def test_smc_beats_rejection_at_the_same_budget():
    """(ABC.1) (ABC.2) on an informative posterior (sd 0.03 against a prior sd 0.32 per
    coordinate), 5,000 simulations: SMC-ABC's mean and std errors (in posterior sds) are smaller than rejection
    ABC's keeping as many draws from the same budget, for every observation."""
    task = gaussian_linear(dim=2, noise_var=0.001)
    for seed in range(4):
        _, x_o = task.observations(1, rng=np.random.default_rng(seed))
        mu, var = gaussian_linear_posterior(x_o, task.prior.mean, 0.1, 0.001)
        sd = np.sqrt(var)
        res = smc_abc(x_o[0], task.prior, task.simulator, 5000, rng=seed, scale=None)
        assert res.n_simulations <= 5000
        m = res.weights @ res.theta
        s = np.sqrt(res.weights @ (res.theta - m) ** 2)
        sims = simulate_from_prior(task.prior, task.simulator, 5000, rng=seed)
        rej = rejection_abc(x_o[0], sims.theta, sims.x, n_keep=res.theta.shape[0], scale=None)

        def err(mean, std):
            return np.mean(np.abs(mean - mu)) / sd + np.mean(np.abs(std / sd - 1.0))

        assert err(m, s) < err(rej.theta.mean(0), rej.theta.std(0)), seed
        assert res.eps < rej.eps


def test_weights_tolerances_budget_and_determinism():
    task = two_moons()
    x_o = np.array([0.0, 0.1])
    res = smc_abc(x_o, task.prior, task.simulator, 3000, rng=3)
    assert isinstance(res, SMCABCResult)
    assert res.theta.shape == (100, 2) and res.weights.shape == (100,)
    np.testing.assert_allclose(res.weights.sum(), 1.0, rtol=0, atol=1e-12)
    assert np.all(res.weights >= 0)
    assert np.all(np.diff(res.eps_history) <= 0) and res.eps == res.eps_history[-1]   # (ABC.1)
    assert np.all(res.distances <= res.eps)
    assert res.n_simulations <= 3000 and np.all(task.prior.in_support(res.theta))
    again = smc_abc(x_o, task.prior, task.simulator, 3000, rng=3)
    np.testing.assert_array_equal(res.theta, again.theta)
    np.testing.assert_array_equal(res.weights, again.weights)
    other = smc_abc(x_o, task.prior, task.simulator, 3000, rng=4)
    assert not np.array_equal(res.theta, other.theta)
    draws = ABCPosterior(res, task.prior, bandwidth="cv").sample(500, rng=0)
    assert draws.shape == (500, 2) and np.all(task.prior.in_support(draws))


def test_importance_weights_against_a_direct_sum(rng):
    """(ABC.3) the weights equal p(theta_i) / sum_j w_j N(theta_i; theta_j, Sigma), normalised,
    written out term by term with the full Gaussian density."""
    task = gaussian_linear(dim=2)
    prev = rng.normal(size=(7, 2)) * 0.3
    w_prev = rng.uniform(size=7)
    w_prev /= w_prev.sum()
    cov = kernel_covariance(prev, w_prev)
    theta = rng.normal(size=(5, 2)) * 0.3
    inv = np.linalg.inv(cov)
    norm = 1.0 / (2 * np.pi * np.sqrt(np.linalg.det(cov)))
    direct = np.array([np.exp(task.prior.log_prob(t[None])[0]) / sum(
        wj * norm * np.exp(-0.5 * (t - tj) @ inv @ (t - tj)) for wj, tj in zip(w_prev, prev))
        for t in theta])
    np.testing.assert_allclose(importance_weights(theta, task.prior, prev, w_prev, cov),
                               direct / direct.sum(), rtol=1e-10)
    np.testing.assert_allclose(cov, 2.0 * np.cov(prev.T, aweights=w_prev) + 1e-12 * np.eye(2),
                               rtol=1e-12)


@pytest.mark.parametrize("kwargs, name", [
    ({"n_simulations": 0}, "n_simulations"),
    ({"n_particles": 1}, "n_particles"),
    ({"n_particles": 50, "n_initial": 10}, "n_initial"),
    ({"quantile": 1.0}, "quantile"),
    ({"distance": "cosine"}, "distance"),
    ({"scale": "std"}, "scale"),
    ({"summary": 3}, "summary"),
    ({"x_obs": np.zeros(3)}, "x_obs"),
    ({"x_obs": np.zeros((2, 2))}, "x_obs"),
    ({"prior": object()}, "prior"),
    ({"simulator": "nope"}, "simulator"),
    ({"rng": "42"}, "rng"),
])
def test_bad_inputs_are_named(kwargs, name):
    task = two_moons()
    args = {"x_obs": np.zeros(2), "prior": task.prior, "simulator": task.simulator,
            "n_simulations": 500} | kwargs
    with pytest.raises(ValueError, match=f"^{name}"):
        smc_abc(args.pop("x_obs"), args.pop("prior"), args.pop("simulator"),
                args.pop("n_simulations"), **args)
