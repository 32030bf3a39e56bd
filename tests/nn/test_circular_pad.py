"""Periodic padding and convolutions on the torus (derivations/gan.md, GAN.19-GAN.20): the pad by
hand, the fold as its adjoint, every layer's backward by the dot-product test (NN.18), the
periodic convolution against PyTorch's ``padding_mode="circular"``, shift equivariance of both
periodic layers (which a bias added before the fold breaks), planted bugs, the conv GAN with
``padding="circular"`` and bad input."""
from __future__ import annotations

import numpy as np
import pytest

import nprefgen.nn.circular_pad as CP
from nprefgen.models.gan import conv_gan
from nprefgen.nn import Conv2d, ConvTranspose2d
from nprefgen.nn.circular_pad import (
    CircularFold2d, CircularPad2d, PeriodicConv2d, PeriodicConvTranspose2d,
)
from nprefgen.testing.gradcheck import layer_vjp_errors

from gan_checks import whole_gan_gradchecks  # noqa: E402  (tests/nn/gan_checks.py)

PADS = [1, (2, 1), (1, 0, 1, 0), (2, 1, 0, 3)]


def test_pad_by_hand():
    """(GAN.19) the row above row 0 is the last row, the column left of column 0 the last one."""
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    y = CircularPad2d((1, 0, 2, 1))(x)
    assert y.shape == (1, 1, 4, 7)
    np.testing.assert_array_equal(y[0, 0, 0], [10, 11, 8, 9, 10, 11, 8])
    np.testing.assert_array_equal(y[0, 0, 1:, 2:6], x[0, 0])
    np.testing.assert_array_equal(y[0, 0, 1:, 6], x[0, 0, :, 0])


@pytest.mark.parametrize("padding", PADS)
def test_fold_is_the_adjoint_of_the_pad(padding, rng):
    """(GAN.20) <P x, y> = <x, P^T y> for random x, y, to round-off."""
    x = rng.standard_normal((2, 3, 5, 4))
    px = CircularPad2d(padding)(x)
    y = rng.standard_normal(px.shape)
    lhs, rhs = np.sum(px * y), np.sum(x * CircularFold2d(padding)(y))
    assert abs(lhs - rhs) <= 1e-12 * np.linalg.norm(px) * np.linalg.norm(y)


@pytest.mark.parametrize("padding, shape", [((5, 5, 4, 4), (2, 3, 5, 4)),
                                            ((5, 0, 0, 4), (1, 2, 5, 4))])
def test_pads_of_the_whole_image(padding, shape, rng):
    """(GAN.19)-(GAN.20) at the limit of one wrap: a pad as large as its axis (top and bottom
    together more than the image) copies the whole image; the fold is still its adjoint."""
    x = rng.standard_normal(shape)
    px = CircularPad2d(padding)(x)
    np.testing.assert_array_equal(px[:, :, :shape[2], padding[2]:padding[2] + shape[3]], x)
    y = rng.standard_normal(px.shape)
    lhs, rhs = np.sum(px * y), np.sum(x * CircularFold2d(padding)(y))
    assert abs(lhs - rhs) <= 1e-12 * np.linalg.norm(px) * np.linalg.norm(y)
    with pytest.raises(ValueError, match="^x: .*one wrap"):
        CircularPad2d(padding).forward(x[:, :, 1:])


@pytest.mark.parametrize("padding", PADS)
def test_pad_and_fold_dot_product(padding, rng):
    for layer, shape in ((CircularPad2d(padding), (2, 3, 5, 4)),
                         (CircularFold2d(padding), (2, 3, 8, 7))):
        res = layer_vjp_errors(layer, rng.standard_normal(shape), rng=rng)
        assert len(res) == 1 and res[0].rel_error < 1e-8, res


@pytest.mark.parametrize("layer, shape", [
    (lambda: PeriodicConv2d(3, 4, 3, stride=2, padding=1, rng=0), (2, 3, 8, 6)),
    (lambda: PeriodicConv2d(2, 3, (3, 5), stride=(1, 2), padding=(1, 2), rng=1), (2, 2, 5, 6)),
    (lambda: PeriodicConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, rng=0),
     (2, 3, 4, 5)),
    (lambda: PeriodicConvTranspose2d(3, 2, (3, 4), stride=(2, 1), padding=(1, 2),
                                     output_padding=(1, 0), rng=2), (2, 3, 4, 5)),
])
def test_periodic_conv_dot_product(layer, shape, rng):
    """Input, weight and bias gradients of both periodic layers at rtol 1e-8."""
    res = layer_vjp_errors(layer(), rng.standard_normal(shape), rng=rng)
    assert len(res) == 3 and max(r.rel_error for r in res) < 1e-8, res


