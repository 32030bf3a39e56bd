"""The GAN (derivations/gan.md): both players' gradients by the dot-product test, the shared
discriminator's two calls, the generator step leaving D's grads alone, a planted sign bug, the
optimal discriminator as a log density ratio, mode coverage on the 8-Gaussians ring, divergence,
files and bad input."""
from __future__ import annotations

import numpy as np
import pytest

import nprefgen.models.gan as G
from nprefgen.data.toys import eight_gaussians_means, sample_8gaussians
from nprefgen.models.gan import (
    GAN, TrainingDivergedError, conv_gan, discriminator_loss, mlp_gan, mode_coverage,
)
from nprefgen.nn import Linear, Module, Sequential
from nprefgen.testing import gradcheck


def _small_gan(rng):
    return mlp_gan(3, 2, hidden=(5, 4), rng=rng, activation="tanh")


def _param_checks(gan: GAN, net: Module, loss_and_grad, rng):
    """gradcheck (NN.18) of a scalar loss w.r.t. every parameter of ``net``."""
    results = []
    for name, p, g in net.named_parameters():
        original = p.copy()

        def fun(p_, p=p, original=original):
            p[...] = p_
            try:
                gan.nets.zero_grad()
                return loss_and_grad()
            finally:
                p[...] = original

        def grad(_, g=g):
            gan.nets.zero_grad()
            loss_and_grad()
            return g.copy()

        results += gradcheck(fun, grad, original, rng=rng, name=name)
    gan.nets.zero_grad()
    return results


def test_discriminator_gradient_dot_product(rng):
    """(GAN.1), (GAN.3), (GAN.4) D's gradient w.r.t. every parameter passes the dot-product test
    (rtol 1e-8), with the real and the generated batch through one discriminator object."""
    gan = _small_gan(rng)
    x, z = rng.standard_normal((6, 3)), rng.standard_normal((5, 2))
    res = _param_checks(gan, gan.discriminator, lambda: gan.discriminator_loss_and_grad(x, z), rng)
    assert len(res) == 2 * 6 and max(r.rel_error for r in res) < 1e-8


def test_generator_gradient_dot_product(rng):
    """(GAN.5), (GAN.6) G's gradient through D w.r.t. every generator parameter and z passes the
    dot-product test."""
    gan = _small_gan(rng)
    z = rng.standard_normal((5, 2))
    res = _param_checks(gan, gan.generator, lambda: gan.generator_loss_and_grad(z)[0], rng)
    res += gradcheck(lambda z_: gan.generator_loss_and_grad(z_)[0],
                     lambda z_: gan.generator_loss_and_grad(z_)[1], z, rng=rng, name="z")
    assert max(r.rel_error for r in res) < 1e-8


def test_conv_pair_gradients_dot_product(rng):
    """(GAN.4), (GAN.6) the DCGAN-style conv pair: D's and G's gradients pass the dot-product
    test through Conv2d / ConvTranspose2d (tanh, smooth for the stencil)."""
    gan = conv_gan((1, 4, 4), latent_dim=3, channels=(3, 2), rng=rng, activation="tanh",
                   out_activation="sigmoid")
    x, z = rng.uniform(0, 1, (3, 16)), rng.standard_normal((4, 3))
    res = _param_checks(gan, gan.discriminator, lambda: gan.discriminator_loss_and_grad(x, z), rng)
    res += _param_checks(gan, gan.generator, lambda: gan.generator_loss_and_grad(z)[0], rng)
    assert len(res) == 2 * 12 and max(r.rel_error for r in res) < 1e-8
    assert gan.sample(5, rng=0).shape == (5, 16)


def test_generator_step_leaves_discriminator_grads(rng):
    """(GAN.6) the backward through D for dL_G/dx leaves D's accumulated grads bit for bit."""
    gan = _small_gan(rng)
    for _, g in gan.discriminator.parameters():
        g[...] = rng.standard_normal(g.shape)
    before = [g.copy() for _, g in gan.discriminator.parameters()]
    gan.generator_loss_and_grad(rng.standard_normal((4, 2)))
    for b, (_, g) in zip(before, gan.discriminator.parameters()):
        np.testing.assert_array_equal(g, b)
    assert any(np.any(g != 0) for _, g in gan.generator.parameters())


def test_two_calls_accumulate(rng):
    """(GAN.3), (GAN.4) two forward/backward calls of one D (real, then generated batch) give the
    gradient of one call on the stacked batch with the stacked cotangents."""
    gan = _small_gan(rng)
    x, z = rng.standard_normal((6, 3)), rng.standard_normal((5, 2))
    gan.nets.zero_grad()
    gan.discriminator_loss_and_grad(x, z)
    two = [g.copy() for _, g in gan.discriminator.parameters()]
    gan.nets.zero_grad()
    fake = gan.generator.forward(z)[0]
    D = gan.discriminator
    a, cache = D.forward(np.concatenate([x, fake]))
    _, d_r, d_f = discriminator_loss(a[:6], a[6:])
    D.backward(cache, np.concatenate([d_r, d_f]))
    for g2, (_, g1) in zip(two, D.parameters()):
        np.testing.assert_allclose(g2, g1, rtol=1e-13, atol=1e-16)


