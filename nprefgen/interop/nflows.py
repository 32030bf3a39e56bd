"""nflows -> nprefgen: the same flow, with exactly nflows' parameters (nflows 0.14).

Mapped (every parameter, no approximation):

- ``MaskedAffineAutoregressiveTransform`` (feed-forward or residual MADE, sequential or random
  masks) -> :class:`~nprefgen.flows.masked_autoregressive.MaskedAutoregressive` over a
  :class:`~nprefgen.flows.residual_conditioners.BlockMADE` carrying nflows' own masks
  (FLOW.29-FLOW.32), with :class:`~nprefgen.flows.affine_scales.ScaledAffineTransform`
  ``scale="softplus"``: y = (softplus(a) + 1e-3) x + t (FLOW.28). nflows' outputs are
  interleaved per feature ``[a_i, t_i]``: the last layer's rows are reordered to ``[a, t]``.
- ``MaskedPiecewiseRationalQuadraticAutoregressiveTransform`` with ``tails="linear"`` ->
  MaskedAutoregressive with :class:`~nprefgen.flows.spline_knots.KnotSplineTransform`
  (SPL.22-SPL.23; same min bin width/height/derivative, B = tail_bound): nflows' knots (end
  knots exact, bins as knot differences), no derivative offset (nprefgen's own spline adds
  c_0 = log(e^(1 - min_derivative) - 1), SPL.3), PyTorch's softplus threshold 20.
- ``AffineCouplingTransform`` -> :class:`~nprefgen.flows.coupling.Coupling` with
  ScaledAffineTransform ``scale="sigmoid"``: y = (sigmoid(a + 2) + 1e-3) x + t (FLOW.27); the
  outputs ``[t (d_B), a (d_B)]`` become ``[a, t]``; nflows' mask (> 0 = transformed) is the
  complement of nprefgen's (1 = conditioning).
- ``PiecewiseRationalQuadraticCouplingTransform`` with ``tails="linear"`` -> Coupling with
  KnotSplineTransform; the width/height logits are divided by sqrt(hidden_features) when the
  network has that attribute (ResidualNet does; ``logit_divisor``).
- Conditioner of the couplings: ``nflows.nn.nets.ResidualNet`` -> nprefgen ResidualNet (FLOW.31).
- ``Permutation`` / ``ReversePermutation`` / ``RandomPermutation`` -> Permutation.
- ``ActNorm`` (initialised) -> ElementwiseAffine (FLOW.18).
- base ``StandardNormal``; identity embedding net.

Both spline forms map: ``tails="linear"`` on [-B, B] and ``tails=None`` (nflows' default) on
[0, 1] with all K+1 derivatives free (KnotSplineTransform ``tails=None``; nflows refuses inputs
outside [0, 1], nprefgen passes them unchanged).

Not mapped (ValueError naming it): batch norm and dropout inside the networks (the float64 copy is put in eval mode, so dropout is
off, but batch-norm statistics are not mapped), LU/QR/SVD linear transforms, BatchNorm
transforms, piecewise linear/quadratic/cubic transforms, conditional bases, embedding nets.
"""
from __future__ import annotations

import numpy as np

from nprefgen.flows import Coupling, ElementwiseAffine, Flow, Permutation
from nprefgen.flows.affine_scales import ScaledAffineTransform
from nprefgen.flows.masked_autoregressive import MaskedAutoregressive
from nprefgen.flows.residual_conditioners import BlockMADE, ResidualNet
from nprefgen.flows.spline_knots import KnotSplineTransform
from nprefgen.interop._torch import activation_name, interleaved_to_blocks, numpy, require
from nprefgen.interop.mapping import Adapted, ParamLink, Stage


def _check_no_bn(module, name):
    torch = require("torch")
    for sub in module.modules():
        if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
            raise ValueError(f"their_flow: {name} uses batch norm (not mapped)")


def _linear(their, ours, rows=None, scale=None, offset=None):
    return [ParamLink(f"{their}.weight", f"{ours}.weight", rows, scale),
            ParamLink(f"{their}.bias", f"{ours}.bias", rows, scale, offset)]


def _spline(t, net):
    """nflows' unconstrained RQ spline (linear tails) as a KnotSplineTransform (SPL.22): its knot
    construction, PyTorch's softplus threshold 20, no derivative offset, and the logits divided
    by sqrt(hidden_features) when ``net`` has that attribute."""
    if t.tails not in ("linear", None):
        raise ValueError(f"their_flow: spline with tails={t.tails!r} is not mapped (only "
                         f"'linear' and None)")
    hidden = getattr(net, "hidden_features", None)
    return KnotSplineTransform(t.num_bins, float(t.tail_bound), t.min_bin_width, t.min_bin_height,
                               t.min_derivative, softplus_threshold=20.0, derivative_offset=0.0,
                               logit_divisor=1.0 if hidden is None else float(np.sqrt(hidden)),
                               tails=t.tails)


