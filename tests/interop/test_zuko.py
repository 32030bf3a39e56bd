"""nprefgen.interop.from_zuko / check_against on random zuko flows of every supported family:
output, inverse, log-det per transform, log p and the gradients of sum log p w.r.t. x, context and
every zuko parameter agree to <= 1e-10 relative in float64 (FLOW.25)-(FLOW.30), (SPL.19)-(SPL.21).
Weights are perturbed after zuko's initialisation, so no zero-initialised layer hides an error."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
zuko = pytest.importorskip("zuko")

from nprefgen.flows import Coupling, Permutation  # noqa: E402
from nprefgen.flows.masked_autoregressive import MaskedAutoregressive  # noqa: E402
from nprefgen.interop import check_against, from_zuko  # noqa: E402
from nprefgen.interop.mapping import ParamLink  # noqa: E402
from interop_helpers import inputs, perturbed  # noqa: E402

pytestmark = pytest.mark.oracle
TOL = 1e-10          # float64 round-off of a few hundred operations is ~1e-14; 1e-10 is the bar


def permuted_maf(features, context):
    """A Flow with MAF layers and explicit permutations between them."""
    from zuko.flows import Flow, MaskedAutoregressiveTransform, UnconditionalTransform
    from zuko.distributions import DiagNormal
    from zuko.flows import UnconditionalDistribution
    from zuko.transforms import PermutationTransform
    ts = [MaskedAutoregressiveTransform(features, context, hidden_features=[7]),
          UnconditionalTransform(PermutationTransform, torch.tensor([2, 0, 3, 1]), buffer=True),
          MaskedAutoregressiveTransform(features, context, hidden_features=[7], activation=torch.nn.Tanh)]
    base = UnconditionalDistribution(DiagNormal, torch.zeros(features), torch.ones(features), buffer=True)
    return Flow(ts, base)


FAMILIES = {
    "MAF": (lambda: zuko.flows.MAF(3, 2, transforms=2, hidden_features=[8, 8]), 3, 2),
    "MAF[uncond,randperm,elu]": (lambda: zuko.flows.MAF(4, 0, transforms=2, randperm=True,
                                                        hidden_features=[9], activation=torch.nn.ELU), 4, 0),
    "MAF[passes=2]": (lambda: zuko.flows.MAF(5, 1, transforms=2, passes=2, hidden_features=[8]), 5, 1),
    "NSF": (lambda: zuko.flows.NSF(3, 2, transforms=2, bins=5, hidden_features=[8, 8]), 3, 2),
    "NSF[coupling passes=2]": (lambda: zuko.flows.NSF(4, 0, transforms=3, bins=4, passes=2,
                                                      hidden_features=[8]), 4, 0),
    "RealNVP": (lambda: zuko.flows.RealNVP(4, 2, transforms=3, hidden_features=[8, 8]), 4, 2),
    "NICE[randmask,uncond]": (lambda: zuko.flows.NICE(5, 0, transforms=2, randmask=True,
                                                      hidden_features=[6]), 5, 0),
    "Flow[MAF+Permutation]": (lambda: permuted_maf(4, 2), 4, 2),
    "Flow[spline couplings]": (lambda: spline_couplings(4, 2), 4, 2),
}


def spline_couplings(features, context):
    """GeneralCouplingTransform with zuko's spline (SPL.19)-(SPL.21), two masks."""
    from zuko.distributions import DiagNormal
    from zuko.flows import Flow, GeneralCouplingTransform, UnconditionalDistribution
    from zuko.transforms import MonotonicRQSTransform
    ts = [GeneralCouplingTransform(features, context, mask=torch.arange(features) % 2 == k,
                                   univariate=MonotonicRQSTransform, shapes=[(5,), (5,), (4,)],
                                   hidden_features=[8]) for k in (0, 1)]
    base = UnconditionalDistribution(DiagNormal, torch.zeros(features), torch.ones(features), buffer=True)
    return Flow(ts, base)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_zuko_family_agrees(family):
    torch.manual_seed(0)
    make, dim, context_dim = FAMILIES[family]
    flow = perturbed(make())
    x, c = inputs(dim, context_dim)
    report = check_against(flow, x, c)
    assert report.ok(TOL), str(report)
    kinds = {r.quantity for r in report.rows}
    assert {"output", "inverse", "log_det", "log_prob", "grad x"} <= kinds
    assert sum(q.startswith("grad transform") for q in kinds) == \
        sum(1 for _ in flow.parameters())          # every zuko parameter compared
    if context_dim:
        assert "grad context" in kinds


