"""Parity of the fused Adam kernel with its NumPy twin (NN.16): several steps on contiguous and
strided arrays, float64 at rtol 1e-12 (in fact bitwise), float32 updated in float32 arithmetic."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.kernels.adam import adam_update, adam_update_numpy
from nprefgen.testing.strategies import batch_shapes, strided_arrays

pytestmark = pytest.mark.kernels


def _run(update, p, grads, m, v, weight_decay, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
    """Apply ``update`` for len(grads) steps, t = 1, 2, ... (bias corrections as in Adam.step)."""
    for t, g in enumerate(grads, start=1):
        update(p, g, m, v, lr, b1, b2, eps, 1.0 - b1 ** t, 1.0 - b2 ** t, weight_decay)
    return p, m, v


@given(batch_shapes(max_batch=5, max_features=5), st.sampled_from([0.0, 0.1]), st.data())
def test_adam_update_parity(shape, weight_decay, data):
    """(NN.16) kernel == NumPy twin over three steps, p/m/v strided or contiguous, rtol 1e-12."""
    p = data.draw(strided_arrays(shape))
    m = data.draw(strided_arrays(shape, scale=0.1))
    v = np.abs(data.draw(strided_arrays(shape, scale=0.1)))
    grads = [data.draw(strided_arrays(shape, scale=s)) for s in (1.0, 3.0, 0.01)]
    g0 = [g.copy() for g in grads]
    ref = _run(adam_update_numpy, p.copy(), grads, m.copy(), v.copy(), weight_decay)
    # the kernel gets the same memory layouts (views of larger arrays when strided)
    got = _run(adam_update, _like(p, p), grads, _like(m, m), _like(v, v), weight_decay)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    for g, g_before in zip(grads, g0):                # the gradient is read, never written
        np.testing.assert_array_equal(g, g_before)


def _like(template, values):
    """A fresh array with ``template``'s memory layout (strided view or contiguous) holding values."""
    if template.flags.c_contiguous:
        return values.copy()
    big = np.zeros(tuple(2 * s for s in values.shape))
    view = big[tuple(slice(None, None, 2) for _ in values.shape)]
    view[...] = values
    return view


def test_adam_update_strided_inplace_and_float32(rng):
    """(NN.16) a strided p is updated in place (not a copy); float32 stays float32 and matches the
    twin's float32 arithmetic exactly; the first step moves by lr * g / (|g| + eps)."""
    big = rng.standard_normal((6, 8))
    p = big[::2, ::2]
    p0 = p.copy()
    g = rng.standard_normal(p.shape)
    m, v = np.zeros(p.shape), np.zeros(p.shape)
    adam_update(p, g, m, v, 0.01, 0.9, 0.999, 1e-8, 1.0 - 0.9, 1.0 - 0.999)
    np.testing.assert_allclose(big[::2, ::2], p0 - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(m, 0.1 * g, rtol=1e-12)
    np.testing.assert_allclose(v, 0.001 * g * g, rtol=1e-12)

    p32 = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(3)]
    z = np.zeros((4, 3), np.float32)
    got = _run(adam_update, p32.copy(), grads, z.copy(), z.copy(), 0.01)
    ref = _run(adam_update_numpy, p32.copy(), grads, z.copy(), z.copy(), 0.01)
    for a, b in zip(got, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_adam_update_parity_catches_a_wrong_update(rng):
    """A kernel that forgot the bias correction c2 is caught by the parity comparison."""
    p, g = rng.standard_normal(5), rng.standard_normal(5)
    ref = _run(adam_update_numpy, p.copy(), [g], np.zeros(5), np.zeros(5), 0.0)[0]
    wrong = p.copy()
    adam_update(wrong, g, np.zeros(5), np.zeros(5), 1e-2, 0.9, 0.999, 1e-8, 0.1, 1.0)   # c2 = 1
    assert not np.allclose(wrong, ref, rtol=1e-12, atol=0)