def _made(t, name, dim, context_dim, ours_prefix, rows, scale=None, offset=None):
    """BlockMADE with nflows' masks and the links of its parameters."""
    made = t.autoregressive_net
    _check_no_bn(made, name)
    act = activation_name(made.activation)
    residual = bool(made.use_residual_blocks)
    blocks = []
    for blk in made.blocks:
        if residual:
            blocks.append([numpy(m.mask) for m in blk.linear_layers])
            if activation_name(blk.activation) != act:
                raise ValueError(f"their_flow: {name} mixes activations (not mapped)")
        else:
            blocks.append(numpy(blk.linear.mask))
    final = numpy(made.final_layer.mask)[rows]
    net = BlockMADE(dim, numpy(made.initial_layer.mask), blocks, final, context_dim=context_dim,
                    residual=residual, activation=act, rng=0)
    p, o = f"{name}.autoregressive_net", ours_prefix
    links = _linear(f"{p}.initial_layer", f"{o}.initial_layer")
    if context_dim:
        links += _linear(f"{p}.context_layer", f"{o}.context_layer")
    for k in range(len(blocks)):
        if residual:
            for i in (0, 1):
                links += _linear(f"{p}.blocks.{k}.linear_layers.{i}", f"{o}.blocks.{k}.linear_layers.{i}")
            if context_dim:
                links += _linear(f"{p}.blocks.{k}.context_layer", f"{o}.blocks.{k}.context_layer")
        else:
            links += _linear(f"{p}.blocks.{k}.linear", f"{o}.blocks.{k}.linear")
    links += _linear(f"{p}.final_layer", f"{o}.final_layer", rows, scale, offset)
    return net, links


def _resnet(t, name, d_a, context_dim, n_out, ours_prefix, rows, scale=None, offset=None):
    nets = require("nflows.nn.nets")
    net = t.transform_net
    if not isinstance(net, nets.ResidualNet):
        raise ValueError(f"their_flow: {name}.transform_net is {type(net).__name__}; only "
                         f"nflows.nn.nets.ResidualNet is mapped")
    _check_no_bn(net, name)
    c = net.context_features or 0
    if c != context_dim:
        raise ValueError(f"their_flow: {name}: context_features {c} != flow context {context_dim}")
    acts = {activation_name(b.activation) for b in net.blocks} or {"relu"}
    if len(acts) > 1:
        raise ValueError(f"their_flow: {name} mixes activations (not mapped)")
    ours = ResidualNet(d_a, n_out, net.hidden_features, context_dim=c, n_blocks=len(net.blocks),
                       activation=acts.pop(), rng=0)
    p, o = f"{name}.transform_net", ours_prefix
    links = _linear(f"{p}.initial_layer", f"{o}.initial_layer")
    for k in range(len(net.blocks)):
        for i in (0, 1):
            links += _linear(f"{p}.blocks.{k}.linear_layers.{i}", f"{o}.blocks.{k}.linear_layers.{i}")
        if c:
            links += _linear(f"{p}.blocks.{k}.context_layer", f"{o}.blocks.{k}.context_layer")
    links += _linear(f"{p}.final_layer", f"{o}.final_layer", rows, scale, offset)
    return ours, links


