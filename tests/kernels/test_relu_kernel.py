"""Parity of ReLU's VJP kernel with its NumPy twin (NN.4) on contiguous and strided inputs, float32
kept, and the ReLU layer's backward through it."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.kernels.softplus import relu_backward, relu_backward_numpy
from nprefgen.nn import ReLU
from nprefgen.testing.strategies import strided_arrays

pytestmark = pytest.mark.kernels


@given(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), st.data())
def test_relu_backward_parity(shape, data):
    """(NN.4) d_y 1[x > 0]: numba == NumPy for strided and contiguous x and d_y (exactly)."""
    x, d_y = data.draw(strided_arrays(shape)), data.draw(strided_arrays(shape))
    got, ref = relu_backward(x, d_y), relu_backward_numpy(x, d_y)
    assert got.shape == shape
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(got, np.where(x > 0, d_y, 0.0))


def test_relu_backward_values_float32_and_layer(rng):
    """(NN.4) zero at x <= 0 (the derivative at the kink is taken as 0, as torch does), d_y
    elsewhere; float32 stays float32; ReLU.backward gives the same; a mask on x >= 0 is caught."""
    x = np.array([[-1.0, 0.0, 2.0], [3.0, -0.5, 1e-30]])
    d_y = np.array([[5.0, 6.0, 7.0], [8.0, 9.0, 10.0]])
    expect = np.array([[0.0, 0.0, 7.0], [8.0, 0.0, 10.0]])
    np.testing.assert_array_equal(relu_backward(x, d_y), expect)
    got32 = relu_backward(x.astype(np.float32), d_y.astype(np.float32))
    assert got32.dtype == np.float32
    np.testing.assert_array_equal(got32, expect.astype(np.float32))
    layer = ReLU()
    _, cache = layer.forward(x)
    np.testing.assert_array_equal(layer.backward(cache, d_y), expect)
    assert not np.array_equal(np.multiply(d_y, x >= 0), expect)
