"""zuko -> nprefgen: the same flow, with exactly zuko's parameters (zuko 1.6).

Mapped (every parameter of the transform, no approximation):

- ``GeneralCouplingTransform`` (NICE/RealNVP) with ``MonotonicAffineTransform`` -> a
  :class:`~nprefgen.flows.coupling.Coupling` with
  :class:`~nprefgen.flows.affine_scales.ScaledAffineTransform` ``scale="softclip"`` (FLOW.26),
  bound = -log(slope); zuko's mask (True = constant part) is nprefgen's (1 = conditioning);
  its MLP is nprefgen's MLP layer for layer. zuko's output is interleaved per feature
  ``[shift_i, scale_i]``; nprefgen reads ``[a (d_B), t (d_B)]``: the last layer's rows are
  reordered (ParamLink.rows). zuko's y = exp(a) x + b is scale-then-shift, like FLOW.25.
- ``MaskedAutoregressiveTransform`` (MAF, and NSF with any ``passes``) with the affine or the
  ``MonotonicRQSTransform`` spline -> :class:`~nprefgen.flows.masked_autoregressive.MaskedAutoregressive`
  with zuko's own masks in a :class:`MaskedConditioner` (FLOW.29-FLOW.30) and
  ScaledAffineTransform / :class:`~nprefgen.flows.spline_softclip.SoftclipSplineTransform`
  (SPL.19-SPL.21; bound B and slope read from the transform).
- ``GeneralCouplingTransform`` with the spline (NSF coupling built by hand) -> Coupling with
  SoftclipSplineTransform.
- ``UnconditionalTransform(PermutationTransform, order)`` -> Permutation (y = x[..., order]).
- base ``DiagNormal(0, 1)``.

Not mapped (ValueError naming it): other univariate transforms (Bernstein, SOS, Gaussianization,
circular splines), residual MaskedMLPs, ``normalize=True`` (LayerNorm), one-feature flows
(zuko's ElementWiseTransform), stacked/Bayesian linear layers, non-standard bases.
"""
from __future__ import annotations

import math

import numpy as np

from nprefgen.flows import Coupling, Flow, Permutation
from nprefgen.flows.affine_scales import ScaledAffineTransform
from nprefgen.flows.masked_autoregressive import MaskedAutoregressive, MaskedConditioner
from nprefgen.flows.spline_softclip import SoftclipSplineTransform
from nprefgen.interop._torch import (
    activation_name, identity_rows, interleaved_to_blocks, numpy, require,
)
from nprefgen.interop.mapping import Adapted, ParamLink, Stage


def _univariate(lazy, d: int):
    """(ElementwiseTransform, rows of the hyper output in its layout, note) for a lazy transform's
    univariate constructor; ``d`` transformed features."""
    zt = require("zuko.transforms")
    uni = lazy.univariate
    func = getattr(uni, "func", uni)
    kw = dict(getattr(uni, "keywords", {}) or {})
    shapes = [tuple(s) for s in lazy.shapes]
    if func is zt.MonotonicAffineTransform and shapes == [(), ()]:
        slope = kw.get("slope", 1e-3)
        # zuko: phi = [shift, scale] per feature, log_scale = a / (1 + |a / log slope|)
        return (ScaledAffineTransform("softclip", bound=-math.log(slope)),
                interleaved_to_blocks(d, 2, [1, 0]),
                f"MonotonicAffine: y = exp(a/(1+|a|/{-math.log(slope):.4g})) x + b (FLOW.26); "
                f"rows [shift_i, scale_i] -> [a, t]")
    if func is zt.MonotonicRQSTransform and len(shapes) == 3 and shapes[0] == shapes[1] \
            and shapes[2] == (shapes[0][0] - 1,):
        k = shapes[0][0]
        bound, slope = kw.get("bound", 5.0), kw.get("slope", 1e-3)
        return (SoftclipSplineTransform(k, bound, slope), identity_rows(d * (3 * k - 1)),
                f"MonotonicRQS: K={k}, B={bound:g}, slope={slope:g} (SPL.19-SPL.21)")
    raise ValueError(f"their_flow: univariate transform {func!r} with shapes {shapes} has no "
                     f"nprefgen counterpart (mapped: MonotonicAffineTransform, MonotonicRQSTransform)")


def _mlp_layers(seq):
    """Linear/MaskedLinear modules and the one activation of a zuko MLP/MaskedMLP."""
    torch = require("torch")
    linears, acts = [], set()
    for i, m in enumerate(seq):
        if isinstance(m, torch.nn.Linear) or type(m).__name__ == "Linear":
            if m.weight.dim() != 2 or m.bias is None:
                raise ValueError(f"their_flow: layer {i} of {type(seq).__name__} is a stacked or "
                                 f"bias-free linear layer (not mapped)")
            linears.append((i, m))
        elif type(m).__name__ == "Residual":
            raise ValueError("their_flow: residual MaskedMLP blocks (residual=True) are not mapped")
        else:
            acts.add(activation_name(m) if not type(m).__name__ == "LayerNorm" else "layernorm")
    if "layernorm" in acts:
        raise ValueError("their_flow: MLP with normalize=True (LayerNorm) is not mapped")
    if len(acts) > 1:
        raise ValueError(f"their_flow: mixed activations {sorted(acts)} are not mapped")
    return linears, (acts.pop() if acts else "relu")