def from_nflows(flow, context_dim: int | None = None) -> Adapted:
    """Build the nprefgen flow with exactly the parameters of an ``nflows.flows.Flow``.

    flow : an nflows Flow (CompositeTransform of the transforms listed in the module docstring,
        StandardNormal base, no embedding net). context_dim : C when the flow is conditional
        (read from the transforms when None).
    -> :class:`~nprefgen.interop.mapping.Adapted` (see :func:`nprefgen.interop.zuko.from_zuko`).
    The torch module is evaluated in a float64 copy in eval mode.
    """
    import copy

    torch = require("torch")
    nfl = require("nflows.flows.base")
    tr = require("nflows.transforms")
    dist = require("nflows.distributions")
    if not isinstance(flow, nfl.Flow):
        raise ValueError(f"their_flow: expected an nflows.flows.Flow, got {type(flow).__name__}")
    module = copy.deepcopy(flow).double().eval()
    if not isinstance(module._embedding_net, torch.nn.Identity):
        raise ValueError("their_flow: an embedding net is not mapped (identity only)")
    if type(module._distribution) is not dist.StandardNormal:
        raise ValueError(f"their_flow: base {type(module._distribution).__name__} is not mapped "
                         f"(StandardNormal only)")
    dim = int(np.prod(module._distribution._shape))
    transforms = list(module._transform._transforms) \
        if isinstance(module._transform, tr.CompositeTransform) else [module._transform]
    prefix = "_transform._transforms" if isinstance(module._transform, tr.CompositeTransform) \
        else "_transform"
    if context_dim is None:
        context_dim = 0
        for t in transforms:
            net = getattr(t, "transform_net", None)
            made = getattr(t, "autoregressive_net", None)
            if net is not None and getattr(net, "context_features", None):
                context_dim = net.context_features
            if made is not None and hasattr(made, "context_layer"):
                context_dim = made.context_layer.in_features
    bijectors, links, stages = [], [], []
    for k, t in enumerate(transforms):
        name = f"{prefix}.{k}" if prefix.endswith("_transforms") else prefix
        i = len(bijectors)
        if isinstance(t, tr.MaskedAffineAutoregressiveTransform):
            rows = interleaved_to_blocks(dim, 2, [0, 1])       # [a_i, t_i] -> [a, t]
            c = context_dim if hasattr(t.autoregressive_net, "context_layer") else 0
            net, ls = _made(t, name, dim, c, f"{i}.conditioner", rows)
            b = MaskedAutoregressive(net, ScaledAffineTransform("softplus", eps=t._epsilon, threshold=20.0))
            note = ("MADE (nflows masks), y = (softplus(a) + 1e-3) x + t (FLOW.28, torch's threshold 20), "
                    "rows [a_i, t_i] -> [a, t]")
        elif isinstance(t, tr.MaskedPiecewiseRationalQuadraticAutoregressiveTransform):
            spline = _spline(t, t.autoregressive_net)
            rows = np.arange(dim * spline.n_params)
            c = context_dim if hasattr(t.autoregressive_net, "context_layer") else 0
            net, ls = _made(t, name, dim, c, f"{i}.conditioner", rows)
            b = MaskedAutoregressive(net, spline)
            note = (f"MADE (nflows masks), RQ spline K={spline.n_bins}, B={spline.bound:g}, linear "
                    f"tails, nflows knots, softplus threshold 20 (SPL.22)")
        elif isinstance(t, (tr.AffineCouplingTransform, tr.PiecewiseRationalQuadraticCouplingTransform)):
            if t.unconditional_transform is not None:
                raise ValueError(f"their_flow: {name} has an unconditional transform (not mapped)")
            mask = np.ones(dim)
            mask[numpy(t.transform_features).astype(np.int64)] = 0.0     # 1 = conditioning
            d_a, d_b = int(mask.sum()), dim - int(mask.sum())
            if isinstance(t, tr.AffineCouplingTransform) and type(t) is tr.AffineCouplingTransform:
                transform = ScaledAffineTransform("sigmoid", shift=2.0, eps=1e-3)
                rows = np.concatenate([np.arange(d_b) + d_b, np.arange(d_b)])  # [t, a] -> [a, t]
                scale = offset = None
                note = "coupling, y = (sigmoid(a + 2) + 1e-3) x + t (FLOW.27), [t, a] -> [a, t]"
            elif isinstance(t, tr.PiecewiseRationalQuadraticCouplingTransform):
                transform = _spline(t, t.transform_net)
                rows = np.arange(d_b * transform.n_params)
                scale = offset = None
                note = (f"coupling, RQ spline K={transform.n_bins}, B={transform.bound:g}, nflows "
                        f"knots, logits / {transform.logit_divisor:g} (SPL.22)")
            else:
                raise ValueError(f"their_flow: {name} ({type(t).__name__}) is not mapped")
            c = context_dim if t.transform_net.context_features else 0
            b = Coupling(mask, transform, [1], rng=0, context_dim=c, zero_init=False)
            net, ls = _resnet(t, name, d_a, c, d_b * transform.n_params, f"{i}.net", rows,
                              scale, offset)
            b.net = b.add_child("net", net)                 # nflows' conditioner replaces the MLP
        elif isinstance(t, tr.Permutation):
            b, ls, note = Permutation(numpy(t._permutation).astype(np.int64)), [], "y = x[:, perm]"
        elif type(t) is tr.ActNorm:
            if not bool(t.initialized):
                raise ValueError(f"their_flow: {name} ActNorm is not initialised yet (run the flow "
                                 f"on data in training mode first)")
            b = ElementwiseAffine(dim)
            ls = [ParamLink(f"{name}.log_scale", f"{i}.log_scale"), ParamLink(f"{name}.shift", f"{i}.shift")]
            note = "ActNorm = ElementwiseAffine (FLOW.18)"
        else:
            raise ValueError(f"their_flow: {name} ({type(t).__name__}) has no nprefgen counterpart")
        links += ls
        stages.append(Stage(f"{name} ({type(t).__name__})", [i],
                            forward=lambda x, c, t=t: t(x, context=c),
                            inverse=lambda y, c, t=t: t.inverse(y, context=c)[0], notes=note))
        bijectors.append(b)
    ours = Flow(bijectors, context_dim=context_dim)
    params = {n: p for n, p in module.named_parameters()}
    adapted = Adapted(ours, links, stages, log_prob=lambda x, c: module.log_prob(x, context=c),
                      parameters=params, library="nflows", module=module)
    adapted.load_from({n: numpy(p) for n, p in params.items()})
    return adapted
