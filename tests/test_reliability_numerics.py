"""Numbers that never go silently wrong (issue 13, classes 4, 5 and 7).

4. Legal-looking input that gave wrong results: a non-symmetric prior covariance, a simulator
   that modifies its input or returns complex numbers, finite data so large that intermediates
   overflow (PCA, MMD, priors), degenerate diagnostics (ESS of a constant chain, HMC with a
   non-finite gradient, a singular Metropolis proposal).
5. Optimizers refuse what they cannot update (integer or read-only parameters) and a non-finite
   gradient, before any parameter moves.
7. Hyper-parameters that ask for absurd allocations are refused up front.
"""
from __future__ import annotations

import concurrent.futures as cf
import warnings

import numpy as np
import pytest

from nprefgen.metrics.mmd import median_bandwidth, mmd2
from nprefgen.models.pca import PCA, pca_inverse_transform, reconstruction_error
from nprefgen.nn import MLP, SGD, Adam
from nprefgen.samplers import effective_sample_size, hmc, random_walk_metropolis, split_rhat
from nprefgen.sbi.priors import BoxUniform, Gaussian
from nprefgen.sbi.simulate import simulate, simulate_from_prior


# -- 4. silent wrong results --------------------------------------------------------------------
def test_a_non_symmetric_covariance_is_refused_and_a_near_symmetric_one_is_consistent(rng):
    """sample() used the Cholesky factor of the lower triangle and log_prob() the inverse of the
    whole matrix: two different Gaussians from one argument."""
    with pytest.raises(ValueError, match="cov: expected a symmetric"):
        Gaussian(np.zeros(2), [[1.0, 0.9], [0.0, 1.0]])
    with pytest.raises(ValueError, match="cov: expected a positive definite"):
        Gaussian(np.zeros(2), [[1.0, 2.0], [2.0, 1.0]])
    a = rng.standard_normal((3, 3))
    cov = a @ a.T + np.eye(3)
    cov[0, 1] += 1e-14                              # rounding-level asymmetry is accepted
    prior = Gaussian(np.zeros(3), cov)
    np.testing.assert_array_equal(prior.cov, prior.cov.T)
    np.testing.assert_allclose(prior.chol @ prior.chol.T, prior.cov, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(prior.prec @ prior.cov, np.eye(3), atol=1e-12)


def _inplace_simulator(theta, rng):
    theta *= 2.0                                    # modifies its argument
    theta += 1.0
    return theta + rng.standard_normal(theta.shape)


def test_simulate_never_lets_the_simulator_modify_the_callers_theta(rng):
    """The result and the caller's array are the same in-process, with threads and processes."""
    theta = np.arange(12.0).reshape(6, 2)
    original = theta.copy()
    results = []
    for executor in (None, cf.ThreadPoolExecutor(2), cf.ProcessPoolExecutor(2)):
        out = simulate(_inplace_simulator, theta, rng=np.random.default_rng(1), executor=executor,
                       batch_size=2)
        if executor is not None:
            executor.shutdown()
        np.testing.assert_array_equal(theta, original)
        np.testing.assert_array_equal(out.theta, original)
        results.append(out.x)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


def test_complex_simulator_output_is_an_error(rng):
    with pytest.raises(ValueError, match="simulator: expected real output"):
        simulate(lambda t, r: t + 1j, np.ones((3, 2)), rng=rng)
    with pytest.raises(ValueError, match="simulator"):
        simulate(lambda t, r: np.array(["a"] * t.shape[0]), np.ones((3, 2)), rng=rng)


def test_pca_on_data_that_overflows_inside_raises_and_never_hangs(rng, alarm):
    """|x| ~ 1e160: the sum of squares overflows (NaN explained variance before; a mean that
    overflows sent a NaN matrix into the SVD, which can spin)."""
    alarm(20)
    for scale in (1e160, 1e200, 1e306):
        X = rng.standard_normal((40, 3)) * scale
        with pytest.raises(ValueError, match="X: .*scale"):
            PCA(2).fit(X)
    X = 1.7e308 * (1.0 - 0.1 * rng.uniform(size=(10, 2)))    # the sum overflows: mean = inf
    with pytest.raises(ValueError, match="X: .*scale"):
        PCA(1).fit(X)
    pca = PCA(3, whiten=True).fit(rng.standard_normal((20, 3)) * [1.0, 1.0, 1e-3])
    with pytest.raises(ValueError, match="X: .*scale"):
        pca.transform([[0.0, 0.0, 1e308]])          # / sqrt(lambda_3) ~ 1e-3 overflows
    with pytest.raises(ValueError, match="Z: .*scale"):
        pca_inverse_transform(np.full((2, 2), 1.7e308), pca.mean_, pca.components_[:2],
                              np.array([100.0, 100.0]))
    with pytest.raises(ValueError, match="scale"):
        reconstruction_error(np.full((2, 2), 1e200), -np.full((2, 2), 1e200))
    fine = PCA(2).fit(rng.standard_normal((40, 3)) * 1e150)     # still inside float64
    assert np.all(np.isfinite(fine.explained_variance_ratio_))


def test_mmd_on_data_that_overflows_inside_raises(rng):
    x, y = rng.standard_normal((10, 2)) * 1e160, rng.standard_normal((12, 2)) * 1e160
    with pytest.raises(ValueError, match="x: .*scale"):
        mmd2(x, y)
    with pytest.raises(ValueError, match="x: .*scale"):
        median_bandwidth(x, y)
    x = rng.standard_normal((10, 2))
    for h in (1e-200, 1e200):                       # h^2 underflows / overflows: NaN before
        with pytest.raises(ValueError, match="bandwidth"):
            mmd2(x, x.copy(), bandwidth=h)
    assert np.isfinite(mmd2(x * 1e150, x * 1e150 + 1e149))


def test_priors_on_huge_finite_input_give_no_nan(rng):
    prior = Gaussian(np.zeros(2), [[1.0, -0.5], [-0.5, 1.0]])
    theta = np.array([[1e200, 1e200], [1.5e308, -1.5e308], [0.0, 0.0]])
    lp = prior.log_prob(theta)
    assert not np.any(np.isnan(lp)) and lp[0] == -np.inf and lp[1] == -np.inf
    with pytest.raises(ValueError, match="theta: .*scale"):
        prior.grad_log_prob(theta)
    with pytest.raises(ValueError, match="high: .*scale"):
        BoxUniform([-1e308, 0.0], [1e308, 1.0])


def test_ess_of_a_constant_chain_says_so():
    s = np.random.default_rng(0).standard_normal((3, 50, 2))
    s[:, :, 1] = 4.2
    with pytest.raises(ValueError, match=r"samples: coordinates \[1\] are constant"):
        effective_sample_size(s)
    assert split_rhat(s)[1] == np.inf


def test_ess_and_rhat_of_huge_or_tiny_draws_are_those_of_ordinary_draws():
    """Both are scale-invariant; the variances of 1e200 or 1e-300 draws overflowed or underflowed
    (NaN before)."""
    s = np.random.default_rng(0).standard_normal((3, 40, 2))
    for scale in (1e-300, 1e200, 2.0 ** 900):
        np.testing.assert_allclose(effective_sample_size(s * scale), effective_sample_size(s),
                                   rtol=1e-12)
        np.testing.assert_allclose(split_rhat(s * scale), split_rhat(s), rtol=1e-12)


def test_hmc_with_a_non_finite_gradient_says_so(rng):
    def lp(x):
        return -0.5 * np.sum(x * x, axis=1)

    with pytest.raises(ValueError, match="grad_log_prob: expected finite gradients"):
        hmc(lp, lambda x: np.full_like(x, np.nan), np.zeros((2, 2)), 10, rng=rng, n_warmup=0)

    def nan_away_from_start(x):                    # finite at 0, NaN everywhere else
        g = -x.copy()
        g[np.any(x != 0, axis=1)] = np.nan
        return g

    with pytest.warns(RuntimeWarning, match="never moved.*diverged"):
        res = hmc(lp, nan_away_from_start, np.zeros((3, 2)), 20, rng=rng, n_warmup=0)
    assert np.all(res.extra["n_divergent"] == 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # a healthy run stays quiet
        res = hmc(lp, lambda x: -x, rng.standard_normal((3, 2)), 50, rng=rng, n_warmup=50)
    assert np.all(res.extra["n_divergent"] == 0)
    with pytest.raises(ValueError, match="grad_log_prob: expected real"):
        hmc(lp, lambda x: -x + 0j, np.zeros((2, 2)), 5, rng=rng, n_warmup=0)


def test_a_singular_metropolis_proposal_is_refused(rng):
    """A rank-1 (2, 2) proposal shape explores a line only: the chain silently misses the rest."""
    with pytest.raises(ValueError, match="scale: expected a non-singular"):
        random_walk_metropolis(lambda x: -0.5 * np.sum(x * x, axis=1), np.zeros((2, 2)), 10,
                               rng=rng, scale=[[1.0, 1.0], [1.0, 1.0]])


# -- 5. optimizers ------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [SGD, Adam])
def test_optimizers_refuse_what_they_cannot_update(cls):
    p_int, g_int = np.arange(3), np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match=r"params\[0\]: expected a floating parameter"):
        cls([(p_int, g_int)], lr=0.1)
    ok = (np.ones(2), np.zeros(2))
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[1\]: expected a writeable parameter"):
        cls([ok, (ro, np.zeros(3))], lr=0.1)
    with pytest.raises(ValueError, match=r"params\[0\]: expected a floating gradient"):
        cls([(np.ones(2), np.zeros(2, dtype=np.int64))], lr=0.1)


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_a_non_finite_gradient_moves_no_parameter(cls):
    net = MLP(3, [4], 2, rng=np.random.default_rng(0))
    opt = cls(net.parameters(), lr=0.1)
    for _, g in net.parameters():
        g[...] = 0.5
    opt.step()                                      # a finite step works
    before = [p.copy() for p, _ in net.parameters()]
    net.parameters()[2][1][0, 0] = np.nan           # a NaN in the third gradient
    with pytest.raises(ValueError, match=r"params\[2\]: expected a finite gradient"):
        opt.step()
    for (p, _), b in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, b)         # not even params[0] and [1] moved


