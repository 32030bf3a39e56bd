"""Every bijector of nprefgen.flows, and whole conditional flows, against torch.autograd and
jax.grad/jax.jacfwd with identical weights, float64:

* forward z and log|det| (FLOW.5-FLOW.8, FLOW.12-FLOW.15, FLOW.17-FLOW.21, SPL.4-SPL.6, SPL.12);
* inverse x and log|det| of the inverse (FLOW.8, FLOW.13, FLOW.15, SPL.7-SPL.8);
* the gradients of L = <v, z> + <w, log_det> w.r.t. the input, the context and every parameter
  (FLOW.9, FLOW.16, FLOW.14, SPL.13) against autodiff of the re-implemented forward;
* log_det against slogdet of the *autodiff* Jacobian dz/dx (FLOW.23 with an exact Jacobian);
* whole flows (RealNVP, MAF, IAF, spline flow; context, standardisation, ActNorm): log p (FLOW.1)
  and its gradients w.r.t. x, the context and every parameter.

Values and gradients agree to <= 1e-10 normwise relative; log-dets, being logarithms, to
<= 1e-10 absolute where |log_det| < 1 (relative above). The spline inverse in a bin whose slope is
tiny is ill-conditioned and is tested separately against exact rational arithmetic
(test_spline_inverse_ill_conditioned_against_exact_arithmetic).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from nprefgen.flows import (
    IAF, MAF, ActNorm, AffineCoupling, Chain, ElementwiseAffine, LogitTransform, Permutation,
    SplineCoupling, Standardize, maf, realnvp, spline_flow,
)
from nprefgen.flows.spline import spline_parameters
from nprefgen.testing.bijector_checks import randomize_parameters
from oracle_backends import RTOL, assert_rel
from oracle_formulas import bijector_forward, bijector_inverse, normal_log_prob

pytestmark = pytest.mark.oracle

D, C, N = 4, 2, 6


def _ld_tol(ref):
    """A log-det is compared absolutely below 1 and relatively above."""
    return RTOL * max(1.0, float(np.max(np.abs(ref))))


def _bijectors():
    r = np.random.default_rng(7)
    data = r.standard_normal((50, D)) * [1.0, 2.0, 0.5, 3.0] + [0.5, -1.0, 0.0, 2.0]
    act = ActNorm(D)
    act.initialize(data)
    cases = {
        "AffineCoupling(bound=3, context)": AffineCoupling(np.array([1.0, 0, 1, 0]), [6, 5], rng=r,
                                                           context_dim=C, activation="tanh"),
        "AffineCoupling(bound=None)": AffineCoupling(np.array([0.0, 1, 1, 0]), [5], rng=r,
                                                     activation="softplus", bound=None),
        "SplineCoupling(K=5, context)": SplineCoupling(D, np.array([1.0, 1, 0, 0]), [6], n_bins=5,
                                                       bound=2.5, rng=r, context_dim=C,
                                                       activation="tanh"),
        "SplineCoupling(K=1)": SplineCoupling(D, np.array([0.0, 1, 0, 1]), [5], n_bins=1,
                                              rng=r, activation="elu"),
        "MAF(context, order)": MAF(D, [7, 6], rng=r, context_dim=C, order=[3, 1, 4, 2],
                                   activation="tanh"),
        "MAF(bound=None)": MAF(D, [6], rng=r, activation="relu", bound=None),
        "IAF(context)": IAF(D, [7], rng=r, context_dim=C, order=[2, 4, 1, 3], activation="tanh"),
        "Permutation": Permutation(r.permutation(D)),
        "ElementwiseAffine": ElementwiseAffine(D),
        "ActNorm(initialized)": act,
        "Standardize": Standardize.from_data(data),
        "LogitTransform(data_scale=2)": LogitTransform(D, lam=1e-3, data_scale=2.0),
        "Chain(coupling, permutation, MAF, context)": Chain(
            [AffineCoupling(np.array([1.0, 0, 1, 0]), [5], rng=r, context_dim=C, activation="tanh"),
             Permutation.reverse(D), MAF(D, [6], rng=r, context_dim=C, activation="tanh")]),
    }
    for name, b in cases.items():
        if not isinstance(b, (ActNorm, Standardize)):
            randomize_parameters(b, rng=r, scale=0.4)
    return cases


BIJECTORS = _bijectors()


def _inputs(name, b, rng):
    if isinstance(b, LogitTransform):
        x = rng.uniform(0.05, 1.95, (N, D))
    else:
        x = rng.standard_normal((N, D)) * 1.2
    c = rng.standard_normal((N, C)) if b.context_dim else None
    return x, c


def _params(b):
    return {name: p.copy() for name, p, _ in b.named_parameters()}


@pytest.mark.parametrize("name", list(BIJECTORS))
def test_bijector_against_autodiff(name, backend, rng):
    b = BIJECTORS[name]
    B = backend
    x, c = _inputs(name, b, rng)
    z, log_det, cache = b.forward_cached(x, c)
    v, w = rng.standard_normal(z.shape), rng.standard_normal(N)
    b.zero_grad()
    d_x, d_c = b.backward(cache, v, w)
    params = _params(b)
    tp = {k: B.asarray(a) for k, a in params.items()}
    tc = None if c is None else B.asarray(c)

    # forward values and log-det
    z_ref, ld_ref = bijector_forward(B, b, tp, "", B.asarray(x), tc)
    assert_rel(z, B.numpy(z_ref), what=f"{name}: z")
    assert np.max(np.abs(log_det - B.numpy(ld_ref))) <= _ld_tol(B.numpy(ld_ref)), name

    # inverse at z
    x_inv, ld_inv = b.inverse(z, c)
    x_ref, ld_inv_ref = bijector_inverse(B, b, tp, "", B.asarray(z), tc)
    assert_rel(x_inv, B.numpy(x_ref), what=f"{name}: inverse x")
    assert np.max(np.abs(ld_inv - B.numpy(ld_inv_ref))) <= _ld_tol(B.numpy(ld_inv_ref)), name

    # gradients of <v, z> + <w, log_det>
    def loss(d):
        zz, ld = bijector_forward(B, b, d, "", d["x"], d.get("c"))
        return B.sum(zz * B.asarray(v)) + B.sum(ld * B.asarray(w))

    inputs = {"x": x, **params}
    if c is not None:
        inputs["c"] = c
    _, grads = B.value_and_grad(loss, inputs)
    assert_rel(d_x, grads["x"], what=f"{name}: d_x")
    if c is not None:
        assert_rel(d_c, grads["c"], what=f"{name}: d_context")
    else:
        assert d_c is None
    for pname, _, g in b.named_parameters():
        assert_rel(g, grads[pname], what=f"{name}: d_{pname}")

    # log-det against slogdet of the autodiff Jacobian, per sample
    jac = B.batch_jacobian(lambda xx: bijector_forward(B, b, tp, "", xx, tc)[0], x)
    sign, logabs = np.linalg.slogdet(jac)
    assert np.all(sign != 0)
    assert np.max(np.abs(logabs - log_det)) <= _ld_tol(log_det), (name, logabs, log_det)


def _flows():
    r = np.random.default_rng(11)
    data = r.standard_normal((40, D)) * [1.0, 2.0, 0.5, 3.0] + 1.0
    ctx = r.standard_normal((40, C)) * 3 - 1
    flows = {
        "realnvp(context, actnorm)": realnvp(D, 3, [6, 5], rng=r, context_dim=C, activation="tanh",
                                             actnorm=True, standardize=data, standardize_context=ctx),
        "maf(context, random permutation)": maf(D, 3, [7], rng=r, context_dim=C, activation="tanh",
                                                permutation="random", standardize=data,
                                                standardize_context=ctx),
        "maf(IAF, context)": maf(D, 2, [6], rng=r, context_dim=C, activation="tanh",
                                 inverse_autoregressive=True, standardize=data,
                                 standardize_context=ctx),
        "spline_flow(context, actnorm)": spline_flow(D, 2, [6], rng=r, context_dim=C, n_bins=4,
                                                     activation="tanh", actnorm=True,
                                                     standardize=data, standardize_context=ctx),
        "spline_flow(unconditional)": spline_flow(D, 2, 5, rng=r, n_bins=3, activation="softplus",
                                                  standardize=data),
    }
    for f in flows.values():
        randomize_parameters(f, rng=r, scale=0.4)
    return flows, data, ctx


FLOWS, DATA, CTX = _flows()


@pytest.mark.parametrize("name", list(FLOWS))
def test_flow_log_prob_and_gradients(name, backend, rng):
    """(FLOW.1) log p(x | c) and the gradients of sum_i w_i log p_i w.r.t. x, c, every parameter."""
    flow = FLOWS[name]
    B = backend
    x = DATA[:N] + 0.3 * rng.standard_normal((N, D))
    c = CTX[:N] + 0.3 * rng.standard_normal((N, C)) if flow.context_dim else None
    w = rng.standard_normal(N)
    flow.zero_grad()
    lp, d_x, d_c = flow.log_prob_and_grad(x, c, weights=w)
    params = _params(flow)

    def log_prob(d):
        z, ld = bijector_forward(B, flow, d, "", d["x"], d.get("c"))
        return normal_log_prob(B, z) + ld

    tp = {k: B.asarray(a) for k, a in params.items()}
    lp_ref = B.numpy(log_prob({**tp, "x": B.asarray(x), **({} if c is None else {"c": B.asarray(c)})}))
    assert_rel(lp, lp_ref, what=f"{name}: log p")
    inputs = {"x": x, **params, **({} if c is None else {"c": c})}
    _, grads = B.value_and_grad(lambda d: B.sum(log_prob(d) * B.asarray(w)), inputs)
    assert_rel(d_x, grads["x"], what=f"{name}: d_x")
    if c is not None:
        assert_rel(d_c, grads["c"], what=f"{name}: d_context")
    for pname, _, g in flow.named_parameters():
        assert_rel(g, grads[pname], what=f"{name}: d_{pname}")


def test_planted_log_det_bug_is_caught(backend, rng):
    """An affine coupling whose log-det drops its last coordinate disagrees with the oracle's
    slogdet of the autodiff Jacobian."""
    b = BIJECTORS["AffineCoupling(bound=None)"]
    x, _ = _inputs("", b, rng)
    z, log_det = b.forward(x)
    tp = {k: backend.asarray(a) for k, a in _params(b).items()}
    jac = backend.jacobian(lambda xi: bijector_forward(backend, b, tp, "", xi[None, :], None)[0][0],
                           x[0])
    wrong = log_det[0] - np.log(np.abs(jac[3, 3]))      # coordinate 3 is transformed: e^{s_3}
    assert abs(np.linalg.slogdet(jac)[1] - log_det[0]) <= _ld_tol(log_det[0])
    assert abs(np.linalg.slogdet(jac)[1] - wrong) > 1e-3


# -- the ill-conditioned case: spline inverse where the slope is tiny -----------------------------
def _exact_spline_y(x, widths, heights, derivs, bound):
    """(SPL.1), (SPL.4) evaluated in exact rational arithmetic at the float x."""
    xf = Fraction(float(x))
    w = [Fraction(float(v)) for v in widths]
    h = [Fraction(float(v)) for v in heights]
    d = [Fraction(float(v)) for v in derivs]
    xk, yk = -Fraction(float(bound)), -Fraction(float(bound))
    k = 0
    while k < len(w) - 1 and xk + w[k] <= xf:
        xk, yk = xk + w[k], yk + h[k]
        k += 1
    s = h[k] / w[k]
    xi = (xf - xk) / w[k]
    t = xi * (1 - xi)
    return yk + h[k] * (s * xi * xi + d[k] * t) / (s + (d[k] + d[k + 1] - 2 * s) * t)


def test_spline_inverse_ill_conditioned_against_exact_arithmetic():
    """Why not against autodiff at 1e-10: in a bin of slope g' ~ 1e-6 the inverse's condition
    number is |y g'^{-1} / x| ~ 1e6, so *any* float64 evaluation (nprefgen's, torch's, JAX's)
    of x = g^{-1}(y) carries a forward error up to ~1e6 eps and two correct implementations may
    disagree at 1e-10. The property that does hold is backward stability: the computed x is the
    exact inverse of a y within a few ulps, |g(x_hat) - y| <= 8 eps (|y| + B), checked with g
    evaluated exactly in rational arithmetic (fractions.Fraction) at the float x_hat."""
    K, bound = 4, 3.0
    theta = np.zeros((1, 3 * K - 1))
    theta[0, :K] = [0.0, 6.0, 0.0, 0.0]          # a wide second bin ...
    theta[0, K:2 * K] = [0.0, -14.0, 0.0, 0.0]    # ... of tiny height: slope ~ 1e-6 inside it
    theta[0, 2 * K:] = [-16.0, -16.0, 0.0]       # tiny knot derivatives at its ends
    mins = (1e-3, 1e-6, 1e-7)
    widths, heights, derivs, _ = spline_parameters(theta, bound, *mins)
    assert heights[0, 1] / widths[0, 1] < 1e-5         # the slope s_k of the bin
    from nprefgen.flows.spline import spline_inverse
    yk1 = -bound + heights[0, 0]
    ys = yk1 + heights[0, 1] * np.array([0.0, 1e-3, 0.1, 0.5, 0.9, 0.999999])
    x_hat, _ = spline_inverse(ys[:, None], np.broadcast_to(theta, (len(ys), 1, 3 * K - 1)), bound,
                              *mins)
    eps = np.finfo(np.float64).eps
    def residual(y, xv):
        return abs(float(_exact_spline_y(xv, widths[0], heights[0], derivs[0], bound) - Fraction(y)))

    for y, xv in zip(ys, x_hat[:, 0]):
        assert residual(y, xv) <= 8 * eps * (abs(y) + bound), (y, xv, residual(y, xv))
    # the check can fail: a solver that stops at 1e-6 relative in x (a bisection, say) misses
    # by g' * 1e-6 |x| ~ 1e-12, far above the bar, even where the slope is ~1e-6
    sloppy = x_hat[3, 0] * (1 + 1e-6)
    assert residual(ys[3], sloppy) > 8 * eps * (abs(ys[3]) + bound)