def test_wrong_generator_sign_is_caught(rng, monkeypatch):
    """The check can fail: the saturating gradient's sign (+sigmoid(-a)/m instead of
    -sigmoid(-a)/m for (GAN.5)) makes the generator's dot-product test fail."""
    gan = _small_gan(rng)
    z = rng.standard_normal((5, 2))
    right = G.generator_loss

    def wrong(a_fake):
        loss, d_a = right(a_fake)
        return loss, -d_a

    monkeypatch.setattr(G, "generator_loss", wrong)
    with pytest.raises(AssertionError, match="dot-product test failed"):
        _param_checks(gan, gan.generator, lambda: gan.generator_loss_and_grad(z)[0], rng)


class _Quadratic(Module):
    """x: (n, 1) -> [x, x^2]: (n, 2), so a Linear on top can represent any Gaussian log ratio."""

    def forward(self, x):
        return np.concatenate([x, x * x], axis=1), x

    def backward(self, x, d_y):
        return d_y[:, :1] + 2.0 * x * d_y[:, 1:]


def test_optimal_discriminator_is_the_log_ratio():
    """(GAN.2) a discriminator trained on (GAN.3) to convergence (generator fixed: G(z) = 0.5 z + 1,
    so p_g = N(1, 0.25), p_data = N(0, 1)) has logits log p_data - log p_g, up to the finite
    sample: the error at each grid point must stay below 4 standard errors of the logistic
    maximum-likelihood logit (from the Fisher information of the 3 parameters)."""
    rng = np.random.default_rng(0)
    gen = Linear(1, 1, rng=rng)
    gen.params["weight"][...] = 0.5
    gen.params["bias"][...] = 1.0
    dis = Sequential(_Quadratic(), Linear(2, 1, rng=rng))
    gan = GAN(gen, dis, latent_dim=1, data_dim=1)
    N = 20_000
    x, z = rng.standard_normal((N, 1)), rng.standard_normal((N, 1))
    from nprefgen.nn import Adam
    opt = Adam(dis.parameters(), lr=0.05)
    for _ in range(1500):
        gan.nets.zero_grad()
        gan.discriminator_loss_and_grad(x, z)
        opt.step()
    grid = np.linspace(-1.0, 2.0, 13)[:, None]
    want = (-0.5 * grid ** 2) - (-0.5 * (grid - 1.0) ** 2 / 0.25 - np.log(0.5))
    got = gan.discriminate(grid)[:, None]
    # standard error of the fitted logit: phi^T I^{-1} phi, I = sum p (1 - p) phi phi^T
    feats = np.concatenate([x, gen.forward(z)[0]])
    phi = np.concatenate([np.ones_like(feats), feats, feats ** 2], axis=1)
    p = 1.0 / (1.0 + np.exp(-gan.discriminate(feats)))
    info = (phi * (p * (1 - p))[:, None]).T @ phi
    phi_g = np.concatenate([np.ones_like(grid), grid, grid ** 2], axis=1)
    se = np.sqrt(np.einsum("ij,jk,ik->i", phi_g, np.linalg.inv(info), phi_g))[:, None]
    assert np.all(np.abs(got - want) < 4.0 * se), np.c_[grid, got - want, se]


def test_mode_coverage_by_hand():
    """(GAN.14) samples at two modes (one just inside 3 sigma) and one far away: 2 modes captured,
    quality 3/4; ``min_share`` raises the bar per mode."""
    mu = eight_gaussians_means()
    s = np.array([mu[0], mu[0] + [0.0, 0.29], mu[3], [0.0, 0.0]])
    captured, quality, counts = mode_coverage(s, mu, 0.1)
    assert captured == 2 and quality == 0.75 and counts[0] == 2 and counts[3] == 1
    assert mode_coverage(s, mu, 0.1, min_share=0.5)[0] == 1


def test_eight_gaussians_modes_captured():
    """(GAN.7), (GAN.14) an MLP GAN (64-64, LeakyReLU, Adam lr 1e-3, beta1 0.5, batch 256) with
    annealed instance noise captures at least 7 of the 8 modes of the ring (radius 2, sigma
    0.05) after 2500 steps, with most samples high quality."""
    X = sample_8gaussians(20_000, rng=100, sigma=0.05)
    gan = mlp_gan(2, 2, hidden=(64, 64), rng=0)
    gan.fit(X, rng=0, steps=2500, batch_size=256, lr=1e-3, instance_noise=0.02)
    captured, quality, _ = mode_coverage(gan.sample(2500, rng=1), eight_gaussians_means(), 0.05)
    assert captured >= 7 and quality > 0.5, (captured, quality)
    assert len(gan.history_["d_loss"]) == 2500


