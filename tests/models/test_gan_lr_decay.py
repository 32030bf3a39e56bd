"""The final linear learning-rate decay of GAN.fit (derivations/gan.md, GAN.18): the learning rates
both optimizers step with, recorded step by step, against the schedule written out by hand; 0
leaves training bit-identical; bad values are refused."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.models.gan import mlp_gan
from nprefgen.nn import optim


def _fit(lr_decay, steps=10, record=None):
    x = np.random.default_rng(0).standard_normal((40, 2))
    gan = mlp_gan(2, latent_dim=2, hidden=(8,), rng=1)
    return gan.fit(x, rng=2, steps=steps, batch_size=8, lr=1e-3, lr_decay=lr_decay,
                   progress=False)


def test_lr_decay_schedule(monkeypatch):
    """(GAN.18) with T = 10 steps and f = 0.4, t_0 = 6: steps 0-5 at lr, then lr (10 - t) / 4 for
    t = 6..9 (1, 3/4, 1/2, 1/4 of lr), the same for D's and G's Adam (D steps first)."""
    seen = []
    step = optim.Adam.step

    def recording(self):
        seen.append(self.lr)
        return step(self)

    monkeypatch.setattr(optim.Adam, "step", recording)
    _fit(0.4)
    expected = [1e-3] * 6 + [1e-3 * (10 - t) / 4 for t in range(6, 10)]
    np.testing.assert_allclose(seen[0::2], expected, rtol=1e-15)
    np.testing.assert_allclose(seen[1::2], expected, rtol=1e-15)
    assert seen[-1] == pytest.approx(2.5e-4)


def test_lr_decay_zero_is_unchanged():
    """f = 0 (the default) gives the parameters of a fit without the option, bit for bit; f > 0
    changes them."""
    a, b, c = _fit(0.0), _fit(0.0), _fit(0.5)
    for (pa, _), (pb, _), (pc, _) in zip(a.nets.parameters(), b.nets.parameters(),
                                         c.nets.parameters()):
        np.testing.assert_array_equal(pa, pb)
    assert any(not np.array_equal(pa, pc) for (pa, _), (pc, _) in
               zip(a.nets.parameters(), c.nets.parameters()))


@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan, "half"])
def test_lr_decay_bad_value(bad):
    with pytest.raises(ValueError, match="lr_decay"):
        _fit(bad, steps=2)
