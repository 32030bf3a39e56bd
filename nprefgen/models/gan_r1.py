"""The R1 gradient penalty for an MLP discriminator, by hand (derivations/gan.md, GAN.10-GAN.13).

R1 (Mescheder, Geiger, Nowozin 2018) penalises the discriminator's input gradient on real data,

    (GAN.10)  R1 = (gamma / 2) (1/n) sum_i || grad_x a(x_i) ||^2.

Its parameter gradient needs the input gradient g = grad_x a (one backward pass of D with
d_a = 1, GAN.11) and then the backward of that backward pass with respect to D's parameters (a
double backward, GAN.12-GAN.13). For a discriminator ``Linear -> act -> ... -> Linear`` (a
:class:`nprefgen.nn.Sequential`, e.g. :func:`nprefgen.nn.MLP`) the double backward is a
product-rule exercise that needs each activation's second derivative; those live here, in
:data:`SECOND_DERIVATIVES`, not on the layers::

    a, cache = D.forward(x)                         # x: (n, D), a: (n, 1)
    penalty = r1_penalty_and_grad(D, cache, gamma)  # adds dR1/dpsi into D's grads

The layers are not modified: the first backward (GAN.11) is computed here without touching D's
grads, and the second reuses each layer's own ``_backward`` for the forward-pass part (GAN.13).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_scalar
from nprefgen.nn.activations import (
    ELU, Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh,
)
from nprefgen.nn.base import Module
from nprefgen.nn.containers import Sequential
from nprefgen.nn.linear import Linear


def _zero(layer, x, y):
    return np.zeros_like(x)


def _tanh2(layer, x, y):
    return -2.0 * y * (1.0 - y * y)                  # (tanh)'' = -2 tanh (1 - tanh^2)


def _sigmoid2(layer, x, y):
    return y * (1.0 - y) * (1.0 - 2.0 * y)           # sigma'' = sigma (1 - sigma)(1 - 2 sigma)


def _softplus2(layer, x, y):
    s = layer._derivative(x, y)                      # softplus' = sigma
    return s * (1.0 - s)


def _elu2(layer, x, y):
    return np.where(x > 0, 0.0, y + layer.alpha)     # alpha e^x for x <= 0


SECOND_DERIVATIVES = {Tanh: _tanh2, Sigmoid: _sigmoid2, Softplus: _softplus2, ELU: _elu2,
                      ReLU: _zero, LeakyReLU: _zero, Identity: _zero}
"""phi''(x) for each supported activation class, as ``f(layer, x, y)`` (y = phi(x)). The
piecewise-linear ones have phi'' = 0 away from their kink (a set of measure zero)."""


def check_r1_discriminator(discriminator: Module) -> Sequential:
    """ValueError unless ``discriminator`` is a Sequential of Linear layers (plain, not masked)
    and activations listed in :data:`SECOND_DERIVATIVES`, ending in a Linear with one output."""
    layers = discriminator.layers if isinstance(discriminator, Sequential) else None
    ok = (layers is not None and isinstance(layers[-1], Linear) and layers[-1].out_features == 1
          and all(type(la) is Linear or type(la) in SECOND_DERIVATIVES for la in layers))
    if not ok:
        got = ([type(la).__name__ for la in layers] if layers is not None
               else type(discriminator).__name__)
        raise ValueError("discriminator: the R1 penalty (r1_gamma > 0) is implemented for a "
                         "Sequential of Linear layers and activations "
                         f"({', '.join(c.__name__ for c in SECOND_DERIVATIVES)}) ending in "
                         f"Linear(..., 1) (an MLP), got {got}")
    return discriminator


def input_gradient(discriminator: Sequential, caches) -> tuple[np.ndarray, list]:
    """(GAN.11) g = grad_x a(x) per sample from the forward caches, by a backward pass with
    d_a = 1 that does NOT add into D's grads. Returns (g: (n, D), deltas), ``deltas[l]`` the
    cotangent entering layer l's backward (its output's adjoint), for (GAN.12)."""
    layers = check_r1_discriminator(discriminator).layers
    if not isinstance(caches, (list, tuple)) or len(caches) != len(layers):
        raise ValueError(f"caches: expected the list of {len(layers)} caches that "
                         f"discriminator.forward returned, got {type(caches).__name__}")
    n = caches[-1].shape[0]                                     # the last Linear's input
    d = np.ones((n, 1))
    deltas = [None] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        deltas[i] = d
        layer = layers[i]
        if isinstance(layer, Linear):
            d = d @ layer.params["weight"]                      # (NN.2a)
        else:
            x, y = caches[i]
            d = d * layer._derivative(x, y)                     # (NN.4)-(NN.9)
    return d, deltas


def r1_penalty_and_grad(discriminator: Module, caches, gamma: float) -> tuple[float, np.ndarray]:
    """(GAN.10)-(GAN.13) R1 = gamma/2 mean_i ||grad_x a(x_i)||^2 at the batch whose forward
    ``caches`` are given (from ``discriminator.forward(x)``, x: (n, D)); adds dR1/dpsi into the
    discriminator's grads and returns (R1: float, dR1/dx: (n, D))."""
    D = check_r1_discriminator(discriminator)
    gamma = check_scalar(gamma, "gamma", low=0.0)
    layers = D.layers
    g, deltas = input_gradient(D, caches)
    n = g.shape[0]
    penalty = 0.5 * gamma * float(np.sum(g * g)) / n
    # (GAN.12) adjoint of the backward pass, run in the forward direction: e_bar is the adjoint
    # of the backward pass's value entering layer i from below (at i = 0 that is g itself).
    e_bar = (gamma / n) * g                                     # dR1/dg
    inject = [None] * len(layers)                               # extra adjoints of layer outputs
    for i, layer in enumerate(layers):
        if isinstance(layer, Linear):
            # backward was e = delta W: adjoints delta_bar = e_bar W^T, W_bar += delta^T e_bar
            layer._accumulate_weight_grad(deltas[i].T @ e_bar)
            e_bar = e_bar @ layer.params["weight"].T
        else:
            # backward was e = delta * phi'(u): delta_bar = e_bar * phi'(u), and u (this
            # activation's input, a forward value) gets e_bar * delta * phi''(u)
            x, y = caches[i]
            inject[i] = e_bar * deltas[i] * SECOND_DERIVATIVES[type(layer)](layer, x, y)
            e_bar = e_bar * layer._derivative(x, y)
    # (GAN.13) the forward values' adjoints flow back through the forward pass: the layers' own
    # backward, with the second-order terms added at each activation's input. The last Linear's
    # output a does not enter g (d_a = 1 is a constant), so the pass starts with zero there.
    d = np.zeros((n, 1))
    for i in range(len(layers) - 1, -1, -1):
        d = layers[i]._backward(caches[i], d)
        if inject[i] is not None:
            d = d + inject[i]
    return penalty, d
