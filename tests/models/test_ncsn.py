"""The noise-conditional score network: conditioning forms, the schedule, the DSM loss through
the network (derivations/score.md, SCORE.5-SCORE.9)."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.models.ncsn import NCSN, geometric_sigmas, sigma_max_from_data
from nprefgen.testing import gradcheck


def test_geometric_schedule():
    """(SCORE.8) equal ratios, the end points, decreasing; NCSN's image setting 1 -> 0.01 in 10."""
    s = geometric_sigmas(1.0, 0.01, 10)
    assert s[0] == pytest.approx(1.0, rel=1e-15) and s[-1] == pytest.approx(0.01, rel=1e-14)
    np.testing.assert_allclose(s[1:] / s[:-1], 0.01 ** (1 / 9), rtol=1e-13)
    assert np.all(np.diff(s) < 0)
    np.testing.assert_array_equal(geometric_sigmas(3.0, 1.0, 1), [3.0])
    with pytest.raises(ValueError, match="^sigma_L:"):
        geometric_sigmas(1.0, 2.0, 5)
    with pytest.raises(ValueError, match="^sigma_1:"):
        geometric_sigmas(0.0, 0.01, 5)


def test_sigma_max_rule(rng):
    """(SCORE.9) sigma_1 = the largest pairwise distance: brute force on a small set; a subset
    gives a lower bound; the model's schedule starts there and ends at sigma_min."""
    x = rng.standard_normal((300, 3)) * [1.0, 2.0, 0.5]
    brute = max(np.linalg.norm(a - b) for i, a in enumerate(x) for b in x[i + 1:])
    assert sigma_max_from_data(x) == pytest.approx(brute, rel=1e-12)
    sub = sigma_max_from_data(x, max_points=50, rng=0)
    assert sub <= brute * (1 + 1e-12) and sub > 0.5 * brute
    model = NCSN(3, hidden=(4,), n_levels=6, sigma_min=0.05, rng=rng)
    sig = model.set_schedule_from_data(x)
    assert sig[0] == pytest.approx(brute, rel=1e-12) and sig[-1] == pytest.approx(0.05)
    assert len(sig) == 6
    # the two modes of the lecture's toy are ~14 apart: sigma_1 must be at least that
    toy = np.concatenate([rng.standard_normal((50, 2)) - 5, rng.standard_normal((50, 2)) + 5])
    assert sigma_max_from_data(toy) > 10 * np.sqrt(2)


def test_conditioning_forms(rng):
    """(SCORE.7) "scale": s(x, sigma) = f(x) / sigma, so sigma s(x, sigma) does not depend on
    sigma; "concat": s = f([x, log sigma]) / sigma, the network's forward on the stacked input."""
    x = rng.standard_normal((7, 2))
    m = NCSN(2, hidden=(8,), conditioning="scale", sigmas=[1.0, 0.1], rng=rng)
    np.testing.assert_allclose(0.1 * m.score(x, 0.1), 2.0 * m.score(x, 2.0), rtol=1e-14)
    np.testing.assert_allclose(m.score(x, 0.5), m.net(x) / 0.5, rtol=1e-14)
    c = NCSN(2, hidden=(8,), conditioning="concat", sigmas=[1.0, 0.1], rng=rng)
    sig = rng.uniform(0.1, 2.0, size=7)
    np.testing.assert_allclose(c.score(x, sig), c.net(np.column_stack([x, np.log(sig)])) / sig[:, None],
                               rtol=1e-14)
    assert c.net.layers[0].params["weight"].shape == (8, 3)


