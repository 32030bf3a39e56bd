"""Conv2d and ConvTranspose2d: shapes (NN.21, NN.27), forward as a matrix product (NN.25),
VJPs by the dot-product test (NN.26a-c, NN.29a-c), the transposed convolution as the input gradient
of a convolution (NN.28), and caught bugs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.kernels.im2col import col2im_numpy
from nprefgen.nn import Conv2d, ConvTranspose2d
from nprefgen.nn.conv import conv2d_backward
from nprefgen.testing import check_layer, layer_vjp_errors
from nprefgen.testing.strategies import seeds

RTOL = 1e-8


def _naive_conv2d(W, b, x, s, p):
    """(NN.25) cross-correlation by explicit loops, independent of im2col."""
    n, c, h, w = x.shape
    out, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    oh, ow = (h + 2 * p[0] - kh) // s[0] + 1, (w + 2 * p[1] - kw) // s[1] + 1
    y = np.zeros((n, out, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * s[0]:i * s[0] + kh, j * s[1]:j * s[1] + kw]
            y[:, :, i, j] = np.einsum("ncpq,ocpq->no", patch, W)
    return y + b[:, None, None]


@st.composite
def conv_configs(draw, transpose: bool = False):
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    n = draw(st.integers(1, 2))
    if transpose:
        op = (draw(st.integers(0, stride[0] - 1)), draw(st.integers(0, stride[1] - 1)))
        h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        # keep the output non-empty: (h-1)s - 2p + k + op >= 1
        padding = tuple(min(pd, ((hh - 1) * s + k + o - 1) // 2)
                        for pd, hh, s, k, o in zip(padding, (h, w), stride, (kh, kw), op))
        kwargs = dict(stride=stride, padding=padding, output_padding=op)
    else:
        h = draw(st.integers(max(1, kh - 2 * padding[0]), 6))
        w = draw(st.integers(max(1, kw - 2 * padding[1]), 6))
        kwargs = dict(stride=stride, padding=padding)
    return dict(c_in=c_in, c_out=c_out, k=(kh, kw), x_shape=(n, c_in, h, w), bias=draw(st.booleans()),
                kwargs=kwargs, seed=draw(seeds()))


@given(conv_configs())
def test_conv2d_vjp(cfg):
    """(NN.26a) input, (NN.26b) weight, (NN.26c) bias gradients pass the dot-product test."""
    rng = np.random.default_rng(cfg["seed"])
    layer = Conv2d(cfg["c_in"], cfg["c_out"], cfg["k"], rng=rng, bias=cfg["bias"], **cfg["kwargs"])
    x = rng.standard_normal(cfg["x_shape"])
    results = layer_vjp_errors(layer, x, rng=rng)
    assert len(results) == 3 if cfg["bias"] else 2
    assert all(r.ok and r.rtol == RTOL for r in results), [str(r) for r in results]


@given(conv_configs(transpose=True))
def test_conv_transpose2d_vjp(cfg):
    """(NN.29a) input, (NN.29b) weight, (NN.29c) bias gradients pass the dot-product test."""
    rng = np.random.default_rng(cfg["seed"])
    layer = ConvTranspose2d(cfg["c_in"], cfg["c_out"], cfg["k"], rng=rng, bias=cfg["bias"],
                            **cfg["kwargs"])
    x = rng.standard_normal(cfg["x_shape"])
    results = layer_vjp_errors(layer, x, rng=rng)
    assert all(r.ok and r.rtol == RTOL for r in results), [str(r) for r in results]


@given(conv_configs())
def test_conv2d_forward_against_loops(cfg):
    """(NN.25) im2col + matrix product == the convolution sum by loops; shape from (NN.21)."""
    rng = np.random.default_rng(cfg["seed"])
    layer = Conv2d(cfg["c_in"], cfg["c_out"], cfg["k"], rng=rng, **cfg["kwargs"])
    x = rng.standard_normal(cfg["x_shape"])
    y = layer(x)
    ref = _naive_conv2d(layer.params["weight"], layer.params["bias"], x, layer.stride, layer.padding)
    assert y.shape == ref.shape == (x.shape[0], cfg["c_out"]) + layer.output_shape(*x.shape[2:])
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-13)


@given(conv_configs(transpose=True))
def test_conv_transpose_is_conv_input_gradient(cfg):
    """(NN.28) ConvTranspose2d(x) = VJP of Conv2d(c_out -> c_in) at cotangent x, same weight array;
    (NN.29a) its input gradient is that Conv2d's forward; (NN.27) the output size formula."""
    rng = np.random.default_rng(cfg["seed"])
    kw = cfg["kwargs"]
    ct = ConvTranspose2d(cfg["c_in"], cfg["c_out"], cfg["k"], rng=rng, bias=False, **kw)
    conv = Conv2d(cfg["c_out"], cfg["c_in"], cfg["k"], rng=rng, bias=False, stride=kw["stride"],
                  padding=kw["padding"])
    conv.params["weight"][...] = ct.params["weight"]      # (c_in, c_out, kh, kw) in both layouts
    x = rng.standard_normal(cfg["x_shape"])
    y, cache = ct.forward(x)
    n, _, h, w = x.shape
    s, p, op, k = kw["stride"], kw["padding"], kw["output_padding"], cfg["k"]
    assert y.shape == (n, cfg["c_out"], (h - 1) * s[0] - 2 * p[0] + k[0] + op[0],
                       (w - 1) * s[1] - 2 * p[1] + k[1] + op[1])
    z = rng.standard_normal(y.shape)
    _, conv_cache = conv.forward(z)
    np.testing.assert_allclose(y, conv.backward(conv_cache, x), rtol=1e-12, atol=1e-13)
    d_y = rng.standard_normal(y.shape)
    np.testing.assert_allclose(ct.backward(cache, d_y), conv(d_y), rtol=1e-12, atol=1e-13)


