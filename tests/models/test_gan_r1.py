"""The R1 gradient penalty (derivations/gan.md, GAN.9-GAN.12): its hand-written double backward
by the dot-product test against finite differences of the penalty for every parameter, a planted
bug (the product rule's second-derivative term dropped), torch's double backward, and the GAN's
``r1_gamma`` option (0 leaves training bit-identical), for MLP and conv discriminators."""
from __future__ import annotations

import numpy as np
import pytest

import nprefgen.models.gan_r1 as R
from nprefgen.models.gan import conv_gan, mlp_gan
from nprefgen.models.gan_r1 import input_gradient, r1_penalty_and_grad
from nprefgen.nn import (
    MLP, Conv2d, ConvTranspose2d, Flatten, LeakyReLU, Linear, MaskedLinear, Reshape, Sequential,
    Softplus, Tanh,
)
from nprefgen.testing import gradcheck

GAMMA = 0.7


def _penalty_checks(D, x, rng, step=1e-3):
    """gradcheck (NN.18) of R1 (GAN.9) w.r.t. every parameter of D and w.r.t. x (raises on a
    failure); returns {name: (results, gradient)}, "x" included."""
    def run(x_=x):
        D.zero_grad()
        return r1_penalty_and_grad(D, D.forward(x_)[1], GAMMA)

    out = {}
    for name, p, g in D.named_parameters():
        original = p.copy()

        def fun(p_, p=p, original=original):
            p[...] = p_
            try:
                return run()[0]
            finally:
                p[...] = original

        def grad(_, g=g):
            run()
            return g.copy()

        out[name] = (gradcheck(fun, grad, original, rng=rng, name=name, step=step), grad(None))
    out["x"] = (gradcheck(lambda x_: run(x_)[0], lambda x_: run(x_)[1], x, rng=rng, name="x",
                          step=step), run()[1])
    return out


@pytest.mark.parametrize("activation", ["tanh", "softplus", "sigmoid", "elu"])
def test_r1_double_backward_dot_product(activation, rng):
    """(GAN.9)-(GAN.12) dR1/dpsi for every parameter of an MLP discriminator (two hidden
    layers) and dR1/dx pass the dot-product test at rtol 1e-8. The output bias does not enter
    grad_x a, so its gradient is exactly zero."""
    D = MLP(3, [5, 4], 1, rng=rng, activation=activation)
    x = rng.standard_normal((6, 3))
    out = _penalty_checks(D, x, rng)
    assert np.array_equal(out.pop("4.bias")[1], np.zeros(1))
    assert len(out) == 6 and max(r.rel_error for res, _ in out.values() for r in res) < 1e-8


def test_r1_double_backward_leaky_relu(rng):
    """(GAN.11), (GAN.12) with leaky ReLU (phi'' = 0): inside one linear region R1 is a
    quadratic in each weight matrix, so the stencil (NN.19) is exact there; the step is 1e-6 so
    that no pre-activation crosses the kink (the smallest |pre-activation| is checked)."""
    D = MLP(3, [5, 4], 1, rng=rng, activation="leaky_relu")
    x = rng.standard_normal((6, 3))
    caches = D.forward(x)[1]
    assert min(np.abs(caches[i][0]).min() for i in (1, 3)) > 1e-3   # >> 2 step |u| ~ 1e-5
    out = _penalty_checks(D, x, rng, step=1e-6)
    for name in ("0.bias", "2.bias", "4.bias", "x"):   # grad_x a is constant in b, x a.e.
        assert not np.any(out.pop(name)[1])
    assert max(r.rel_error for res, _ in out.values() for r in res) < 1e-8


def test_input_gradient_matches_the_layers_backward(rng):
    """(GAN.10) the first backward (d_a = 1), done without touching D's grads, equals the
    layers' own backward pass, and R1 is gamma/2 times its mean squared norm."""
    D = MLP(4, [6], 1, rng=rng, activation="tanh")
    x = rng.standard_normal((7, 4))
    caches = D.forward(x)[1]
    g, _ = input_gradient(D, caches)
    assert all(np.all(gr == 0) for _, gr in D.parameters())
    np.testing.assert_allclose(g, D.backward(caches, np.ones((7, 1))), rtol=1e-14, atol=0)
    D.zero_grad()
    pen, _ = r1_penalty_and_grad(D, caches, GAMMA)
    assert pen == pytest.approx(0.5 * GAMMA * np.mean(np.sum(g * g, axis=1)), rel=1e-14)


