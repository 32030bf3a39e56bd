"""im2col / col2im: numba kernels against their NumPy twins, and col2im as the adjoint of im2col.

Equations: (NN.21) output size, (NN.22) im2col, (NN.23) col2im, (NN.24) adjointness.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.kernels import col2im, col2im_numpy, im2col, im2col_numpy
from nprefgen.kernels.im2col import conv_output_size
from nprefgen.testing.strategies import image_shapes, seeds, strided_arrays

pytestmark = pytest.mark.kernels


@st.composite
def conv_geometries(draw):
    """(x_shape, kernel_size, stride, padding) with a kernel that fits the padded input."""
    shape = draw(image_shapes(max_batch=3, max_channels=3, min_size=1, max_size=7))
    h, w = shape[2:]
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    kh = draw(st.integers(1, min(4, h + 2 * ph)))
    kw = draw(st.integers(1, min(4, w + 2 * pw)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return shape, (kh, kw), stride, (ph, pw)


def _naive_im2col(x, k, s, p):
    """(NN.22) read literally: one row per output position, one column per (ch, p, q)."""
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, k[0], s[0], p[0]), conv_output_size(w, k[1], s[1], p[1])
    out = np.zeros((n * oh * ow, c * k[0] * k[1]))
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    for a in range(k[0]):
                        for q in range(k[1]):
                            r, t = i * s[0] + a - p[0], j * s[1] + q - p[1]
                            if 0 <= r < h and 0 <= t < w:
                                out[(b * oh + i) * ow + j, (ch * k[0] + a) * k[1] + q] = x[b, ch, r, t]
    return out


def test_output_size_formula():
    """(NN.21) floor((h + 2p - k)/s) + 1 on hand-worked cases (28x28, k4 s2 p1 -> 14)."""
    assert conv_output_size(28, 4, 2, 1) == 14
    assert conv_output_size(5, 3, 1, 0) == 3
    assert conv_output_size(7, 3, 2, 0) == 3
    assert conv_output_size(8, 3, 3, 1) == 3


def test_im2col_matches_literal_definition(rng):
    """(NN.22) both implementations against the loop that spells out the definition."""
    x = rng.standard_normal((2, 3, 5, 6))
    for k, s, p in [((3, 2), (2, 1), (1, 2)), ((1, 1), (1, 1), (0, 0)), ((5, 6), (1, 1), (0, 0))]:
        ref = _naive_im2col(x, k, s, p)
        np.testing.assert_array_equal(im2col_numpy(x, k, s, p), ref)
        np.testing.assert_array_equal(im2col(x, k, s, p), ref)


def test_col2im_sums_overlaps():
    """(NN.23) a 3x3 kernel with stride 1 covers the centre of a 3x3 image once per position:
    col2im of all-ones columns counts how many receptive fields contain each pixel."""
    x_shape = (1, 1, 3, 3)
    cols = np.ones((9, 9))          # padding 1 -> 3x3 output positions
    counts = np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]], dtype=float)
    np.testing.assert_array_equal(col2im_numpy(cols, x_shape, (3, 3), (1, 1), (1, 1))[0, 0], counts)
    np.testing.assert_array_equal(col2im(cols, x_shape, (3, 3), (1, 1), (1, 1))[0, 0], counts)


@given(conv_geometries(), st.data())
def test_im2col_parity(geom, data):
    """(NN.22) numba == NumPy on contiguous and strided inputs, rtol 1e-12."""
    shape, k, s, p = geom
    x = data.draw(strided_arrays(shape))
    ref = im2col_numpy(x, k, s, p)
    np.testing.assert_allclose(im2col(x, k, s, p), ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(im2col(np.ascontiguousarray(x), k, s, p), ref, rtol=1e-12, atol=0)


@given(conv_geometries(), st.data())
def test_col2im_parity_and_adjoint(geom, data):
    """(NN.23) numba == NumPy on contiguous and strided columns; (NN.24) <im2col x, C> = <x, col2im C>."""
    shape, k, s, p = geom
    n, c, h, w = shape
    oh, ow = conv_output_size(h, k[0], s[0], p[0]), conv_output_size(w, k[1], s[1], p[1])
    cols = data.draw(strided_arrays((n * oh * ow, c * k[0] * k[1])))
    ref = col2im_numpy(cols, shape, k, s, p)
    got = col2im(cols, shape, k, s, p)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    x = np.random.default_rng(data.draw(seeds())).standard_normal(shape)
    lhs = np.sum(im2col(x, k, s, p) * cols)
    rhs = np.sum(x * got)
    assert abs(lhs - rhs) <= 1e-12 * np.linalg.norm(x) * np.linalg.norm(cols)


def test_float32_kept(rng):
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    cols = im2col(x, (2, 2), (1, 1), (0, 0))
    assert cols.dtype == np.float32
    assert col2im(cols, x.shape, (2, 2), (1, 1), (0, 0)).dtype == np.float32


def test_bad_geometry_raises(rng):
    x = rng.standard_normal((1, 1, 3, 3))
    with pytest.raises(ValueError, match="kernel_size"):
        im2col(x, (5, 5), (1, 1), (0, 0))
    with pytest.raises(ValueError, match="cols"):
        col2im(np.zeros((4, 3)), (1, 1, 3, 3), (2, 2), (1, 1), (0, 0))
