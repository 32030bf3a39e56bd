"""Affine layers: Linear and MaskedLinear (derivations/nn.md, NN.1-NN.2c and NN.3).

Layouts follow PyTorch: ``weight`` is ``(out_features, in_features)``, ``bias`` is
``(out_features,)``, and the layer computes ``y = x W^T + b``.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_alloc, check_array, check_int, check_rng
from nprefgen.nn.base import Module, check_cotangent, check_input
from nprefgen.nn.init import init_weight_and_bias


def _check_W_x(W, x):
    W = check_array(W, "W", ndim=2)
    return W, check_array(x, "x", shape=(None, W.shape[1]))


def linear_forward(W: np.ndarray, b: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    """(NN.1) y = x W^T + b. x: (n, d_in), W: (d_out, d_in), b: (d_out,) -> y: (n, d_out)"""
    W, x = _check_W_x(W, x)
    if b is not None:
        b = check_array(b, "b", shape=(W.shape[0],))
    return _linear_forward(W, b, x)


def _linear_forward(W, b, x):
    """(NN.1) without checks (arguments validated by the caller)."""
    y = x @ W.T
    if b is not None:
        y += b
    return y


def linear_backward(W: np.ndarray, x: np.ndarray, d_y: np.ndarray):
    """VJP of (NN.1). d_y: (n, d_out) -> d_x (NN.2a), d_W (NN.2b), d_b (NN.2c)."""
    W, x = _check_W_x(W, x)
    d_y = check_array(d_y, "d_y", shape=(x.shape[0], W.shape[0]))
    return _linear_backward(W, x, d_y)


def _linear_backward(W, x, d_y):
    """VJP of (NN.1) without checks (arguments validated by the caller)."""
    d_x = d_y @ W            # (NN.2a)  (n, d_in)
    d_W = d_y.T @ x          # (NN.2b)  (d_out, d_in)
    d_b = d_y.sum(axis=0)    # (NN.2c)  (d_out,)
    return d_x, d_W, d_b


class Linear(Module):
    """Fully connected layer ``y = x W^T + b``.

    Parameters
    ----------
    in_features, out_features : int
    rng : None, an int seed or a Generator (SPEC 7)
        Draws the initial weights.
    bias : bool
    init : {"torch", "xavier", "kaiming", "zeros"}
    dtype : float64 (default) or float32
    """

    def __init__(self, in_features: int, out_features: int, *, rng=None,
                 bias: bool = True, init: str = "torch", dtype=np.float64) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", low=1)
        self.out_features = check_int(out_features, "out_features", low=1)
        check_alloc((self.out_features, self.in_features), "in_features x out_features")
        rng = check_rng(rng)
        weight, b = init_weight_and_bias(init, (self.out_features, self.in_features),
                                         self.out_features, self.in_features, self.out_features,
                                         rng=rng, bias=bias, dtype=dtype)
        self.add_param("weight", weight)
        self.has_bias = b is not None
        if self.has_bias:
            self.add_param("bias", b)

    def _effective_weight(self) -> np.ndarray:
        return self.params["weight"]

    def forward(self, x):
        """x: (n, in_features) -> y: (n, out_features); cache is x."""
        return self._forward(check_input(x, "x", self.in_features, self))

    def _forward(self, x):
        # the parameters were checked when registered and are only changed by optimizers
        return _linear_forward(self._effective_weight(), self.params.get("bias"), x), x

    def backward(self, x, d_y):
        """d_y: (n, out_features) -> d_x: (n, in_features); accumulates weight/bias grads."""
        return self._backward(x, check_cotangent(d_y, (x.shape[0], self.out_features)))

    def _backward(self, x, d_y):
        d_x, d_W, d_b = _linear_backward(self._effective_weight(), x, d_y)
        self._accumulate_weight_grad(d_W)
        if self.has_bias:
            self.grads["bias"] += d_b
        return d_x

    def _accumulate_weight_grad(self, d_W: np.ndarray) -> None:
        self.grads["weight"] += d_W

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_features}, {self.out_features}, bias={self.has_bias})"


class MaskedLinear(Linear):
    """Linear layer with a fixed binary mask on the weight (MADE, Germain et al. 2015).

    (NN.3) y = x (M * W)^T + b; the weight gradient is masked the same way, so masked entries
    stay exactly zero in the effective weight and receive zero gradient.

    mask : (out_features, in_features) array of 0/1, stored as buffer ``self.mask`` (not a
    parameter; PyTorch implementations usually register it as a buffer named ``mask``).
    """

    def __init__(self, in_features: int, out_features: int, mask, *, rng=None,
                 bias: bool = True, init: str = "torch", dtype=np.float64) -> None:
        super().__init__(in_features, out_features, rng=rng, bias=bias, init=init, dtype=dtype)
        mask = check_array(mask, "mask", shape=(self.out_features, self.in_features))
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError("mask: expected entries in {0, 1}, got other values")
        self.mask = mask.astype(dtype)

    def _mask(self) -> np.ndarray:
        # the mask follows the weight's dtype (Module.astype casts parameters, not buffers)
        return self.mask.astype(self.params["weight"].dtype, copy=False)

    def _effective_weight(self) -> np.ndarray:
        return self.params["weight"] * self._mask()        # (NN.3)

    def _accumulate_weight_grad(self, d_W: np.ndarray) -> None:
        self.grads["weight"] += d_W * self._mask()         # (NN.3) masked gradient
