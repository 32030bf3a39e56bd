"""Score-based posterior estimation (derivations/score.md, SCORE.15-SCORE.18)."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from nprefgen._threads import blas_threads
from nprefgen.kernels.langevin import mlp_score_numpy, _check_mlp, _level_mlp, ACTIVATION_CODES
from nprefgen.models.ncsn import NCSN, geometric_sigmas
from nprefgen.nn.train import validation_split
from nprefgen.sbi.score_posterior import NPSE, ScorePosterior
from nprefgen.sbi.tasks import gaussian_linear, gaussian_linear_posterior, two_moons
from nprefgen.testing import gradcheck


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _tiny(task, n=200, seed=0, **kwargs):
    g = np.random.default_rng(seed)
    theta = task.prior.sample(n, rng=g)
    x = task.simulator(theta, g)
    est = NPSE(task.prior, hidden=(8,), n_levels=4, n_steps_each=3, **kwargs)
    return est, theta, x


def test_conditional_dsm_dot_product(rng):
    """(SCORE.15) with z and the levels kept, the conditional DSM loss is a deterministic function
    of the parameters and of the context: dot-product tests at rtol 1e-8 for both."""
    model = NCSN(2, hidden=(6, 5), sigmas=geometric_sigmas(3.0, 0.05, 4), rng=rng, context_dim=3)
    theta, c = rng.standard_normal((9, 2)), rng.standard_normal((9, 3))
    z, levels = model.draw_noise(9, rng=rng)
    worst = 0.0
    for _, p, g in model.net.named_parameters():
        original = p.copy()

        def loss(p_):
            p[...] = p_
            try:
                return model.dsm_loss_and_grad(theta, z, levels, c)[0]
            finally:
                p[...] = original
                model.net.zero_grad()

        def grad(p_):
            model.net.zero_grad()
            model.dsm_loss_and_grad(theta, z, levels, c)
            return g.copy()

        for r in gradcheck(loss, grad, original, rng=rng):
            worst = max(worst, r.rel_error)
    for r in gradcheck(lambda c_: model.dsm_loss(theta, z, levels, c_),
                       lambda c_: model.dsm_loss_and_grad(theta, z, levels, c_)[1], c, rng=rng):
        worst = max(worst, r.rel_error)
    model.net.zero_grad()
    assert worst <= 1e-8


def test_folded_context_equals_the_network(rng):
    """(SCORE.17) the context folded into the first bias gives the network's score exactly, at
    every level; so the numba sampler runs the conditional network unchanged (SCORE.16)."""
    model = NCSN(2, hidden=(7, 7), sigmas=geometric_sigmas(3.0, 0.05, 4), rng=rng, context_dim=3)
    theta, c = rng.standard_normal((11, 2)), rng.standard_normal(3)
    w, b = model.mlp_arrays(c)
    wts, bs = _check_mlp(w, b, 2, "concat")
    for sigma in model.sigmas:
        lw, lb, scale = _level_mlp(wts, bs, 2, sigma, "concat")
        folded = mlp_score_numpy(theta, lw, lb, ACTIVATION_CODES["softplus"], scale)
        direct = model.score(theta, sigma, np.repeat(c[None], 11, axis=0))
        np.testing.assert_allclose(folded, direct, rtol=1e-12, atol=1e-14)


def test_train_z_scores_with_the_training_split():
    """(SCORE.15) the z-score statistics are those of the rows NCSN.fit trains on (not the
    validation rows), and sigma_1 is set on the z-scored training theta (SCORE.9)."""
    est, theta, x = _tiny(gaussian_linear(dim=2))
    post = est.train(theta, x, rng=3, max_epochs=2)
    g = np.random.default_rng(3)
    NCSN(2, (8,), context_dim=2, n_levels=4, rng=g)          # the weights' draws come first
    train_idx, val_idx = validation_split(200, 0.1, rng=copy.deepcopy(g))
    assert len(val_idx) == 20
    np.testing.assert_allclose(post.theta_mean, theta[train_idx].mean(0), rtol=1e-12)
    np.testing.assert_allclose(post.x_std, x[train_idx].std(0), rtol=1e-12)
    assert not np.allclose(post.theta_mean, theta.mean(0), rtol=1e-12, atol=0)
    assert est.history_["epochs"] == 2 and len(est.history_["val_loss"]) == 2


def test_samples_stay_in_the_support():
    """(SCORE.18) on two_moons' box prior every returned draw is inside the support, whatever the
    (barely trained) network does; the acceptance rate is reported."""
    task = two_moons()
    est, theta, x = _tiny(task)
    post = est.train(theta, x, rng=0, max_epochs=1)
    s = post.sample_batched(50, x[:3], rng=1)
    assert s.shape == (3, 50, 2)
    assert task.prior.in_support(s.reshape(-1, 2)).all()
    assert 0.0 < post.acceptance_rate <= 1.0


def test_determinism_per_seed():
    """Same seeds -> identical training and samples; another sampling seed -> other samples."""
    task = gaussian_linear(dim=2)
    runs = []
    for _ in range(2):
        est, theta, x = _tiny(task)
        post = est.train(theta, x, rng=5, max_epochs=2)
        runs.append((est.history_["train_loss"], post.sample(20, x[0], rng=7),
                     post.sample(20, x[0], rng=np.random.default_rng(7))))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][1], runs[0][2])
    assert not np.array_equal(runs[0][1], post.sample(20, x[0], rng=8))


def test_bad_inputs():
    task = gaussian_linear(dim=2)
    est, theta, x = _tiny(task)
    with pytest.raises(ValueError, match="x"):
        est.train(theta, x[:-1], rng=0)
    with pytest.raises(ValueError, match="theta"):
        est.train(theta[:1], x[:1], rng=0)
    bad = theta.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="theta"):
        est.train(bad, x, rng=0)
    with pytest.raises(ValueError, match="prior"):
        NPSE(object())
    with pytest.raises(ValueError, match="n_levels"):
        NPSE(task.prior, n_levels=1)
    with pytest.raises(ValueError, match="sigma_min"):
        NPSE(task.prior, sigma_min=0.0)
    with pytest.raises(ValueError, match="eps"):
        NPSE(task.prior, eps=-1.0)
    post = est.train(theta, x, rng=0, max_epochs=1)
    with pytest.raises(ValueError, match="x"):
        post.sample(5, np.zeros(3), rng=0)
    with pytest.raises(ValueError, match="x"):
        post.sample(5, rng=0)                        # no default x
    with pytest.raises(ValueError, match="xs"):
        post.sample_batched(5, np.zeros((2, 3)), rng=0)
    with pytest.raises(ValueError, match="n"):
        post.sample(0, x[0], rng=0)
    with pytest.raises(ValueError, match="rng"):
        post.sample(5, x[0], rng="seed")
    with pytest.raises(ValueError, match="context"):
        NCSN(2, (4,), context_dim=2, sigmas=[1.0, 0.1]).score(theta[:3], 1.0)
    with pytest.raises(ValueError, match="context"):
        NCSN(2, (4,), sigmas=[1.0, 0.1]).score(theta[:3], 1.0, x[:3])
    with pytest.raises(ValueError, match="x"):
        post.set_default_x(np.zeros(5))
    with pytest.raises(ValueError, match="xs"):
        post.sample_batched(5, np.array([[np.nan, 0.0]]), rng=0)
    for bad in (None, np.zeros(3)):
        with pytest.raises(ValueError, match="context"):
            NCSN(2, (4,), context_dim=2, sigmas=[1.0, 0.1]).mlp_arrays(bad)
    with pytest.raises(ValueError, match="context"):
        NCSN(2, (4,), sigmas=[1.0, 0.1]).mlp_arrays(np.zeros(2))
    with pytest.raises(ValueError, match="activation"):
        NPSE(task.prior, activation="gelu")
    assert isinstance(post.set_default_x(x[0]), ScorePosterior)
    assert post.sample(3, rng=0).shape == (3, 2)


@pytest.mark.slow
def test_gaussian_linear_posterior_moments():
    """(SCORE.16) on 2-D gaussian_linear the learned posterior's mean and covariance match the
    analytic N(mu, v I) (SBI.2).

    With n draws, the sample mean's standard error is sqrt(v/n) per coordinate and the sample
    variance's is v sqrt(2/(n-1)); the tolerances are 4 standard errors plus a model-error
    allowance of 0.25 posterior standard deviations for the mean and 25 % of v for the variance
    (the estimator is trained on 5000 simulations for a few seconds; measured errors in the
    report are well inside)."""
    task = gaussian_linear(dim=2)
    g = np.random.default_rng(0)
    theta = task.prior.sample(5000, rng=g)
    x = task.simulator(theta, g)
    n = 2000
    _, xo = task.observations(1, rng=5)
    with blas_threads(1):               # small products: BLAS threads only contend
        post = NPSE(task.prior, hidden=(64, 64), n_levels=15, n_steps_each=40).train(
            theta, x, rng=1, max_epochs=60)
        s = post.sample(n, xo[0], rng=2)
    mu, v = gaussian_linear_posterior(xo, np.zeros(2), 0.1, 0.1)
    sd = np.sqrt(v)
    assert np.all(np.abs(s.mean(0) - mu) <= 4 * sd / np.sqrt(n) + 0.25 * sd)
    cov = np.cov(s.T)
    assert np.all(np.abs(np.diag(cov) - v) <= 4 * v * np.sqrt(2 / (n - 1)) + 0.25 * v)
    assert abs(cov[0, 1]) <= 4 * v / np.sqrt(n - 1) + 0.25 * v
    print("mean error / sd", (s.mean(0) - mu) / sd, "variance ratio", np.diag(cov) / v,
          "correlation", cov[0, 1] / v)
