"""float32 end to end: a module cast with ``astype(np.float32)`` and given float32 inputs returns
float32 from every forward, inverse and backward, and every parameter and gradient stays float32.
The sweep covers every nn layer (the gradcheck catalogue), every bijector type and the flow
builders with a context; it found the float64 leaks of the MADE input VJP mask (IAF input
gradient), the chain's context-gradient zeros, the flow's weights, MAF's inverse log-det zeros,
the logit transform's float64 constant and the float64 buffers (standardisation, context
scaling) that Bijector.astype now casts."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.flows import (
    IAF, MAF, ActNorm, AffineCoupling, Chain, ElementwiseAffine, LogitTransform, Permutation,
    SplineCoupling, Standardize, maf, realnvp, spline_flow,
)
from nprefgen.testing.bijector_checks import randomize_parameters
from nprefgen.tour.gradchecks import layer_cases

F32 = np.dtype(np.float32)
D, C = 4, 2


def _leaks(**arrays) -> dict:
    return {k: a.dtype for k, a in arrays.items() if a is not None and np.asarray(a).dtype != F32}


def _param_leaks(module) -> dict:
    return {name: (p.dtype, g.dtype) for name, p, g in module.named_parameters()
            if p.dtype != F32 or g.dtype != F32}


CASES = layer_cases(rng=1)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c[0] for c in CASES])
def test_layers_stay_float32(i, rng):
    _, layer, x = CASES[i]
    layer.astype(np.float32)
    y, cache = layer.forward(x.astype(np.float32))
    layer.zero_grad()
    d_x = layer.backward(cache, rng.standard_normal(y.shape).astype(np.float32))
    assert not _leaks(y=y, d_x=d_x)
    assert not _param_leaks(layer)


def _bijectors():
    r = np.random.default_rng(3)
    data = r.standard_normal((30, D)) * 2 + 1
    ctx = r.standard_normal((30, C))
    return {
        "AffineCoupling": AffineCoupling(np.array([1.0, 0, 1, 0]), [5], rng=r, context_dim=C),
        "SplineCoupling": SplineCoupling(D, np.array([1.0, 0, 1, 0]), [5], rng=r, context_dim=C),
        "MAF": MAF(D, [5], rng=r, context_dim=C),
        "IAF": IAF(D, [5], rng=r, context_dim=C),
        "Permutation": Permutation.reverse(D),
        "ElementwiseAffine": ElementwiseAffine(D),
        "ActNorm": ActNorm(D).initialize(data),
        "Standardize": Standardize.from_data(data),
        "LogitTransform": LogitTransform(D),
        "Chain": Chain([AffineCoupling(np.array([1.0, 0, 1, 0]), [5], rng=r, context_dim=C),
                        Permutation.reverse(D), IAF(D, [5], rng=r, context_dim=C)]),
        "realnvp": realnvp(D, 2, 5, rng=r, context_dim=C, standardize=data,
                           standardize_context=ctx, actnorm=True),
        "maf": maf(D, 2, 5, rng=r, context_dim=C, standardize=data, standardize_context=ctx),
        "maf(IAF)": maf(D, 2, 5, rng=r, context_dim=C, standardize=data,
                        inverse_autoregressive=True),
        "spline_flow": spline_flow(D, 2, 5, rng=r, context_dim=C, standardize=data,
                                   standardize_context=ctx),
    }


@pytest.mark.parametrize("name", list(_bijectors()))
def test_bijectors_and_flows_stay_float32(name, rng):
    b = _bijectors()[name]
    randomize_parameters(b, rng=rng, scale=0.3)
    b.astype(np.float32)
    assert not {k: v.dtype for k, v in b.named_buffers() if v.dtype.kind == "f" and v.dtype != F32}
    x = (rng.uniform(0.1, 0.9, (5, D)) if name == "LogitTransform"
         else rng.standard_normal((5, D))).astype(np.float32)
    c = rng.standard_normal((5, C)).astype(np.float32) if b.context_dim else None
    z, log_det, cache = b.forward_cached(x, c)
    b.zero_grad()
    d_x, d_c = b.backward(cache, rng.standard_normal(z.shape).astype(np.float32),
                          rng.standard_normal(5).astype(np.float32))
    x_inv, ld_inv = b.inverse(z, c)
    assert not _leaks(z=z, log_det=log_det, d_x=d_x, d_context=d_c, x_inv=x_inv, ld_inv=ld_inv)
    assert not _param_leaks(b)
    np.testing.assert_allclose(x_inv, x, rtol=1e-3, atol=1e-3)   # float32 round trip
    if hasattr(b, "log_prob_and_grad"):
        b.zero_grad()
        lp, d_x, d_c = b.log_prob_and_grad(x, c, weights=np.full(5, -0.2))
        assert not _leaks(log_prob=lp, d_x=d_x, d_context=d_c, log_prob2=b.log_prob(x, c))
        assert not _param_leaks(b)


def test_float64_flows_unchanged_by_astype_roundtrip(rng):
    """astype(float64) on a float64 flow changes nothing: same values, bit for bit."""
    flow = _bijectors()["maf(IAF)"]
    randomize_parameters(flow, rng=0, scale=0.3)
    x, c = rng.standard_normal((4, D)), rng.standard_normal((4, C))
    before = flow.log_prob_and_grad(x, c)
    flow.astype(np.float64)
    after = flow.log_prob_and_grad(x, c)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
