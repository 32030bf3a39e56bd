"""Convenience builders: RealNVP and MAF flows of a given size (derivations/flows.md).

Each builder records its arguments in ``flow.config`` so that :func:`nprefgen.flows.load_flow`
can rebuild the flow from a saved file (the weights and buffers then overwrite the fresh ones).
"""
from __future__ import annotations

import importlib

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng
from nprefgen.flows.autoregressive import IAF, MAF
from nprefgen.flows.coupling import AffineCoupling, coupling_masks
from nprefgen.flows.elementwise import ActNorm, Standardize
from nprefgen.flows.flow import Flow
from nprefgen.flows.permutation import Permutation


def _hidden(hidden) -> list[int]:
    """An int h means two hidden layers of h units; a sequence lists the widths."""
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        h = check_int(hidden, "hidden", low=1)
        return [h, h]
    try:
        widths = [check_int(h, "hidden", low=1) for h in hidden]
    except TypeError:
        raise ValueError(f"hidden: expected an int or a sequence of ints, got {hidden!r}") from None
    return widths


def _prefix(dim, standardize):
    """[Standardize] when asked: data (n, D) -> its z-scoring; True -> an identity placeholder."""
    if standardize is None or standardize is False:
        return []
    if standardize is True:
        return [Standardize(np.zeros(dim), np.ones(dim))]
    x = check_array(standardize, "standardize", shape=(None, dim), dtype=np.float64)
    return [Standardize.from_data(x)]


def _finish(flow: Flow, config: dict, standardize_context) -> Flow:
    if standardize_context is not None and standardize_context is not False \
            and standardize_context is not True:
        flow.standardize_context(standardize_context)
    flow.config = config
    return flow


def realnvp(dim: int, n_layers: int, hidden, *, rng: np.random.Generator, context_dim: int = 0,
            mask: str = "alternating", image_shape=None, activation: str = "relu",
            bound: float | None = 3.0, actnorm: bool = False, standardize=None,
            standardize_context=None) -> Flow:
    """A RealNVP flow: ``n_layers`` affine couplings (FLOW.4) with masks flipping between layers.

    Parameters
    ----------
    dim : int >= 2, D
    n_layers : int, number of couplings
    hidden : int (two hidden layers of that width) or sequence of widths, per conditioner
    rng : numpy.random.Generator
    context_dim : int, C for a conditional flow
    mask : "alternating" (even/odd coordinates), "half" (first/second half) or "checkerboard"
        (needs ``image_shape`` (h, w) or (c, h, w) with prod = D)
    activation, bound : conditioner activation and the scale bound of (FLOW.5)
    actnorm : put an ActNorm (FLOW.18) before every coupling
    standardize : None, data x: (n, D) to z-score with a fixed Standardize first (FLOW.17), or
        True for an identity placeholder (filled by ``load``)
    standardize_context : None or contexts (n, C) whose mean/std z-score the context inside
    """
    dim = check_int(dim, "dim", low=2)
    n_layers = check_int(n_layers, "n_layers", low=1)
    widths = _hidden(hidden)
    rng = check_rng(rng)
    masks = coupling_masks(mask, dim, n_layers, image_shape)
    layers = _prefix(dim, standardize)
    for m in masks:
        if actnorm:
            layers.append(ActNorm(dim))
        layers.append(AffineCoupling(m, widths, rng=rng, context_dim=context_dim,
                                     activation=activation, bound=bound))
    config = dict(builder="realnvp", dim=dim, n_layers=n_layers, hidden=widths,
                  context_dim=context_dim, mask=mask,
                  image_shape=None if image_shape is None else [int(s) for s in image_shape],
                  activation=activation, bound=bound, actnorm=bool(actnorm),
                  standardize=standardize is not None and standardize is not False)
    return _finish(Flow(layers, context_dim=context_dim), config, standardize_context)


def maf(dim: int, n_layers: int, hidden, *, rng: np.random.Generator, context_dim: int = 0,
        permutation: str = "reverse", activation: str = "relu", bound: float | None = 3.0,
        actnorm: bool = False, standardize=None, standardize_context=None,
        inverse_autoregressive: bool = False) -> Flow:
    """A MAF: ``n_layers`` MADE bijectors (FLOW.11) with a permutation between consecutive ones.

    permutation : "reverse" (the MAF paper) or "random" (drawn from ``rng``, as sbi does)
    inverse_autoregressive : build IAF layers (FLOW.13) instead: fast sampling, sequential density
    Other arguments as in :func:`realnvp` (``dim`` may be 1 here).
    """
    dim = check_int(dim, "dim", low=1)
    n_layers = check_int(n_layers, "n_layers", low=1)
    widths = _hidden(hidden)
    rng = check_rng(rng)
    check_choice(permutation, "permutation", ("reverse", "random"))
    cls = IAF if inverse_autoregressive else MAF
    layers = _prefix(dim, standardize)
    for k in range(n_layers):
        if k > 0 and dim > 1:
            layers.append(Permutation.reverse(dim) if permutation == "reverse"
                          else Permutation.random(dim, rng))
        if actnorm:
            layers.append(ActNorm(dim))
        layers.append(cls(dim, widths, rng=rng, context_dim=context_dim, activation=activation,
                          bound=bound))
    config = dict(builder="maf", dim=dim, n_layers=n_layers, hidden=widths, context_dim=context_dim,
                  permutation=permutation, activation=activation, bound=bound, actnorm=bool(actnorm),
                  standardize=standardize is not None and standardize is not False,
                  inverse_autoregressive=bool(inverse_autoregressive))
    return _finish(Flow(layers, context_dim=context_dim), config, standardize_context)


BUILDERS = {"realnvp": realnvp, "maf": maf}


def register_builder(name: str, builder) -> None:
    """Make ``builder(rng=..., **config)`` available to :func:`from_config` under ``name``
    (other flow families, e.g. spline flows, register themselves here)."""
    if not callable(builder):
        raise ValueError(f"builder: expected a callable, got {type(builder).__name__}")
    BUILDERS[str(name)] = builder


def from_config(config: dict) -> Flow:
    """Rebuild an (untrained) flow from ``flow.config``; a fixed rng, as the weights get loaded."""
    config = dict(config)
    name = config.pop("builder", None)
    if name not in BUILDERS and isinstance(name, str) and name.isidentifier():
        # families defined in their own module register on import, e.g. nprefgen.flows.spline
        try:
            importlib.import_module(f"nprefgen.flows.{name}")
        except ImportError:
            pass
    check_choice(name, "config['builder']", BUILDERS)
    return BUILDERS[name](rng=np.random.default_rng(0), **config)
