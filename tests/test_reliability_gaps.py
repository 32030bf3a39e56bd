"""The gaps the first reliability pass left (issue 13; the KNOWN table of tests/test_fuzz.py).

4. Odd dtypes and finite input that overflows inside: the pure functions that had no check_array
   (normal_log_prob, logit_inverse, pairwise_sq_distances, the ABC bandwidths) and the overflows
   that gave NaN (pairwise distances, brightness/contrast, a flow's couplings and gradients).
4. Matrices that must be symmetric positive definite: GaussianMixture's precisions_init, the
   Gaussian likelihood's covariance in the cosmology simulator.
7. Absurd sizes refused up front: layer widths, mixtures, k-means, toys, C2ST, posterior sampling.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from nprefgen.flows import maf, realnvp
from nprefgen.flows.flow import normal_log_prob
from nprefgen.flows.logit import logit_inverse
from nprefgen.models.augment import random_brightness_contrast
from nprefgen.models.probe import pairwise_sq_distances
from nprefgen.sbi.abc import cv_bandwidth, scott_bandwidth

SCALE = "scale float64 can handle"           # check_finite_result's message


# -- 4. odd dtypes: ValueError naming the argument, not TypeError / ZeroDivisionError ----------
ODD = {"string": np.zeros((4, 2)).astype("U3"), "object": np.zeros((4, 2)).astype(object),
       "complex": np.zeros((4, 2), dtype=complex)}


@pytest.mark.parametrize("kind", sorted(ODD))
@pytest.mark.parametrize("name, call", [
    ("z", normal_log_prob), ("y", logit_inverse), ("theta", scott_bandwidth),
    ("theta", cv_bandwidth), ("A", lambda a: pairwise_sq_distances(a, np.zeros((3, 2)))),
    ("B", lambda b: pairwise_sq_distances(np.zeros((3, 2)), b)),
])
def test_odd_dtypes_give_a_value_error_naming_the_argument(name, call, kind):
    with pytest.raises(ValueError, match=f"^{name}: expected a"):
        call(ODD[kind])


@pytest.mark.parametrize("bandwidth", [scott_bandwidth, cv_bandwidth])
def test_bandwidths_of_no_draws_give_a_value_error(bandwidth):
    with pytest.raises(ValueError, match="theta: expected a non-empty array"):
        bandwidth(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="theta: expected 2 dimensions"):
        bandwidth(np.zeros(3))


# -- 4. finite input that overflows inside ------------------------------------------------------
def test_pairwise_distances_of_huge_points_blame_their_scale(rng):
    a = rng.standard_normal((5, 3))
    with pytest.raises(ValueError, match=f"A: expected values on a {SCALE}"):
        pairwise_sq_distances(1e308 * a, a)
    with pytest.raises(ValueError, match=f"B: expected values on a {SCALE}"):
        pairwise_sq_distances(a, 1e200 * a)
    with pytest.raises(ValueError, match="B: expected shape"):
        pairwise_sq_distances(a, a[:, :2])
    np.testing.assert_allclose(pairwise_sq_distances(a, a[:2]),
                               ((a[:, None] - a[None, :2]) ** 2).sum(-1), atol=1e-12)


@pytest.mark.parametrize("bandwidth", [scott_bandwidth, cv_bandwidth])
def test_bandwidths_of_huge_draws_blame_their_scale(bandwidth, rng):
    with pytest.raises(ValueError, match=f"theta: expected values on a {SCALE}"):
        bandwidth(1e300 * rng.standard_normal((20, 2)))


def test_brightness_contrast_of_huge_images_blames_their_scale(rng):
    images = 1e308 * rng.uniform(0.5, 1.0, size=(4, 1, 8, 8))
    with pytest.raises(ValueError, match=f"images: expected values on a {SCALE}"):
        random_brightness_contrast(images, rng=0)  # the mean overflows


def _flow(kind, context_dim=0):
    build = realnvp if kind == "realnvp" else maf
    f = build(2, 2, [8], rng=0, context_dim=context_dim, standardize=False)
    for _, p, _ in f.named_parameters():
        p[...] = 0.3 * np.random.default_rng(1).standard_normal(p.shape)
    return f


@pytest.mark.parametrize("kind", ["realnvp", "maf"])
@pytest.mark.parametrize("conditional", [False, True])
def test_a_flow_on_huge_finite_input_raises_instead_of_nan(kind, conditional, rng):
    """|x| ~ 1e308 overflowed a coupling (NaN log_prob); |x| >= 1e154 gave NaN gradients."""
    f = _flow(kind, 2 if conditional else 0)
    x = rng.standard_normal((6, 2))
    c = rng.standard_normal((6, 2)) if conditional else None
    for scale in (1e154, 1e200, 1e308):
        for call in (f.log_prob, f.log_prob_and_grad, f.grad_log_prob):
            try:
                out = call(scale * x, c)
            except ValueError as exc:
                assert str(exc).startswith(f"x: expected values on a {SCALE}"), str(exc)
                continue
            for o in (out if isinstance(out, tuple) else (out,)):
                assert o is None or not np.isnan(o).any(), (call.__name__, scale)
    with pytest.raises(ValueError, match=f"x: expected values on a {SCALE}"):
        f.log_prob(1e308 * x, c)
    if conditional:                                  # a huge context is blamed, not x
        with pytest.raises(ValueError, match=f"context: expected values on a {SCALE}"):
            f.log_prob_and_grad(x, c * (1e308 / np.max(np.abs(c))))
    # ordinary input is untouched: same values as the chain's own pieces
    z, log_det = f.forward(x, c)
    np.testing.assert_allclose(f.log_prob(x, c), normal_log_prob(z) + log_det, rtol=1e-14)


def test_realnvp_gradients_at_1e154_raise_instead_of_nan(rng):
    f = _flow("realnvp")
    with pytest.raises(ValueError, match=f"x: expected values on a {SCALE}"):
        f.log_prob_and_grad(1e154 * rng.standard_normal((6, 2)))


# -- 4. matrices that must be symmetric positive definite ---------------------------------------
def test_gmm_precisions_init_must_be_symmetric_positive_definite(rng):
    from nprefgen.models import GaussianMixture

    X = rng.standard_normal((40, 2))
    asym = np.array([[[2.0, 0.5], [0.0, 2.0]], [[1.0, 0.0], [0.0, 1.0]]])
    with pytest.raises(ValueError, match=r"precisions_init\[0\]: expected a symmetric matrix"):
        GaussianMixture(2, precisions_init=asym).fit(X, rng=0)
    indefinite = np.array([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match=r"precisions_init\[1\]: expected a positive definite"):
        GaussianMixture(2, precisions_init=indefinite).fit(X, rng=0)
    # a product that is symmetric only to rounding is accepted, as the same symmetric matrix
    a = rng.standard_normal((2, 2, 2))
    near = a @ np.swapaxes(a, 1, 2) + np.eye(2)
    near[0, 0, 1] *= 1 + 1e-13
    fitted = GaussianMixture(2, precisions_init=near, max_iter=1).fit(X, rng=0)
    exact = GaussianMixture(2, precisions_init=0.5 * (near + np.swapaxes(near, 1, 2)),
                            max_iter=1).fit(X, rng=0)
    np.testing.assert_array_equal(fitted.means_, exact.means_)


def test_cosmology_likelihood_covariance_must_be_symmetric():
    """A non-symmetric cov was accepted (Cholesky reads one triangle, inv uses both): the
    normaliser and the quadratic form then described different matrices."""
    from nprefgen.sbi.cosmology import GaussianSummaryLikelihood

    cov = np.diag(np.full(5, 0.04))
    cov[0, 1] = 0.01
    with pytest.raises(ValueError, match="cov: expected a symmetric matrix"):
        GaussianSummaryLikelihood(lambda t, jacobian=True: None, cov)
    with pytest.raises(ValueError, match="cov: expected a positive definite"):
        GaussianSummaryLikelihood(lambda t, jacobian=True: None, -np.eye(5))


# -- 7. absurd sizes refused up front, in well under a second -----------------------------------
def _absurd_calls():
    from nprefgen.data import toys
    from nprefgen.flows import realnvp
    from nprefgen.metrics.c2st import c2st
    from nprefgen.models import GaussianDensity, GaussianMixture
    from nprefgen.models.kmeans import kmeans_plusplus
    from nprefgen.nn import MLP, Linear
    from nprefgen.nn.conv import Conv2d, ConvTranspose2d
    from nprefgen.sbi.posterior import DirectPosterior, MCMCPosterior
    from nprefgen.sbi.priors import BoxUniform

    big = 10 ** 12
    X = np.random.default_rng(0).standard_normal((20, 2))
    prior = BoxUniform(-np.ones(2), np.ones(2))
    flow = realnvp(2, 2, [4], rng=0, context_dim=1, standardize=False)
    direct = DirectPosterior(flow, prior)
    mcmc = MCMCPosterior(prior, lambda t, x: -np.sum(t * t, axis=1), 1, n_chains=2)
    gmm = GaussianMixture(2).fit(X, rng=0)
    return [
        ("in_features x out_features", lambda: Linear(10 ** 6, 10 ** 6)),
        ("in_channels x out_channels", lambda: Conv2d(10 ** 5, 10 ** 5, 3)),
        ("in_channels x out_channels", lambda: ConvTranspose2d(10 ** 5, 10 ** 5, 3)),
        ("hidden", lambda: MLP(2, [10 ** 6, 10 ** 6], 1)),
        ("hidden", lambda: MLP(2, range(1, 10 ** 9), 1)),        # 10**9 layers
        ("n_components", lambda: GaussianMixture(10).fit(
            np.random.default_rng(0).standard_normal((12, 10 ** 5)), rng=0)),
        ("n", lambda: gmm.sample(big, rng=0)),
        ("n_local_trials", lambda: kmeans_plusplus(X, 2, rng=0, n_local_trials=big)),
        ("n", lambda: toys.sample_two_moons(big, rng=0)),
        ("n", lambda: toys.sample_rings(big, rng=0)),
        ("n", lambda: toys.sample_checkerboard(big, rng=0)),
        ("n", lambda: toys.sample_8gaussians(big, rng=0)),
        ("n", lambda: toys.sample_pinwheel(big, rng=0)),
        ("n_side", lambda: toys.sample_checkerboard(5, rng=0, n_side=10 ** 6)),
        ("n_modes", lambda: toys.eight_gaussians_means(big)),
        ("x", lambda: c2st(np.zeros((5, 10 ** 5)), np.ones((5, 10 ** 5)), rng=0)),
        ("n", lambda: direct.sample(big, np.zeros(1), rng=0)),
        ("n", lambda: direct.sample_batched(10 ** 9, np.zeros((1000, 1)), rng=0)),
        ("n", lambda: direct.estimate_acceptance(np.zeros(1), rng=0, n=big)),
        ("n", lambda: mcmc.sample(big, np.zeros(1), rng=0)),
        ("n", lambda: flow.sample(big, np.zeros(1), rng=0)),
        ("n", lambda: GaussianDensity().fit(X).sample(big, rng=0)),
    ]


def test_absurd_sizes_are_refused_up_front_with_the_reason(alarm):
    alarm(30)
    for name, call in _absurd_calls():
        start = time.perf_counter()
        with pytest.raises(ValueError, match=f"^{name}.*: expected a size that fits in memory"):
            call()
        assert time.perf_counter() - start < 0.5, name


# -- 1. the tour's report writes atomically -----------------------------------------------------
def test_a_failed_report_write_leaves_the_old_page_and_figure(tmp_path, monkeypatch):
    """index.html and the figures were opened in place: a write that failed midway left a
    truncated file where the previous tour's page was."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import nprefgen.nn.io as nio
    from nprefgen.tour.report import Report

    rep = Report(tmp_path, seed=0)
    rep.begin("a", "A")
    rep.text("first")
    fig = plt.figure()
    fname = rep.figure(fig, "f")
    index = rep.write()
    old_page, old_png = open(index, "rb").read(), (tmp_path / fname).read_bytes()

    class Broken:                                # writes half a figure, then fails
        def savefig(self, f, **kw):
            f.write(b"\x89PNG half")
            raise OSError("disk full")

    rep.text("second")
    with pytest.raises(OSError, match="disk full"):
        rep.figure(Broken(), "f")

    def no_fsync(fd):
        raise OSError("no space left on device")

    monkeypatch.setattr(nio.os, "fsync", no_fsync)
    with pytest.raises(OSError, match="no space"):
        rep.write()
    assert open(index, "rb").read() == old_page
    assert (tmp_path / fname).read_bytes() == old_png
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fname, "index.html"])


