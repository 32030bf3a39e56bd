"""Shared by the tests of D's layers (minibatch std, periodic convolutions, band power): the
dot-product test of a whole GAN, (GAN.4) for every parameter of D and (GAN.6) w.r.t. z."""
from __future__ import annotations

from nprefgen.testing import gradcheck


def whole_gan_gradchecks(gan, x, z, *, rng, **kwargs) -> list:
    """gradcheck results: D's loss w.r.t. each of D's parameters (the others held), then G's
    loss w.r.t. z. ``kwargs`` go to every gradcheck (e.g. ``step``)."""
    res = []
    for name, p, g in gan.discriminator.named_parameters():
        orig = p.copy()

        def fun(p_, p=p, orig=orig):
            p[...] = p_
            try:
                gan.nets.zero_grad()
                return gan.discriminator_loss_and_grad(x, z)
            finally:
                p[...] = orig

        def grad(_, g=g):
            gan.nets.zero_grad()
            gan.discriminator_loss_and_grad(x, z)
            return g.copy()

        res += gradcheck(fun, grad, orig, rng=rng, name=name, **kwargs)
    res += gradcheck(lambda z_: gan.generator_loss_and_grad(z_)[0],
                     lambda z_: gan.generator_loss_and_grad(z_)[1], z, rng=rng, name="z",
                     **kwargs)
    return res
