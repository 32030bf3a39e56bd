"""The minibatch-standard-deviation feature (derivations/gan.md, GAN.16-GAN.17): its value by hand,
its backward by the dot-product test (NN.18) on images and on flat rows, a planted bug (the
centring term of the variance's derivative dropped) that the same test catches, the conv GAN that
uses it, and bad input."""
from __future__ import annotations

import numpy as np
import pytest

import nprefgen.nn.minibatch_std as M
from nprefgen.models.gan import conv_gan
from nprefgen.nn.minibatch_std import MinibatchStd
from nprefgen.testing.gradcheck import layer_vjp_errors

from gan_checks import whole_gan_gradchecks  # noqa: E402  (tests/nn/gan_checks.py)


def test_value_by_hand(rng):
    """(GAN.16) the appended channel is the mean over features of the batch standard deviation
    (numpy's population std, ddof 0), the same number for every sample and pixel; the input
    channels pass unchanged."""
    x = rng.standard_normal((5, 3, 4, 2))
    y, _ = MinibatchStd(eps=1e-300).forward(x)
    assert y.shape == (5, 4, 4, 2)
    np.testing.assert_array_equal(y[:, :3], x)
    np.testing.assert_allclose(y[:, 3], np.mean(np.std(x, axis=0)), rtol=1e-14)
    assert np.ptp(y[:, 3]) == 0.0


@pytest.mark.parametrize("shape", [(5, 3, 4, 4), (6, 7), (2, 1, 3, 3)])
def test_backward_dot_product(shape, rng):
    """(GAN.17) the input gradient passes the dot-product test at rtol 1e-8 (a cotangent that is
    not constant over the appended channel, so every term is exercised)."""
    res = layer_vjp_errors(MinibatchStd(), rng.standard_normal(shape), rng=rng)
    assert len(res) == 1 and res[0].rel_error < 1e-8, res


def test_planted_bug_is_caught(rng, monkeypatch):
    """Differentiating with xbar held fixed is right (GAN.17), but writing the derivative of the
    variance with a (1 - 1/n) factor, as if x_i's share of xbar counted once more, is wrong by
    a factor (n - 1) / n on the appended channel's term: the dot-product test sees it."""
    x = rng.standard_normal((4, 2, 3, 3))
    good = layer_vjp_errors(MinibatchStd(), x, rng=np.random.default_rng(1))[0].rel_error

    def wrong(self, cache, d_y):
        dev, sigma, shape = cache
        t = float(np.sum(d_y[:, -1])) * (1.0 - 1.0 / shape[0])
        return d_y[:, :-1] + (t / (shape[0] * sigma.size)) * dev / sigma

    monkeypatch.setattr(M.MinibatchStd, "_backward", wrong)
    bad = layer_vjp_errors(MinibatchStd(), x, rng=np.random.default_rng(1))[0].rel_error
    assert good < 1e-8 and bad > 1e-4


def test_conv_gan_with_minibatch_std_and_head_dot_product(rng):
    """(GAN.4), (GAN.6) with (GAN.15)-(GAN.17) inside D: D's loss gradient for every parameter
    of D and G's loss gradient w.r.t. z pass the dot-product test through the feature and the
    two-layer head (tanh, smooth for the stencil). The real and generated batches go through D
    in separate calls, so each gets its own batch statistic."""
    gan = conv_gan((1, 4, 4), latent_dim=3, channels=(3, 2), rng=rng, activation="tanh",
                   minibatch_std=True, d_hidden=4)
    x, z = rng.standard_normal((3, 16)), rng.standard_normal((4, 3))
    res = whole_gan_gradchecks(gan, x, z, rng=rng)
    assert len(res) == 2 * 9 and max(r.rel_error for r in res) < 1e-8
    assert "MinibatchStd" in repr(gan.discriminator.layers)


def test_bad_input():
    with pytest.raises(ValueError, match="eps"):
        MinibatchStd(eps=0.0)
    with pytest.raises(ValueError, match="x"):
        MinibatchStd().forward(np.ones((1, 3)))                # one sample has no spread
    with pytest.raises(ValueError, match="x"):
        MinibatchStd().forward(np.ones((2, 3, 4)))             # neither rows nor images
    y, cache = MinibatchStd().forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="d_y"):
        MinibatchStd().backward(cache, np.ones((2, 3)))
    with pytest.raises(ValueError, match="minibatch_std"):
        conv_gan((1, 4, 4), minibatch_std="yes", rng=0)
    with pytest.raises(ValueError, match="d_hidden"):
        conv_gan((1, 4, 4), d_hidden=0, rng=0)
