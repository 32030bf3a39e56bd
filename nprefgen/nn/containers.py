"""Composition: Sequential, the MLP builder, Flatten and Reshape (derivations/nn.md, NN.10).

(NN.10) The chain rule for a composition f_L o ... o f_1: the backward pass runs the layers in
reverse, each turning d_{h_l} into d_{h_{l-1}}.
"""
from __future__ import annotations

from typing import Sequence as SequenceT

import numpy as np

from nprefgen._validation import check_alloc, check_array, check_choice, check_int, check_rng
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.base import Module, check_cotangent
from nprefgen.nn.linear import Linear

LAYER_BYTES = 2048          # Python objects of one Linear + activation, besides their arrays


class Sequential(Module):
    """Layers applied in order. Children are named "0", "1", ... as in ``torch.nn.Sequential``."""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        if len(layers) == 0:
            raise ValueError("layers: expected at least one layer, got none")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise ValueError(f"layers: expected nprefgen.nn.Module layers, got "
                                 f"{type(layer).__name__} at position {i}")
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            self.add_child(str(i), layer)

    def forward(self, x):
        """x -> y through every layer; cache: the list of per-layer caches.

        The first layer checks x; the later ones get arrays the earlier layers produced and run
        unchecked (``_forward``).
        """
        x, c = self.layers[0].forward(x)
        return self._forward_from(x, [c])

    def _forward(self, x):
        x, c = self.layers[0]._forward(x)
        return self._forward_from(x, [c])

    def _forward_from(self, x, caches):
        for layer in self.layers[1:]:
            x, c = layer._forward(x)
            caches.append(c)
        return x, caches

    def backward(self, caches, d_y):
        """(NN.10) reverse-mode chain rule through the layers."""
        if not isinstance(caches, (list, tuple)) or len(caches) != len(self.layers):
            got = (f"{len(caches)} caches" if isinstance(caches, (list, tuple))
                   else type(caches).__name__)
            raise ValueError(f"caches: expected the list of {len(self.layers)} caches that "
                             f"forward returned, got {got}")
        d_y = self.layers[-1].backward(caches[-1], d_y)      # checks d_y
        return self._backward_from(caches, d_y)

    def _backward(self, caches, d_y):
        d_y = self.layers[-1]._backward(caches[-1], d_y)
        return self._backward_from(caches, d_y)

    def _backward_from(self, caches, d_y):
        """(NN.10) the layers before the last, in reverse, unchecked."""
        for layer, c in zip(reversed(self.layers[:-1]), reversed(caches[:-1])):
            d_y = layer._backward(c, d_y)
        return d_y

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"


def MLP(in_features: int, hidden: SequenceT[int], out_features: int, *, rng=None,
        activation: str = "relu", out_activation: str | None = None, init: str = "torch",
        dtype=np.float64) -> Sequential:
    """Linear -> act -> ... -> Linear, as ``Sequential``; ``hidden`` lists the hidden widths.

    The parameter names equal those of the same ``torch.nn.Sequential`` (``0.weight``,
    ``0.bias``, ``2.weight``, ...), activations occupying the odd indices.
    """
    check_int(in_features, "in_features", low=1)
    check_int(out_features, "out_features", low=1)
    check_choice(activation, "activation", ACTIVATIONS)
    if out_activation is not None:
        check_choice(out_activation, "out_activation", ACTIVATIONS)
    rng = check_rng(rng)
    if not isinstance(hidden, (list, tuple, range, np.ndarray)):
        raise ValueError(f"hidden: expected a sequence of hidden widths, got {hidden!r}")
    # each layer costs ~2 KB of Python objects besides its arrays (measured: 1.8 KB for a Linear
    # and an activation); so a list of 10**9 widths is refused before it is walked
    check_alloc((len(hidden) + 1, LAYER_BYTES), "hidden", itemsize=1)
    widths = [in_features] + [check_int(h, "hidden", low=1) for h in hidden] + [out_features]
    check_alloc((sum((a + 1) * b for a, b in zip(widths, widths[1:])),), "hidden")  # weights, biases
    layers: list[Module] = []
    for i in range(len(widths) - 1):
        layers.append(Linear(widths[i], widths[i + 1], rng=rng, init=init, dtype=dtype))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    if out_activation is not None:
        layers.append(ACTIVATIONS[out_activation]())
    return Sequential(*layers)


class Flatten(Module):
    """(n, *shape) -> (n, prod(shape)), as ``torch.nn.Flatten``."""

    def forward(self, x):
        x = check_array(x, "x", ndim=(2, 3, 4, 5))
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, shape, d_y):
        d_y = check_cotangent(d_y, (shape[0], int(np.prod(shape[1:]))))
        return d_y.reshape(shape)


class Reshape(Module):
    """(n, ...) -> (n, *shape), e.g. a decoder's (n, 16*2*2) -> (n, 16, 2, 2)."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        if not shape:
            raise ValueError("shape: expected at least one size, got none")
        self.shape = tuple(check_int(s, "shape", low=1) for s in shape)

    def forward(self, x):
        x = check_array(x, "x")
        if int(np.prod(x.shape[1:])) != int(np.prod(self.shape)):
            raise ValueError(f"x: expected {int(np.prod(self.shape))} values per sample to reshape "
                             f"to {self.shape}, got shape {x.shape}")
        return x.reshape((x.shape[0],) + self.shape), x.shape

    def backward(self, shape, d_y):
        d_y = check_cotangent(d_y, (shape[0],) + self.shape)
        return d_y.reshape(shape)