def test_periodic_conv_matches_torch_circular(rng):
    """PeriodicConv2d = torch.nn.Conv2d(padding_mode="circular"): outputs and all gradients."""
    torch = pytest.importorskip("torch")
    layer = PeriodicConv2d(3, 4, 3, stride=2, padding=1, rng=0)
    ref = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, padding_mode="circular").double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.params["weight"]))
        ref.bias.copy_(torch.tensor(layer.params["bias"]))
    x = rng.standard_normal((2, 3, 8, 6))
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    y, cache = layer.forward(x)
    d_y = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(d_y))
    d_x = layer.backward(cache, d_y)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(d_x, xt.grad.numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer.grads["weight"], ref.weight.grad.numpy(), rtol=1e-12,
                               atol=1e-13)
    np.testing.assert_allclose(layer.grads["bias"], ref.bias.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("k, stride, padding, output_padding, side", [
    (3, 2, 1, 1, 8), (5, 2, 2, 1, 8), (3, 1, 1, 0, 6), (4, 2, 1, 0, 8), (5, 3, 2, 2, 9),
])
def test_periodic_transpose_is_the_adjoint_of_the_periodic_conv(k, stride, padding,
                                                                output_padding, side, rng):
    """(GAN.20) with one weight and no bias, PeriodicConvTranspose2d is the adjoint of the
    PeriodicConv2d that maps its output size back to its input size: <C x, y> = <x, C^T y> to
    round-off (an independent check of the fold's (p, p - output_padding) split, which the
    layer's own dot-product test cannot see)."""
    conv = PeriodicConv2d(3, 2, k, stride=stride, padding=padding, rng=1, bias=False)
    up = PeriodicConvTranspose2d(2, 3, k, stride=stride, padding=padding,
                                 output_padding=output_padding, rng=2, bias=False)
    up.params["weight"][...] = conv.params["weight"]           # (out, in) of C = (in, out) of C^T
    x = rng.standard_normal((2, 3, side, side))
    cx = conv(x)
    y = rng.standard_normal(cx.shape)
    cty = up(y)
    assert cty.shape == x.shape
    scale = np.linalg.norm(cx) * np.linalg.norm(y) + np.linalg.norm(x) * np.linalg.norm(cty)
    assert abs(np.sum(cx * y) - np.sum(x * cty)) <= 1e-12 * scale


def test_fold_after_unpadded_transpose_without_bias(rng):
    """CircularFold2d's docstring: ConvTranspose2d(padding=0, bias=False) -> CircularFold2d((1, 0,
    1, 0)) is PeriodicConvTranspose2d(padding=1, output_padding=1) without its bias."""
    up = PeriodicConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, rng=0)
    raw = ConvTranspose2d(3, 2, 3, stride=2, padding=0, rng=1, bias=False)
    raw.params["weight"][...] = up.params["weight"]
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(CircularFold2d((1, 0, 1, 0))(raw(x)),
                               up(x) - up.params["bias"][:, None, None], rtol=1e-12, atol=1e-14)


def _shift_error(layer, x, shift_in, shift_out):
    y = layer(x)
    y_shifted = layer(np.roll(x, shift_in, axis=(2, 3)))
    return float(np.max(np.abs(np.roll(y, shift_out, axis=(2, 3)) - y_shifted)))


def test_shift_equivariance(rng):
    """On the torus a stride-2 convolution commutes with shifts by 2 pixels (output by 1), a
    stride-2 transposed convolution with shifts by 1 (output by 2); the zero-padded layers do
    not (their borders differ)."""
    x = rng.standard_normal((2, 3, 8, 8))
    assert _shift_error(PeriodicConv2d(3, 4, 3, stride=2, padding=1, rng=0), x, (2, 4),
                        (1, 2)) < 1e-13
    assert _shift_error(Conv2d(3, 4, 3, stride=2, padding=1, rng=0), x, (2, 4), (1, 2)) > 1e-2
    up = PeriodicConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, rng=0)
    assert _shift_error(up, x, (1, 3), (2, 6)) < 1e-13
    zero = ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, rng=0)
    assert _shift_error(zero, x, (1, 3), (2, 6)) > 1e-2


