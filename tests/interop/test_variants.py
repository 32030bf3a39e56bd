"""The library-convention variants nprefgen.interop builds on (no torch needed):
ScaledAffineTransform (FLOW.25)-(FLOW.28), SoftclipSplineTransform (SPL.19)-(SPL.21),
MaskedAutoregressive with explicit masks (FLOW.29)-(FLOW.30), nflows' conditioners ResidualNet
(FLOW.31) and BlockMADE (FLOW.32). The bijector batteries of
tests/test_contracts.py (Coupling[sigmoid], Coupling[softclip], Coupling[softclip_spline],
MaskedAutoregressive, MaskedAutoregressive[spline]) run the round trip, the finite-difference
log-det and the dot-product tests on them; here: the elementwise VJPs, the scale functions against
their closed forms, the pass count, bad input, and planted bugs."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.flows import Coupling, alternating_mask
from nprefgen.flows.affine_scales import ScaledAffineTransform, affine_scale
from nprefgen.flows.made import made_degrees, made_masks
from nprefgen.flows.masked_autoregressive import (
    MaskedAutoregressive, MaskedConditioner, generations,
)
from nprefgen.flows.residual_conditioners import BlockMADE, ResidualNet
from nprefgen.flows.spline_knots import KnotSplineTransform, knot_spline_parameters
from nprefgen.flows.spline_softclip import (
    SoftclipSplineTransform, softclip_spline_parameters, softclip_spline_parameters_backward,
)
from nprefgen.testing.bijector_checks import check_bijector, randomize_parameters
from nprefgen.testing.gradcheck import check_vjp, vjp_error

TRANSFORMS = [ScaledAffineTransform("softclip", bound=2.0), ScaledAffineTransform("sigmoid"),
              ScaledAffineTransform("softplus"), ScaledAffineTransform("softplus", threshold=0.3),
              SoftclipSplineTransform(5, bound=3.0, slope=1e-2),
              KnotSplineTransform(5, bound=3.0, softplus_threshold=0.2, logit_divisor=3.0),
              KnotSplineTransform(4, bound=2.0, softplus_threshold=None, derivative_offset=0.5),
              KnotSplineTransform(4, tails=None, softplus_threshold=0.1)]


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
def test_elementwise_vjp_dot_product(transform):
    """(FLOW.25), (SPL.21): the transforms' backward against central differences, w.r.t. x and h."""
    rng = np.random.default_rng(0)
    n, d = 6, 3
    x = 1.5 * rng.standard_normal((n, d))
    h = 0.8 * rng.standard_normal((n, d * transform.n_params))
    d_y, d_ld = rng.standard_normal((n, d)), rng.standard_normal(n)

    def back(xx, hh):
        _, _, cache = transform.forward(xx, hh)
        return transform.backward(cache, d_y, d_ld)

    def fun_x(xx):
        y, ld, _ = transform.forward(xx, h)
        return y, ld

    def fun_h(hh):
        y, ld, _ = transform.forward(x, hh)
        return y, ld

    for fun, idx, arg in ((fun_x, 0, x), (fun_h, 1, h)):
        # v = (d_y, d_ld) fixed: the backward above is the VJP with that cotangent
        r = vjp_error(fun, lambda v, idx=idx: back(x, h)[idx], arg, rng=2, v=(d_y, d_ld))
        assert r.ok, str(r)


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
def test_inverse_and_log_det(transform):
    rng = np.random.default_rng(3)
    x = 1.5 * rng.standard_normal((7, 2))
    h = rng.standard_normal((7, 2 * transform.n_params))
    y, ld, _ = transform.forward(x, h)
    x_back, ld_inv = transform.inverse(y, h)
    np.testing.assert_allclose(x_back, x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ld_inv, -ld, rtol=0, atol=1e-12)


def test_scale_functions_match_their_closed_forms():
    """(FLOW.26), (FLOW.27), (FLOW.28) at hand-picked points, against the libraries' formulas written out."""
    a = np.array([[-30.0, -1.0, 0.0, 0.5, 40.0]])
    b = -np.log(1e-3)
    np.testing.assert_allclose(affine_scale(a, "softclip", b, 0, 0)[0], a / (1 + np.abs(a / np.log(1e-3))),
                               rtol=1e-15)
    np.testing.assert_allclose(np.exp(affine_scale(a, "sigmoid", 1.0, 2.0, 1e-3)[0]),
                               1 / (1 + np.exp(-(a + 2))) + 1e-3, rtol=1e-14)
    np.testing.assert_allclose(np.exp(affine_scale(a, "softplus", 1.0, 0, 1e-3)[0]),
                               np.log1p(np.exp(a)) + 1e-3, rtol=1e-14)
    assert np.all(np.abs(affine_scale(a, "softclip", b, 0, 0)[0]) < b)   # the bound holds