def test_known_small_convolution():
    """(NN.25) a 2x2 box filter on a 3x3 ramp: each output is the sum of a 2x2 block plus bias."""
    layer = Conv2d(1, 1, 2, rng=np.random.default_rng(0))
    layer.params["weight"][...] = 1.0
    layer.params["bias"][...] = 0.5
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(layer(x)[0, 0], [[8.5, 12.5], [20.5, 24.5]])


def test_torch_init_bounds(rng):
    """PyTorch's default init: |w| <= 1/sqrt(fan_in); fan_in = c_in k k (Conv2d), c_out k k (ConvT)."""
    conv = Conv2d(3, 8, 3, rng=rng)
    assert np.abs(conv.params["weight"]).max() <= 1 / np.sqrt(27)
    assert np.abs(conv.params["weight"]).max() > 0.8 / np.sqrt(27)
    ct = ConvTranspose2d(8, 2, 4, rng=rng)
    assert ct.params["weight"].shape == (8, 2, 4, 4)
    assert np.abs(ct.params["weight"]).max() <= 1 / np.sqrt(32)
    assert np.abs(ct.params["bias"]).max() <= 1 / np.sqrt(32)
    assert Conv2d(3, 8, 3, rng=rng, init="zeros").params["weight"].max() == 0.0


class _OverwritingCol2imConv(Conv2d):
    """A plausible bug: col2im that assigns instead of summing overlapping receptive fields."""

    def backward(self, cache, d_y):
        x_shape, X = cache
        W = self.params["weight"]
        d_rows = d_y.transpose(0, 2, 3, 1).reshape(-1, W.shape[0])
        c6 = (d_rows @ W.reshape(W.shape[0], -1)).reshape(x_shape[0], *self.output_shape(*x_shape[2:]),
                                                         *W.shape[1:])
        d_x = np.zeros(x_shape)
        for i in range(c6.shape[1]):
            for j in range(c6.shape[2]):
                for p in range(W.shape[2]):
                    for q in range(W.shape[3]):
                        d_x[:, :, i + p, j + q] = c6[:, i, j, :, p, q]      # "=" instead of "+="
        _, d_W, d_b = conv2d_backward(W, X, x_shape, d_y, self.stride, self.padding)
        self.grads["weight"] += d_W
        self.grads["bias"] += d_b
        return d_x


