"""What an adapter produces: the nprefgen flow, the parameter links and the per-transform stages.

A :class:`ParamLink` states how one of the library's parameters becomes (part of) an nprefgen
parameter, explicitly:

    ours[k] = scale[k] * theirs[rows[k]] + offset[k]        (rows of a weight or a bias)

``rows`` reorders output units (zuko's interleaved ``[shift_i, scale_i]`` -> nprefgen's
``[a (D), t (D)]``), ``scale`` and ``offset`` fold a library's fixed rescaling of a conditioner
output into the last layer (nflows divides spline logits by sqrt(hidden_features) and shifts the
derivative pre-activation by log(e^(1 - min_derivative) - 1)). Gradients go back through the
transpose: ``d_theirs[rows[k]] += scale[k] * d_ours[k]``.

Nothing here imports torch: arrays are numpy, and the library callables live in :class:`Stage`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class ParamLink:
    """ours[our_name][k] = scale[k] * theirs[their_name][rows[k]] + offset[k] (axis 0)."""

    their_name: str
    our_name: str
    rows: np.ndarray | None = None
    scale: np.ndarray | None = None
    offset: np.ndarray | None = None

    def to_ours(self, theirs: np.ndarray) -> np.ndarray:
        v = np.asarray(theirs, dtype=np.float64)
        if self.rows is not None:
            v = v[self.rows]
        extra = (slice(None),) + (None,) * (v.ndim - 1)
        if self.scale is not None:
            v = self.scale[extra] * v
        if self.offset is not None:
            v = v + self.offset[extra]
        return v

    def grad_to_theirs(self, d_ours: np.ndarray, their_shape: tuple) -> np.ndarray:
        d = np.asarray(d_ours, dtype=np.float64)
        extra = (slice(None),) + (None,) * (d.ndim - 1)
        if self.scale is not None:
            d = self.scale[extra] * d
        out = np.zeros(their_shape)
        if self.rows is None:
            out += d
        else:
            np.add.at(out, self.rows, d)
        return out


@dataclass
class Stage:
    """One library transform and the nprefgen bijectors that reproduce it.

    name : the library's module path and class, e.g. ``"transform.transforms.0
    (MaskedAutoregressiveTransform)"``; ours : indices into ``flow.bijectors``;
    forward(x, c) -> (y, log_det) and inverse(y, c) -> x : the library's own maps on torch
    tensors; notes : the conventions mapped (shown in the report).
    """

    name: str
    ours: list[int]
    forward: Callable[[Any, Any], tuple[Any, Any]]
    inverse: Callable[[Any, Any], Any]
    notes: str = ""


@dataclass
class Adapted:
    """An nprefgen ``flow`` with exactly a library flow's parameters.

    links : the :class:`ParamLink` of every nprefgen parameter; stages : per library transform;
    log_prob(x, c) : the library's log-density on torch tensors; parameters : the library's
    ``named_parameters()`` as a dict of torch tensors (float64 copy); library : "zuko"/"nflows".
    """

    flow: Any
    links: list[ParamLink]
    stages: list[Stage]
    log_prob: Callable[[Any, Any], Any]
    parameters: dict
    library: str
    module: Any = None
    notes: list[str] = field(default_factory=list)

    def load_from(self, theirs: dict) -> None:
        """Copy the library's parameters ``{name: array}`` into the nprefgen flow (every nprefgen
        parameter must be linked exactly once)."""
        own = {name for name, _, _ in self.flow.named_parameters()}
        linked = [link.our_name for link in self.links]
        if sorted(linked) != sorted(own):
            missing = sorted(own - set(linked))
            twice = sorted({n for n in linked if linked.count(n) > 1})
            raise ValueError(f"links: every nprefgen parameter must be linked once; missing "
                             f"{missing}, linked twice {twice}")
        self.flow.load_state_dict({link.our_name: link.to_ours(theirs[link.their_name])
                                   for link in self.links})

    def grads_to_theirs(self) -> dict:
        """The nprefgen flow's accumulated parameter gradients, mapped to the library's names."""
        ours = {name: g for name, _, g in self.flow.named_parameters()}
        out: dict[str, np.ndarray] = {}
        for link in self.links:
            shape = tuple(self.parameters[link.their_name].shape)
            g = link.grad_to_theirs(ours[link.our_name], shape)
            out[link.their_name] = out.get(link.their_name, 0.0) + g
        return out