def test_softclip_spline_parameters_vjp():
    """(SPL.19), (SPL.20), (SPL.21): knots valid (sum 2B, derivatives in (slope, 1/slope), boundary 1),
    theta = 0 the identity, and the parameter VJP against central differences."""
    rng = np.random.default_rng(4)
    k, bound, slope = 4, 2.5, 1e-3
    theta = 3.0 * rng.standard_normal((5, 3 * k - 1))
    w, h, d, _ = softclip_spline_parameters(theta, bound, slope)
    np.testing.assert_allclose(w.sum(axis=1), 2 * bound, rtol=1e-14)
    np.testing.assert_allclose(h.sum(axis=1), 2 * bound, rtol=1e-14)
    assert np.all(d[:, [0, -1]] == 1.0) and np.all((d > slope) & (d < 1 / slope))
    w0, h0, d0, _ = softclip_spline_parameters(np.zeros((1, 3 * k - 1)), bound, slope)
    np.testing.assert_allclose(w0, 2 * bound / k) and np.testing.assert_allclose(d0, 1.0)

    def vjp(v):
        return softclip_spline_parameters_backward(softclip_spline_parameters(theta, bound, slope)[3],
                                                   bound, *v)

    check_vjp(lambda t: softclip_spline_parameters(t, bound, slope)[:3], vjp, theta, rng=5)


def test_zero_theta_spline_is_identity():
    t = SoftclipSplineTransform(6, bound=5.0)
    x = np.linspace(-6, 6, 13)[:, None]
    y, ld, _ = t.forward(x, np.zeros((13, t.n_params)))
    np.testing.assert_allclose(y, x, atol=1e-14)
    np.testing.assert_allclose(ld, 0.0, atol=1e-14)


def _ar(transform, hidden=(7,), context_dim=0, order=None, rng=0):
    degrees = made_degrees(4, list(hidden), order)
    if getattr(transform, "coordinate_major", False):
        masks = made_masks(degrees, context_dim, n_params=1)
        masks[-1] = np.repeat(masks[-1], transform.n_params, axis=0)
    else:
        masks = made_masks(degrees, context_dim, n_params=transform.n_params)
    net = MaskedConditioner(4, masks, context_dim=context_dim, activation="tanh", rng=rng)
    return MaskedAutoregressive(net, transform)


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
def test_masked_autoregressive_battery(transform):
    """(FLOW.29)-(FLOW.30): round trip, log-det vs finite-difference Jacobian, dot products."""
    b = _ar(transform, context_dim=2, order=[3, 1, 4, 2])
    randomize_parameters(b, rng=1, scale=0.4)
    rng = np.random.default_rng(2)
    check_bijector(b, rng.standard_normal((5, 4)), rng.standard_normal((5, 2)), rng=3)
    assert b.passes == 4


def test_passes_count_generations():
    """(FLOW.30): a full order needs D passes, a two-block (coupling-like) graph 2."""
    dep = np.tril(np.ones((4, 4), dtype=bool), -1)
    assert generations(dep) == 4
    two = np.zeros((4, 4), dtype=bool)
    two[2:, :2] = True
    assert generations(two) == 2
    assert generations(np.zeros((3, 3), dtype=bool)) == 1


@pytest.mark.parametrize("dep, match", [(np.eye(2, dtype=bool), "itself"),
                                        (np.array([[0, 1], [1, 0]], dtype=bool), "cycle")])
def test_non_autoregressive_masks_are_refused(dep, match):
    with pytest.raises(ValueError, match=match):
        generations(dep)


def test_bad_conditioner_input():
    with pytest.raises(ValueError, match="masks"):
        MaskedConditioner(3, [], rng=0)
    with pytest.raises(ValueError, match=r"masks\[0\]: expected 5 columns"):
        MaskedConditioner(3, [np.ones((4, 3)), np.ones((6, 4))], context_dim=2, rng=0)
    full = [np.ones((4, 3)), np.ones((6, 4))]            # every output sees every input
    with pytest.raises(ValueError, match="itself"):
        MaskedAutoregressive(MaskedConditioner(3, full, rng=0), ScaledAffineTransform())
    with pytest.raises(ValueError, match="conditioner: expected 6 outputs"):
        MaskedAutoregressive(MaskedConditioner(3, [np.ones((4, 3)), np.ones((5, 4))], rng=0),
                             ScaledAffineTransform())
    with pytest.raises(ValueError, match="scale"):
        ScaledAffineTransform("tanh")
    with pytest.raises(ValueError, match="hidden"):
        ResidualNet(2, 3, 0)
    with pytest.raises(ValueError, match="in_features"):
        ResidualNet(0, 3, 4)
    with pytest.raises(ValueError, match="initial_mask"):
        BlockMADE(3, np.ones((4, 2)), [], np.ones((6, 4)))
    with pytest.raises(ValueError, match="slope"):
        SoftclipSplineTransform(4, slope=1.5)
    with pytest.raises(ValueError, match="tails"):
        KnotSplineTransform(4, tails="circular")


