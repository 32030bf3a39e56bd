"""Parity of the affine coupling kernels with their NumPy twins (FLOW.5-FLOW.9), contiguous and
strided inputs at rtol 1e-12, and the dot-product test of the twin's VJP (FLOW.9)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.kernels.coupling import (
    affine_coupling_backward, affine_coupling_backward_numpy, affine_coupling_forward,
    affine_coupling_forward_numpy, affine_coupling_inverse, affine_coupling_inverse_numpy,
    soft_clamp_numpy,
)
from nprefgen.testing.gradcheck import check_vjp
from nprefgen.testing.strategies import batch_shapes, strided_arrays

pytestmark = pytest.mark.kernels

bounds = st.sampled_from([0.0, 0.5, 2.0, 3.0])


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13 * max(1.0, float(np.max(np.abs(b)))))


@given(batch_shapes(max_batch=7, max_features=7), bounds, st.data())
def test_forward_inverse_parity(shape, bound, data):
    """(FLOW.5)-(FLOW.8) numba == NumPy on strided views (column slices, transposes) and copies."""
    x_b, raw_s, t = (data.draw(strided_arrays(shape, scale=1.5)) for _ in range(3))
    for args in ((x_b, raw_s, t), tuple(np.ascontiguousarray(a) for a in (x_b, raw_s, t))):
        for fast, slow in ((affine_coupling_forward, affine_coupling_forward_numpy),
                           (affine_coupling_inverse, affine_coupling_inverse_numpy)):
            got, ref = fast(*args, bound), slow(*args, bound)
            _close(got[0], ref[0])
            _close(got[1], ref[1])


@given(batch_shapes(max_batch=7, max_features=7), bounds, st.data())
def test_backward_parity(shape, bound, data):
    """(FLOW.9) numba == NumPy for d_x_B, d_raw_s and d_t."""
    x_b, raw_s, d_y = (data.draw(strided_arrays(shape, scale=1.5)) for _ in range(3))
    d_ld = data.draw(strided_arrays((shape[0],)))
    got = affine_coupling_backward(x_b, raw_s, bound, d_y, d_ld)
    ref = affine_coupling_backward_numpy(x_b, raw_s, bound, d_y, d_ld)
    for g, r in zip(got, ref):
        _close(g, r)


def test_half_split_column_views(rng):
    """The coupling feeds the kernel column slices of one (n, 2 d_B) conditioner output."""
    h = rng.standard_normal((9, 8))
    x = rng.standard_normal((9, 8))
    args = (x[:, 1::2], h[:, :4], h[:, 4:])
    for fast, slow in ((affine_coupling_forward, affine_coupling_forward_numpy),
                       (affine_coupling_inverse, affine_coupling_inverse_numpy)):
        for g, r in zip(fast(*args, 2.0), slow(*args, 2.0)):
            _close(g, r)


@pytest.mark.parametrize("bound", [0.0, 1.5])
def test_twin_vjp_dot_product(rng, bound):
    """(FLOW.9) the VJP is the transpose of the Jacobian of (FLOW.5)-(FLOW.7): dot-product test
    over the packed input (x_B, raw_s, t)."""
    n, d = 5, 3
    x0 = rng.standard_normal((3, n, d))
    d_ld_probe = rng.standard_normal(n)

    def fun(p):
        y, ld = affine_coupling_forward_numpy(p[0], p[1], p[2], bound)
        return y, ld

    def vjp(v):
        d_y, d_ld = v
        d_x, d_raw, d_t = affine_coupling_backward_numpy(x0[0], x0[1], bound, d_y, d_ld)
        return np.stack([d_x, d_raw, d_t])

    check_vjp(fun, vjp, x0, rng=rng, n_directions=3)
    # the kernel gives the same VJP
    d_y = rng.standard_normal((n, d))
    for g, r in zip(affine_coupling_backward(x0[0], x0[1], bound, d_y, d_ld_probe),
                    affine_coupling_backward_numpy(x0[0], x0[1], bound, d_y, d_ld_probe)):
        _close(g, r)


def test_soft_clamp_bounds_the_scale():
    """(FLOW.6) |s| < b, s ~ raw_s near zero, and the derivative 1 - (s/b)^2."""
    raw = np.array([[-100.0, -1e-3, 0.0, 1e-3, 100.0]])
    s, ds = soft_clamp_numpy(raw, 2.0)
    assert np.all(np.abs(s) <= 2.0)
    np.testing.assert_allclose(s[0, 1:4], raw[0, 1:4], rtol=1e-6)
    np.testing.assert_allclose(ds, 1.0 - np.tanh(raw / 2.0) ** 2, rtol=1e-14)
    s0, ds0 = soft_clamp_numpy(raw, 0.0)
    assert s0 is raw and np.all(ds0 == 1.0)


def test_wrong_kernel_vjp_is_caught(rng):
    """A VJP that drops the d_log_det term of d_s (FLOW.9) fails the dot-product test."""
    x0 = rng.standard_normal((3, 4, 2))

    def fun(p):
        return affine_coupling_forward_numpy(p[0], p[1], p[2], 0.0)

    def bad_vjp(v):
        d_y, d_ld = v
        d_x, d_raw, d_t = affine_coupling_backward_numpy(x0[0], x0[1], 0.0, d_y, 0.0 * d_ld)
        return np.stack([d_x, d_raw, d_t])

    with pytest.raises(AssertionError, match="dot-product"):
        check_vjp(fun, bad_vjp, x0, rng=rng)
