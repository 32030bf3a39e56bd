"""The R1 gradient penalty for MLP and conv discriminators, by hand (derivations/gan.md,
GAN.9-GAN.12).

R1 (Mescheder, Geiger, Nowozin 2018) penalises the discriminator's input gradient on real data,

    (GAN.9)  R1 = (gamma / 2) (1/n) sum_i || grad_x a(x_i) ||^2.

Its parameter gradient needs the input gradient g = grad_x a (one backward pass of D with
d_a = 1, GAN.10) and then the backward of that backward pass with respect to D's parameters (a
double backward, GAN.11-GAN.12). For a discriminator ``Linear -> act -> ... -> Linear`` (a
:class:`nprefgen.nn.Sequential`, e.g. :func:`nprefgen.nn.MLP`) the double backward is a
product-rule exercise that needs each activation's second derivative; those live here, in
:data:`SECOND_DERIVATIVES`, not on the layers. The same recursion holds for any layer that is
linear in its input (GAN.11): ``Conv2d``, ``ConvTranspose2d``, ``Flatten`` and ``Reshape`` as
well as ``Linear``, so a DCGAN-style conv discriminator (:func:`nprefgen.models.gan.conv_gan`)
gets R1 too; the three linear operations each layer type needs are in :data:`LINEAR_LAYERS`::

    a, cache = D.forward(x)                         # x: (n, D), a: (n, 1)
    penalty = r1_penalty_and_grad(D, cache, gamma)  # adds dR1/dpsi into D's grads

The layers are not modified: the first backward (GAN.10) is computed here without touching D's
grads, and the second reuses each layer's own ``_backward`` for the forward-pass part (GAN.12).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_scalar
from nprefgen.nn.activations import (
    ELU, Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh,
)
from nprefgen.nn.base import Module
from nprefgen.nn.containers import Flatten, Reshape, Sequential
from nprefgen.nn.conv import (
    Conv2d, ConvTranspose2d, conv2d_backward, conv2d_forward, conv_transpose2d_backward,
    conv_transpose2d_forward,
)
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


# -- the linear layers (GAN.11): A = the layer's input-to-output map without its bias --------------
# transpose(layer, cache, d): A^T d, the layer's input cotangent, without touching its grads;
# apply(layer, e): (A e, aux), the layer's forward on e with the bias left out;
# weight_grad(layer, aux, e_shape, delta): {name: grad_W <A_W e, delta>} for the weight only.

def _linear_transpose(layer, cache, d):
    return d @ layer.params["weight"]                                   # (NN.2a)


def _linear_apply(layer, e):
    return e @ layer.params["weight"].T, e


def _linear_weight_grad(layer, e, e_shape, delta):
    return {"weight": delta.T @ e}                                      # (NN.2b)


def _conv_transpose(layer, cache, d):
    x_shape, X = cache
    return conv2d_backward(layer.params["weight"], X, x_shape, d, layer.stride,
                           layer.padding)[0]                             # (NN.26a)


def _conv_apply(layer, e):
    return conv2d_forward(layer.params["weight"], None, e, layer.stride, layer.padding)  # (NN.25)


def _conv_weight_grad(layer, X_e, e_shape, delta):
    return {"weight": conv2d_backward(layer.params["weight"], X_e, e_shape, delta, layer.stride,
                                      layer.padding)[1]}                 # (NN.26b)


def _convt_transpose(layer, cache, d):
    x_shape, x_rows = cache
    return conv_transpose2d_backward(layer.params["weight"], x_rows, x_shape, d, layer.stride,
                                     layer.padding)[0]                   # (NN.29a)


def _convt_apply(layer, e):
    return conv_transpose2d_forward(layer.params["weight"], None, e, layer.stride, layer.padding,
                                    layer.output_padding)                # (NN.28)


def _convt_weight_grad(layer, e_rows, e_shape, delta):
    return {"weight": conv_transpose2d_backward(layer.params["weight"], e_rows, e_shape, delta,
                                                layer.stride, layer.padding)[1]}   # (NN.29b)


def _reshape_transpose(layer, shape, d):
    return d.reshape(shape)


def _flatten_apply(layer, e):
    return e.reshape(e.shape[0], -1), None


def _reshape_apply(layer, e):
    return e.reshape((e.shape[0],) + layer.shape), None


LINEAR_LAYERS = {
    Linear: (_linear_transpose, _linear_apply, _linear_weight_grad),
    Conv2d: (_conv_transpose, _conv_apply, _conv_weight_grad),
    ConvTranspose2d: (_convt_transpose, _convt_apply, _convt_weight_grad),
    Flatten: (_reshape_transpose, _flatten_apply, None),
    Reshape: (_reshape_transpose, _reshape_apply, None),
}
"""For each layer class that is linear in its input (plus a bias): (transpose, apply,
weight_grad), the three maps of (GAN.10)-(GAN.11). Parameter-free reshapes have no weight_grad."""


def check_r1_discriminator(discriminator: Module) -> Sequential:
    """ValueError unless ``discriminator`` is a Sequential of the layers in :data:`LINEAR_LAYERS`
    (exactly those classes) and the activations in :data:`SECOND_DERIVATIVES`, ending in a
    Linear with one output (an MLP, or a conv net ending in Flatten -> Linear(..., 1))."""
    layers = discriminator.layers if isinstance(discriminator, Sequential) else None
    ok = (layers is not None and isinstance(layers[-1], Linear) and layers[-1].out_features == 1
          and all(type(la) in LINEAR_LAYERS or type(la) in SECOND_DERIVATIVES for la in layers))
    if not ok:
        got = ([type(la).__name__ for la in layers] if layers is not None
               else type(discriminator).__name__)
        raise ValueError("discriminator: the R1 penalty (r1_gamma > 0) is implemented for a "
                         f"Sequential of the layers {', '.join(c.__name__ for c in LINEAR_LAYERS)} "
                         f"and the activations ({', '.join(c.__name__ for c in SECOND_DERIVATIVES)})"
                         f" ending in Linear(..., 1), got {got}")
    return discriminator


def input_gradient(discriminator: Sequential, caches) -> tuple[np.ndarray, list]:
    """(GAN.10) g = grad_x a(x) per sample from the forward caches, by a backward pass with
    d_a = 1 that does NOT add into D's grads. Returns (g: x's shape, deltas), ``deltas[l]`` the
    cotangent entering layer l's backward (its output's adjoint), for (GAN.11)."""
    layers = check_r1_discriminator(discriminator).layers
    if not isinstance(caches, (list, tuple)) or len(caches) != len(layers):
        raise ValueError(f"caches: expected the list of {len(layers)} caches that "
                         f"discriminator.forward returned, got {type(caches).__name__}")
    n = caches[-1].shape[0]                                     # the last Linear's input
    d = np.ones((n, 1), dtype=caches[-1].dtype)
    deltas = [None] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        deltas[i] = d
        layer = layers[i]
        if type(layer) in LINEAR_LAYERS:
            d = LINEAR_LAYERS[type(layer)][0](layer, caches[i], d)
        else:
            x, y = caches[i]
            d = d * layer._derivative(x, y)                     # (NN.4)-(NN.9)
    return d, deltas


def r1_penalty_and_grad(discriminator: Module, caches, gamma: float) -> tuple[float, np.ndarray]:
    """(GAN.9)-(GAN.12) R1 = gamma/2 mean_i ||grad_x a(x_i)||^2 at the batch whose forward
    ``caches`` are given (from ``discriminator.forward(x)``, x: (n, ...)); adds dR1/dpsi into
    the discriminator's grads and returns (R1: float, dR1/dx: x's shape)."""
    D = check_r1_discriminator(discriminator)
    gamma = check_scalar(gamma, "gamma", low=0.0)
    layers = D.layers
    g, deltas = input_gradient(D, caches)
    n = g.shape[0]
    penalty = 0.5 * gamma * float(np.sum(g * g)) / n
    # (GAN.11) adjoint of the backward pass, run in the forward direction: e_bar is the adjoint
    # of the backward pass's value entering layer i from below (at i = 0 that is g itself).
    e_bar = (gamma / n) * g                                     # dR1/dg
    inject = [None] * len(layers)                               # extra adjoints of layer outputs
    for i, layer in enumerate(layers):
        if type(layer) in LINEAR_LAYERS:
            # backward was e = A^T delta: adjoints delta_bar = A e_bar, W_bar += grad_W <A_W e_bar, delta>
            _, apply, weight_grad = LINEAR_LAYERS[type(layer)]
            e_shape = e_bar.shape
            e_bar, aux = apply(layer, e_bar)
            if weight_grad is not None:
                for name, grad in weight_grad(layer, aux, e_shape, deltas[i]).items():
                    layer.grads[name] += grad
        else:
            # backward was e = delta * phi'(u): delta_bar = e_bar * phi'(u), and u (this
            # activation's input, a forward value) gets e_bar * delta * phi''(u)
            x, y = caches[i]
            inject[i] = e_bar * deltas[i] * SECOND_DERIVATIVES[type(layer)](layer, x, y)
            e_bar = e_bar * layer._derivative(x, y)
    # (GAN.12) the forward values' adjoints flow back through the forward pass: the layers' own
    # backward, with the second-order terms added at each activation's input. The last Linear's
    # output a does not enter g (d_a = 1 is a constant), so the pass starts with zero there.
    d = np.zeros((n, 1), dtype=g.dtype)
    for i in range(len(layers) - 1, -1, -1):
        d = layers[i]._backward(caches[i], d)
        if inject[i] is not None:
            d = d + inject[i]
    return penalty, d