@pytest.mark.parametrize("kind", ["realnvp", "maf"])
def test_a_flow_inverse_of_huge_finite_z_blames_its_scale(kind, rng):
    """The chain's next bijector said 'z: expected finite values' about a finite z."""
    f = _flow(kind)
    z = rng.standard_normal((6, 2))
    for scale in (1e200, 1e300):
        try:
            x, log_det_inv = f.inverse(z * (scale / np.max(np.abs(z))))
        except ValueError as exc:
            assert str(exc).startswith(f"z: expected values on a {SCALE}"), str(exc)
        else:
            assert np.isfinite(x).all() and np.isfinite(log_det_inv).all()
    with pytest.raises(ValueError, match=f"z: expected values on a {SCALE}"):
        f.inverse(z * (1e308 / np.max(np.abs(z))))
    x, _ = f.inverse(z)
    np.testing.assert_allclose(f.forward(x)[0], z, atol=1e-12)


# -- 4. more fitted models on finite data that overflows inside ---------------------------------
def test_knn_on_huge_features_blames_their_scale_or_is_scale_free(rng):
    """An overflowed std scaled every feature to 0 (all neighbours tied, silently); cosine
    distances are scale-free and now stay so at |F| ~ 1e200."""
    from nprefgen.models.probe import KNNClassifier

    F, y = rng.standard_normal((30, 4)), np.arange(30) % 3
    for standardize in (False, True):
        with pytest.raises(ValueError, match=f"F: expected values on a {SCALE}"):
            KNNClassifier(k=3, standardize=standardize).fit(1e200 * F, y)
    knn = KNNClassifier(k=3).fit(F, y)
    with pytest.raises(ValueError, match=f"F: expected values on a {SCALE}"):
        knn.kneighbors(1e200 * F)
    cos = KNNClassifier(k=3, metric="cosine")
    np.testing.assert_array_equal(cos.fit(1e200 * F, y).kneighbors(1e200 * F),
                                  KNNClassifier(k=3, metric="cosine").fit(F, y).kneighbors(F))


