"""Weight initializers. Every one takes a keyword-only ``rng`` (None, an int seed or a Generator,
SPEC 7); none touches global random state.

``torch_default`` reproduces the distribution PyTorch's ``nn.Linear``/``nn.Conv2d`` use
(``kaiming_uniform_(a=sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases),
so a freshly built nprefgen network is statistically the same as a fresh PyTorch one.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import (
    check_choice, check_float_dtype, check_int, check_rng, check_scalar, check_shape,
)


def _check(shape, rng, dtype):
    return check_shape(shape, "shape"), check_rng(rng), check_float_dtype(dtype)


def torch_default(shape, fan_in: int, *, rng=None, dtype=np.float64) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of the given shape."""
    shape, rng, dtype = _check(shape, rng, dtype)
    bound = 1.0 / np.sqrt(check_int(fan_in, "fan_in", low=1))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def xavier_uniform(shape, fan_in: int, fan_out: int, *, rng=None, gain=1.0,
                   dtype=np.float64) -> np.ndarray:
    """Glorot & Bengio (2010): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    shape, rng, dtype = _check(shape, rng, dtype)
    gain = check_scalar(gain, "gain", low=0.0, low_inclusive=False)
    a = gain * np.sqrt(6.0 / (check_int(fan_in, "fan_in", low=1) + check_int(fan_out, "fan_out", low=1)))
    return rng.uniform(-a, a, size=shape).astype(dtype)


def kaiming_normal(shape, fan_in: int, *, rng=None, gain=np.sqrt(2.0),
                   dtype=np.float64) -> np.ndarray:
    """He et al. (2015): N(0, gain^2 / fan_in), the ReLU default gain sqrt(2)."""
    shape, rng, dtype = _check(shape, rng, dtype)
    gain = check_scalar(gain, "gain", low=0.0, low_inclusive=False)
    std = gain / np.sqrt(check_int(fan_in, "fan_in", low=1))
    return (std * rng.standard_normal(shape)).astype(dtype)


INITIALIZERS = ("torch", "xavier", "kaiming", "zeros")


def init_weight(kind: str, shape, fan_in: int, fan_out: int, *, rng=None,
                dtype=np.float64) -> np.ndarray:
    """Dispatch by name: one of ``INITIALIZERS`` (the ``init`` argument of the layers)."""
    check_choice(kind, "kind", INITIALIZERS)
    if kind == "torch":
        return torch_default(shape, fan_in, rng=rng, dtype=dtype)
    if kind == "xavier":
        return xavier_uniform(shape, fan_in, fan_out, rng=rng, dtype=dtype)
    if kind == "kaiming":
        return kaiming_normal(shape, fan_in, rng=rng, dtype=dtype)
    shape, _, dtype = _check(shape, rng, dtype)
    return np.zeros(shape, dtype=dtype)


def init_weight_and_bias(init: str, weight_shape, n_bias: int, fan_in: int, fan_out: int, *,
                         rng=None, bias: bool = True, dtype=np.float64):
    """A layer's ``(weight, bias)``: the weight by ``init``; the bias, ``(n_bias,)``, as PyTorch
    draws it, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in, or zeros when
    ``init="zeros"``; ``None`` without ``bias``."""
    check_choice(init, "init", INITIALIZERS)
    rng = check_rng(rng)                           # one stream for the weight, then the bias
    weight = init_weight(init, weight_shape, fan_in, fan_out, rng=rng, dtype=dtype)
    if not bias:
        return weight, None
    n_bias = check_int(n_bias, "n_bias", low=1)
    return weight, init_weight("zeros" if init == "zeros" else "torch", (n_bias,), fan_in,
                               fan_out, rng=rng, dtype=dtype)