class _WrongScale(ScaledAffineTransform):
    """Planted bug: drops the 1/u^2 chain factor of (FLOW.26)."""

    def _log_scale(self, a):
        log_sigma, _ = super()._log_scale(a)
        return log_sigma, np.ones_like(a)


def test_planted_wrong_scale_derivative_is_caught():
    b = Coupling(alternating_mask(4), _WrongScale("softclip", bound=2.0), [5], rng=0,
                 activation="tanh", zero_init=False)
    randomize_parameters(b, rng=1, scale=0.8)
    with pytest.raises(AssertionError, match=r"input: .* FAIL"):
        check_bijector(b, np.random.default_rng(2).standard_normal((5, 4)), rng=3)


def test_interop_imports_without_torch():
    """nprefgen.interop imports torch, zuko and nflows only inside the adapters."""
    import subprocess
    import sys
    code = ("import sys, nprefgen.interop, nprefgen.interop.zuko, nprefgen.interop.nflows; "
            "bad = [m for m in ('torch', 'zuko', 'nflows') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("residual", [False, True])
def test_block_made_bijector_battery(residual):
    """(FLOW.32) through (FLOW.29): nflows' MADE layout, with and without residual blocks."""
    deg = made_degrees(4, [7, 7, 7, 7])
    m = made_masks(deg, n_params=2)
    blocks = [m[1:3], m[2:4]] if residual else [m[1], m[2]]
    net = BlockMADE(4, m[0], blocks, m[-1], context_dim=2, residual=residual, activation="elu", rng=0)
    b = MaskedAutoregressive(net, ScaledAffineTransform("softplus"))
    randomize_parameters(b, rng=1, scale=0.4)
    rng = np.random.default_rng(2)
    check_bijector(b, rng.standard_normal((5, 4)), rng.standard_normal((5, 2)), rng=3)
    assert b.passes == 4


def test_residual_net_layer_vjp():
    """(FLOW.31): the GLU-gated residual network's backward, input and parameters."""
    from nprefgen.testing.gradcheck import check_layer
    net = ResidualNet(3, 4, 6, context_dim=2, n_blocks=2, activation="tanh", rng=0)
    check_layer(net, np.random.default_rng(1).standard_normal((5, 5)), rng=2)


def test_knot_spline_parameters_are_nflows_knots():
    """(SPL.22), (SPL.23): the end knots are exactly -B and B, the bins are knot differences summing to 2B,
    derivatives above the threshold are the pre-activation itself (PyTorch's softplus); and with
    nprefgen's offset and no threshold the knots equal nprefgen's own spline's (SPL.2-SPL.3)."""
    from nprefgen.kernels.spline import derivative_shift, rq_parameters_numpy
    rng = np.random.default_rng(6)
    k, bound = 5, 2.5
    theta = 2.0 * rng.standard_normal((4, 3 * k - 1))
    theta[0, 2 * k] = 25.0
    w, h, d, _ = knot_spline_parameters(theta, bound, 1e-3, 1e-3, 1e-3)
    assert np.all(w > 0) and np.all(h > 0)
    np.testing.assert_allclose(np.cumsum(w, axis=1)[:, -1], 2 * bound, rtol=1e-15)
    assert d[0, 1] == 1e-3 + 25.0
    w2, h2, d2, _ = knot_spline_parameters(theta, bound, 1e-3, 1e-3, 1e-3, softplus_threshold=None,
                                           derivative_offset=derivative_shift(1e-3))
    w3, h3, d3, _ = rq_parameters_numpy(theta, bound, 1e-3, 1e-3, 1e-3)
    for a, b in ((w2, w3), (h2, h3), (d2, d3)):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_unit_interval_knot_spline_on_its_interval():
    """(SPL.22) tails=None: maps [0, 1] onto itself, boundary derivatives free (not 1), round
    trip, and the identity outside [0, 1]."""
    t = KnotSplineTransform(3, tails=None, softplus_threshold=20.0)
    rng = np.random.default_rng(7)
    h = rng.standard_normal((5, 2 * t.n_params))
    x = np.column_stack([rng.uniform(0, 1, 5), [0.0, 1.0, -0.5, 1.5, 0.5]])
    y, ld, _ = t.forward(x, h)
    np.testing.assert_allclose(y[:2, 1], [0.0, 1.0], atol=1e-15)
    np.testing.assert_array_equal(y[2:4, 1], x[2:4, 1])
    assert np.all((y[:, 0] > 0) & (y[:, 0] < 1))
    x_back, _ = t.inverse(y, h)
    np.testing.assert_allclose(x_back, x, atol=1e-12)
    eps = 1e-7          # the slope at 0 is the first free derivative, min_d + softplus(theta)
    slope0 = (t.forward(np.array([[eps, 0.5]]), h[:1])[0][0, 0]) / eps
    expected = 1e-3 + np.log1p(np.exp(h[0, 2 * 3]))
    np.testing.assert_allclose(slope0, expected, rtol=1e-5)
