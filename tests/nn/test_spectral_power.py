"""The per-sample log band power (derivations/gan.md, GAN.21-GAN.22) and the Branches container:
the value against nprefgen.metrics.field_stats.power_spectrum (same shells), the backward by the
dot-product test (NN.18), a planted bug (the factor 2 of GAN.22 dropped), the conv GAN whose
discriminator uses the feature, and bad input."""
from __future__ import annotations

import numpy as np
import pytest

import nprefgen.nn.spectral_power as SP
from nprefgen.metrics.field_stats import power_spectrum, power_spectrum_bins
from nprefgen.models.gan import conv_gan
from nprefgen.nn import Linear, Sequential, Tanh
from nprefgen.nn.spectral_power import BinnedLogPower, Branches
from nprefgen.testing.gradcheck import layer_vjp_errors

from gan_checks import whole_gan_gradchecks  # noqa: E402  (tests/nn/gan_checks.py)


@pytest.mark.parametrize("n_side, n_bins", [(32, 8), (16, 5), (8, 3), (7, 2), (15, 4)])
def test_shells_are_field_stats_bins(n_side, n_bins):
    idx, _, _ = power_spectrum_bins(n_side, 1.0, n_bins, "log")
    np.testing.assert_array_equal(SP._shell_index(n_side, n_bins), idx)


def test_value_is_the_power_spectrum_of_each_map(rng):
    """(GAN.21) exp(f_b) - eps of one map is its binned power spectrum (DATA.12) on a box of side
    L = 1 times s^2 (field_stats divides |X_k|^2 by s^4, the feature by s^2)."""
    x = rng.standard_normal((3, 16 * 16))
    f = BinnedLogPower(16, 5, eps=1e-300)(x)
    for i in range(3):
        ps = power_spectrum(x[i].reshape(16, 16), n_bins=5)
        np.testing.assert_allclose(np.exp(f[i]), ps.power * 16**2, rtol=1e-12)


@pytest.mark.parametrize("shape, n_side, n_bins", [((3, 64), 8, 3), ((2, 1, 16, 16), 16, 5),
                                                  ((3, 49), 7, 2), ((2, 1, 15, 15), 15, 4)])
def test_backward_dot_product(shape, n_side, n_bins, rng):
    """(GAN.22) the input gradient at rtol 1e-8, flat rows and (n, 1, s, s) images; even sides
    (the Nyquist modes k = -k are their own conjugates, in the last shell) and odd ones."""
    res = layer_vjp_errors(BinnedLogPower(n_side, n_bins), rng.standard_normal(shape), rng=rng)
    assert len(res) == 1 and res[0].rel_error < 1e-8, res


def test_dropped_factor_two_is_caught(rng, monkeypatch):
    """Planted bug: d|X_k|^2/dx without the 2 of (GAN.22) (as if |X|^2 were linear in X)."""
    x = rng.standard_normal((2, 64))
    good = layer_vjp_errors(BinnedLogPower(8, 3), x, rng=np.random.default_rng(1))[0].rel_error

    def wrong(self, cache, d_y):
        X, p, shape, dtype = cache
        n, s = X.shape[0], self.n_side
        c = ((d_y / (p + self.eps)) @ self._avg.T).reshape(n, s, s)
        return (s * s * np.real(np.fft.ifft2(c * X))).reshape(shape)

    monkeypatch.setattr(BinnedLogPower, "_backward", wrong)
    bad = layer_vjp_errors(BinnedLogPower(8, 3), x, rng=np.random.default_rng(1))[0].rel_error
    assert good < 1e-8 and bad > 1e-3, (good, bad)


def test_branches_concatenate_and_sum_gradients(rng):
    """Branches: outputs side by side; input, weight and bias gradients by the dot-product test
    (the input gradient is the sum over the branches)."""
    net = Branches(Sequential(Linear(16, 3, rng=0), Tanh()), BinnedLogPower(4, 2))
    x = rng.standard_normal((3, 16))
    y = net(x)
    np.testing.assert_array_equal(y[:, :3], np.tanh(net.nets[0].layers[0](x)))
    np.testing.assert_array_equal(y[:, 3:], BinnedLogPower(4, 2)(x))
    res = layer_vjp_errors(net, x, rng=rng)
    assert len(res) == 3 and max(r.rel_error for r in res) < 1e-8, res


def test_conv_gan_with_spectrum_dot_product(rng):
    """conv_gan(d_spectrum=B): D = Branches(convolutions, BinnedLogPower) -> head; D's loss
    gradient for every D parameter and G's w.r.t. z by the dot-product test (GAN.4, GAN.6).
    Stencil step 1e-4: the fresh generator's maps are small (band powers ~1e-3), so the
    minibatch-std square root and the logs of (GAN.21) curve on a scale ~0.05 and the O(h^4)
    truncation of (NN.19) at h = 1e-3 reaches ~3e-7 (measured), at 1e-4 ~3e-11."""
    gan = conv_gan((1, 8, 8), latent_dim=3, channels=(3, 2), rng=rng, activation="tanh",
                   minibatch_std=True, d_hidden=4, d_spectrum=3, padding="circular")
    assert "BinnedLogPower" in repr(gan.discriminator)
    x, z = rng.standard_normal((3, 64)), rng.standard_normal((4, 3))
    res = whole_gan_gradchecks(gan, x, z, rng=rng, step=1e-4)
    assert len(res) == 2 * 9 and max(r.rel_error for r in res) < 1e-8


def test_bad_input():
    with pytest.raises(ValueError, match="n_bins"):
        BinnedLogPower(8, 12)                                    # empty shells
    with pytest.raises(ValueError, match="n_side"):
        BinnedLogPower(1)
    with pytest.raises(ValueError, match="eps"):
        BinnedLogPower(8, eps=0.0)
    with pytest.raises(ValueError, match="^x: "):
        BinnedLogPower(8, 3).forward(np.ones((2, 63)))
    for shape in ((2, 4, 4, 4), (2, 1, 4, 16), (2, 2, 8, 8)):    # 64 values, not one 8 x 8 map
        with pytest.raises(ValueError, match=r"^x: .*\(n, 1, 8, 8\)"):
            BinnedLogPower(8, 3).forward(np.ones(shape))
    with pytest.raises(ValueError, match="nets"):
        Branches()
    with pytest.raises(ValueError, match="nets"):
        Branches(Linear(2, 2, rng=0), "not a module")
    with pytest.raises(ValueError, match="^x: "):
        Branches(Linear(4, 2, rng=0), Sequential(Linear(4, 4, rng=0))).forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="d_spectrum"):
        conv_gan((1, 8, 8), d_spectrum=0, rng=0)
    with pytest.raises(ValueError, match="image_shape"):
        conv_gan((2, 8, 8), d_spectrum=3, rng=0)
    gan = conv_gan((1, 8, 8), d_spectrum=3, rng=0)
    with pytest.raises(ValueError, match="discriminator"):
        gan.fit(np.zeros((4, 64)), steps=1, r1_gamma=1.0, rng=0)   # R1 has no table for Branches
