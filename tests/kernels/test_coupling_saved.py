"""The saved-scale affine coupling pair used in training (FLOW.5-FLOW.9): the NumPy forward that
also returns s and e = exp(s), and the backward kernel from (s, e) with its NumPy twin. Parity on
contiguous and strided inputs at rtol 1e-12, agreement with the raw_s-based oracles, the
dot-product test of the composed VJP, and a broken VJP caught."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.kernels.coupling import (
    affine_coupling_backward_numpy, affine_coupling_backward_saved,
    affine_coupling_backward_saved_numpy, affine_coupling_forward_numpy,
    affine_coupling_forward_saved,
)
from nprefgen.testing.gradcheck import check_vjp
from nprefgen.testing.strategies import batch_shapes, strided_arrays

pytestmark = pytest.mark.kernels

bounds = st.sampled_from([0.0, 0.5, 3.0])


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13 * max(1.0, float(np.max(np.abs(b)))))


@given(batch_shapes(max_batch=7, max_features=7), bounds, st.data())
def test_saved_pair_parity(shape, bound, data):
    """(FLOW.5)-(FLOW.9) forward_saved == the forward oracle; backward_saved kernel == its twin ==
    the raw_s-based oracle, on strided views and contiguous copies."""
    x_b, raw_s, t, d_y = (data.draw(strided_arrays(shape, scale=1.5)) for _ in range(4))
    d_ld = data.draw(strided_arrays((shape[0],)))
    for args in ((x_b, raw_s, t), tuple(np.ascontiguousarray(a) for a in (x_b, raw_s, t))):
        y_b, log_det, s, e = affine_coupling_forward_saved(*args, bound)
        ref_y, ref_ld = affine_coupling_forward_numpy(*args, bound)
        _close(y_b, ref_y)
        _close(log_det, ref_ld)
        _close(e, np.exp(s))
        ref = affine_coupling_backward_numpy(args[0], args[1], bound, d_y, d_ld)
        for got in (affine_coupling_backward_saved(args[0], s, e, bound, d_y, d_ld),
                    affine_coupling_backward_saved_numpy(args[0], s, e, bound, d_y, d_ld)):
            for g, r in zip(got, ref):
                _close(g, r)


def test_saved_pair_float32_and_column_views(rng):
    """float32 in, float32 out, close to the float64 result; the conditioner's column views
    (raw_s, t halves of one (n, 2 d_B) output) are accepted without copies by the caller."""
    h, x = rng.standard_normal((9, 8)), rng.standard_normal((9, 8))
    d_y, d_ld = rng.standard_normal((9, 4)), rng.standard_normal(9)
    args64 = (x[:, 1::2], h[:, :4], h[:, 4:])
    args32 = tuple(a.astype(np.float32) for a in args64)
    f64, f32 = affine_coupling_forward_saved(*args64, 3.0), affine_coupling_forward_saved(*args32, 3.0)
    b64 = affine_coupling_backward_saved(args64[0], f64[2], f64[3], 3.0, d_y, d_ld)
    b32 = affine_coupling_backward_saved(args32[0], f32[2], f32[3], 3.0, d_y.astype(np.float32),
                                         d_ld.astype(np.float32))
    for a, b in zip(f32 + b32, f64 + b64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("bound", [0.0, 1.5])
def test_saved_vjp_dot_product(rng, bound):
    """(FLOW.9) backward_saved is the transpose of the Jacobian of (FLOW.5)-(FLOW.7) over the packed
    input (x_B, raw_s, t), and the dot-product test catches a dropped d_log_det term."""
    x0 = rng.standard_normal((3, 5, 3))
    _, _, s, e = affine_coupling_forward_saved(x0[0], x0[1], x0[2], bound)

    def fun(p):
        return affine_coupling_forward_saved(p[0], p[1], p[2], bound)[:2]

    def vjp(v, drop_log_det=False):
        d_y, d_ld = v
        out = affine_coupling_backward_saved(x0[0], s, e, bound, d_y, 0.0 * d_ld if drop_log_det
                                             else d_ld)
        return np.stack(out)

    check_vjp(fun, vjp, x0, rng=rng, n_directions=3)
    with pytest.raises(AssertionError, match="dot-product"):
        check_vjp(fun, lambda v: vjp(v, drop_log_det=True), x0, rng=rng)
