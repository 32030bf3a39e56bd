"""Denoising score matching loss and gradient: kernel vs NumPy twin, the formula written out,
the dot-product test (derivations/score.md, SCORE.5-SCORE.6)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nprefgen.kernels.dsm import dsm_loss, dsm_loss_numpy
from nprefgen.testing import gradcheck
from nprefgen.testing.strategies import batch_shapes, seeds, strided_arrays

pytestmark = pytest.mark.kernels


@given(shape=batch_shapes(1, 12, 1, 6), data=st.data(), dtype=st.sampled_from([np.float64, np.float32]))
def test_dsm_parity(shape, data, dtype):
    """(SCORE.5), (SCORE.6) numba kernel == NumPy twin at rtol 1e-12, contiguous, strided and
    float32 inputs (both compute in float64)."""
    s = data.draw(strided_arrays(shape)).astype(dtype, copy=False)
    z = data.draw(strided_arrays(shape)).astype(dtype, copy=False)
    sigma = np.exp(data.draw(strided_arrays((shape[0],))))[::1]
    l_ref, g_ref = dsm_loss_numpy(s, z, sigma)
    l_fast, g_fast = dsm_loss(s, z, sigma)
    assert l_fast == pytest.approx(l_ref, rel=1e-12)
    assert g_fast.dtype == np.float64 and g_fast.shape == shape
    np.testing.assert_allclose(g_fast, g_ref, rtol=1e-12, atol=1e-300)


def test_dsm_strided_views_agree_with_copies(rng):
    """A non-contiguous view gives the bits of its contiguous copy."""
    big_s, big_z = rng.standard_normal((2, 20, 8))
    s, z, sigma = big_s[::2, 1::2], big_z[::2, ::2], np.exp(rng.standard_normal(40))[::4]
    for f in (dsm_loss, dsm_loss_numpy):
        l1, g1 = f(s, z, sigma)
        l2, g2 = f(np.ascontiguousarray(s), np.ascontiguousarray(z), np.ascontiguousarray(sigma))
        assert l1 == l2
        np.testing.assert_array_equal(g1, g2)


def test_dsm_formula_written_out(rng):
    """(SCORE.5) lambda(sigma)/2 ||s + z/sigma||^2 with lambda = sigma^2, averaged, row by row."""
    s, z = rng.standard_normal((2, 7, 3))
    sigma = rng.uniform(0.01, 3.0, size=7)
    want = np.mean([sg**2 / 2 * np.sum((si + zi / sg) ** 2) for si, zi, sg in zip(s, z, sigma)])
    for f in (dsm_loss, dsm_loss_numpy):
        assert f(s, z, sigma)[0] == pytest.approx(want, rel=1e-13)
    # a scalar sigma is every row's level
    assert dsm_loss(s, z, 0.5)[0] == pytest.approx(dsm_loss(s, z, np.full(7, 0.5))[0], rel=1e-15)
    # the exact denoiser of a point mass at 0: s = -x~/sigma^2 = -z/sigma gives zero loss
    x_tilde = sigma[:, None] * z
    assert dsm_loss(-x_tilde / sigma[:, None] ** 2, z, sigma)[0] == pytest.approx(0.0, abs=1e-28)


@given(seed=seeds(), n=st.integers(1, 6), d=st.integers(1, 4))
def test_dsm_gradient_dot_product(seed, n, d):
    """(SCORE.6) the dot-product test of dL/ds against central differences (rtol 1e-8)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d))
    sigma = np.exp(rng.uniform(-3, 1, size=n))
    s = rng.standard_normal((n, d)) / sigma[:, None]
    for f in (dsm_loss_numpy, dsm_loss):
        gradcheck(lambda s_: f(s_, z, sigma)[0], lambda s_: f(s_, z, sigma)[1], s, rng=rng)


def test_dsm_wrong_weighting_is_caught(rng):
    """The check can fail: the gradient of the unweighted loss is not that of (SCORE.5)."""
    z = rng.standard_normal((4, 2))
    sigma = np.array([0.1, 0.5, 1.0, 2.0])
    s = rng.standard_normal((4, 2))
    wrong = lambda s_: (s_ + z / sigma[:, None]) / 4           # lambda = 1
    with pytest.raises(AssertionError, match="dot-product test failed"):
        gradcheck(lambda s_: dsm_loss(s_, z, sigma)[0], wrong, s, rng=rng)


@pytest.mark.parametrize("f", [dsm_loss, dsm_loss_numpy])
@pytest.mark.parametrize("args, match", [
    ((np.zeros((3, 2)), np.zeros((3, 2)), np.array([1.0, 0.0, 1.0])), "sigma"),
    ((np.zeros((3, 2)), np.zeros((3, 2)), -1.0), "sigma"),
    ((np.zeros((3, 2)), np.zeros((3, 2)), np.ones(2)), "sigma"),
    ((np.zeros((3, 2)), np.zeros((3, 3)), 1.0), "z"),
    ((np.full((3, 2), np.nan), np.zeros((3, 2)), 1.0), "s"),
])
def test_dsm_bad_input(f, args, match):
    with pytest.raises(ValueError, match=f"^{match}:"):
        f(*args)
