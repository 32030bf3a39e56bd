"""The digits experiments: pixel preprocessing (nprefgen/flows/logit.py), image data
(nprefgen/data/images.py) and the tour's runners (nprefgen/tour/digits_flows.py);
derivations/splines.md, SPL.14-SPL.18."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nprefgen.data.images import central_indices, load_image_data
from nprefgen.flows.logit import (
    bits_per_dim, logit_to_pixels, pixel_log_likelihood, pixels_to_logit,
)
from nprefgen.models.gaussian import GaussianDensity
from nprefgen.tour import digits_flows as demos

LAM = 0.05


# ------------------------------------------------------------------------------------------------
# preprocessing and units
# ------------------------------------------------------------------------------------------------


def test_preprocess_round_trip_and_log_jacobian(rng):
    """(SPL.14) postprocess(preprocess(v)) == v; (SPL.15) log_jac is the sum of log dy/dv~
    (a central difference along the noise)."""
    v = rng.integers(0, 17, (20, 64)).astype(float)
    noise = rng.random(v.shape) * 0.98 + 0.01
    y, log_jac = pixels_to_logit(v, 17, LAM, rng=rng, noise=noise)
    assert y.shape == v.shape and log_jac.shape == (20,)
    assert np.all(np.abs(y) <= np.log(0.95 / 0.05) + 1e-12)
    np.testing.assert_array_equal(logit_to_pixels(y, 17, LAM), v)
    h = 1e-6
    yp, _ = pixels_to_logit(v, 17, LAM, rng=rng, noise=noise + h)
    ym, _ = pixels_to_logit(v, 17, LAM, rng=rng, noise=noise - h)
    fd = np.sum(np.log((yp - ym) / (2 * h)), axis=1)
    np.testing.assert_allclose(log_jac, fd, rtol=1e-7)
    y2, _ = pixels_to_logit(v, 17, LAM, rng=np.random.default_rng(1))
    assert not np.allclose(y2, y)                          # noise is drawn when not given


def test_pixel_density_integrates_to_one():
    """(SPL.15) a standard normal q in logit space, moved to pixel units, integrates over [0, L)
    to q's mass on the squeezed range [logit(lambda), logit(1 - lambda)] (one pixel, L = 17,
    trapezoid on a fine grid): the change of variables is exact, and mass q puts outside the
    image of the squeeze is lost, so pixel-unit likelihoods are conservative."""
    levels = 17
    grid = np.linspace(0, levels, 200_001)[1:-1]
    v = np.floor(grid)[:, None]
    y, log_jac = pixels_to_logit(v, levels, LAM, rng=np.random.default_rng(0),
                                  noise=(grid - v[:, 0])[:, None])
    log_p = pixel_log_likelihood(stats.norm.logpdf(y[:, 0]), log_jac)
    edge = np.log(0.95 / 0.05)
    mass = stats.norm.cdf(edge) - stats.norm.cdf(-edge)
    assert abs(np.trapezoid(np.exp(log_p), grid) - mass) < 1e-6


def test_bits_per_dim_of_uniform_is_log2_levels():
    """(SPL.16) a uniform density on [0, 17)^64 (pixel units) scores log2(17) bits per dimension
    through the one bits_per_dim (FLOW.22), and the pixel-unit form -log p / (D ln 2) agrees."""
    log_p = np.full(3, -64 * np.log(17.0))
    np.testing.assert_allclose(demos.pixel_bits_per_dim(log_p[0], 64, 17), np.log2(17.0), rtol=1e-14)
    lp = np.array([-150.0, -80.0])
    np.testing.assert_allclose(bits_per_dim(lp + 64 * np.log(17.0), 64, 17),
                               -lp / (64 * np.log(2.0)), rtol=1e-13)


def test_bad_inputs_raise(rng):
    """Bad inputs raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="pixels"):
        pixels_to_logit(np.array([[17.0]]), 17, rng=rng)
    with pytest.raises(ValueError, match="pixels"):
        pixels_to_logit(np.array([[1.5]]), 17, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        pixels_to_logit(np.array([[1.0]]), 17, rng="x")
    with pytest.raises(ValueError, match="lam"):
        pixels_to_logit(np.array([[1.0]]), 17, 0.5, rng=rng)
    with pytest.raises(ValueError, match="levels"):
        pixels_to_logit(np.array([[1.0]]), 1, rng=rng)
    with pytest.raises(ValueError, match="lam"):
        logit_to_pixels(np.zeros((1, 1)), 17, 0.0)


# ------------------------------------------------------------------------------------------------
# the experiments, in quick mode
# ------------------------------------------------------------------------------------------------

TINY = demos.FlowConfig(n_layers={"realnvp": 2, "maf": 2, "spline": 2}, hidden=16, n_bins=4,
                        epochs=4, batch_size=128, lr=3e-3, patience=4)


@pytest.fixture(scope="module")
def small_digits():
    return load_image_data("digits", max_train=400, max_test=120)


def test_data_and_centre():
    """The bundled split (1,078 / 359 / 360 images of 64 integer pixels in 0..16) and the
    central 2x2 block of an 8x8 image."""
    data = load_image_data()
    assert (data.train.shape, data.val.shape, data.test.shape) == ((1078, 64), (359, 64), (360, 64))
    assert data.levels == 17 and data.side == 8 and data.train.max() == 16
    np.testing.assert_array_equal(central_indices(8, 2), [27, 28, 35, 36])
    np.testing.assert_array_equal(central_indices(28, 2), [13 * 28 + 13, 13 * 28 + 14,
                                                                 14 * 28 + 13, 14 * 28 + 14])
    with pytest.raises(ValueError, match="mnist_root"):
        load_image_data("mnist")
    with pytest.raises(ValueError, match="dataset"):
        load_image_data("cifar")


def test_trained_flow_beats_untrained_on_held_out_data(small_digits, rng):
    """(SPL.14)-(SPL.15) a few epochs of maximum likelihood raise the held-out log-likelihood of
    a spline flow well above its identity initialisation, and the validation loss is recorded."""
    data = small_digits
    y_test, jac = demos.preprocess(data.test, 17, rng=np.random.default_rng(1))
    flow = demos.digits_flow("spline", 64, rng=rng, config=TINY, side=8)
    before = pixel_log_likelihood(flow.log_prob(y_test), jac).mean()
    hist = demos.fit_dequantized(flow, data.train, data.val, 17, rng=rng, config=TINY)
    after = pixel_log_likelihood(flow.log_prob(y_test), jac).mean()
    assert len(hist["val_loss"]) == hist["epochs"] <= TINY.epochs
    assert hist["val_loss"][hist["best_epoch"]] == min(hist["val_loss"])
    assert after > before + 20.0, (before, after)


def test_quick_unconditional_run(small_digits, rng):
    """(SPL.16)-(SPL.17) every model gives a finite score with a small standard error; bits/dim
    lie between 0 and log2(17) for the fitted Gaussian; samples are integer images in 0..16;
    the fitted Gaussian beats a standard normal in logit space (a sanity ordering)."""
    res = demos.run_unconditional(small_digits, rng=rng, config=TINY, n_samples=6)
    names = [s.name for s in res.scores]
    assert names == list(demos.MODELS)
    for s in res.scores:
        assert np.isfinite(s.test_nats) and 0 < s.test_se < 5 and s.n_params > 0
        np.testing.assert_allclose(s.bits_per_dim, -s.test_nats / (64 * np.log(2)), rtol=1e-12)
    gauss = res.scores[0]
    assert 0 < gauss.bits_per_dim < np.log2(17)
    y_test, jac = demos.preprocess(small_digits.test, 17,
                                   rng=np.random.default_rng(demos.TEST_NOISE_SEED))
    std_normal = pixel_log_likelihood(stats.norm.logpdf(y_test).sum(1), jac).mean()
    assert gauss.test_nats > std_normal
    for name, s in res.samples.items():
        assert s.shape == (6, 64) and np.all(s == np.round(s)) and s.min() >= 0 and s.max() <= 16
    rows = demos.score_rows(res.scores)
    assert len(rows) == 4 and len(rows[0]) == len(demos.SCORE_HEADER)


def test_quick_conditional_run(small_digits, rng):
    """(SPL.18) the conditional Gaussian scores above the marginal one (the centre carries
    information); samples carry exactly the centres they were drawn at, the first all zero."""
    res = demos.run_conditional(small_digits, rng=rng, config=TINY, n_centres=3, n_per_centre=4)
    marginal, conditional, flow = res.scores
    assert conditional.test_nats > marginal.test_nats
    assert np.isfinite(flow.test_nats)
    assert res.samples.shape == (3, 4, 64)
    assert not np.any(res.centres[0]) and np.all(np.any(res.centres[1:] > 0, axis=1))
    for k in range(3):
        np.testing.assert_array_equal(res.samples[k][:, res.centre_idx], np.tile(res.centres[k], (4, 1)))
    given = np.array([[0, 0, 0, 0], [16, 16, 16, 16.0]])
    res2 = demos.run_conditional(small_digits, rng=rng, config=TINY, centres=given, n_per_centre=2)
    np.testing.assert_array_equal(res2.samples[1][:, res2.centre_idx], 16.0)


@pytest.mark.parametrize("section", ["flows_digits", "flows_conditional"])
def test_tour_section_quick(tmp_path, section):
    """The tour sections run in quick mode and write their table and figures."""
    from nprefgen.tour import run_tour

    path = run_tour(tmp_path, quick=True, only=[section], progress=False, strict=True)
    page = open(path, encoding="utf-8").read()
    assert "nats/image" in page and "<table>" in page
    assert (tmp_path / f"{section}-samples.png").exists()