def test_gaussian_density_on_huge_data_blames_its_scale(rng):
    """The conditional fit gave NaN log-densities from finite data at |y| ~ 1e154."""
    from nprefgen.models import GaussianDensity

    y = rng.standard_normal((30, 4))
    with pytest.raises(ValueError, match=f"y: expected values on a {SCALE}"):
        GaussianDensity().fit(1e154 * y[:, :2], y[:, 2:])
    with pytest.raises(ValueError, match=f"context: expected values on a {SCALE}"):
        GaussianDensity().fit(y[:, :2], 1e200 * y[:, 2:])
    with pytest.raises(ValueError, match=f"y: expected values on a {SCALE}"):
        GaussianDensity().fit(1e200 * y)
    fitted = GaussianDensity().fit(np.random.default_rng(0).standard_normal((12, 2)))
    with pytest.raises(ValueError, match=f"y: expected values on a {SCALE}"):    # was NaN (fuzz)
        fitted.log_prob(np.array([[3.30437076e307, -1.30315723e308], [0.0, 0.0]]))
    assert np.isneginf(fitted.log_prob(np.array([[1e200, 1e200]])))[0]    # correctly rounded


def test_absurd_field_sizes_are_refused_up_front(alarm):
    from nprefgen.data.grf import field_variance, gaussian_random_field, power_law
    from nprefgen.sbi.cosmology import CosmologyGRFSimulator

    alarm(30)
    for name, call in [
            ("n_side", lambda: gaussian_random_field(10 ** 6, power_law(), rng=0)),
            ("n_fields", lambda: gaussian_random_field(64, power_law(), rng=0, n_fields=10 ** 9)),
            ("n_side", lambda: field_variance(power_law(), 10 ** 6)),
            ("n_side", lambda: CosmologyGRFSimulator(n_side=10 ** 6))]:
        start = time.perf_counter()
        with pytest.raises(ValueError, match=f"^{name}: expected a size that fits in memory"):
            call()
        assert time.perf_counter() - start < 0.5, name