class _FlippedWeightGradConv(Conv2d):
    """A plausible bug: the weight gradient with the kernel flipped (convolution vs correlation)."""

    def backward(self, cache, d_y):
        d_x = super().backward(cache, d_y)
        _, X = cache
        d_rows = d_y.transpose(0, 2, 3, 1).reshape(-1, self.out_channels)
        d_W = (d_rows.T @ X).reshape(self.params["weight"].shape)
        self.grads["weight"] += d_W[:, :, ::-1, ::-1] - d_W
        return d_x


def test_broken_conv_backwards_are_caught(rng):
    """The dot-product test (NN.26a, NN.26b) fails for an overwriting col2im and a flipped kernel."""
    x = rng.standard_normal((2, 2, 5, 5))
    good = Conv2d(2, 3, 3, rng=np.random.default_rng(1))
    check_layer(good, x, rng=rng)
    with pytest.raises(AssertionError, match="input"):
        check_layer(_OverwritingCol2imConv(2, 3, 3, rng=np.random.default_rng(1)), x, rng=rng)
    results = layer_vjp_errors(_FlippedWeightGradConv(2, 3, 3, rng=np.random.default_rng(1)), x, rng=rng)
    errors = {r.name: r.rel_error for r in results}
    assert errors["weight"] > 1e-2 and errors["input"] < RTOL
    # receptive fields overlap here (the centre pixel lies in 9 of them), so "=" loses 8 terms
    d_x = col2im_numpy(np.ones((18, 18)), (2, 2, 5, 5), (3, 3), (1, 1), (0, 0))
    assert d_x.max() == 9.0


def test_float32_close_to_float64(rng):
    """float32 parameters and inputs give float32 outputs within float32 round-off of float64."""
    x = rng.standard_normal((2, 3, 6, 6))
    for make in (lambda d: Conv2d(3, 4, 3, stride=2, padding=1, rng=np.random.default_rng(5), dtype=d),
                 lambda d: ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1,
                                           rng=np.random.default_rng(5), dtype=d)):
        l64, l32 = make(np.float64), make(np.float32)
        y64, c64 = l64.forward(x)
        y32, c32 = l32.forward(x.astype(np.float32))
        assert y32.dtype == np.float32
        np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)
        d_y = rng.standard_normal(y64.shape)
        d_x32 = l32.backward(c32, d_y.astype(np.float32))
        assert d_x32.dtype == np.float32 and l32.grads["weight"].dtype == np.float32
        np.testing.assert_allclose(d_x32, l64.backward(c64, d_y), rtol=1e-4, atol=1e-4)


def test_bad_inputs_raise(rng):
    conv = Conv2d(3, 4, 3, rng=rng)
    with pytest.raises(ValueError, match="x: Conv2d expected 3 features"):
        conv.forward(np.zeros((1, 2, 5, 5)))
    with pytest.raises(ValueError, match="x: expected 4 dimensions"):
        conv.forward(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="^x:"):
        conv.forward(np.zeros((1, 3, 2, 5)))                 # kernel larger than the input
    bad = np.zeros((1, 3, 5, 5))
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="x: expected finite"):
        conv.forward(bad)
    y, cache = conv.forward(np.zeros((1, 3, 5, 5)))
    with pytest.raises(ValueError, match="d_y: expected shape"):
        conv.backward(cache, np.zeros((1, 4, 2, 3)))
    with pytest.raises(ValueError, match="stride"):
        Conv2d(3, 4, 3, stride=0, rng=rng)
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2d(3, 4, (3, 3, 3), rng=rng)
    with pytest.raises(ValueError, match="padding"):
        Conv2d(3, 4, 3, padding=-1, rng=rng)
    with pytest.raises(ValueError, match="in_channels"):
        Conv2d(0, 4, 3, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        Conv2d(3, 4, 3, rng="0")
    with pytest.raises(ValueError, match="output_padding"):
        ConvTranspose2d(3, 4, 3, stride=2, output_padding=2, rng=rng)
    ct = ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1, rng=rng)
    y, cache = ct.forward(np.zeros((1, 3, 4, 4)))
    assert y.shape == (1, 4, 8, 8)
    with pytest.raises(ValueError, match="d_y: expected shape"):
        ct.backward(cache, np.zeros((1, 4, 7, 7)))
    with pytest.raises(ValueError, match="x: ConvTranspose2d expected 3 features"):
        ct.forward(np.zeros((1, 4, 4, 4)))
