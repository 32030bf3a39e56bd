"""An autoregressive bijector with any elementwise transform and any masked conditioner
(derivations/flows.md, FLOW.29-FLOW.30).

nprefgen's :class:`~nprefgen.flows.autoregressive.MAF` is one convention: a MADE with the
degrees of (FLOW.10) and z = (x - mu) exp(-alpha). Public libraries build their masks differently
(zuko merges outputs with equal dependencies and cycles hidden units over the reachable ones;
nflows' MADE adds context through a separate layer) and transform x the other way round,
z = tau(x; h(x)), with an affine or spline tau. :class:`MaskedAutoregressive` is that general
form,

    z = tau(x; h),  h = NN([x, c]),  log_det = sum_i log tau'(x_i; h_i),              (FLOW.29)

valid whenever the conditioner's connectivity (the boolean product of its masks) makes output
i depend only on coordinates earlier than i in some order: the Jacobian is then triangular in
that order with the elementwise derivatives on its diagonal. The inverse fills the coordinates
in by fixed-point passes, x^(0) = 0,

    x^(p+1) = tau^{-1}(z; h([x^(p), c])),   exact after P passes,                    (FLOW.30)

where P is the number of generations of the dependency graph (the longest chain plus one: D for
a full autoregressive order, 2 for a coupling). The backward pass is the coupling's (FLOW.9)
with the conditioner's input gradient added to d_x:
d_x = d_x(tau) + NN^T[d_h]_x, d_c = NN^T[d_h]_c.

:class:`MaskedConditioner` is the masked MLP a library's masks are loaded into: masked linear
layers on ``[x, c]`` (NN.3) with activations in between.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng
from nprefgen.flows.base import Bijector, check_parameter_count
from nprefgen.flows.coupling import ElementwiseTransform
from nprefgen.flows.spline import SplineTransform
from nprefgen.nn import MaskedLinear, Sequential
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.base import Module, check_input


def output_coordinates(transform: ElementwiseTransform, dim: int) -> np.ndarray:
    """The coordinate each of the ``dim * n_params`` conditioner outputs belongs to, in the
    transform's layout: coordinate-major (n, D, P) for splines, parameter-major [P blocks of D]
    for the affine transforms. -> (D P,) int array."""
    p = transform.n_params
    if isinstance(transform, SplineTransform) or getattr(transform, "coordinate_major", False):
        return np.repeat(np.arange(dim), p)
    return np.tile(np.arange(dim), p)


def generations(dependency: np.ndarray) -> int:
    """(FLOW.30) Number of generations of the DAG ``dependency[i, j]`` = "i depends on j" (D, D):
    the longest chain plus one. Raises ValueError when a coordinate depends on itself or the
    graph has a cycle (the map would not be autoregressive)."""
    dep = np.asarray(dependency, dtype=bool)
    d = dep.shape[0]
    if np.any(np.diag(dep)):
        raise ValueError(f"masks: expected no coordinate to depend on itself, got dependencies on "
                         f"the diagonal at {np.flatnonzero(np.diag(dep)).tolist()}")
    depth = np.ones(d, dtype=np.int64)
    for _ in range(d):                    # a DAG's depths settle within its longest chain
        new = 1 + np.max(dep * depth[None, :], axis=1)
        if np.array_equal(new, depth):
            return int(depth.max())
        depth = new
    raise ValueError("masks: expected an autoregressive (acyclic) dependency graph, got a cycle")


class MaskedConditioner(Module):
    """A masked MLP on ``[x, c]``: MaskedLinear (NN.3), activation, ..., MaskedLinear.

    Parameters
    ----------
    dim : D; context_dim : C
    masks : list of (out, in) 0/1 arrays, PyTorch layout; the first has D + C columns (context
        columns last), the last has the output units as rows
    activation : nprefgen activation name between the layers
    rng : None, int or Generator (SPEC 7), the initial weights

    ``forward(x, context) -> (out: (n, out), cache)``; ``backward(cache, d_out) -> (d_x,
    d_context)``. Parameter names are those of a ``torch.nn.Sequential`` under ``net.``.
    """

    def __init__(self, dim: int, masks, *, context_dim: int = 0, activation: str = "relu",
                 rng=None) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", low=1)
        self.context_dim = check_int(context_dim, "context_dim", low=0)
        check_choice(activation, "activation", ACTIVATIONS)
        rng = check_rng(rng)
        if not isinstance(masks, (list, tuple)) or not masks:
            raise ValueError(f"masks: expected a non-empty list of 2-d arrays, got {type(masks).__name__}")
        masks = [check_array(m, f"masks[{i}]", ndim=2) for i, m in enumerate(masks)]
        width = self.dim + self.context_dim
        check_parameter_count(sum(m.size for m in masks), "MaskedConditioner", name="masks")
        layers: list[Module] = []
        for i, m in enumerate(masks):
            if m.shape[1] != width:
                raise ValueError(f"masks[{i}]: expected {width} columns, got shape {m.shape}")
            layers.append(MaskedLinear(m.shape[1], m.shape[0], m, rng=rng))
            if i < len(masks) - 1:
                layers.append(ACTIVATIONS[activation]())
            width = m.shape[0]
        self.out_features = width
        self.activation = activation
        self.net = self.add_child("net", Sequential(*layers))

    def masked_layers(self) -> list[MaskedLinear]:
        return [layer for layer in self.net.layers if isinstance(layer, MaskedLinear)]

    def connectivity(self) -> np.ndarray:
        """(out, D) bool: output unit r can depend on input coordinate j."""
        layers = self.masked_layers()
        reach = layers[0].mask[:, : self.dim] != 0
        for layer in layers[1:]:
            reach = (layer.mask != 0).astype(np.int64) @ reach.astype(np.int64) > 0
        return reach

    def forward(self, x, context=None):
        """x: (n, D), context: (n, C) or None -> out: (n, out), cache."""
        x = check_input(x, "x", self.dim, self)
        if self.context_dim:
            context = check_input(context, "context", self.context_dim, self)
            x = np.concatenate([x, context.astype(x.dtype, copy=False)], axis=1)
        return self.net._forward(x)

    def backward(self, cache, d_out):
        """d_out: (n, out) -> d_x: (n, D), d_context: (n, C) or None; accumulates weight grads."""
        d_in = self.net._backward(cache, d_out)
        return d_in[:, : self.dim], (d_in[:, self.dim:] if self.context_dim else None)

    def __repr__(self) -> str:
        return (f"MaskedConditioner(dim={self.dim}, context_dim={self.context_dim}, "
                f"widths={[layer.out_features for layer in self.masked_layers()]})")


class MaskedAutoregressive(Bijector):
    """z = tau(x; NN([x, c])) with a masked conditioner (FLOW.29), inverse by P fixed-point
    passes (FLOW.30).

    Parameters
    ----------
    conditioner : a module with ``dim``, ``context_dim``, ``forward(x, context) -> (h, cache)``,
        ``backward(cache, d_h) -> (d_x, d_context)`` and ``connectivity() -> (out, D)`` bool,
        e.g. :class:`MaskedConditioner`; its outputs are in the transform's layout
        (:func:`output_coordinates`).
    transform : ElementwiseTransform, e.g. ScaledAffineTransform, SplineTransform,
        SoftclipSplineTransform.

    The conditioner's connectivity must make the map autoregressive (checked: a ValueError
    names ``masks`` otherwise). Attribute ``passes``: P of (FLOW.30).
    """

    def __init__(self, conditioner: Module, transform: ElementwiseTransform) -> None:
        if not isinstance(transform, ElementwiseTransform):
            raise ValueError(f"transform: expected an ElementwiseTransform, got "
                             f"{type(transform).__name__}")
        if not isinstance(conditioner, Module) or not hasattr(conditioner, "connectivity"):
            raise ValueError(f"conditioner: expected a masked conditioner module, got "
                             f"{type(conditioner).__name__}")
        super().__init__(conditioner.dim, conditioner.context_dim)
        self.transform = transform
        if conditioner.out_features != self.dim * transform.n_params:
            raise ValueError(f"conditioner: expected {self.dim * transform.n_params} outputs "
                             f"({transform.n_params} per coordinate), got {conditioner.out_features}")
        self.conditioner = self.add_child("conditioner", conditioner)
        for i, layer in enumerate(getattr(conditioner, "masked_layers", list)()):
            self.register_buffer(f"mask{i}", layer.mask)      # saved with a flow, loaded in place
        self.passes = self._passes()

    def validate_buffers(self, buffers) -> None:
        super().validate_buffers(buffers)
        for name, value in buffers.items():
            if not np.all((np.asarray(value) == 0) | (np.asarray(value) == 1)):
                raise ValueError(f"buffers[{name!r}]: expected entries in {{0, 1}}")

    def _buffers_loaded(self) -> None:
        self.passes = self._passes()

    def dependency(self) -> np.ndarray:
        """(D, D) bool: coordinate i's transform parameters depend on x_j."""
        reach = self.conditioner.connectivity()
        coord = output_coordinates(self.transform, self.dim)
        dep = np.zeros((self.dim, self.dim), dtype=bool)
        for i in range(self.dim):
            dep[i] = np.any(reach[coord == i], axis=0)
        return dep

    def _passes(self) -> int:
        return max(1, generations(self.dependency()))

    def forward_cached(self, x, context=None):
        """(FLOW.29) x: (n, D), context: (n, C) or None -> z: (n, D), log_det: (n,), cache."""
        x = self._check_x(x)
        return self._forward_cached(x, self._check_context(context, x.shape[0]))

    def _forward_cached(self, x, context=None):
        h, net_cache = self.conditioner.forward(x, context)
        z, log_det, t_cache = self.transform.forward(x, h)
        return z, log_det, (t_cache, net_cache, x.shape[0], context is not None)

    def inverse(self, z, context=None):
        """(FLOW.30) z: (n, D) -> x: (n, D), log_det_inv: (n,); ``passes`` conditioner passes."""
        z = self._check_x(z, "z")
        context = self._check_context(context, z.shape[0])
        x = np.zeros_like(z)
        log_det_inv = np.zeros(z.shape[0], dtype=z.dtype)
        for _ in range(self.passes):
            h, _ = self.conditioner.forward(x, context)
            x, log_det_inv = self.transform.inverse(z, h)
        return x, log_det_inv

    def backward(self, cache, d_z, d_log_det):
        """(FLOW.29) via (FLOW.9): d_z: (n, D), d_log_det: (n,) -> d_x, d_context or None."""
        d_z, d_log_det = self._check_cotangents(d_z, d_log_det, cache[2])
        return self._backward(cache, d_z, d_log_det)

    def _backward(self, cache, d_z, d_log_det):
        t_cache, net_cache, _, has_context = cache
        d_x, d_h = self.transform.backward(t_cache, d_z, d_log_det)
        d_x_net, d_context = self.conditioner.backward(net_cache, d_h)
        return d_x + d_x_net, (d_context if has_context else None)

    def __repr__(self) -> str:
        return (f"MaskedAutoregressive(dim={self.dim}, context_dim={self.context_dim}, "
                f"passes={self.passes}, transform={self.transform!r})")