@pytest.mark.parametrize("conditioning", ["scale", "concat"])
@pytest.mark.parametrize("activation", ["softplus", "tanh"])
def test_dsm_loss_dot_product_through_the_network(conditioning, activation, rng):
    """(SCORE.5), (SCORE.6), (SCORE.7) with z and the levels drawn once and kept, the DSM loss is a
    deterministic function of the parameters: the dot-product test of every parameter's gradient
    against central differences at rtol 1e-8."""
    model = NCSN(2, hidden=(6, 5), conditioning=conditioning, activation=activation,
                 sigmas=geometric_sigmas(3.0, 0.05, 4), rng=rng)
    x = rng.standard_normal((9, 2))
    z, levels = model.draw_noise(9, rng=rng)
    assert set(levels) <= set(range(4))
    worst = 0.0
    for name, p, g in model.net.named_parameters():
        original = p.copy()

        def loss(p_):
            p[...] = p_
            try:
                return model.dsm_loss_and_grad(x, z, levels)
            finally:
                p[...] = original
                model.net.zero_grad()

        def grad(p_):
            model.net.zero_grad()
            model.dsm_loss_and_grad(x, z, levels)
            return g.copy()

        for r in gradcheck(loss, grad, original, rng=rng):
            worst = max(worst, r.rel_error)
    assert worst <= 1e-8


def test_dsm_loss_equals_the_formula(rng):
    """(SCORE.5) the model's loss is 1/n sum 1/2 ||sigma s(x~, sigma) + z||^2 at x~ = x + sigma z."""
    model = NCSN(2, hidden=(5,), sigmas=[2.0, 0.5, 0.1], rng=rng)
    x = rng.standard_normal((6, 2))
    z, levels = model.draw_noise(6, rng=rng)
    sig = model.sigmas[levels]
    s = model.score(x + sig[:, None] * z, sig)
    want = np.mean(0.5 * np.sum((sig[:, None] * s + z) ** 2, axis=1))
    assert model.dsm_loss_and_grad(x, z, levels) == pytest.approx(want, rel=1e-13)


def test_wrong_conditioning_backward_is_caught(rng):
    """The check can fail: forgetting the 1/sigma of (SCORE.7) in the backward is detected."""
    model = NCSN(2, hidden=(4,), conditioning="scale", sigmas=[2.0, 0.3], rng=rng)
    x = rng.standard_normal((5, 2))
    z, levels = model.draw_noise(5, rng=rng)
    w = model.net.layers[-1].params["weight"]
    original = w.copy()

    def loss(w_):
        w[...] = w_
        try:
            return model.dsm_loss_and_grad(x, z, levels)
        finally:
            w[...] = original

    def wrong_grad(w_):
        sig = model.sigmas[levels]
        s, cache = model._forward(x + sig[:, None] * z, sig)
        d_s = sig[:, None] * (sig[:, None] * s + z) / 5
        model.net.zero_grad()
        model.net.backward(cache, d_s)                            # missing * (1 / sigma)
        return model.net.layers[-1].grads["weight"].copy()

    with pytest.raises(AssertionError, match="dot-product test failed"):
        gradcheck(loss, wrong_grad, original, rng=rng)


@pytest.mark.parametrize("call, match", [
    (lambda m, x: m.score(x, 0.0), "sigma"),
    (lambda m, x: m.score(x, np.ones(3)), "sigma"),
    (lambda m, x: m.score(x[:, :1], 1.0), "x"),
    (lambda m, x: m.dsm_loss_and_grad(x, np.zeros((5, 2)), np.array([0, 1, 2, 0, 1])), "levels"),
    (lambda m, x: m.dsm_loss_and_grad(x, np.zeros((4, 2)), np.zeros(5, int)), "z"),
    (lambda m, x: NCSN(2, hidden=(4,), rng=0).dsm_loss_and_grad(x, x, np.zeros(5, int)), "sigmas"),
    (lambda m, x: NCSN(2, sigmas=[1.0, 1.0]), "sigmas"),
    (lambda m, x: NCSN(2, conditioning="film"), "conditioning"),
    (lambda m, x: NCSN(2, activation="gelu"), "activation"),
    (lambda m, x: m.sample(3, x0=np.zeros((2, 2))), "x0"),
])
def test_bad_input(call, match, rng):
    model = NCSN(2, hidden=(4,), sigmas=[1.0, 0.5], rng=rng)
    with pytest.raises(ValueError, match=f"^{match}:"):
        call(model, rng.standard_normal((5, 2)))