def test_divergence_keeps_the_last_finite_parameters(rng, monkeypatch):
    """A non-finite discriminator loss in step 2 (the third D evaluation) stops training with a
    message naming the step, and the parameters are those after steps 0 and 1 (bit for bit the
    same as a 2-step run); on_divergence="warn" warns instead."""
    x = rng.standard_normal((50, 3))
    ref = _small_gan(np.random.default_rng(4))
    ref.fit(x, rng=1, steps=2, batch_size=8)
    calls = {"n": 0}
    right = G.discriminator_loss

    def nan_at_third_call(a_real, a_fake):
        calls["n"] += 1
        loss, d_r, d_f = right(a_real, a_fake)
        return (np.nan if calls["n"] == 3 else loss), d_r, d_f

    monkeypatch.setattr(G, "discriminator_loss", nan_at_third_call)
    gan = _small_gan(np.random.default_rng(4))
    with pytest.raises(TrainingDivergedError, match="step 2"):
        gan.fit(x, rng=1, steps=5, batch_size=8)
    for (p, _), (q, _) in zip(gan.nets.parameters(), ref.nets.parameters()):
        np.testing.assert_array_equal(p, q)
    assert len(gan.history_["d_loss"]) == 2
    calls["n"] = 0
    with pytest.warns(RuntimeWarning, match="diverged"):
        _small_gan(rng).fit(x, rng=1, steps=5, batch_size=8, on_divergence="warn")


def test_save_load_and_sample(tmp_path, rng):
    gan = _small_gan(rng)
    gan.save(tmp_path / "gan.npz")
    other = _small_gan(np.random.default_rng(5)).load(tmp_path / "gan.npz")
    np.testing.assert_array_equal(other.sample(7, rng=3), gan.sample(7, rng=3))
    assert gan.sample(7, rng=3).shape == (7, 3)


def test_bad_input(rng):
    gan = _small_gan(rng)
    x = rng.standard_normal((10, 3))
    bad = x.copy()
    bad[0, 0] = np.nan
    cases = [
        ("x", lambda: gan.fit(bad, steps=1)),
        ("x", lambda: gan.fit(x[:, :2], steps=1)),
        ("n_critic", lambda: gan.fit(x, steps=1, n_critic=0)),
        ("steps", lambda: gan.fit(x, steps=0)),
        ("latent_dim", lambda: mlp_gan(3, 0)),
        ("z", lambda: gan.generator_loss_and_grad(np.zeros((2, 3)))),
        ("n", lambda: gan.sample(0)),
        ("sigma", lambda: mode_coverage(x[:, :2], eight_gaussians_means(), 0.0)),
    ]
    for name, thunk in cases:
        with pytest.raises(ValueError, match=f"^{name}"):
            thunk()


def test_gan_tour_section_quick(tmp_path):
    """The tour section runs in quick mode and writes its figures."""
    from nprefgen.tour import run_tour

    run_tour(tmp_path, quick=True, only=["gan"], progress=False, strict=True)
    assert (tmp_path / "gan-ring.png").exists() and (tmp_path / "gan-digits.png").exists()


def test_gan_fields_tour_section_quick(tmp_path):
    """The field-statistics section runs in quick mode, writes its figures and records its
    power-spectrum check (flagged or not: quick mode trains for a few steps only)."""
    from nprefgen.tour import build_tour

    report = build_tour(tmp_path, quick=True, only=["gan_fields"], progress=False, strict=True)
    assert (tmp_path / "gan_fields-statistics.png").exists()
    checks = [c for s in report.sections for c in s.checks]
    assert [c.name for c in checks] == ["GAN power spectrum, largest |ratio - 1| below half Nyquist"]
    assert "chosen every 20 steps on 200 separate validation maps" in checks[0].rule


def test_generator_ema(rng):
    """(GAN.8) fit(ema=beta) leaves the generator at the moving average of its per-step
    parameters (recorded by a callback from a run without averaging on the same seed), and the
    discriminator exactly where the plain run leaves it."""
    x = rng.standard_normal((40, 3))
    plain = _small_gan(np.random.default_rng(2))
    trail = [[p.copy() for p, _ in plain.generator.parameters()]]
    plain.fit(x, rng=1, steps=4, batch_size=8, callback=lambda s, g: trail.append(
        [p.copy() for p, _ in g.generator.parameters()]))
    avg = _small_gan(np.random.default_rng(2)).fit(x, rng=1, steps=4, batch_size=8, ema=0.9)
    want = [a.copy() for a in trail[0]]
    for step in trail[1:]:
        want = [0.9 * w + 0.1 * p for w, p in zip(want, step)]
    for w, (p, _) in zip(want, avg.generator.parameters()):
        np.testing.assert_allclose(p, w, rtol=1e-12, atol=1e-15)
    for (p, _), (q, _) in zip(avg.discriminator.parameters(), plain.discriminator.parameters()):
        np.testing.assert_array_equal(p, q)