def test_bias_before_the_fold_is_caught(rng, monkeypatch):
    """Planted bug: adding the bias to the unfolded output counts it twice on the wrapped row
    and column (four times in the corner). The dot-product test cannot see it (the backward
    matches that forward's linear part), shift equivariance does."""
    up = PeriodicConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, rng=0)
    x = rng.standard_normal((2, 3, 4, 4))

    def wrong(self, x):
        full, x_rows = CP.conv_transpose2d_forward(self.params["weight"], self.params["bias"], x,
                                                   self.stride, 0, 0)
        return CP._circular_fold(full, self.fold), (x.shape, x_rows)

    good = _shift_error(up, x, (1, 1), (2, 2))
    monkeypatch.setattr(PeriodicConvTranspose2d, "forward", wrong)
    assert good < 1e-13 and _shift_error(up, x, (1, 1), (2, 2)) > 1e-3


def test_cropping_backward_is_caught(rng, monkeypatch):
    """Planted bug: a backward that crops the padded gradient (the zero-padding adjoint) instead
    of folding it: the dot-product test of PeriodicConv2d fails."""
    layer = PeriodicConv2d(2, 3, 3, stride=1, padding=1, rng=0)
    x = rng.standard_normal((2, 2, 5, 5))
    good = max(r.rel_error for r in layer_vjp_errors(layer, x, rng=np.random.default_rng(1)))
    monkeypatch.setattr(CP, "_circular_fold", lambda y, p: y[:, :, p[0]:y.shape[2] - p[1],
                                                               p[2]:y.shape[3] - p[3]].copy())
    bad = layer_vjp_errors(layer, x, rng=np.random.default_rng(1))[0].rel_error
    assert good < 1e-8 and bad > 1e-4


def test_conv_gan_circular(rng):
    """conv_gan(padding="circular"): the same parameter names and values as the zero-padded pair
    (same draws), samples that agree away from the wrapped last rows and columns, and whole-GAN
    gradients (D's loss w.r.t. every D parameter, G's loss w.r.t. z) by the dot-product test."""
    zero = conv_gan((1, 8, 8), latent_dim=3, channels=(3, 2), rng=4, activation="tanh",
                    minibatch_std=True, d_hidden=4)
    gan = conv_gan((1, 8, 8), latent_dim=3, channels=(3, 2), rng=4, activation="tanh",
                   minibatch_std=True, d_hidden=4, padding="circular")
    for (n0, p0, _), (n1, p1, _) in zip(zero.nets.named_parameters(),
                                        gan.nets.named_parameters()):
        assert n0 == n1
        np.testing.assert_array_equal(p0, p1)
    a = zero.sample(5, rng=1).reshape(5, 8, 8)
    b = gan.sample(5, rng=1).reshape(5, 8, 8)
    np.testing.assert_array_equal(a[:, :5, :5], b[:, :5, :5])   # rows 5-7 see the wrapped taps
    assert np.max(np.abs(a - b)) > 1e-3
    x, z = rng.standard_normal((3, 64)), rng.standard_normal((4, 3))
    res = whole_gan_gradchecks(gan, x, z, rng=rng)
    assert len(res) == 2 * 9 and max(r.rel_error for r in res) < 1e-8


def test_bad_input():
    with pytest.raises(ValueError, match="padding"):
        CircularPad2d(-1)
    with pytest.raises(ValueError, match="padding"):
        CircularPad2d((1, 2, 3))
    with pytest.raises(ValueError, match="^x: "):
        CircularPad2d(3).forward(np.ones((1, 1, 2, 5)))          # more than one wrap
    with pytest.raises(ValueError, match="^x: "):
        CircularFold2d(2).forward(np.ones((1, 1, 5, 5)))         # folds to 1 x 1 < pad
    with pytest.raises(ValueError, match="^x: "):
        CircularPad2d(1).forward(np.ones((2, 3)))
    y, cache = CircularPad2d(1).forward(np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="d_y"):
        CircularPad2d(1).backward(cache, np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="output_padding"):
        PeriodicConvTranspose2d(1, 1, 3, stride=2, padding=0, output_padding=1)
    with pytest.raises(ValueError, match="padding"):
        conv_gan((1, 8, 8), padding="reflect", rng=0)
    gan = conv_gan((1, 8, 8), padding="circular", rng=0)
    with pytest.raises(ValueError, match="discriminator"):
        gan.fit(np.zeros((4, 64)), steps=1, r1_gamma=1.0, rng=0)   # R1 has no periodic table
