"""nprefgen.interop.from_nflows / check_against on random nflows flows of every supported family:
output, inverse, log-det per transform, log p and the gradients of sum log p w.r.t. x, context
and every nflows parameter agree to <= 1e-10 relative in float64 (FLOW.27), (FLOW.28),
(FLOW.29)-(FLOW.32), (SPL.3). Weights are perturbed after nflows' initialisation (its residual
blocks start near zero), so no small layer hides an error."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nflows")

from nflows import transforms as T  # noqa: E402
from nflows.distributions import StandardNormal  # noqa: E402
from nflows.flows.base import Flow  # noqa: E402
from nflows.nn.nets import ResidualNet  # noqa: E402

from nprefgen.interop import check_against, from_nflows  # noqa: E402
from nprefgen.interop.mapping import ParamLink  # noqa: E402
from interop_helpers import inputs, perturbed  # noqa: E402

pytestmark = pytest.mark.oracle
TOL = 1e-10


def resnet(context_dim, hidden=8, activation=None):
    kw = {} if activation is None else {"activation": activation}
    return lambda i, o: ResidualNet(i, o, hidden_features=hidden, context_features=context_dim or None,
                                    num_blocks=2, **kw)


def flow_of(transforms, dim):
    return Flow(T.CompositeTransform(transforms), StandardNormal([dim]))


D, C = 4, 2
FAMILIES = {
    "MAF[residual]": lambda: flow_of([T.MaskedAffineAutoregressiveTransform(D, 8, context_features=C),
                                      T.ReversePermutation(D),
                                      T.MaskedAffineAutoregressiveTransform(D, 8, context_features=C)], D),
    "MAF[feedforward,random mask,uncond,tanh]": lambda: flow_of([
        T.MaskedAffineAutoregressiveTransform(D, 9, use_residual_blocks=False, random_mask=True,
                                              activation=torch.tanh),
        T.RandomPermutation(D),
        T.MaskedAffineAutoregressiveTransform(D, 9, use_residual_blocks=False, num_blocks=1)], D),
    "RQS-AR": lambda: flow_of([
        T.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(D, 8, context_features=C, num_bins=4,
                                                                  tails="linear", tail_bound=3.0),
        T.RandomPermutation(D),
        T.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(D, 8, context_features=C, num_bins=5,
                                                                  tails="linear", tail_bound=2.0,
                                                                  use_residual_blocks=False)], D),
    "AffineCoupling": lambda: flow_of([T.AffineCouplingTransform(torch.tensor([1, 0, 1, 0]), resnet(C)),
                                       T.AffineCouplingTransform(torch.tensor([0, 1, 0, 1]), resnet(C))], D),
    "RQS-coupling[uncond]": lambda: flow_of([
        T.PiecewiseRationalQuadraticCouplingTransform(torch.tensor([1, 1, 0, 0]), resnet(0, 6), num_bins=4,
                                                      tails="linear", tail_bound=3.0),
        T.ActNorm(D),
        T.PiecewiseRationalQuadraticCouplingTransform(torch.tensor([0, 0, 1, 1]), resnet(0, 6), num_bins=3,
                                                      tails="linear", tail_bound=2.5,
                                                      min_bin_width=1e-2, min_derivative=1e-2)], D),
}


def _initialise_actnorm(flow, dim):
    if not any(isinstance(m, T.ActNorm) for m in flow.modules()):
        return flow
    flow.train()
    with torch.no_grad():
        flow.log_prob(torch.randn(16, dim))     # nflows initialises ActNorm on its first batch
    return flow


def test_unit_interval_splines_agree():
    """nflows' default tails=None: the spline on [0, 1] with all K+1 derivatives free (SPL.22),
    autoregressive and coupling, points inside (0, 1) as nflows requires."""
    torch.manual_seed(0)
    flow = perturbed(flow_of([
        T.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(3, 8, context_features=C, num_bins=4),
        T.PiecewiseRationalQuadraticCouplingTransform(torch.tensor([1, 0, 1]), resnet(C), num_bins=3)], 3))
    x = np.random.default_rng(3).uniform(0.01, 0.99, (8, 3))
    report = check_against(flow, x, inputs(3, C, n=8)[1])
    assert report.ok(TOL), str(report)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_nflows_family_agrees(family):
    torch.manual_seed(0)
    flow = perturbed(_initialise_actnorm(FAMILIES[family](), D))
    context_dim = 0 if "uncond" in family else C
    x, c = inputs(D, context_dim, n=8, spread=2.0)
    report = check_against(flow, x, c)
    assert report.ok(TOL), str(report)
    kinds = {r.quantity for r in report.rows}
    assert sum(q.startswith("grad _transform") for q in kinds) == sum(1 for _ in flow.parameters())
    assert ("grad context" in kinds) == bool(context_dim)


def test_planted_nprefgen_spline_conventions_are_caught():
    """nprefgen's own spline conventions in place of nflows' (the derivative offset c0 of (SPL.3),
    or no division of the logits by sqrt(H)) must show in the report."""
    from nprefgen.kernels.spline import derivative_shift
    torch.manual_seed(0)
    x, c = inputs(D, C)
    for family, attr, value in (("RQS-AR", "derivative_offset", derivative_shift(1e-3)),
                                ("RQS-coupling[uncond]", "logit_divisor", 1.0)):
        flow = perturbed(_initialise_actnorm(FAMILIES[family](), D))
        cc = None if "uncond" in family else c
        bad = from_nflows(flow)
        setattr(bad.flow.bijectors[0].transform, attr, value)
        report = check_against(flow, x, cc, adapted=bad)
        assert not report.ok(1e-4), family
        assert report.by_quantity()["log_det"] > 1e-3


def test_planted_swapped_shift_and_scale_is_caught():
    torch.manual_seed(0)
    flow = perturbed(FAMILIES["AffineCoupling"]())
    x, c = inputs(D, C)
    bad = from_nflows(flow)
    bad.links = [ParamLink(link.their_name, link.our_name, np.roll(link.rows, link.rows.size // 2))
                 if link.rows is not None else link for link in bad.links]
    bad.load_from({n: p.detach().numpy() for n, p in bad.parameters.items()})
    assert not check_against(flow, x, c, adapted=bad).ok(1e-3)


def test_unmapped_nflows_objects_are_refused():
    with pytest.raises(ValueError, match="no nprefgen counterpart"):
        from_nflows(flow_of([T.MaskedPiecewiseLinearAutoregressiveTransform(4, D, 8)], D))
    with pytest.raises(ValueError, match="batch norm"):
        from_nflows(flow_of([T.MaskedAffineAutoregressiveTransform(D, 8, use_batch_norm=True)], D))
    with pytest.raises(ValueError, match="no nprefgen counterpart"):
        from_nflows(flow_of([T.LULinear(D)], D))
    with pytest.raises(ValueError, match="nflows.flows.Flow"):
        from_nflows(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="not initialised"):
        from_nflows(flow_of([T.ActNorm(D)], D))
