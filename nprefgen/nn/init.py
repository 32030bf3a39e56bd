"""Weight initializers. Every one takes ``rng``; none touches global random state.

``torch_default`` reproduces the distribution PyTorch's ``nn.Linear``/``nn.Conv2d`` use
(``kaiming_uniform_(a=sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases),
so a freshly built nprefgen network is statistically the same as a fresh PyTorch one.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_choice, check_int, check_rng


def torch_default(shape, fan_in: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of the given shape."""
    check_rng(rng)
    bound = 1.0 / np.sqrt(check_int(fan_in, "fan_in", low=1))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def xavier_uniform(shape, fan_in: int, fan_out: int, rng: np.random.Generator, gain=1.0,
                   dtype=np.float64) -> np.ndarray:
    """Glorot & Bengio (2010): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    check_rng(rng)
    a = gain * np.sqrt(6.0 / (check_int(fan_in, "fan_in", low=1) + check_int(fan_out, "fan_out", low=1)))
    return rng.uniform(-a, a, size=shape).astype(dtype)


def kaiming_normal(shape, fan_in: int, rng: np.random.Generator, gain=np.sqrt(2.0),
                   dtype=np.float64) -> np.ndarray:
    """He et al. (2015): N(0, gain^2 / fan_in), the ReLU default gain sqrt(2)."""
    check_rng(rng)
    std = gain / np.sqrt(check_int(fan_in, "fan_in", low=1))
    return (std * rng.standard_normal(shape)).astype(dtype)


INITIALIZERS = ("torch", "xavier", "kaiming", "zeros")


def init_weight(kind: str, shape, fan_in: int, fan_out: int, rng, dtype=np.float64) -> np.ndarray:
    """Dispatch by name: one of ``INITIALIZERS``."""
    check_choice(kind, "init", INITIALIZERS)
    if kind == "torch":
        return torch_default(shape, fan_in, rng, dtype)
    if kind == "xavier":
        return xavier_uniform(shape, fan_in, fan_out, rng, dtype=dtype)
    if kind == "kaiming":
        return kaiming_normal(shape, fan_in, rng, dtype=dtype)
    return np.zeros(shape, dtype=dtype)
