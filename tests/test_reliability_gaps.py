"""The gaps the first reliability pass left (issue 13; the KNOWN table of tests/test_fuzz.py).

4. Odd dtypes and finite input that overflows inside: the pure functions that had no check_array
   (normal_log_prob, logit_inverse, pairwise_sq_distances, the ABC bandwidths) and the overflows
   that gave NaN (pairwise distances, brightness/contrast, a flow's couplings and gradients).
4. Matrices that must be symmetric positive definite: GaussianMixture's precisions_init, the
   Gaussian likelihood's covariance in the cosmology simulator.
7. Absurd sizes refused up front: layer widths, mixtures, k-means, toys, C2ST, posterior sampling.
"""
from __future__ import annotations

import signal
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


@pytest.fixture
def alarm():
    """Fail instead of hanging: a SIGALRM after the given seconds (POSIX main thread only)."""
    if not hasattr(signal, "SIGALRM"):
        pytest.skip("needs SIGALRM")

    def handler(signum, frame):
        raise TimeoutError("hung")

    old = signal.signal(signal.SIGALRM, handler)
    yield lambda seconds: signal.alarm(seconds)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


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
