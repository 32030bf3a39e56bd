"""The digits demonstrations (nprefgen/flows/demos.py; derivations/splines.md, SPL.14-SPL.18)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nprefgen.flows import demos


# ------------------------------------------------------------------------------------------------
# preprocessing and units
# ------------------------------------------------------------------------------------------------


def test_preprocess_round_trip_and_log_jacobian(rng):
    """(SPL.14) postprocess(preprocess(v)) == v; (SPL.15) log_jac is the sum of log dy/dv~
    (a central difference along the noise)."""
    v = rng.integers(0, 17, (20, 64)).astype(float)
    noise = rng.random(v.shape) * 0.98 + 0.01
    y, log_jac = demos.preprocess(v, 17, noise=noise)
    assert y.shape == v.shape and log_jac.shape == (20,)
    assert np.all(np.abs(y) <= np.log(0.95 / 0.05) + 1e-12)
    np.testing.assert_array_equal(demos.postprocess(y, 17), v)
    h = 1e-6
    yp, _ = demos.preprocess(v, 17, noise=noise + h)
    ym, _ = demos.preprocess(v, 17, noise=noise - h)
    fd = np.sum(np.log((yp - ym) / (2 * h)), axis=1)
    np.testing.assert_allclose(log_jac, fd, rtol=1e-7)
    y2, _ = demos.preprocess(v, 17, rng=np.random.default_rng(1))
    assert not np.allclose(y2, y)                          # noise is drawn when not given


def test_pixel_density_integrates_to_one():
    """(SPL.15) a standard normal q in logit space, moved to pixel units, integrates over [0, L)
    to q's mass on the squeezed range [logit(lambda), logit(1 - lambda)] (one pixel, L = 17,
    trapezoid on a fine grid): the change of variables is exact, and mass q puts outside the
    image of the squeeze is lost, so pixel-unit likelihoods are conservative."""
    levels = 17
    grid = np.linspace(0, levels, 200_001)[1:-1]
    v = np.floor(grid)[:, None]
    y, log_jac = demos.preprocess(v, levels, noise=(grid - v[:, 0])[:, None])
    log_p = demos.pixel_log_likelihood(stats.norm.logpdf(y[:, 0]), log_jac)
    edge = np.log(0.95 / 0.05)
    mass = stats.norm.cdf(edge) - stats.norm.cdf(-edge)
    assert abs(np.trapezoid(np.exp(log_p), grid) - mass) < 1e-6


def test_bits_per_dim_of_uniform_is_log2_levels():
    """(SPL.16) a uniform density on [0, 17)^64 scores log2(17) bits per dimension."""
    log_p = np.full(3, -64 * np.log(17.0))
    np.testing.assert_allclose(demos.bits_per_dim(log_p, 64), np.log2(17.0), rtol=1e-14)


def test_gaussian_baseline_matches_scipy_and_conditions(rng):
    """(SPL.17) log-density equals scipy's multivariate normal; (SPL.18) the conditional equals
    log p(y, c) - log p(c) of the joint fit; samples have the fitted mean within 5 standard
    errors."""
    a = rng.standard_normal((5, 5))
    data = rng.standard_normal((4000, 5)) @ a.T + np.arange(5)
    g = demos.GaussianBaseline(ridge=0.0).fit(data)
    np.testing.assert_allclose(g.mu, data.mean(0), rtol=1e-12)
    cov = np.cov(data.T, bias=True)
    np.testing.assert_allclose(g.log_prob(data[:7]),
                               stats.multivariate_normal(data.mean(0), cov).logpdf(data[:7]),
                               rtol=1e-10)
    y, c = data[:, :3], data[:, 3:]
    gc = demos.GaussianBaseline(ridge=0.0).fit(y, c)
    gm = demos.GaussianBaseline(ridge=0.0).fit(c)
    np.testing.assert_allclose(gc.log_prob(y[:9], c[:9]), g.log_prob(data[:9]) - gm.log_prob(c[:9]),
                               rtol=1e-10)
    s = gc.sample(20_000, rng, np.repeat(c[:1], 20_000, axis=0))
    se = np.sqrt(np.diag(gc.cov) / 20_000)
    mean_c = gc.mu + (c[0] - c.mean(0)) @ gc._gain.T
    assert np.all(np.abs(s.mean(0) - mean_c) < 5 * se)


def test_bad_inputs_raise(rng):
    """Bad inputs raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="v"):
        demos.preprocess(np.array([[17.0]]), 17, rng=rng)
    with pytest.raises(ValueError, match="v"):
        demos.preprocess(np.array([[1.5]]), 17, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        demos.preprocess(np.array([[1.0]]), 17)
    with pytest.raises(ValueError, match="alpha"):
        demos.preprocess(np.array([[1.0]]), 17, 0.5, rng=rng)
    with pytest.raises(ValueError, match="levels"):
        demos.preprocess(np.array([[1.0]]), 1, rng=rng)
    with pytest.raises(ValueError, match="context"):
        demos.GaussianBaseline().fit(np.zeros((5, 2)) + rng.standard_normal((5, 2))).log_prob(
            np.zeros((1, 2)), np.zeros((1, 1)))
