"""GAN files and the layer kinds: conv_gan(padding="circular") has exactly the zero-padded
pair's parameter names and shapes, and conv_gan(d_spectrum=B) renames D's, so GAN.save records the
layer kinds and GAN.load refuses a file built of others with one clear message."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.models.gan import conv_gan
from nprefgen.nn import save_npz


def _gan(seed, **kw):
    return conv_gan((1, 8, 8), latent_dim=3, channels=(3, 2), rng=seed, minibatch_std=True,
                    d_hidden=4, **kw)


def test_round_trip_with_spectrum_and_circular_padding(tmp_path, rng):
    """save/load of conv_gan(d_spectrum=3, padding="circular"): every parameter, samples and
    D's logits equal after loading into a freshly drawn GAN of the same build."""
    gan = _gan(0, d_spectrum=3, padding="circular")
    gan.save(tmp_path / "g.npz")
    other = _gan(1, d_spectrum=3, padding="circular")
    assert not np.array_equal(other.sample(3, rng=0), gan.sample(3, rng=0))
    other.load(tmp_path / "g.npz")
    for (n0, p0, _), (n1, p1, _) in zip(gan.nets.named_parameters(), other.nets.named_parameters()):
        assert n0 == n1
        np.testing.assert_array_equal(p0, p1)
    x = rng.standard_normal((4, 64))
    np.testing.assert_array_equal(other.sample(5, rng=2), gan.sample(5, rng=2))
    np.testing.assert_array_equal(other.discriminate(x), gan.discriminate(x))


@pytest.mark.parametrize("saved, loaded", [
    ({}, {"padding": "circular"}),                  # same names and shapes: loaded silently before
    ({"padding": "circular"}, {}),
    ({}, {"d_spectrum": 3}),                        # before: a message about one weight's shape
    ({"d_spectrum": 3}, {"d_spectrum": 3, "padding": "circular"}),
])
def test_other_layers_are_refused(tmp_path, saved, loaded):
    _gan(0, **saved).save(tmp_path / "g.npz")
    target = _gan(1, **loaded)
    before = [p.copy() for p, _ in target.nets.parameters()]
    with pytest.raises(ValueError, match=r"^path: .*g\.npz.* built of other layers"):
        target.load(tmp_path / "g.npz")
    for (p, _), b in zip(target.nets.parameters(), before):      # nothing was set
        np.testing.assert_array_equal(p, b)


def test_file_without_layer_kinds_still_loads(tmp_path):
    """A file written before the layer kinds were recorded (parameters and sizes only) loads
    into a GAN of matching names and shapes, as it did."""
    gan = _gan(0)
    save_npz(tmp_path / "old.npz", gan.nets, meta={"latent_dim": np.array(3),
                                                   "data_dim": np.array(64)})
    other = _gan(1).load(tmp_path / "old.npz")
    np.testing.assert_array_equal(other.sample(3, rng=0), gan.sample(3, rng=0))