def test_dropped_second_derivative_is_caught(rng, monkeypatch):
    """A planted bug: dropping the product rule's phi'' term of (GAN.11) (treating tanh as if
    it were piecewise linear) fails the dot-product test."""
    monkeypatch.setitem(R.SECOND_DERIVATIVES, Tanh, R._zero)
    D = MLP(3, [5, 4], 1, rng=rng, activation="tanh")
    with pytest.raises(AssertionError, match="dot-product test failed"):
        _penalty_checks(D, rng.standard_normal((6, 3)), rng)


def _assert_r1_matches_torch(D, net, x):
    """R1 (GAN.9) of the nprefgen discriminator D at x, its input gradient and every parameter
    gradient against torch's create_graph double backward of ``net`` (same weights, copied
    here by state_dict name) at 1e-12."""
    import torch
    pen, dx = r1_penalty_and_grad(D, D.forward(x)[1], GAMMA)
    with torch.no_grad():
        for (name, p, _), (tname, tp) in zip(D.named_parameters(), net.named_parameters()):
            assert name == tname
            tp.copy_(torch.from_numpy(p))
    xt = torch.from_numpy(x).requires_grad_(True)
    (g,) = torch.autograd.grad(net(xt).sum(), xt, create_graph=True)
    r1 = 0.5 * GAMMA * (g ** 2).sum(dim=1).mean()
    r1.backward()
    assert pen == pytest.approx(r1.item(), rel=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    for (name, _, gr), (_, tp) in zip(D.named_parameters(), net.named_parameters()):
        want = np.zeros_like(gr) if tp.grad is None else tp.grad.numpy()   # output bias: unused
        np.testing.assert_allclose(gr, want, rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.torch
def test_r1_against_torch_double_backward(rng):
    """(GAN.9)-(GAN.12) value and every parameter gradient equal torch.autograd's
    create_graph double backward at 1e-12."""
    torch = pytest.importorskip("torch")
    D = MLP(3, [8, 8], 1, rng=rng, activation="softplus")
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Softplus(), torch.nn.Linear(8, 8),
                              torch.nn.Softplus(), torch.nn.Linear(8, 1)).double()
    _assert_r1_matches_torch(D, net, rng.standard_normal((10, 3)))


def test_discriminator_step_with_r1_dot_product(rng):
    """(GAN.4) + (GAN.9): the whole discriminator step with r1_gamma > 0 passes the
    dot-product test for every parameter."""
    gan = mlp_gan(3, 2, hidden=(5, 4), rng=rng, activation="tanh")
    x, z = rng.standard_normal((6, 3)), rng.standard_normal((5, 2))
    worst = 0.0
    for name, p, g in gan.discriminator.named_parameters():
        original = p.copy()

        def fun(p_, p=p, original=original):
            p[...] = p_
            try:
                gan.nets.zero_grad()
                return gan.discriminator_loss_and_grad(x, z, r1_gamma=GAMMA)
            finally:
                p[...] = original

        def grad(_, g=g):
            gan.nets.zero_grad()
            gan.discriminator_loss_and_grad(x, z, r1_gamma=GAMMA)
            return g.copy()

        worst = max([worst] + [r.rel_error for r in gradcheck(fun, grad, original, rng=rng,
                                                              name=name)])
    assert worst < 1e-8


def test_fit_r1_gamma_zero_is_unchanged_and_positive_differs(rng):
    """r1_gamma = 0 (the default) trains bit-identically to not passing it; r1_gamma > 0 changes
    the discriminator (and so the generator) after a few steps."""
    x = rng.standard_normal((40, 3))
    runs = [mlp_gan(3, 2, hidden=(8, 8), rng=3).fit(x, rng=1, steps=5, batch_size=8, **kw)
            for kw in ({}, {"r1_gamma": 0.0}, {"r1_gamma": 1.0})]
    for (p, _), (q, _) in zip(runs[0].nets.parameters(), runs[1].nets.parameters()):
        assert np.array_equal(p, q)
    assert any(not np.array_equal(p, q) for (p, _), (q, _) in
               zip(runs[0].discriminator.parameters(), runs[2].discriminator.parameters()))


def test_r1_bad_input(rng):
    """Layers outside LINEAR_LAYERS / SECOND_DERIVATIVES (a MaskedLinear, a nested Sequential) or
    an output wider than 1 are refused by name; a negative gamma too."""
    for D in (Sequential(MaskedLinear(2, 3, np.ones((3, 2)), rng=0), Tanh(), Linear(3, 1, rng=0)),
              Sequential(Sequential(Linear(2, 3, rng=0)), Tanh(), Linear(3, 1, rng=0)),
              MLP(2, [3], 2, rng=0)):
        with pytest.raises(ValueError, match="discriminator"):
            r1_penalty_and_grad(D, D.forward(rng.standard_normal((4, 2)))[1], 1.0)
    with pytest.raises(ValueError, match="r1_gamma"):
        mlp_gan(2, rng=0).fit(rng.standard_normal((10, 2)), rng=0, steps=1, r1_gamma=-1.0)


def _conv_discriminator(rng, act=Tanh, transposed=False):
    """Reshape -> Conv2d(stride 2, padding 1) -> act -> [ConvTranspose2d -> act ->] Conv2d ->
    act -> Flatten -> Linear(., 1): every layer type of LINEAR_LAYERS in one discriminator."""
    layers = [Reshape(2, 6, 6), Conv2d(2, 3, 3, stride=2, padding=1, rng=rng), act()]
    if transposed:
        layers += [ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, rng=rng), act(),
                   Conv2d(2, 3, 3, stride=2, padding=1, rng=rng), act()]
    layers += [Conv2d(3, 2, 2, rng=rng), act(), Flatten(), Linear(8, 1, rng=rng)]
    return Sequential(*layers)


