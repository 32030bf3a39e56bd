"""The fused tanh VJP + bias gradient kernel (NN.6, NN.2c; nprefgen/kernels/tanh_bias.py): parity
with its NumPy twin on strided and contiguous inputs (rtol 1e-12; bit for bit on contiguous ones,
the row order of the sum being the same), float32 kept, the dot-product test of the pair
(a, b) -> tanh(x W^T + b) against finite differences, and a planted bug caught."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.kernels.tanh_bias import tanh_backward_bias, tanh_backward_bias_numpy
from nprefgen.testing.gradcheck import check_vjp, vjp_error
from nprefgen.testing.strategies import strided_arrays

pytestmark = pytest.mark.kernels


@given(st.integers(1, 7), st.integers(1, 6), st.data())
def test_parity_strided_and_contiguous(n, h, data):
    y = np.tanh(data.draw(strided_arrays((n, h), scale=2.0)))
    d_y = data.draw(strided_arrays((n, h)))
    (d_a, d_b), (ref_a, ref_b) = tanh_backward_bias(y, d_y), tanh_backward_bias_numpy(y, d_y)
    assert d_a.shape == (n, h) and d_b.shape == (h,)
    np.testing.assert_allclose(d_a, ref_a, rtol=1e-12, atol=0)
    # a strided array's column sum may run in another order: n rounding errors of eps |d_a|
    bound = n * np.finfo(np.float64).eps * np.abs(ref_a).sum(axis=0)
    assert np.all(np.abs(d_b - ref_b) <= bound), (d_b, ref_b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(200, 50), (1, 3), (37, 5), (513, 64)])
def test_bit_identical_to_numpy_on_contiguous_inputs(rng, dtype, shape):
    """The MADE's training path relies on it: same values as ``d_y * (1 - y*y)`` and
    ``.sum(axis=0)``, bit for bit, float32 computed in float32."""
    y = np.tanh(2 * rng.standard_normal(shape)).astype(dtype)
    d_y = rng.standard_normal(shape).astype(dtype)
    (d_a, d_b), (ref_a, ref_b) = tanh_backward_bias(y, d_y), tanh_backward_bias_numpy(y, d_y)
    assert d_a.dtype == d_b.dtype == dtype
    np.testing.assert_array_equal(d_a, ref_a)
    np.testing.assert_array_equal(d_b, ref_b)


def _layer(rng):
    x, w = rng.standard_normal((6, 4)), rng.standard_normal((5, 4))
    return x, w


def test_dot_product_test_of_the_bias_gradient(rng):
    """(NN.6)+(NN.2c) with y = tanh(x W^T + b): d_b from the kernel is J_b^T v (finite
    differences in b), and d_a @ W is J_x^T v."""
    x, w = _layer(rng)
    b = rng.standard_normal(5)
    check_vjp(lambda bb: np.tanh(x @ w.T + bb),
              lambda v: tanh_backward_bias(np.tanh(x @ w.T + b), v)[1], b, rng=rng)
    check_vjp(lambda xx: np.tanh(xx @ w.T + b),
              lambda v: tanh_backward_bias(np.tanh(x @ w.T + b), v)[0] @ w, x, rng=rng)


def test_planted_bug_is_caught(rng):
    """A kernel using 1 - y instead of 1 - y^2 (or summing over the wrong rows) fails the test."""
    x, w = _layer(rng)
    b = rng.standard_normal(5)
    y = np.tanh(x @ w.T + b)
    wrong_derivative = vjp_error(lambda bb: np.tanh(x @ w.T + bb),
                                 lambda v: (v * (1.0 - y)).sum(axis=0), b, rng=rng)
    wrong_rows = vjp_error(lambda bb: np.tanh(x @ w.T + bb),
                           lambda v: tanh_backward_bias(y[:-1], v[:-1])[1], b, rng=rng)
    assert not wrong_derivative.ok and not wrong_rows.ok


@pytest.mark.parametrize("dt_y, dt_d", [(np.float32, np.float64), (np.float64, np.float32)])
def test_mixed_dtypes_match_the_twin(rng, dt_y, dt_d):
    """Mixed float32/float64 arguments: 1 - y^2 in y's precision, the product in the wider one,
    exactly as NumPy evaluates the twin (a `one` in the output dtype rounded differently)."""
    y = np.tanh(rng.standard_normal((7, 5))).astype(dt_y)
    d_y = rng.standard_normal((7, 5)).astype(dt_d)
    for got, want in zip(tanh_backward_bias(y, d_y), tanh_backward_bias_numpy(y, d_y)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
