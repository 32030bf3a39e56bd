"""The MAF layer's affine backward after its tanh and exp (FLOW.6, FLOW.12, FLOW.14;
nprefgen/kernels/maf_affine.py): parity with the NumPy twin on strided and contiguous inputs,
bit for bit on contiguous float64 and float32 ones, the dot-product test of
(x, mu, raw) -> (z, log_det) against finite differences, and planted bugs caught."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.kernels.maf_affine import maf_affine_backward, maf_affine_backward_numpy
from nprefgen.testing.gradcheck import check_vjp, vjp_error
from nprefgen.testing.strategies import strided_arrays

pytestmark = pytest.mark.kernels


def _transcendentals(raw, bound):
    """What MAF._backward hands the kernel: u = tanh(raw / b) (raw when b = 0), e = exp(-alpha)."""
    if bound > 0:
        u = np.tanh(raw / bound)
        return u, np.exp(u * -bound)
    return raw, np.exp(-raw)


@given(st.integers(1, 7), st.integers(1, 5), st.sampled_from([0.0, 0.5, 3.0]), st.data())
def test_parity_strided_and_contiguous(n, d, bound, data):
    d_z, z = data.draw(strided_arrays((n, d))), data.draw(strided_arrays((n, d)))
    d_log_det = data.draw(strided_arrays((n,)))
    u, e = _transcendentals(data.draw(strided_arrays((n, d), scale=3.0)), bound)
    got, ref = (maf_affine_backward(d_z, z, d_log_det, u, e, bound),
                maf_affine_backward_numpy(d_z, z, d_log_det, u, e, bound))
    assert [a.shape for a in got] == [(n, d), (n, 2 * d), (2 * d,)]
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    # the column sum of a strided d_out may run in another order
    scale = n * np.finfo(np.float64).eps * np.abs(ref[1]).sum(axis=0)
    assert np.all(np.abs(got[2] - ref[2]) <= scale)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bound", [0.0, 3.0])
@pytest.mark.parametrize("shape", [(200, 2), (1, 1), (37, 5), (1000, 3)])
def test_bit_identical_to_numpy_on_contiguous_inputs(rng, dtype, bound, shape):
    """MAF training relies on it: float32 in float32, the column sum in NumPy's row order."""
    d_z, z = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    d_log_det = rng.standard_normal(shape[0]).astype(dtype)
    u, e = _transcendentals((3 * rng.standard_normal(shape)).astype(dtype), bound)
    got = maf_affine_backward(d_z, z, d_log_det, u, e, bound)
    ref = maf_affine_backward_numpy(d_z, z, d_log_det, u, e, bound)
    for a, b in zip(got, ref):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


# -- gradients: z = (x - mu) exp(-alpha), alpha = b tanh(raw / b), log_det = -sum alpha ----------
def _forward(packed, bound, d):
    x, mu, raw = packed[:, :d], packed[:, d:2 * d], packed[:, 2 * d:]
    alpha = bound * np.tanh(raw / bound) if bound > 0 else raw
    return (x - mu) * np.exp(-alpha), -alpha.sum(axis=1)


def _vjp(packed, bound, d, fn=maf_affine_backward):
    def vjp(v):
        d_z, d_log_det = v
        z, _ = _forward(packed, bound, d)
        u, e = _transcendentals(packed[:, 2 * d:], bound)
        d_x, d_out, _ = fn(d_z, z, d_log_det, u, e, bound)
        return np.concatenate([d_x, d_out], axis=1)      # (d_x, d_mu, d_raw)
    return vjp


@pytest.mark.parametrize("bound", [0.0, 3.0])
def test_dot_product_test(rng, bound):
    d = 3
    packed = rng.standard_normal((5, 3 * d))
    check_vjp(lambda p: _forward(p, bound, d), _vjp(packed, bound, d), packed, rng=rng)


