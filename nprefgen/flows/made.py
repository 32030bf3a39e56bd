"""MADE: a masked autoencoder whose outputs are autoregressive (derivations/flows.md, FLOW.10-FLOW.11).

Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked Autoencoder for Distribution
Estimation". Every input coordinate d gets a degree m(d) in {1..D} (its position in the
autoregressive order), every hidden unit k a degree m(k) in {1..D-1} (FLOW.10), and the weight
masks keep exactly the connections that respect the order (FLOW.11):

    hidden layer:  M[k, j] = 1[m(k) >= m(j)]         (j an input or a unit of the layer below)
    output layer:  M[d, k] = 1[m(d) >  m(k)]

so output d depends on x_j only through paths whose degrees grow strictly from m(j) to m(d):
only on coordinates earlier in the order. Context inputs (a conditional MADE) get degree 0 in
effect: they connect to every hidden unit (and, without hidden layers, to every output).

Each coordinate has two outputs, a shift mu_d and a raw log-scale; the output vector is laid out
``[mu_1..mu_D, raw_alpha_1..raw_alpha_D]`` in the coordinates' own order.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng
from nprefgen.flows.base import check_parameter_count, hidden_widths, mlp_parameter_count
from nprefgen.kernels.masked_layer import (
    accumulate_masked, add_bias, join_columns, masked_tanh_backward, masked_weight,
)
from nprefgen.kernels.tanh_bias import tanh_backward_bias
from nprefgen.nn import MaskedLinear, Sequential
from nprefgen.nn.activations import ACTIVATIONS, Tanh
from nprefgen.nn.base import Module, check_input


def made_degrees(dim: int, hidden, order=None) -> list[np.ndarray]:
    """(FLOW.10) Degrees of the inputs and of every hidden layer.

    dim: D; hidden: widths; order: (D,) permutation of 1..D (default 1..D, the identity order).
    Hidden degrees cycle through 1..D-1 (all 0 when D = 1: those units see only the context),
    so every degree is represented when a layer has at least D-1 units.
    -> [m_in (D,), m_1 (H_1,), ..., m_L (H_L,)] integer arrays.
    """
    dim = check_int(dim, "dim", low=1)
    if order is None:
        m_in = np.arange(1, dim + 1)
    else:
        m_in = np.asarray(order)
        if m_in.shape != (dim,) or sorted(m_in.tolist()) != list(range(1, dim + 1)):
            raise ValueError(f"order: expected a permutation of 1..{dim}, got {np.asarray(order).tolist()}")
        m_in = m_in.astype(np.int64)
    degrees = [m_in]
    for h in hidden:
        h = check_int(h, "hidden", low=1)
        degrees.append(np.arange(h) % max(1, dim - 1) + min(1, dim - 1))
    return degrees


def made_masks(degrees: list[np.ndarray], context_dim: int = 0, n_params: int = 2) -> list[np.ndarray]:
    """(FLOW.11) Weight masks, PyTorch layout (out, in), for the layers of a MADE.

    The first layer's input is ``[x, context]``; context columns are all ones. The output layer
    repeats the per-coordinate mask ``n_params`` times (mu, raw_alpha).
    """
    masks = []
    for below, above in zip(degrees[:-1], degrees[1:]):
        masks.append((above[:, None] >= below[None, :]).astype(np.float64))
    m_in = degrees[0]
    out = (m_in[:, None] > degrees[-1][None, :]).astype(np.float64)
    masks.append(np.tile(out, (n_params, 1)))
    if context_dim:
        masks[0] = np.concatenate([masks[0], np.ones((masks[0].shape[0], context_dim))], axis=1)
    return masks


class _MADECache:
    """What :meth:`MADE._forward` keeps for the backward pass: ``layers`` a list with, per
    masked layer, ``(h, M * W, activation cache or None)`` (h the layer's input; for a tanh
    above it, the next entry's h is y = tanh a). The public :meth:`MADE.forward` returns the
    Sequential's cache instead; ``backward`` and ``input_vjp`` take either."""

    __slots__ = ("layers",)

    def __init__(self, layers) -> None:
        self.layers = layers


class MADE(Module):
    """Masked MLP with autoregressive outputs ``(mu, raw_alpha)``, optionally conditioned.

    Parameters
    ----------
    dim : int, D
    hidden : sequence of int, hidden widths (may be empty)
    rng : None, int or numpy.random.Generator (SPEC 7)
    context_dim : int, C
    order : (D,) permutation of 1..D or None
    activation : str
    zero_init : bool, zero the output layer (a MAF built on it starts as the identity)

    ``forward(x, context)`` returns ``(out, cache)`` with ``out: (n, 2 D)``; ``backward(cache,
    d_out)`` returns ``(d_x, d_context)`` and accumulates the weight gradients (masked, NN.3).
    Parameters are named like a ``torch.nn.Sequential`` under ``net.``; the masks are the
    ``mask`` attributes of the layers.
    """

    def __init__(self, dim: int, hidden=(64, 64), *, rng=None, context_dim: int = 0,
                 order=None, activation: str = "relu", zero_init: bool = True) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", low=1)
        self.context_dim = check_int(context_dim, "context_dim", low=0)
        check_parameter_count(self.dim + self.context_dim, f"a MADE of dim {self.dim}", name="dim")
        rng = check_rng(rng)
        check_choice(activation, "activation", ACTIVATIONS)
        self.hidden = hidden_widths(list(hidden) if isinstance(hidden, (tuple, range)) else hidden)
        check_parameter_count(mlp_parameter_count([self.dim + self.context_dim, *self.hidden,
                                                   2 * self.dim]), "MADE")
        self.degrees = made_degrees(self.dim, self.hidden, order)
        masks = made_masks(self.degrees, self.context_dim)
        widths = [self.dim + self.context_dim] + self.hidden + [2 * self.dim]
        layers: list[Module] = []
        for i, mask in enumerate(masks):
            layers.append(MaskedLinear(widths[i], widths[i + 1], mask, rng=rng))
            if i < len(masks) - 1:
                layers.append(ACTIVATIONS[activation]())
        self.net = self.add_child("net", Sequential(*layers))
        if zero_init:
            for p in self.net.layers[-1].params.values():
                p[...] = 0.0

    @property
    def order(self) -> np.ndarray:
        """The input degrees m(d), (D,)."""
        return self.degrees[0]

    def masked_layers(self) -> list[MaskedLinear]:
        return [layer for layer in self.net.layers if isinstance(layer, MaskedLinear)]

    def forward(self, x, context=None):
        """x: (n, D), context: (n, C) or None -> out: (n, 2 D) = [mu, raw_alpha], cache."""
        x = check_input(x, "x", self.dim, self)
        if self.context_dim:
            context = check_input(context, "context", self.context_dim, self)
            x = np.concatenate([x, context], axis=1)
        return self.net.forward(x)

    def _forward(self, x, context=None):
        """:meth:`forward` without input checks (x, context validated by the caller): the
        training path. The same operations as the layers' own (so the same values, bit for
        bit), with each masked weight M * W (NN.3) formed once and kept in the cache for the
        backward pass, tanh applied in place, and only what the backward needs kept: per masked
        layer its input h, its effective weight and, for a tanh above it, y = tanh(a).
        -> out: (n, 2 D), a :class:`_MADECache`."""
        if self.context_dim:
            x = join_columns(x, context)               # [x, context] (kernels/masked_layer.py)
        layers = self.net.layers
        saved = []
        h = x
        for i in range(0, len(layers), 2):             # MaskedLinear, activation, ..., MaskedLinear
            lin = layers[i]
            w = masked_weight(lin.params["weight"], lin.mask)   # (NN.3) M * W, once per pass
            a = h @ w.T                                # (NN.1)
            if lin.has_bias:
                add_bias(a, lin.params["bias"])        # a += b in one pass (kernels/masked_layer.py)
            if i + 1 == len(layers):
                saved.append((h, w, None))
                h = a
            elif isinstance(layers[i + 1], Tanh):
                saved.append((h, w, None))
                h = np.tanh(a, out=a)                  # (NN.6) y = tanh a, a no longer needed
            else:
                y, act_cache = layers[i + 1]._forward(a)
                saved.append((h, w, act_cache))
                h = y
        return h, _MADECache(saved)

    def backward(self, cache, d_out):
        """d_out: (n, 2 D) -> d_x: (n, D), d_context: (n, C) or None; accumulates weight grads."""
        if isinstance(cache, _MADECache):
            d_out = check_input(d_out, "d_out", 2 * self.dim, self)
            return self._backward(cache, d_out)
        d_in = self.net.backward(cache, d_out)
        return d_in[:, : self.dim], (d_in[:, self.dim:] if self.context_dim else None)

    def _backward(self, cache, d_out, d_b=None):
        """:meth:`backward` without cotangent checks (d_out produced by nprefgen code); ``d_b``:
        d_out's column sum (the output layer's bias gradient) if the caller computed it."""
        if not isinstance(cache, _MADECache):
            d_in = self.net._backward(cache, d_out)
            return d_in[:, : self.dim], (d_in[:, self.dim:] if self.context_dim else None)
        d_in = self._backward_layers(cache, d_out, accumulate=True, d_b=d_b)
        return d_in[:, : self.dim], (d_in[:, self.dim:] if self.context_dim else None)

    def _backward_layers(self, cache, d, accumulate: bool, d_b=None):
        """The VJP through the layers of a :meth:`_forward` pass: d: (n, 2 D) -> (n, D + C).

        Per masked layer (NN.2a-c with the mask of NN.3): d_h = d (M * W), d_W = M * (d^T h),
        d_b = sum_i d_i. Below a tanh one kernel pass accumulates the layer's d_W and d_b and
        gives d_a = d_h (1 - y^2) (NN.6) with its column sum, the next layer's d_b
        (kernels/masked_layer.py). ``d_b``: d's column sum if the caller has it (the MAF's
        affine kernel sums it in its own pass). ``accumulate`` False leaves the parameter
        gradients alone."""
        layers = self.net.layers
        saved = cache.layers
        for k in range(len(saved) - 1, -1, -1):
            lin = layers[2 * k]
            h, w, _ = saved[k]
            act = layers[2 * k - 1] if k else None
            if accumulate:
                d_w = d.T @ h                          # (NN.2b), masked by the kernels (NN.3)
                if not lin.has_bias:
                    g_b = d_b = np.zeros(0, dtype=d.dtype)
                else:
                    g_b = lin.grads["bias"]
                    if d_b is None:
                        d_b = d.sum(axis=0)            # (NN.2c)
            d_in = d @ w                               # (NN.2a)
            if accumulate and isinstance(act, Tanh):
                # this layer's d_W and d_b, (NN.6) below it and the next layer's d_b: one pass
                d, d_b = masked_tanh_backward(lin.grads["weight"], d_w, lin.mask, g_b, d_b, h, d_in)
                continue
            if accumulate:
                accumulate_masked(lin.grads["weight"], d_w, lin.mask, g_b, d_b)
            if k == 0:
                return d_in
            if isinstance(act, Tanh):
                d, d_b = tanh_backward_bias(h, d_in)   # (NN.6) + the next (NN.2c)
            else:
                d, d_b = act._backward(saved[k - 1][2], d_in), None

    def input_vjp(self, cache, d_out):
        """Like :meth:`backward` but leaves the parameter gradients untouched (IAF's solve)."""
        if isinstance(cache, _MADECache):
            d = self._backward_layers(cache, d_out, accumulate=False)
            return d[:, : self.dim], (d[:, self.dim:] if self.context_dim else None)
        d = d_out
        for layer, c in zip(reversed(self.net.layers), reversed(cache)):
            if isinstance(layer, MaskedLinear):
                w = layer.params["weight"]                             # the mask in w's dtype
                d = d @ (w * layer.mask.astype(w.dtype, copy=False))   # (NN.2a) with (NN.3)
            else:
                d = layer.backward(c, d)                               # activations hold no params
        return d[:, : self.dim], (d[:, self.dim:] if self.context_dim else None)

    def __repr__(self) -> str:
        return f"MADE(dim={self.dim}, hidden={self.hidden}, context_dim={self.context_dim})"
