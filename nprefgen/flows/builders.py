"""Builders: RealNVP, MAF/IAF and neural spline flows of a given size (derivations/flows.md,
derivations/splines.md).

Each builder records its arguments in ``flow.config`` so that :func:`nprefgen.flows.load_flow`
can rebuild the flow from a saved file (the weights and buffers then overwrite the fresh ones);
:data:`BUILDERS` maps the recorded name to the builder.

Defaults that cannot silently fail:

- ``standardize=True`` (the default) puts an *unfitted* :class:`Standardize` first (FLOW.18): the
  first ``flow.fit(x)`` / ``flow.initialize(x)`` sets its mean and std from the data, as sbi's
  ``z_score_x`` does, and using the flow before that raises a ValueError saying so. Passing the
  data (``standardize=x``) fits it at once; ``standardize=False`` (or None) leaves the data raw.
- Sizes are checked before anything is allocated: a flow of more than
  :data:`nprefgen.flows.base.MAX_PARAMETERS` parameters (e.g. ``n_layers=10**9``) is refused
  with a ValueError that gives the estimated count.
- A spline flow is the identity outside its tail bound [-B, B]; when the data it is initialised
  on (or the data passed as ``standardize``) leave that interval too often after
  standardisation, it warns (:class:`nprefgen.flows.spline.TailBoundWarning`).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng
from nprefgen.flows.autoregressive import IAF, MAF
from nprefgen.flows.base import check_parameter_count, hidden_widths, mlp_parameter_count
from nprefgen.flows.coupling import AffineCoupling, coupling_masks
from nprefgen.flows.elementwise import ActNorm, Standardize
from nprefgen.flows.flow import Flow
from nprefgen.flows.permutation import Permutation
from nprefgen.flows.spline import SplineCoupling, n_spline_params


def _prefix(dim, standardize):
    """The Standardize in front: True -> unfitted (fitted by the first fit/initialize or load);
    data x: (n, D) -> fitted to x now; False or None -> none."""
    if standardize is None or standardize is False:
        return []
    if standardize is True:
        return [Standardize(dim=dim)]
    x = check_array(standardize, "standardize", shape=(None, dim), dtype=np.float64)
    return [Standardize.from_data(x)]


def _finish(flow: Flow, config: dict, standardize, standardize_context) -> Flow:
    contexts = None
    if standardize_context is not None and standardize_context is not False \
            and standardize_context is not True:
        flow.standardize_context(standardize_context)
        contexts = standardize_context
    if standardize is not None and standardize is not True and standardize is not False:
        x = np.asarray(standardize)
        same_rows = contexts is not None and np.shape(contexts)[0] == x.shape[0]
        flow.check_data(x, contexts if same_rows else None)     # data given: check them now
    flow.config = config
    return flow


def _split_sizes(mask: str, dim: int, image_shape) -> list[tuple[int, int]]:
    """(d_A, d_B) of the two mask parities, without building the masks (for the size check)."""
    if dim == 1:
        return [(0, 1), (0, 1)]
    if mask == "checkerboard" and image_shape is not None and len(image_shape) in (2, 3):
        hw = int(image_shape[-1]) * int(image_shape[-2])
        channels = dim // max(hw, 1)
        even = channels * ((hw + 1) // 2)
    else:
        even = (dim + 1) // 2
    return [(even, dim - even), (dim - even, even)]


def _check_size(per_layer: list[int], n_layers: int, extra_per_layer: int, what: str) -> None:
    """Refuse above MAX_PARAMETERS: one layer too large -> ``hidden``; too many -> ``n_layers``."""
    for count in per_layer:
        check_parameter_count(count + extra_per_layer, f"one {what} layer")
    period = len(per_layer)         # masks alternate, so the counts do
    total = (n_layers // period) * sum(per_layer) + sum(per_layer[: n_layers % period])
    check_parameter_count(total + n_layers * extra_per_layer, f"a {what} flow of {n_layers} layers",
                          name="n_layers")


def _config(standardize, **kwargs) -> dict:
    return dict(kwargs, standardize=standardize is not None and standardize is not False)


def realnvp(dim: int, n_layers: int, hidden, *, rng=None, context_dim: int = 0,
            mask: str = "alternating", image_shape=None, activation: str = "relu",
            bound: float | None = 3.0, actnorm: bool = False, standardize=True,
            standardize_context=None) -> Flow:
    """A RealNVP flow: ``n_layers`` affine couplings (FLOW.5) with masks flipping between layers.

    Parameters
    ----------
    dim : int >= 2, D
    n_layers : int, number of couplings
    hidden : int (two hidden layers of that width) or sequence of widths, per conditioner
    rng : None, int or numpy.random.Generator (SPEC 7), for the initial weights
    context_dim : int, C for a conditional flow
    mask : "alternating" (even/odd coordinates), "half" (first/second half) or "checkerboard"
        (needs ``image_shape`` (h, w) or (c, h, w) with prod = D)
    activation, bound : conditioner activation and the scale bound of (FLOW.6)
    actnorm : put an ActNorm (FLOW.19) before every coupling
    standardize : True (default: an unfitted Standardize first, fitted on the first
        ``fit``/``initialize``), data x: (n, D) (fitted to x now), or False/None (no z-scoring)
    standardize_context : None or contexts (n, C) whose mean/std z-score the context inside

    Raises ValueError for a flow above :data:`nprefgen.flows.base.MAX_PARAMETERS` parameters.
    """
    dim = check_int(dim, "dim", low=2)
    n_layers = check_int(n_layers, "n_layers", low=1)
    context_dim = check_int(context_dim, "context_dim", low=0)
    check_parameter_count(dim + context_dim, f"a flow of dim {dim}", name="dim")
    widths = hidden_widths(hidden)
    rng = check_rng(rng)
    check_choice(mask, "mask", ("alternating", "half", "checkerboard"))
    _check_size([mlp_parameter_count([d_a + context_dim, *widths, 2 * d_b])
                 for d_a, d_b in _split_sizes(mask, dim, image_shape)], n_layers,
                2 * dim if actnorm else 0, "RealNVP")
    masks = coupling_masks(mask, dim, n_layers, image_shape)
    layers = _prefix(dim, standardize)
    for m in masks:
        if actnorm:
            layers.append(ActNorm(dim))
        layers.append(AffineCoupling(m, widths, rng=rng, context_dim=context_dim,
                                     activation=activation, bound=bound))
    config = _config(standardize, builder="realnvp", dim=dim, n_layers=n_layers, hidden=widths,
                     context_dim=context_dim, mask=mask,
                     image_shape=None if image_shape is None else [int(s) for s in image_shape],
                     activation=activation, bound=bound, actnorm=bool(actnorm))
    return _finish(Flow(layers, context_dim=context_dim), config, standardize, standardize_context)


def maf(dim: int, n_layers: int, hidden, *, rng=None, context_dim: int = 0,
        permutation: str = "reverse", activation: str = "relu", bound: float | None = 3.0,
        actnorm: bool = False, standardize=True, standardize_context=None,
        inverse_autoregressive: bool = False) -> Flow:
    """A MAF: ``n_layers`` MADE bijectors (FLOW.12) with a permutation between consecutive ones.

    permutation : "reverse" (the MAF paper) or "random" (drawn from ``rng``, as sbi does)
    inverse_autoregressive : build IAF layers (FLOW.15) instead: fast sampling, sequential density
    Other arguments as in :func:`realnvp` (``dim`` may be 1 here).
    """
    dim = check_int(dim, "dim", low=1)
    n_layers = check_int(n_layers, "n_layers", low=1)
    context_dim = check_int(context_dim, "context_dim", low=0)
    check_parameter_count(dim + context_dim, f"a flow of dim {dim}", name="dim")
    widths = hidden_widths(hidden)
    rng = check_rng(rng)
    check_choice(permutation, "permutation", ("reverse", "random"))
    _check_size([mlp_parameter_count([dim + context_dim, *widths, 2 * dim])], n_layers,
                2 * dim if actnorm else 0, "MAF")
    cls = IAF if inverse_autoregressive else MAF
    layers = _prefix(dim, standardize)
    for k in range(n_layers):
        if k > 0 and dim > 1:
            layers.append(Permutation.reverse(dim) if permutation == "reverse"
                          else Permutation.random(dim, rng=rng))
        if actnorm:
            layers.append(ActNorm(dim))
        layers.append(cls(dim, widths, rng=rng, context_dim=context_dim, activation=activation,
                          bound=bound))
    config = _config(standardize, builder="maf", dim=dim, n_layers=n_layers, hidden=widths,
                     context_dim=context_dim, permutation=permutation, activation=activation,
                     bound=bound, actnorm=bool(actnorm),
                     inverse_autoregressive=bool(inverse_autoregressive))
    return _finish(Flow(layers, context_dim=context_dim), config, standardize, standardize_context)


def spline_flow(dim: int, n_layers: int, hidden, *, rng=None, context_dim: int = 0,
                n_bins: int = 8, bound: float = 3.0, mask: str = "alternating", image_shape=None,
                activation: str = "relu", actnorm: bool = False, standardize=True,
                standardize_context=None) -> Flow:
    """A neural spline flow: ``n_layers`` :class:`SplineCoupling` layers (SPL.12), masks flipping
    between layers, as :func:`realnvp` builds affine ones.

    Parameters
    ----------
    dim : int, D >= 2 (D = 1 only for a conditional flow: the single coordinate is transformed
        with the context as the conditioner's only input)
    n_layers : int, number of spline couplings
    hidden : int (two hidden layers of that width) or sequence of widths, per conditioner
    rng : None, int or numpy.random.Generator
    context_dim : int, C for a conditional flow
    n_bins, bound : K and B of each spline. The splines act on [-B, B] only and are the
        identity outside, which is why the data are standardised by default; when the data the
        flow is initialised on fall outside [-B, B] after standardisation in more than
        :data:`nprefgen.flows.spline.TAIL_FRACTION` of the transformed values, a
        :class:`~nprefgen.flows.spline.TailBoundWarning` says so.
    mask : "alternating", "half" or "checkerboard" (needs ``image_shape`` with prod = D)
    activation : conditioner activation
    actnorm : an ActNorm (FLOW.19) before every coupling
    standardize, standardize_context : as in :func:`realnvp`

    Returns a :class:`nprefgen.flows.Flow` whose ``config`` rebuilds it (builder name "spline").
    """
    dim = check_int(dim, "dim", low=1)
    n_layers = check_int(n_layers, "n_layers", low=1)
    context_dim = check_int(context_dim, "context_dim", low=0)
    check_parameter_count(dim + context_dim, f"a flow of dim {dim}", name="dim")
    if dim == 1 and context_dim == 0:
        raise ValueError("dim: expected >= 2 for an unconditional spline flow (a coupling needs a "
                         "coordinate to condition on), got 1")
    widths = hidden_widths(hidden)
    rng = check_rng(rng)
    check_choice(mask, "mask", ("alternating", "half", "checkerboard"))
    n_par = n_spline_params(n_bins)
    sizes = _split_sizes(mask, dim, image_shape)
    for d_a, d_b in sizes:       # name n_bins when the bins, not the widths, make it too large
        check_parameter_count(mlp_parameter_count([d_a + context_dim, *widths, 2 * d_b]),
                              "one spline coupling")
        check_parameter_count(mlp_parameter_count([d_a + context_dim, *widths, d_b * n_par]),
                              "one spline coupling", name="n_bins")
    _check_size([mlp_parameter_count([d_a + context_dim, *widths, d_b * n_par])
                 for d_a, d_b in sizes], n_layers, 2 * dim if actnorm else 0, "spline")
    masks = coupling_masks(mask, dim, n_layers, image_shape)
    layers = _prefix(dim, standardize)
    for m in masks:
        if actnorm:
            layers.append(ActNorm(dim))
        layers.append(SplineCoupling(dim, m, widths, n_bins, bound, rng=rng, context_dim=context_dim,
                                     activation=activation))
    config = _config(standardize, builder="spline", dim=dim, n_layers=n_layers, hidden=widths,
                     context_dim=context_dim, n_bins=int(n_bins), bound=float(bound), mask=mask,
                     image_shape=None if image_shape is None else [int(s) for s in image_shape],
                     activation=activation, actnorm=bool(actnorm))
    return _finish(Flow(layers, context_dim=context_dim), config, standardize, standardize_context)


BUILDERS = {"realnvp": realnvp, "maf": maf, "spline": spline_flow}


def register_builder(name: str, builder) -> None:
    """Make ``builder(rng=..., **config)`` available to :func:`from_config` under ``name``
    (a user's own flow family; the built-in ones are in :data:`BUILDERS` already)."""
    if not callable(builder):
        raise ValueError(f"builder: expected a callable, got {type(builder).__name__}")
    BUILDERS[str(name)] = builder


def from_config(config: dict) -> Flow:
    """Rebuild an (untrained) flow from ``flow.config``; a fixed rng, as the weights get loaded."""
    config = dict(config)
    name = config.pop("builder", None)
    check_choice(name, "config['builder']", BUILDERS)
    return BUILDERS[name](rng=np.random.default_rng(0), **config)
