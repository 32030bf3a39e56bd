"""Field-level inference on the GRF toy (derivations/fields.md, FIELD.4-FIELD.7).

The exact log-likelihood of a noisy Gaussian-field map (FIELD.5), evaluated on rfft2's half plane
with the Hermitian weights, must equal the dense-covariance Gaussian log-density
log N(d; 0, C) with C = U^H diag(lambda) U built independently from the full 2-D DFT matrix, on
tiny 4x4, 5x5 and 6x6 fields (odd N has no Nyquist column) to 1e-10; the simulator's maps must
have that covariance; the gradient (FIELD.6) passes the dot-product test; the MCMC reference
posterior agrees with a brute-force grid posterior.
"""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.data.grf import field_variance, lognormal_field, power_law
from nprefgen.sbi.cosmology import (
    BOX_SIZE, FieldSimulator, GaussianFieldLikelihood, exact_field_posterior, field_task,
)
from nprefgen.testing.gradcheck import gradcheck


def dense_covariance(n_side, theta, noise_sd):
    """C = U^H diag(lambda) U, U the unitary N^2-point 2-D DFT, lambda from P(k) = A k^-n
    (FIELD.4), built from explicit integer wave vectors (no rfft, no weights)."""
    a, slope = theta
    m = np.fft.fftfreq(n_side, d=1.0 / n_side)
    k = np.hypot(m[:, None], m[None, :]) * 2 * np.pi / BOX_SIZE
    lam = np.where(k > 0, n_side ** 2 * a * np.where(k > 0, k, 1.0) ** (-slope) / BOX_SIZE ** 2,
                   0.0) + noise_sd ** 2
    f1 = np.exp(-2j * np.pi * np.outer(np.arange(n_side), np.arange(n_side)) / n_side)
    U = np.kron(f1, f1) / n_side                                     # row-major (y, x) pixels
    C = U.conj().T @ np.diag(lam.ravel()) @ U
    assert np.abs(C.imag).max() < 1e-12
    return C.real


def dense_log_density(d, C):
    L = np.linalg.cholesky(C)
    z = np.linalg.solve(L, d.ravel())
    return -0.5 * z @ z - np.sum(np.log(np.diag(L))) - 0.5 * d.size * np.log(2 * np.pi)


@pytest.mark.parametrize("n_side", [4, 5, 6])
def test_exact_likelihood_equals_the_dense_gaussian_density(n_side, rng):
    """(FIELD.4) (FIELD.5) half-plane sum with Hermitian weights == dense log N(d; 0, C)."""
    like = GaussianFieldLikelihood(n_side, noise_sd=0.3)
    thetas = np.array([[1.2, 2.0], [0.6, 1.1], [1.9, 2.9]])
    sim = FieldSimulator(n_side, 0.3)
    d = sim(thetas[:1], rng)[0]
    lp = like.log_prob(thetas, d)
    dense = [dense_log_density(d, dense_covariance(n_side, t, 0.3)) for t in thetas]
    np.testing.assert_allclose(lp, dense, rtol=1e-10, atol=1e-10)


def test_a_planted_weighting_bug_is_caught(rng):
    """Weight 2 on the self-conjugate columns (forgetting the Hermitian symmetry) is off."""
    like = GaussianFieldLikelihood(6, noise_sd=0.3)
    d = FieldSimulator(6, 0.3)(np.array([[1.2, 2.0]]), rng)[0]
    like.weight = np.full_like(like.weight, 2.0)
    like.n_modes = like.weight.sum()
    dense = dense_log_density(d, dense_covariance(6, (1.2, 2.0), 0.3))
    assert abs(like.log_prob(np.array([[1.2, 2.0]]), d)[0] - dense) > 1.0


def test_simulated_maps_have_the_likelihood_covariance(rng):
    """(DATA.10) (FIELD.4) the sample covariance of 6000 simulated 4x4 maps matches C: each
    entry's error is below 5 standard errors sqrt((C_ii C_jj + C_ij^2) / n)."""
    n, theta = 6000, np.array([1.3, 1.7])
    maps = FieldSimulator(4, 0.2)(np.repeat(theta[None], n, axis=0), rng).reshape(n, -1)
    C = dense_covariance(4, theta, 0.2)
    S = maps.T @ maps / n                                            # known zero mean
    se = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C ** 2) / n)
    assert np.all(np.abs(S - C) < 5 * se), np.max(np.abs(S - C) / se)