def test_column_sum_is_the_bias_gradient(rng):
    """d_b is the gradient of sum_i <v_i, out_i> for out_i = out_i + b: the column sum of d_out."""
    d = 2
    packed = rng.standard_normal((7, 3 * d))
    z, _ = _forward(packed, 3.0, d)
    u, e = _transcendentals(packed[:, 2 * d:], 3.0)
    _, d_out, d_b = maf_affine_backward(rng.standard_normal((7, d)), z, rng.standard_normal(7),
                                        u, e, 3.0)
    np.testing.assert_allclose(d_b, d_out.sum(axis=0), rtol=1e-13)


def test_planted_bugs_are_caught(rng):
    """A twin forgetting the soft clamp's derivative, or the sign of d_mu, fails the test."""
    d = 3
    packed = rng.standard_normal((5, 3 * d))

    def no_clamp_derivative(d_z, z, d_log_det, u, e, bound):
        return maf_affine_backward_numpy(d_z, z, d_log_det, u, e, 0.0)

    def wrong_sign(d_z, z, d_log_det, u, e, bound):
        d_x, d_out, d_b = maf_affine_backward_numpy(d_z, z, d_log_det, u, e, bound)
        d_out[:, :d] *= -1
        return d_x, d_out, d_b

    for bug in (no_clamp_derivative, wrong_sign):
        result = vjp_error(lambda p: _forward(p, 1.0, d), _vjp(packed, 1.0, d, bug), packed, rng=rng)
        assert not result.ok, result


# each argument the odd one out, in float64 among float32 and in float32 among float64
MIXES = [tuple(np.float64 if i == k else np.float32 for i in range(5)) for k in range(5)] + \
        [tuple(np.float32 if i == k else np.float64 for i in range(5)) for k in range(5)]


@pytest.mark.parametrize("dtypes", MIXES,
                         ids=lambda t: "".join("s" if d == np.float32 else "d" for d in t))
@pytest.mark.parametrize("bound", [0.0, 3.0])
def test_mixed_dtypes_as_numpy(rng, dtypes, bound):
    """Any mix of float32 and float64 arguments gives the twin's dtypes and values, bit for bit
    (NumPy's promotion: bound in u's dtype, d_x in that of d_z e, d_out and d_b in all five's)."""
    shape = (9, 3)
    d_z, z = (rng.standard_normal(shape) for _ in range(2))
    d_log_det = rng.standard_normal(shape[0])
    u, e = _transcendentals(3 * rng.standard_normal(shape), bound)
    args = [a.astype(t) for a, t in zip((d_z, z, d_log_det, u, e), dtypes)]
    got = maf_affine_backward(*args, bound)
    ref = maf_affine_backward_numpy(*args, bound)
    for a, b in zip(got, ref):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@given(st.integers(1, 7), st.integers(1, 5), st.sampled_from([0.0, 0.5, 3.0]), st.data())
def test_parity_strided_float32(n, d, bound, data):
    """The strided float32 specialisations: the same values as the twin (column sums within n
    float32 roundings, a strided d_out's sum running in another order)."""
    f = np.float32
    d_z, z = (data.draw(strided_arrays((n, d))).astype(f) for _ in range(2))
    d_log_det = data.draw(strided_arrays((n,))).astype(f)
    raw = data.draw(strided_arrays((n, d), scale=3.0))
    u, e = (a.astype(f) for a in _transcendentals(raw, bound))
    if data.draw(st.booleans()):                     # keep them strided after the cast
        d_z, z = np.asfortranarray(d_z), np.repeat(z, 2, axis=1)[:, ::2]
    got = maf_affine_backward(d_z, z, d_log_det, u, e, bound)
    ref = maf_affine_backward_numpy(d_z, z, d_log_det, u, e, bound)
    for a, b in zip(got[:2], ref[:2]):
        assert a.dtype == b.dtype == f
        np.testing.assert_array_equal(a, b)
    scale = n * np.finfo(f).eps * np.abs(ref[1]).sum(axis=0)
    assert got[2].dtype == f and np.all(np.abs(got[2] - ref[2]) <= scale)
