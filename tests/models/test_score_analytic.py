"""Closed-form scores of Gaussians and mixtures, clean and perturbed (derivations/score.md,
SCORE.1-SCORE.4)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nprefgen.models.score import (
    GaussianMixtureScore, gaussian_log_prob, gaussian_score, mixture_log_prob, mixture_score,
    song_ermon_mixture,
)
from nprefgen.testing import check_vjp
from nprefgen.testing.strategies import seeds


def random_mixture(rng, k, d):
    w = rng.dirichlet(np.ones(k))
    means = 2.0 * rng.standard_normal((k, d))
    a = rng.standard_normal((k, d, d))
    covs = a @ a.transpose(0, 2, 1) / d + 0.3 * np.eye(d)
    return w, means, covs


@given(seed=seeds(), k=st.integers(1, 4), d=st.integers(1, 4),
       sigma=st.sampled_from([0.0, 0.1, 1.0, 5.0]))
def test_scores_match_finite_differences(seed, k, d, sigma):
    """(SCORE.1), (SCORE.2), (SCORE.3) the score is the gradient of the log-density: the dot-product test of
    x -> log p_sigma(x) (one value per row) against the closed-form score, at rtol 1e-8."""
    rng = np.random.default_rng(seed)
    w, means, covs = random_mixture(rng, k, d)
    x = 2.0 * rng.standard_normal((6, d))
    check_vjp(lambda x_: mixture_log_prob(x_, w, means, covs, sigma),
              lambda v: v[:, None] * mixture_score(x, w, means, covs, sigma), x, rng=rng)
    check_vjp(lambda x_: gaussian_log_prob(x_, means[0], covs[0], sigma),
              lambda v: v[:, None] * gaussian_score(x, means[0], covs[0], sigma), x, rng=rng)


def test_gaussian_score_by_hand(rng):
    """(SCORE.1), (SCORE.3) -(Sigma + sigma^2 I)^{-1}(x - mu) and the log-density, written out."""
    mean, cov = np.array([1.0, -2.0]), np.array([[2.0, 0.5], [0.5, 1.0]])
    x = rng.standard_normal((5, 2))
    c = cov + 0.49 * np.eye(2)
    want = -(x - mean) @ np.linalg.inv(c).T
    np.testing.assert_allclose(gaussian_score(x, mean, cov, sigma=0.7), want, rtol=1e-12)
    diff = x - mean
    lp = -0.5 * np.einsum("ni,ij,nj->n", diff, np.linalg.inv(c), diff) \
        - 0.5 * np.log(np.linalg.det(2 * np.pi * c))
    np.testing.assert_allclose(gaussian_log_prob(x, mean, cov, sigma=0.7), lp, rtol=1e-12)


def test_perturbed_mixture_is_a_convolution():
    """(SCORE.3) p_sigma = p * N(0, sigma^2): in 1-D, the closed form equals the convolution
    integral by quadrature on a fine grid (trapezoid error ~1e-12 here)."""
    w, means, covs = np.array([0.3, 0.7]), np.array([[-1.0], [2.0]]), np.array([[[0.25]], [[1.0]]])
    sigma = 0.6
    grid = np.linspace(-12.0, 14.0, 26001)
    p = np.exp(mixture_log_prob(grid[:, None], w, means, covs))
    for xt in (-2.0, 0.3, 2.5):
        kern = np.exp(-0.5 * ((xt - grid) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        conv = np.trapezoid(p * kern, grid)
        closed = np.exp(mixture_log_prob(np.array([[xt]]), w, means, covs, sigma))[0]
        assert closed == pytest.approx(conv, rel=1e-9)


def test_dsm_minimiser_is_the_perturbed_score(rng):
    """(SCORE.4) regressing the DSM target -z/sigma on x~ = x + sigma z over affine score models
    recovers the score of p_sigma, -(Sigma + sigma^2 I)^{-1}(x~ - mu), not the score of p. The
    tolerance is 4 ordinary-least-squares standard errors of each coefficient."""
    mean, cov = np.array([1.0, -1.0]), np.array([[1.5, 0.4], [0.4, 0.5]])
    sigma, n = 0.8, 200_000
    x = rng.multivariate_normal(mean, cov, size=n)
    z = rng.standard_normal((n, 2))
    xt = x + sigma * z
    design = np.column_stack([xt, np.ones(n)])                     # s(x~) = A x~ + b
    coef, *_ = np.linalg.lstsq(design, -z / sigma, rcond=None)     # (3, 2)
    resid = -z / sigma - design @ coef
    xtx_inv = np.linalg.inv(design.T @ design)
    se = np.sqrt(np.outer(np.diag(xtx_inv), resid.var(axis=0)))   # (3, 2)
    a_true = -np.linalg.inv(cov + sigma**2 * np.eye(2))
    want = np.vstack([a_true.T, -(a_true @ mean)[None]])           # rows: A^T, then b
    assert np.all(np.abs(coef - want) <= 4 * se), (coef, want, se)
    a_clean = -np.linalg.inv(cov)                                  # the score of p is far off
    assert np.max(np.abs(coef[:2] - a_clean.T) / se[:2]) > 100


def test_song_ermon_mixture_and_sampling(rng):
    """The toy's parameters; sample() draws the weights within 4 binomial sd, sigma widens it."""
    toy = song_ermon_mixture()
    assert isinstance(toy, GaussianMixtureScore) and toy.dim == 2
    np.testing.assert_array_equal(toy.weights, [0.2, 0.8])
    n = 20_000
    x = toy.sample(n, rng=rng)
    frac = np.mean(x.sum(axis=1) > 0)
    assert abs(frac - 0.8) < 4 * np.sqrt(0.16 / n)
    xs = toy.sample(n, sigma=2.0, rng=rng)
    top = xs[xs.sum(axis=1) > 0] - 5.0
    assert np.var(top) == pytest.approx(5.0, rel=0.1)             # 1 + sigma^2
    np.testing.assert_allclose(toy(x[:5]), mixture_score(x[:5], toy.weights, toy.means, toy.covs))


@pytest.mark.parametrize("call, match", [
    (lambda: mixture_score(np.zeros((2, 2)), [0.5, 0.6], np.zeros((2, 2)), np.stack([np.eye(2)] * 2)), "weights"),
    (lambda: mixture_score(np.zeros((2, 3)), [0.5, 0.5], np.zeros((2, 2)), np.stack([np.eye(2)] * 2)), "x"),
    (lambda: mixture_score(np.zeros((2, 2)), [0.5, 0.5], np.zeros((2, 2)), np.stack([-np.eye(2)] * 2)), "covs"),
    (lambda: gaussian_score(np.zeros((2, 2)), np.zeros(2), np.eye(2), sigma=-1.0), "sigma"),
    (lambda: gaussian_score(np.full((2, 2), np.nan), np.zeros(2), np.eye(2)), "x"),
    (lambda: song_ermon_mixture().sample(0), "n"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=f"^{match}:"):
        call()
