"""Elementwise activations with their local derivatives (derivations/nn.md, NN.4-NN.9).

Each works on arrays of any shape; the cache holds what the derivative needs (the input or the
output), never state on the layer.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_scalar
from nprefgen.kernels.softplus import relu_backward, softplus, softplus_grad
from nprefgen.nn.base import Module, check_cotangent


class _Elementwise(Module):
    def _check(self, x):
        return check_array(x, "x")

    def backward(self, cache, d_y):
        return self._backward(cache, check_cotangent(d_y, cache[0].shape))

    def _backward(self, cache, d_y):
        x, y = cache
        return d_y * self._derivative(x, y)

    def forward(self, x):
        """x: any shape -> y: same shape."""
        return self._forward(self._check(x))

    def _forward(self, x):
        y = self._value(x)
        return y, (x, y)


class ReLU(_Elementwise):
    """(NN.4) y = max(x, 0); dy/dx = 1[x > 0]."""

    def _value(self, x):
        return np.maximum(x, 0)          # the int 0 keeps float32 x float32

    def _derivative(self, x, y):
        return (x > 0).astype(x.dtype)

    def _backward(self, cache, d_y):
        return relu_backward(cache[0], d_y)       # d_y 1[x > 0] in one pass (kernels/softplus.py)


class LeakyReLU(_Elementwise):
    """(NN.5) y = x if x > 0 else a x; dy/dx = 1 or a. ``negative_slope`` a defaults to 0.01."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_scalar(negative_slope, "negative_slope", low=0.0)

    def _value(self, x):
        return np.where(x > 0, x, self.negative_slope * x).astype(x.dtype, copy=False)

    def _derivative(self, x, y):
        return np.where(x > 0, 1.0, self.negative_slope).astype(x.dtype, copy=False)


class Tanh(_Elementwise):
    """(NN.6) y = tanh x; dy/dx = 1 - y^2."""

    def _value(self, x):
        return np.tanh(x)

    def _derivative(self, x, y):
        return 1.0 - y * y


def sigmoid(x: np.ndarray) -> np.ndarray:
    """(NN.7) sigmoid(x) = 1 / (1 + e^{-x}) without overflow (it is softplus'). x: any shape."""
    return softplus_grad(check_array(x, "x"))


class Sigmoid(_Elementwise):
    """(NN.7) y = sigmoid(x); dy/dx = y (1 - y)."""

    def _value(self, x):
        return sigmoid(x)

    def _derivative(self, x, y):
        return y * (1.0 - y)


class Softplus(_Elementwise):
    """(NN.8) y = log(1 + e^x); dy/dx = sigmoid(x). Numba kernel from kernels/softplus.py."""

    def _value(self, x):
        return softplus(x)

    def _derivative(self, x, y):
        return softplus_grad(x)


class ELU(_Elementwise):
    """(NN.9) y = x if x > 0 else a (e^x - 1); dy/dx = 1 or y + a. ``alpha`` a defaults to 1."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = check_scalar(alpha, "alpha", low=0.0)

    def _value(self, x):
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0.0))).astype(x.dtype, copy=False)

    def _derivative(self, x, y):
        return np.where(x > 0, 1.0, y + self.alpha).astype(x.dtype, copy=False)


class Identity(_Elementwise):
    """y = x."""

    def _value(self, x):
        return x

    def _derivative(self, x, y):
        return np.ones_like(x)


ACTIVATIONS = {
    "relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid,
    "softplus": Softplus, "elu": ELU, "identity": Identity,
}