# -- 7. resource bounds -------------------------------------------------------------------------
def test_absurd_sizes_are_refused_up_front(rng, alarm):
    alarm(20)
    lp = lambda x: -0.5 * np.sum(x * x, axis=1)      # noqa: E731
    with pytest.raises(ValueError, match="n_steps: expected a size that fits in memory"):
        random_walk_metropolis(lp, np.zeros((4, 2)), 10 ** 12, rng=rng)
    with pytest.raises(ValueError, match="n: expected a size"):
        BoxUniform([0.0], [1.0]).sample(10 ** 12, rng=rng)
    with pytest.raises(ValueError, match="n: expected a size"):
        Gaussian([0.0], [1.0]).sample(10 ** 12, rng=rng)
    with pytest.raises(ValueError, match="n: expected a size"):
        simulate_from_prior(BoxUniform([0.0], [1.0]), lambda t, r: t, 10 ** 12, rng=rng)
    x = rng.standard_normal((10, 2))
    with pytest.raises(ValueError, match="max_points: expected a size"):
        median_bandwidth(np.repeat(x, 10 ** 5, axis=0)[:600_000], x, max_points=10 ** 6)


def test_samplers_take_an_int_seed():
    """SPEC 7: check_run_args normalised rng but the samplers kept the raw int (AttributeError)."""
    lp = lambda x: -0.5 * np.sum(x * x, axis=1)      # noqa: E731
    for run in (lambda r: random_walk_metropolis(lp, np.zeros((2, 2)), 5, rng=r, n_warmup=2),
                lambda r: hmc(lp, lambda x: -x, np.zeros((2, 2)), 5, rng=r, n_warmup=2)):
        np.testing.assert_array_equal(run(7).samples, run(np.random.default_rng(7)).samples)
