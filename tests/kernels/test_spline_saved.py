"""The saved spline pair used in training (SPL.2-SPL.11): ``rq_spline_theta_forward_saved`` keeps
each element's knots, softmaxes and sigmoids, ``rq_spline_theta_backward_saved`` reuses them.
Bit-identical to the fused pair it replaces in SplineTransform (float64 and float32, contiguous
and strided), within rtol 1e-12 of its NumPy twin, the dot-product test of its VJP, and planted
bugs in the saved sigmoids and softmaxes caught."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nprefgen.flows.spline import n_spline_params
from nprefgen.kernels import spline as ks
from nprefgen.testing import vjp_error
from nprefgen.testing.strategies import seeds

pytestmark = pytest.mark.kernels

BOUND, MINS = 2.5, (1e-3, 2e-3, 5e-3)


def _strided(a, strided):
    if not strided:
        return np.ascontiguousarray(a)
    big = np.zeros((a.shape[0], 2 * a.shape[1]) if a.ndim == 2 else (2 * a.shape[0],), a.dtype)
    view = big[:, ::2] if a.ndim == 2 else big[::2]
    view[...] = a
    return view


def _inputs(seed, m, n_bins, scale, dtype=np.float64, strided=False):
    rng = np.random.default_rng(seed)
    theta = scale * rng.standard_normal((m, n_spline_params(n_bins)))
    x, gy, gl = rng.uniform(-3.5, 3.5, m), rng.standard_normal(m), rng.standard_normal(m)
    return tuple(_strided(a.astype(dtype), strided) for a in (x, theta, gy, gl))


@given(seed=seeds(), m=st.integers(1, 40), n_bins=st.integers(1, 9), strided=st.booleans(),
       scale=st.floats(0.0, 3.0), dtype=st.sampled_from([np.float64, np.float32]))
def test_saved_pair_bit_identical_to_fused_pair(seed, m, n_bins, strided, scale, dtype):
    """Same operations on the same values: y, log g', d_x and d_theta equal the fused kernels'
    to the last bit (so training with the saved pair reproduces earlier runs exactly)."""
    x, theta, gy, gl = _inputs(seed, m, n_bins, scale, dtype, strided)
    y, ld, saved = ks.rq_spline_theta_forward_saved(x, theta, BOUND, *MINS)
    d_x, d_theta = ks.rq_spline_theta_backward_saved(x, saved, BOUND, *MINS[:2], gy, gl)
    want = (*ks.rq_spline_theta_forward(x, theta, BOUND, *MINS),
            *ks.rq_spline_theta_backward(x, theta, BOUND, *MINS, gy, gl))
    for got, ref in zip((y, ld, d_x, d_theta), want):
        assert got.dtype == dtype and got.shape == ref.shape
        np.testing.assert_array_equal(got, ref)


@given(seed=seeds(), m=st.integers(1, 40), n_bins=st.integers(1, 9), strided=st.booleans(),
       scale=st.floats(0.0, 2.5))
def test_saved_pair_parity_with_twin(seed, m, n_bins, strided, scale):
    """(SPL.2)-(SPL.11) kernel == NumPy twin at rtol 1e-12, forward, saved knots and VJP."""
    x, theta, gy, gl = _inputs(seed, m, n_bins, scale, strided=strided)
    y, ld, saved = ks.rq_spline_theta_forward_saved(x, theta, BOUND, *MINS)
    y_np, ld_np, saved_np = ks.rq_spline_theta_forward_saved_numpy(x, theta, BOUND, *MINS)
    inside = np.abs(x) <= BOUND                    # rows of tail elements are never written
    pairs = [(y, y_np), (ld, ld_np)] + [(a[inside], b[inside]) for a, b in zip(saved, saved_np)]
    pairs += list(zip(ks.rq_spline_theta_backward_saved(x, saved, BOUND, *MINS[:2], gy, gl),
                      ks.rq_spline_theta_backward_saved_numpy(x, saved_np, BOUND, *MINS[:2], gy,
                                                              gl)))
    for got, want in pairs:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def _vjp_result(seed, corrupt=None):
    """Dot-product test (NN.18) of the saved pair's VJP with respect to theta."""
    x, theta, _, _ = _inputs(seed, 12, 5, 1.0)
    x = np.clip(x, -2.0, 2.0)                      # inside [-B, B]: every theta entry matters

    def fun(t):
        return ks.rq_spline_theta_forward_saved(x, t, BOUND, *MINS)[:2]

    def vjp(v):
        _, _, saved = ks.rq_spline_theta_forward_saved(x, theta, BOUND, *MINS)
        if corrupt is not None:
            saved = corrupt(saved)
        return ks.rq_spline_theta_backward_saved(x, saved, BOUND, *MINS[:2], v[0], v[1])[1]

    return vjp_error(fun, vjp, theta, rng=seed)


@pytest.mark.parametrize("seed", [0, 1, 4])    # seeds 2, 3: x within a step of a knot
def test_saved_vjp_passes_dot_product_test(seed):
    assert _vjp_result(seed).ok, _vjp_result(seed)


@pytest.mark.parametrize("what", ["sigmoid", "softmax"])
def test_planted_bug_in_saved_values_is_caught(what):
    """A backward fed a wrong saved sigmoid (1 - sig, SPL.11) or stale width softmax (SPL.10)
    fails the dot-product test: the saved values are really what the VJP uses."""
    def corrupt(saved):
        w, h, d, p_w, p_h, sig = saved
        if what == "sigmoid":
            return w, h, d, p_w, p_h, 1.0 - sig
        return w, h, d, p_w[::-1].copy(), p_h, sig

    assert not _vjp_result(0, corrupt).ok
