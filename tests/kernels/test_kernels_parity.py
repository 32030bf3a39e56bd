"""Parity of the elementwise and row kernels with their NumPy twins: logsumexp_rows (NN.20),
softplus and softplus_grad (NN.8). Contiguous and strided inputs, rtol 1e-12."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.kernels import (
    logsumexp_rows, logsumexp_rows_numpy, softplus, softplus_grad, softplus_grad_numpy, softplus_numpy,
)
from nprefgen.testing.strategies import batch_shapes, strided_arrays

pytestmark = pytest.mark.kernels


@given(batch_shapes(max_batch=6, max_features=6), st.floats(0.1, 300.0), st.data())
def test_logsumexp_rows_parity(shape, scale, data):
    """(NN.20) numba == NumPy, including scales where a naive exp overflows."""
    a = data.draw(strided_arrays(shape, scale=scale))
    ref = logsumexp_rows_numpy(a)
    np.testing.assert_allclose(logsumexp_rows(a), ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(logsumexp_rows(np.ascontiguousarray(a)), ref, rtol=1e-12, atol=0)


def test_logsumexp_rows_values():
    """(NN.20) stable where the naive formula overflows; -inf rows give -inf, +inf gives +inf."""
    a = np.array([[1000.0, 1000.0], [-1000.0, -1000.0], [-np.inf, -np.inf], [np.inf, 0.0],
                  [0.0, np.log(3.0)]])
    expect = np.array([1000.0 + np.log(2.0), -1000.0 + np.log(2.0), -np.inf, np.inf, np.log(4.0)])
    for f in (logsumexp_rows, logsumexp_rows_numpy):
        np.testing.assert_allclose(f(a), expect, rtol=1e-15)


@given(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), st.floats(0.1, 800.0),
       st.data())
def test_softplus_parity(shape, scale, data):
    """(NN.8) softplus and its derivative: numba == NumPy for contiguous and strided x."""
    x = data.draw(strided_arrays(shape, scale=scale))
    for fast, slow in ((softplus, softplus_numpy), (softplus_grad, softplus_grad_numpy)):
        ref = slow(x)
        got = fast(x)
        assert got.shape == x.shape
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300)


def test_softplus_values_and_float32():
    """(NN.8) log(1 + e^x) and sigmoid(x) on exact cases, no overflow at |x| = 1000."""
    x = np.array([-1000.0, -1.0, 0.0, 1.0, 1000.0])
    np.testing.assert_allclose(softplus(x), [0.0, np.log1p(np.exp(-1.0)), np.log(2.0),
                                             1.0 + np.log1p(np.exp(-1.0)), 1000.0], rtol=1e-15)
    np.testing.assert_allclose(softplus_grad(x), [0.0, 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-1.0)), 1.0],
                               rtol=1e-15)
    x32 = x.astype(np.float32)
    assert softplus(x32).dtype == np.float32 and softplus_grad(x32).dtype == np.float32
    ints = np.array([-1, 0, 2])                  # promoted to float64, not truncated to int
    for f in (softplus, softplus_numpy, softplus_grad, softplus_grad_numpy):
        np.testing.assert_allclose(f(ints), f(ints.astype(float)), rtol=1e-15)