@pytest.mark.parametrize("act,transposed", [(Tanh, False), (Softplus, True)])
def test_r1_conv_discriminator_dot_product(act, transposed, rng):
    """(GAN.11) for the linear layers' general form, A e and grad_W <A_W e, delta>: the R1
    gradient of a conv discriminator (Conv2d, ConvTranspose2d, Reshape, Flatten, Linear) w.r.t.
    every parameter and the input passes the dot-product test at rtol 1e-8."""
    D = _conv_discriminator(rng, act, transposed)
    x = rng.standard_normal((3, 72))
    out = _penalty_checks(D, x, rng)
    assert np.array_equal(out.pop(f"{len(D.layers) - 1}.bias")[1], np.zeros(1))
    assert max(r.rel_error for res, _ in out.values() for r in res) < 1e-8


def test_r1_conv_dropped_weight_term_is_caught(rng, monkeypatch):
    """A planted bug in the conv rows of (GAN.11): dropping grad_W <A_W e, delta> for Conv2d
    fails the dot-product test."""
    t, a, _ = R.LINEAR_LAYERS[Conv2d]
    monkeypatch.setitem(R.LINEAR_LAYERS, Conv2d,
                        (t, a, lambda layer, aux, shape, delta: {"weight": 0.0}))
    with pytest.raises(AssertionError, match="dot-product test failed"):
        _penalty_checks(_conv_discriminator(rng, Softplus), rng.standard_normal((3, 72)), rng)


@pytest.mark.torch
def test_r1_conv_against_torch_double_backward(rng):
    """The conv R1 value and gradients equal torch's create_graph double backward at 1e-12
    (leaky ReLU, as in the field GAN's discriminator)."""
    torch = pytest.importorskip("torch")
    D = _conv_discriminator(rng, lambda: LeakyReLU(0.2), transposed=True)
    tn = torch.nn
    net = tn.Sequential(tn.Unflatten(1, (2, 6, 6)), tn.Conv2d(2, 3, 3, stride=2, padding=1),
                        tn.LeakyReLU(0.2), tn.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                              output_padding=1),
                        tn.LeakyReLU(0.2), tn.Conv2d(2, 3, 3, stride=2, padding=1),
                        tn.LeakyReLU(0.2), tn.Conv2d(3, 2, 2), tn.LeakyReLU(0.2), tn.Flatten(),
                        tn.Linear(8, 1)).double()
    _assert_r1_matches_torch(D, net, rng.standard_normal((5, 72)))


def test_conv_gan_fit_with_r1(rng):
    """conv_gan trains with r1_gamma > 0 (it was refused before), and differs from gamma = 0."""
    x = rng.standard_normal((12, 64))
    a, b = (conv_gan((1, 8, 8), latent_dim=4, channels=(4, 2), rng=1).fit(
        x, rng=0, steps=3, batch_size=4, r1_gamma=g) for g in (0.0, 5.0))
    assert np.all(np.isfinite(b.history_["d_loss"]))
    assert any(not np.array_equal(p, q) for (p, _), (q, _) in
               zip(a.discriminator.parameters(), b.discriminator.parameters()))
