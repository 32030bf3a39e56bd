"""The convolutional NCSN for small images: the DSM loss through the conv net passes the
dot-product test; sampling uses the Python loop (derivations/score.md, SCORE.5-SCORE.7)."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.models.ncsn import geometric_sigmas
from nprefgen.models.ncsn_conv import ConvNCSN
from nprefgen.samplers.langevin import annealed_langevin
from nprefgen.testing import gradcheck


@pytest.mark.parametrize("conditioning", ["concat", "scale"])
def test_conv_dsm_dot_product(conditioning, rng):
    """(SCORE.5) (SCORE.6) (SCORE.7) every parameter of the conv net, rtol 1e-8."""
    model = ConvNCSN((1, 4, 4), channels=3, conditioning=conditioning,
                     sigmas=geometric_sigmas(2.0, 0.1, 3), rng=rng)
    x = rng.uniform(0, 1, size=(4, 16))
    z, levels = model.draw_noise(4, rng=rng)
    for name, p, g in model.net.named_parameters():
        original = p.copy()

        def loss(p_):
            p[...] = p_
            try:
                return model.dsm_loss_and_grad(x, z, levels)
            finally:
                p[...] = original
                model.zero_grad()

        def grad(p_):
            model.zero_grad()
            model.dsm_loss_and_grad(x, z, levels)
            return g.copy()

        gradcheck(loss, grad, original, rng=rng)


def test_conv_score_and_sampling(rng):
    """(SCORE.7) the log-sigma channel and the 1/sigma scale; sampling runs the Python loop."""
    model = ConvNCSN((1, 4, 4), channels=2, sigmas=[1.0, 0.3], rng=rng)
    x = rng.uniform(0, 1, size=(3, 16))
    s = model.score(x, 0.5)
    img = np.concatenate([x.reshape(3, 1, 4, 4), np.full((3, 1, 4, 4), np.log(0.5))], axis=1)
    np.testing.assert_allclose(s, model.net(img).reshape(3, 16) / 0.5, rtol=1e-14)
    out = model.sample(3, x0=x, eps=1e-3, n_steps_each=2, denoise=True, rng=0)
    ref = annealed_langevin(model, x, model.sigmas, eps=1e-3, n_steps_each=2, denoise=True,
                            method="python", rng=0).samples
    np.testing.assert_array_equal(out, ref)
    with pytest.raises(ValueError, match="^method:"):
        annealed_langevin(model, x, model.sigmas, eps=1e-3, n_steps_each=2, method="numba")
    with pytest.raises(ValueError, match="^image_shape:"):
        ConvNCSN((8, 8))
