"""The masked-layer kernels of the MADE's training path (NN.1-NN.3, NN.6;
nprefgen/kernels/masked_layer.py): parity with the NumPy twins on strided and contiguous inputs,
bit for bit on contiguous float64 and float32 ones (the MADE's training stays bit-identical), the
dot-product test of a two-layer masked tanh network's parameter gradients assembled from the
kernels, and planted bugs (an unmasked weight gradient, 1 - y for 1 - y^2) caught by it."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.kernels.masked_layer import (
    accumulate_masked, accumulate_masked_numpy, add_bias, add_bias_numpy, join_columns,
    join_columns_numpy, masked_tanh_backward, masked_tanh_backward_numpy, masked_weight,
    masked_weight_numpy,
)
from nprefgen.testing.gradcheck import check_vjp, vjp_error
from nprefgen.testing.strategies import strided_arrays

pytestmark = pytest.mark.kernels

SHAPES = [(200, 50), (200, 4), (1, 3), (37, 5), (513, 64)]


def _mask(rng, shape):
    return (rng.random(shape) < 0.6).astype(np.float64)      # float64 0/1, as MADE keeps it



@given(st.integers(1, 7), st.integers(1, 6), st.integers(1, 6), st.data())
def test_parity_strided_and_contiguous(n, out, inp, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    w, d_w = data.draw(strided_arrays((out, inp))), data.draw(strided_arrays((out, inp)))
    mask = _mask(rng, (out, inp))
    np.testing.assert_array_equal(masked_weight(w, mask), masked_weight_numpy(w, mask))
    x, c = data.draw(strided_arrays((n, inp))), data.draw(strided_arrays((n, out)))
    np.testing.assert_array_equal(join_columns(x, c), join_columns_numpy(x, c))
    a, b = data.draw(strided_arrays((n, out))), data.draw(strided_arrays((out,)))
    np.testing.assert_array_equal(add_bias(a.copy(), b), add_bias_numpy(a.copy(), b))
    g_w, g_b = rng.standard_normal((out, inp)), rng.standard_normal(out)
    d_b = data.draw(strided_arrays((out,)))
    y = np.tanh(data.draw(strided_arrays((n, inp), scale=2.0)))
    d_h = data.draw(strided_arrays((n, inp)))
    gk, gn = (g_w.copy(), g_b.copy()), (g_w.copy(), g_b.copy())
    accumulate_masked(gk[0], d_w, mask, gk[1], d_b)
    accumulate_masked_numpy(gn[0], d_w, mask, gn[1], d_b)
    for a_k, a_n in zip(gk, gn):
        np.testing.assert_array_equal(a_k, a_n)
    d_a, d_bb = masked_tanh_backward(gk[0], d_w, mask, gk[1], d_b, y, d_h)
    ref_a, ref_bb = masked_tanh_backward_numpy(gn[0], d_w, mask, gn[1], d_b, y, d_h)
    for a_k, a_n in zip(gk, gn):
        np.testing.assert_array_equal(a_k, a_n)
    np.testing.assert_array_equal(d_a, ref_a)
    # a strided array's column sum may run in another order: n rounding errors of eps |d_a|
    assert np.all(np.abs(d_bb - ref_bb) <= n * np.finfo(np.float64).eps * np.abs(ref_a).sum(axis=0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_bit_identical_to_numpy_on_contiguous_inputs(rng, dtype, shape):
    """What the MADE's training path relies on: the same values as NumPy's, bit for bit, float32
    computed in float32 (float32 arrays, float64 masks)."""
    n, h = shape
    out = max(1, h // 2 + 1)
    w = rng.standard_normal((out, h)).astype(dtype)
    mask = _mask(rng, (out, h))
    got = masked_weight(w, mask)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, masked_weight_numpy(w, mask))
    a, b = rng.standard_normal((n, h)).astype(dtype), rng.standard_normal(h).astype(dtype)
    np.testing.assert_array_equal(add_bias(a.copy(), b), add_bias_numpy(a.copy(), b))
    g_w = rng.standard_normal((out, h)).astype(dtype)
    g_b = rng.standard_normal(out).astype(dtype)
    d_w = (1e-3 * rng.standard_normal((out, h))).astype(dtype)   # sums that round
    d_b = rng.standard_normal(out).astype(dtype)
    y = np.tanh(2 * rng.standard_normal((n, h))).astype(dtype)
    d_h = rng.standard_normal((n, h)).astype(dtype)
    gk, gn = (g_w.copy(), g_b.copy()), (g_w.copy(), g_b.copy())
    d_a, d_bb = masked_tanh_backward(gk[0], d_w, mask, gk[1], d_b, y, d_h)
    ref_a, ref_bb = masked_tanh_backward_numpy(gn[0], d_w, mask, gn[1], d_b, y, d_h)
    assert d_a.dtype == d_bb.dtype == gk[0].dtype == dtype
    for x, r in zip((d_a, d_bb, *gk), (ref_a, ref_bb, *gn)):
        np.testing.assert_array_equal(x, r)
    accumulate_masked(gk[0], d_w, mask, gk[1], d_b)
    accumulate_masked_numpy(gn[0], d_w, mask, gn[1], d_b)
    for x, r in zip(gk, gn):
        np.testing.assert_array_equal(x, r)


def test_join_columns_dtypes_and_rows(rng):
    x = rng.standard_normal((4, 2)).astype(np.float32)
    for c in (rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 1))):
        got = join_columns(x, c)
        assert got.dtype == join_columns_numpy(x, c).dtype
        np.testing.assert_array_equal(got, join_columns_numpy(x, c))
    with pytest.raises(ValueError, match="c: expected 4 rows"):
        join_columns(x, np.zeros((3, 2), np.float32))


def test_signed_zeros_and_no_bias(rng):
    """A masked entry times a negative number is -0.0 in both; a layer without bias passes
    length-0 bias arrays."""
    w = -np.ones((2, 2), dtype=np.float32)
    mask = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(np.signbit(masked_weight(w, mask)),
                                  np.signbit(masked_weight_numpy(w, mask)))
    g_w, empty = np.zeros((2, 2)), np.zeros(0)
    accumulate_masked(g_w, -np.ones((2, 2)), mask, empty, empty)
    np.testing.assert_array_equal(g_w, -mask)


# -- gradients: a two-layer masked tanh network, y = tanh(x (M1 W1)^T + b1) (M2 W2)^T + b2 ---------
def _net(rng):
    x = rng.standard_normal((6, 4))
    m1, m2 = _mask(rng, (5, 4)), _mask(rng, (3, 5))
    return x, m1, m2


def _unpack(theta):
    return theta[:20].reshape(5, 4), theta[20:25], theta[25:40].reshape(3, 5), theta[40:43]


def _forward(theta, x, m1, m2):
    w1, b1, w2, b2 = _unpack(theta)
    h = np.tanh(x @ masked_weight(w1, m1).T + b1)
    return h @ masked_weight(w2, m2).T + b2, h


def _grads(theta, x, m1, m2, v, kernels):
    """The parameter gradients J^T v from the kernels (``kernels``: the backward and the
    accumulate function, the kernel pair or a planted bug)."""
    backward, accumulate = kernels
    w1, _, w2, _ = _unpack(theta)
    _, h = _forward(theta, x, m1, m2)
    g = np.zeros_like(theta)
    g_w1, g_b1, g_w2, g_b2 = _unpack(g)
    g_w1, g_w2 = g_w1.reshape(5, 4), g_w2.reshape(3, 5)
    d_a, d_b1 = backward(g_w2, v.T @ h, m2, g_b2, v.sum(axis=0), h, v @ masked_weight(w2, m2))
    accumulate(g_w1, d_a.T @ x, m1, g_b1, d_b1)
    return g


@pytest.mark.parametrize("kernels", [(masked_tanh_backward, accumulate_masked),
                                     (masked_tanh_backward_numpy, accumulate_masked_numpy)],
                         ids=["kernel", "numpy"])
def test_dot_product_test_of_the_parameter_gradients(rng, kernels):
    x, m1, m2 = _net(rng)
    theta = rng.standard_normal(43)
    check_vjp(lambda t: _forward(t, x, m1, m2)[0],
              lambda v: _grads(theta, x, m1, m2, v, kernels), theta, rng=rng)


def test_planted_bugs_are_caught(rng):
    """An unmasked weight gradient and 1 - y in place of 1 - y^2 both fail the dot-product test."""
    x, m1, m2 = _net(rng)
    theta = rng.standard_normal(43)

    def unmasked(g_w, d_w, mask, g_b, d_b):
        accumulate_masked_numpy(g_w, d_w, np.ones_like(mask), g_b, d_b)

    def wrong_derivative(g_w, d_w, mask, g_b, d_b, y, d_h):
        accumulate_masked_numpy(g_w, d_w, mask, g_b, d_b)
        d_a = d_h * (1.0 - y)
        return d_a, d_a.sum(axis=0)

    for bug in [(masked_tanh_backward, unmasked), (wrong_derivative, accumulate_masked)]:
        result = vjp_error(lambda t: _forward(t, x, m1, m2)[0],
                           lambda v: _grads(theta, x, m1, m2, v, bug), theta, rng=rng)
        assert not result.ok, result


@pytest.mark.parametrize("y_dtype, d_dtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_masked_tanh_backward_mixed_dtypes_as_numpy(rng, y_dtype, d_dtype):
    """y and d_h of different dtypes: the twin's dtype (their promotion) and values, bit for bit
    (1 - y^2 rounded in y's dtype, as NumPy does)."""
    n, h, out = 40, 6, 4
    mask = _mask(rng, (out, h))
    g_w, d_w = rng.standard_normal((out, h)), rng.standard_normal((out, h))
    g_b, d_b = rng.standard_normal(out), rng.standard_normal(out)
    y = np.tanh(2 * rng.standard_normal((n, h))).astype(y_dtype)
    d_h = rng.standard_normal((n, h)).astype(d_dtype)
    gk, gn = (g_w.copy(), g_b.copy()), (g_w.copy(), g_b.copy())
    got = masked_tanh_backward(gk[0], d_w, mask, gk[1], d_b, y, d_h)
    ref = masked_tanh_backward_numpy(gn[0], d_w, mask, gn[1], d_b, y, d_h)
    for a, b in zip((*got, *gk), (*ref, *gn)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@given(st.integers(1, 7), st.integers(1, 6), st.integers(1, 6), st.data())
def test_parity_strided_float32(n, out, inp, data):
    """The strided float32 specialisations (float32 gradients, weights and activations, float64
    masks): the twins' values (column sums within n float32 roundings)."""
    f = np.float32
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))

    def draw(shape, scale=1.0):
        a = data.draw(strided_arrays(shape, scale=scale)).astype(f)
        return a.T.copy().T if data.draw(st.booleans()) and a.ndim == 2 else a   # F order

    mask = _mask(rng, (out, inp))
    w, d_w = draw((out, inp)), draw((out, inp))
    np.testing.assert_array_equal(masked_weight(w, mask), masked_weight_numpy(w, mask))
    x, c = draw((n, inp)), draw((n, out))
    np.testing.assert_array_equal(join_columns(x, c), join_columns_numpy(x, c))
    a, b = draw((n, out)), draw((out,))
    np.testing.assert_array_equal(add_bias(a.copy(), b), add_bias_numpy(a.copy(), b))
    g_w, g_b = rng.standard_normal((out, inp)).astype(f), rng.standard_normal(out).astype(f)
    d_b, y, d_h = draw((out,)), np.tanh(draw((n, inp), 2.0)), draw((n, inp))
    gk, gn = (g_w.copy(), g_b.copy()), (g_w.copy(), g_b.copy())
    d_a, d_bb = masked_tanh_backward(gk[0], d_w, mask, gk[1], d_b, y, d_h)
    ref_a, ref_bb = masked_tanh_backward_numpy(gn[0], d_w, mask, gn[1], d_b, y, d_h)
    for a_k, a_n in zip((d_a, *gk), (ref_a, *gn)):
        assert a_k.dtype == f
        np.testing.assert_array_equal(a_k, a_n)
    assert d_bb.dtype == f
    assert np.all(np.abs(d_bb - ref_bb) <= n * np.finfo(f).eps * np.abs(ref_a).sum(axis=0))