def _linear_links(linears, their_prefix, our_prefix, last_rows):
    links = []
    for j, (i, m) in enumerate(linears):
        rows = last_rows if j == len(linears) - 1 else None
        for p in ("weight", "bias"):
            links.append(ParamLink(f"{their_prefix}.{i}.{p}", f"{our_prefix}.{i}.{p}", rows))
    return links


def from_zuko(flow) -> Adapted:
    """Build the nprefgen flow with exactly the parameters of a ``zuko.flows.Flow``.

    flow : a zuko Flow (e.g. ``zuko.flows.MAF``, ``NSF``, ``NICE``/``RealNVP``, or a Flow of
        GeneralCouplingTransform / MaskedAutoregressiveTransform / permutations).
    -> :class:`~nprefgen.interop.mapping.Adapted`: ``.flow`` (nprefgen Flow), ``.links``,
    ``.stages`` (one per zuko transform), ``.log_prob(x, c)`` (zuko's, on tensors). The torch
    module is evaluated in a float64 copy; the original is left untouched.
    """
    import copy

    torch = require("torch")
    zflows = require("zuko.flows")
    zlazy = require("zuko.lazy")
    zt = require("zuko.transforms")
    zdist = require("zuko.distributions")
    if not isinstance(flow, zlazy.Flow):
        raise ValueError(f"their_flow: expected a zuko.flows.Flow, got {type(flow).__name__}")
    module = copy.deepcopy(flow).double()
    lazies = list(module.transform.transforms) if isinstance(module.transform, zlazy.LazyComposedTransform) \
        else [module.transform]
    base = module.base()
    dim = int(base.event_shape[0])
    bijectors, links, stages = [], [], []
    context_dim = 0
    for k, lazy in enumerate(lazies):
        name = f"transform.transforms.{k}"
        if isinstance(lazy, zflows.GeneralCouplingTransform):
            mask = numpy(lazy.mask).astype(bool)
            d_b = int((~mask).sum())
            transform, rows, note = _univariate(lazy, d_b)
            linears, act = _mlp_layers(lazy.hyper)
            c = linears[0][1].in_features - int(mask.sum())
            hidden = [m.out_features for _, m in linears[:-1]]
            b = Coupling(mask.astype(np.float64), transform, hidden, rng=0, context_dim=c,
                         activation=act, zero_init=False)
            links += _linear_links(linears, f"{name}.hyper", f"{len(bijectors)}.net", rows)
            context_dim = max(context_dim, c)
            note = "coupling, mask True = conditioning; " + note
        elif isinstance(lazy, zflows.MaskedAutoregressiveTransform):
            transform, rows, note = _univariate(lazy, dim)
            linears, act = _mlp_layers(lazy.hyper)
            if any(type(m).__name__ != "MaskedLinear" for _, m in linears):
                raise ValueError("their_flow: residual MaskedMLP blocks are not mapped")
            masks = [numpy(m.mask) for _, m in linears]
            masks[-1] = masks[-1][rows]
            c = masks[0].shape[1] - dim
            cond = MaskedConditioner(dim, masks, context_dim=c, activation=act, rng=0)
            b = MaskedAutoregressive(cond, transform)
            links += _linear_links(linears, f"{name}.hyper", f"{len(bijectors)}.conditioner.net",
                                   rows)
            context_dim = max(context_dim, c)
            note = f"autoregressive, zuko's masks, {b.passes} inverse passes; " + note
        elif isinstance(lazy, zlazy.UnconditionalTransform) and getattr(lazy, "f", None) is zt.PermutationTransform:
            order = numpy(lazy.forward().order).astype(np.int64)
            b, note = Permutation(order), "y = x[..., order]"
        else:
            raise ValueError(f"their_flow: {name} ({type(lazy).__name__}) has no nprefgen "
                             f"counterpart")
        stages.append(Stage(
            f"{name} ({type(lazy).__name__})", [len(bijectors)],
            forward=lambda x, c, lazy=lazy: lazy(c).call_and_ladj(x),
            inverse=lambda y, c, lazy=lazy: lazy(c).inv(y), notes=note))
        bijectors.append(b)
    if not isinstance(base, zdist.DiagNormal) or not (
            torch.all(base.base_dist.loc == 0) and torch.all(base.base_dist.scale == 1)):
        raise ValueError(f"their_flow: base {base!r} is not mapped (expected DiagNormal(0, 1))")
    ours = Flow(bijectors, context_dim=context_dim)
    params = {n: p for n, p in module.named_parameters()}
    adapted = Adapted(ours, links, stages, log_prob=lambda x, c: module(c).log_prob(x),
                      parameters=params, library="zuko", module=module)
    adapted.load_from({n: numpy(p) for n, p in params.items()})
    return adapted
