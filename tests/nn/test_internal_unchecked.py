"""The unchecked internal paths (``Module._forward/_backward``, ``Bijector._forward_cached/_backward``)
used inside Sequential, couplings and chains: they give exactly what the checked public methods
give (NN.10 chain rule, FLOW.2), layers that implement only the public contract still work inside
containers, and the public entry points still reject bad input with a ValueError naming it."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.flows import realnvp
from nprefgen.flows.chain import Chain
from nprefgen.flows.elementwise import ElementwiseAffine
from nprefgen.nn import MLP, Sequential
from nprefgen.nn.base import Module
from nprefgen.testing.gradcheck import check_layer


class _Double(Module):
    """A user layer with only the public contract: y = 2 x."""

    def forward(self, x):
        return 2.0 * np.asarray(x), None

    def backward(self, cache, d_y):
        return 2.0 * d_y


def test_sequential_unchecked_equals_checked(rng):
    """(NN.10) _forward/_backward == forward/backward bit for bit, parameter gradients included."""
    net = MLP(3, [5, 4], 2, rng=rng)
    x, d_y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    y1, c1 = net.forward(x)
    y2, c2 = net._forward(x)
    np.testing.assert_array_equal(y1, y2)
    d1 = net.backward(c1, d_y)
    g1 = [g.copy() for _, g in net.parameters()]
    net.zero_grad()
    d2 = net._backward(c2, d_y)
    np.testing.assert_array_equal(d1, d2)
    for a, (_, b) in zip(g1, net.parameters()):
        np.testing.assert_array_equal(a, b)


def test_public_only_layer_inside_sequential(rng):
    """A layer without _forward/_backward falls back to its checked methods; gradients still pass
    the dot-product test (NN.10). (Tanh: smooth, so finite differences never straddle a kink.)"""
    net = Sequential(MLP(3, [4], 3, rng=rng, activation="tanh"), _Double(), MLP(3, [4], 2, rng=rng, activation="tanh"))
    check_layer(net, rng.standard_normal((5, 3)), rng=rng)


def test_public_checks_kept(rng):
    """The first layer checks x, the last checks d_y; the flow's public methods check x/d_z."""
    net = MLP(3, [4], 2, rng=rng)
    with pytest.raises(ValueError, match="x"):
        net.forward(np.array([[np.nan, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="x"):
        net.forward(np.ones((2, 4)))
    _, cache = net.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="d_y"):
        net.backward(cache, np.ones((2, 3)))
    with pytest.raises(ValueError, match="d_y"):
        net.backward(cache, np.full((2, 2), np.inf))
    flow = realnvp(4, 2, [8], rng=rng, standardize=False)
    for fn in (flow.log_prob, flow.log_prob_and_grad, flow.forward):
        with pytest.raises(ValueError, match="x"):
            fn(np.array([[0.0, np.nan, 1.0, 2.0]]))
    _, _, cache = flow.forward_cached(np.ones((3, 4)))
    with pytest.raises(ValueError, match="d_z"):
        flow.backward(cache, np.full((3, 4), np.nan), np.zeros(3))


def test_flow_unchecked_equals_checked_and_fallback(rng):
    """(FLOW.2) Chain._forward_cached/_backward == the checked pair; a chain mixing couplings with
    a bijector that has only the public contract gives the same gradients either way."""
    flow = realnvp(4, 3, [8], rng=rng, standardize=False)
    for b in flow.bijectors:
        last = b.net.layers[-1]
        last.params["weight"][...] = 0.1 * rng.standard_normal(last.params["weight"].shape)
    chain = Chain([flow.bijectors[0], ElementwiseAffine(4), flow.bijectors[1]])
    x = rng.standard_normal((5, 4))
    d_z, d_ld = rng.standard_normal((5, 4)), rng.standard_normal(5)
    for model in (flow, chain):
        z1, ld1, c1 = model.forward_cached(x)
        z2, ld2, c2 = model._forward_cached(x)
        np.testing.assert_array_equal(z1, z2)
        np.testing.assert_array_equal(ld1, ld2)
        model.zero_grad()
        d1, _ = model.backward(c1, d_z, d_ld)
        g1 = [g.copy() for _, g in model.parameters()]
        model.zero_grad()
        d2, _ = model._backward(c2, d_z, d_ld)
        np.testing.assert_array_equal(d1, d2)
        for a, (_, b) in zip(g1, model.parameters()):
            np.testing.assert_array_equal(a, b)