def test_spline_with_other_bound_and_slope_and_data_beyond_the_bound():
    """A hand-built NSF layer with B = 2, slope = 1e-2: values beyond B take the identity tails."""
    from functools import partial
    from zuko.flows import Flow, MaskedAutoregressiveTransform, UnconditionalDistribution
    from zuko.distributions import DiagNormal
    from zuko.transforms import MonotonicRQSTransform
    torch.manual_seed(1)
    t = MaskedAutoregressiveTransform(3, 1, univariate=partial(MonotonicRQSTransform, bound=2.0, slope=1e-2),
                                      shapes=[(6,), (6,), (5,)], hidden_features=[8])
    flow = perturbed(Flow([t], UnconditionalDistribution(DiagNormal, torch.zeros(3), torch.ones(3),
                                                         buffer=True)), scale=0.5)
    x, c = inputs(3, 1, n=10, spread=2.0)
    report = check_against(flow, x, c)
    assert np.any(np.abs(x) > 2.0)
    assert report.ok(TOL), str(report)


def test_adapter_builds_the_documented_bijectors():
    torch.manual_seed(0)
    a = from_zuko(permuted_maf(4, 2))
    kinds = [type(b).__name__ for b in a.flow.bijectors]
    assert kinds == ["MaskedAutoregressive", "Permutation", "MaskedAutoregressive"]
    assert isinstance(a.flow.bijectors[1], Permutation) and a.flow.bijectors[0].passes == 4
    b = from_zuko(zuko.flows.RealNVP(4, 0, transforms=2, hidden_features=[5])).flow.bijectors[0]
    assert isinstance(b, Coupling) and b.transform.scale == "softclip"
    np.testing.assert_allclose(b.transform.bound, -np.log(1e-3))
    assert isinstance(from_zuko(zuko.flows.MAF(3, 0)).flow.bijectors[0], MaskedAutoregressive)


def test_planted_swapped_shift_and_scale_is_caught():
    """Mapping zuko's [shift_i, scale_i] rows the wrong way round must show in the report."""
    torch.manual_seed(0)
    flow = perturbed(zuko.flows.RealNVP(4, 2, transforms=2, hidden_features=[8]))
    x, c = inputs(4, 2)
    good = from_zuko(flow)
    bad = from_zuko(flow)
    links = []
    for link in bad.links:
        if link.rows is not None:                   # the last layer: swap the two blocks
            d = link.rows.size // 2
            link = ParamLink(link.their_name, link.our_name, np.roll(link.rows, d))
        links.append(link)
    bad.links = links
    bad.load_from({n: p.detach().numpy() for n, p in bad.parameters.items()})
    assert check_against(flow, x, c, adapted=good).ok(TOL)
    report = check_against(flow, x, c, adapted=bad)
    assert not report.ok(1e-3)
    assert report.worst().rel_err > 1e-2


def test_bad_points_are_refused_by_name():
    flow = zuko.flows.MAF(3, 2, transforms=1, hidden_features=[4])
    with pytest.raises(ValueError, match="x: expected shape"):
        check_against(flow, np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="context"):
        check_against(flow, np.zeros((4, 3)), None)
    with pytest.raises(ValueError, match="their_flow"):
        check_against(object(), np.zeros((4, 3)))


def test_unmapped_zuko_objects_are_refused():
    with pytest.raises(ValueError, match="univariate"):
        from_zuko(zuko.flows.NCSF(3, 0, transforms=1))
    with pytest.raises(ValueError, match="LayerNorm"):
        from_zuko(zuko.flows.RealNVP(3, 0, transforms=1, normalize=True))
    with pytest.raises(ValueError, match="residual"):
        from_zuko(zuko.flows.MAF(3, 0, transforms=1, residual=True))
    with pytest.raises(ValueError, match="zuko.flows.Flow"):
        from_zuko(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="has no nprefgen counterpart"):
        from_zuko(zuko.flows.NAF(2, 0, transforms=1))