def test_noise_free_likelihood_drops_the_mean_mode(rng):
    """sigma_n = 0: the k = 0 mode is not part of the density (every map has zero mean); the
    value equals the dense density on the zero-mean subspace (C restricted by a projector)."""
    like = GaussianFieldLikelihood(4, noise_sd=0.0)
    d = FieldSimulator(4, 0.0)(np.array([[1.0, 2.0]]), rng)[0]
    assert abs(d.mean()) < 1e-12
    C = dense_covariance(4, (1.0, 2.0), 0.0)
    lam, V = np.linalg.eigh(C)
    keep = lam > 1e-9                                                 # 15 of 16 directions
    z = V[:, keep].T @ d.ravel()
    dense = -0.5 * np.sum(z ** 2 / lam[keep]) - 0.5 * np.sum(np.log(lam[keep])) \
        - 0.5 * keep.sum() * np.log(2 * np.pi)
    np.testing.assert_allclose(like.log_prob(np.array([[1.0, 2.0]]), d), dense, rtol=1e-10)


def test_gradient_of_the_exact_likelihood(rng):
    """(FIELD.6) (NN.18) d log L / d(A, n) against central differences."""
    like = GaussianFieldLikelihood(8, noise_sd=0.1)
    d = FieldSimulator(8, 0.1)(np.array([[1.0, 2.0]]), rng)[0]
    for theta in ([1.0, 2.0], [0.7, 1.3], [1.8, 2.7]):
        t = np.array([theta])
        grad = like.log_prob_and_grad(t, d)[1]
        gradcheck(lambda tt: float(like.log_prob(tt, d)[0]), lambda tt: grad, t, rng=rng)
    x = np.stack([d.ravel(), d.ravel()])[None]                        # two iid copies
    np.testing.assert_allclose(like(np.array([[1.0, 2.0]]), x),
                               2 * like.log_prob(np.array([[1.0, 2.0]]), d), rtol=1e-12)
    np.testing.assert_allclose(like.grad(np.array([[1.0, 2.0]]), x),
                               2 * like.log_prob_and_grad(np.array([[1.0, 2.0]]), d)[1],
                               rtol=1e-12)


def test_lognormal_field_has_zero_mean_and_the_lognormal_variance(rng):
    """(FIELD.7) E delta = 0 and Var delta = exp(sigma_g^2) - 1, delta > -1."""
    p = power_law(0.5, 2.0)
    f = lognormal_field(16, p, rng=rng, box_size=BOX_SIZE, n_fields=400)
    var_g = field_variance(p, 16, BOX_SIZE)
    assert f.min() > -1
    # 400 fields x 256 correlated pixels: compare against 6 standard errors of the field means
    means = f.mean(axis=(1, 2))
    assert abs(means.mean()) < 6 * means.std() / np.sqrt(400)
    target = np.expm1(var_g)
    v = (f ** 2).mean(axis=(1, 2))
    assert abs(v.mean() - target) < 6 * v.std() / np.sqrt(400) , (v.mean(), target)


def test_field_simulators_and_bad_inputs(rng):
    task = field_task("lognormal", n_side=8)
    theta, x = task.observations(3, rng=rng)
    assert x.shape == (3, 8, 8) and task.reference_sampler is None
    assert task.simulator.summarize(x).shape == (3, 8 // 2)
    like = GaussianFieldLikelihood(8)
    with pytest.raises(ValueError, match="^maps: expected shape"):
        like.log_prob(theta, np.zeros((8, 9)))
    with pytest.raises(ValueError, match="^maps: expected 3 maps"):
        like.log_prob(theta, np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="^kind"):
        FieldSimulator(8, kind="poisson")
    with pytest.raises(ValueError, match="^x_obs: expected a map"):
        exact_field_posterior(task.prior, np.zeros((4, 4)), 10, n_side=8)


@pytest.mark.slow
def test_exact_posterior_mcmc_matches_the_grid_posterior(rng):
    """(FIELD.5) slice-sampled draws vs the posterior on a 300 x 300 grid over the prior box:
    means within 5 Monte Carlo standard errors (ESS from the chains) and sds within 15 %."""
    task = field_task("gaussian", n_side=8)
    theta0 = np.array([[1.2, 2.2]])
    d = task.simulator(theta0, rng)[0]
    draws, post = exact_field_posterior(task.prior, d, 2000, n_side=8, rng=rng)
    like = GaussianFieldLikelihood(8)
    a = np.linspace(0.5, 2.0, 300)
    n = np.linspace(1.0, 3.0, 300)
    grid = np.stack(np.meshgrid(a, n, indexing="ij"), -1).reshape(-1, 2)
    lp = like.log_prob(grid, d)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    mean = w @ grid
    sd = np.sqrt(w @ (grid - mean) ** 2)
    ess = np.min(post.mcmc_result.ess())
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * sd / np.sqrt(min(ess, 2000))), (draws.mean(0), mean)
    assert np.all(np.abs(draws.std(0) / sd - 1) < 0.15), (draws.std(0), sd)
