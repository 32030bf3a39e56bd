"""Rational-quadratic spline and SplineCoupling (derivations/splines.md, SPL.1-SPL.13).

Finite-difference checks use a step of 1e-5: the spline's second derivative jumps at interior
knots (splines.md section 3), so a wide stencil straddling a knot would be O(step) wrong.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nprefgen.flows import spline as fs
from nprefgen.flows.spline import (
    SplineCoupling, n_spline_params, spline_backward, spline_forward, spline_inverse,
    spline_parameters, spline_parameters_backward,
)
from nprefgen.kernels import spline as ks
from nprefgen.testing import vjp_error
from nprefgen.testing.bijector_checks import (
    bijector_report, check_bijector, randomize_parameters,
)
from nprefgen.testing.strategies import seeds

STEP = 1e-5


def _random_spline(rng, m, n_bins, bound, scale=1.0):
    """Normalised widths/heights/derivatives for m elements via (SPL.2)-(SPL.3)."""
    theta = scale * rng.standard_normal((m, n_spline_params(n_bins)))
    w, h, d, _ = spline_parameters(theta, bound)
    return w, h, d


def _fd_derivative(fun, x, step=STEP):
    """Elementwise derivative of an elementwise map by the fourth-order central difference."""
    return (-fun(x + 2 * step) + 8 * fun(x + step) - 8 * fun(x - step) + fun(x - 2 * step)) / (12 * step)


# ------------------------------------------------------------------------------------------------
# kernels: parity of the numba loops with the NumPy twins
# ------------------------------------------------------------------------------------------------


def _maybe_strided(a, rng, strided):
    if not strided:
        return np.ascontiguousarray(a)
    big = np.zeros((a.shape[0], 2 * a.shape[1]) if a.ndim == 2 else (2 * a.shape[0],))
    view = big[:, ::2] if a.ndim == 2 else big[::2]
    view[...] = a
    return view


def _assert_inverse_parity(want, got):
    """x and log dx/dy at rtol 1e-12 plus the inverse's own conditioning: a 1-ulp difference in
    the knots (numba's exp vs NumPy's) moves x by about dx/dy = exp(log_deriv_inv) ulps of y."""
    (x_a, ld_a), (x_b, ld_b) = want, got
    cond = np.maximum(1.0, np.exp(ld_a))
    tol = 1e-12 * np.abs(x_a) + 1e-13 * cond
    assert np.all(np.abs(x_b - x_a) <= tol), np.max(np.abs(x_b - x_a) / tol)
    assert np.all(np.abs(ld_b - ld_a) <= 1e-12 * np.abs(ld_a) + 1e-13 * cond)


@pytest.mark.kernels
@given(seed=seeds(), m=st.integers(1, 40), n_bins=st.integers(1, 9), strided=st.booleans())
def test_kernel_parity(seed, m, n_bins, strided):
    """(SPL.1)-(SPL.9e) numba kernels == NumPy twins at rtol 1e-12, contiguous and strided."""
    rng = np.random.default_rng(seed)
    bound = 2.5
    w, h, d = (_maybe_strided(a, rng, strided) for a in _random_spline(rng, m, n_bins, bound, 2.0))
    x = _maybe_strided(rng.uniform(-3.5, 3.5, m), rng, strided)
    y_np, l_np = ks.rq_spline_forward_numpy(x, w, h, d, bound)
    y_nb, l_nb = ks.rq_spline_forward(x, w, h, d, bound)
    np.testing.assert_allclose(y_nb, y_np, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(l_nb, l_np, rtol=1e-12, atol=1e-13)
    yv = _maybe_strided(y_np, rng, strided)
    _assert_inverse_parity(ks.rq_spline_inverse_numpy(yv, w, h, d, bound),
                           ks.rq_spline_inverse(yv, w, h, d, bound))
    gy = _maybe_strided(rng.standard_normal(m), rng, strided)
    gl = _maybe_strided(rng.standard_normal(m), rng, strided)
    for a, b in zip(ks.rq_spline_backward_numpy(x, w, h, d, bound, gy, gl),
                    ks.rq_spline_backward(x, w, h, d, bound, gy, gl)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13)


@pytest.mark.kernels
@given(seed=seeds(), m=st.integers(1, 40), n_bins=st.integers(1, 9), strided=st.booleans(),
       scale=st.floats(0.0, 2.5))
def test_fused_kernel_parity(seed, m, n_bins, strided, scale):
    """(SPL.2)-(SPL.3), (SPL.10)-(SPL.11) the fused theta -> spline kernels == their NumPy twins
    (parameterisation then knot-level twins) at rtol 1e-12, contiguous and strided (the inverse
    with its conditioning allowance)."""
    rng = np.random.default_rng(seed)
    bound, mins = 2.5, (1e-3, 2e-3, 5e-3)
    theta = _maybe_strided(scale * rng.standard_normal((m, n_spline_params(n_bins))), rng, strided)
    x = _maybe_strided(rng.uniform(-3.5, 3.5, m), rng, strided)
    gy = _maybe_strided(rng.standard_normal(m), rng, strided)
    gl = _maybe_strided(rng.standard_normal(m), rng, strided)
    y_np, l_np = ks.rq_spline_theta_forward_numpy(x, theta, bound, *mins)
    _assert_inverse_parity(ks.rq_spline_theta_inverse_numpy(y_np, theta, bound, *mins),
                           ks.rq_spline_theta_inverse(y_np, theta, bound, *mins))
    pairs = [((y_np, l_np), ks.rq_spline_theta_forward(x, theta, bound, *mins)),
             (ks.rq_spline_theta_backward_numpy(x, theta, bound, *mins, gy, gl),
              ks.rq_spline_theta_backward(x, theta, bound, *mins, gy, gl))]
    for want, got in pairs:
        for a, b in zip(want, got):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13)


@pytest.mark.kernels
def test_kernel_all_tails_and_float32(rng):
    """(SPL.6) all elements outside [-B, B]: identity, zero gradients; float32 keeps its dtype."""
    w, h, d = _random_spline(rng, 5, 4, 1.0)
    x = np.array([-3.0, -1.5, 1.2, 2.0, 9.0])
    for fwd in (ks.rq_spline_forward, ks.rq_spline_forward_numpy):
        y, ld = fwd(x, w, h, d, 1.0)
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(ld, 0.0)
    for bwd in (ks.rq_spline_backward, ks.rq_spline_backward_numpy):
        d_x, d_w, d_h, d_d = bwd(x, w, h, d, 1.0, np.ones(5), np.ones(5))
        np.testing.assert_array_equal(d_x, 1.0)
        assert not d_w.any() and not d_h.any() and not d_d.any()
    x32 = rng.uniform(-1, 1, 5).astype(np.float32)
    y32, l32 = ks.rq_spline_forward(x32, w.astype(np.float32), h.astype(np.float32),
                                    d.astype(np.float32), 1.0)
    y64, l64 = ks.rq_spline_forward(x32.astype(np.float64), w, h, d, 1.0)
    assert y32.dtype == np.float32 and l32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# the spline's values, derivative, inverse
# ------------------------------------------------------------------------------------------------


@given(seed=seeds(), n_bins=st.integers(1, 10), bound=st.floats(0.5, 6.0))
def test_parameters_are_valid_and_zero_is_identity(seed, n_bins, bound):
    """(SPL.2) sizes positive, >= the minimum, summing to 2B; (SPL.3) boundary derivatives 1,
    interior >= the minimum; theta = 0 is exactly the identity map."""
    rng = np.random.default_rng(seed)
    theta = 4.0 * rng.standard_normal((3, 2, n_spline_params(n_bins)))
    w, h, d, _ = spline_parameters(theta, bound, 1e-3, 2e-3, 1e-3)
    np.testing.assert_allclose(w.sum(-1), 2 * bound, rtol=1e-13)
    np.testing.assert_allclose(h.sum(-1), 2 * bound, rtol=1e-13)
    assert np.all(w >= 2 * bound * 1e-3 * (1 - 1e-12))
    assert np.all(h >= 2 * bound * 2e-3 * (1 - 1e-12))
    np.testing.assert_array_equal(d[..., [0, -1]], 1.0)
    assert np.all(d[..., 1:-1] > 1e-3)
    x = rng.uniform(-bound, bound, (3, 2))
    y, ld, _ = spline_forward(x, np.zeros_like(theta), bound)
    np.testing.assert_allclose(y, x, rtol=0, atol=1e-13 * bound)
    np.testing.assert_allclose(ld, 0.0, atol=1e-13)


@given(seed=seeds(), n_bins=st.integers(1, 8))
def test_values_at_knots_are_knot_heights(seed, n_bins):
    """(SPL.1), (SPL.4): g(x_k) = y_k at every knot; (SPL.5): g'(x_k) = delta_k there."""
    rng = np.random.default_rng(seed)
    bound = 2.0
    w, h, d = _random_spline(rng, 1, n_bins, bound, 2.0)
    xk = -bound + np.concatenate([[0.0], np.cumsum(w[0])])
    yk = -bound + np.concatenate([[0.0], np.cumsum(h[0])])
    m = n_bins + 1
    rep = lambda a: np.repeat(a, m, axis=0)  # noqa: E731
    y, ld = ks.rq_spline_forward(xk, rep(w), rep(h), rep(d), bound)
    np.testing.assert_allclose(y, yk, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ld, np.log(d[0]), rtol=0, atol=1e-9)


def test_tails_are_identity(rng):
    """(SPL.6) identity outside [-B, B] for value, log-derivative and input gradient; the tails
    join the spline continuously (g(+-B) = +-B with slope 1)."""
    theta = rng.standard_normal((4, 3, n_spline_params(5)))
    x = np.array([[-7.0, -1.50001, 4.0], [1.50001, 100.0, -2.0], [-1.5, 1.5, 1.5 - 1e-12],
                  [-1.5 + 1e-12, 3.0, -3.0]])
    y, ld, cache = spline_forward(x, theta, 1.5)
    tails = np.abs(x) > 1.5
    np.testing.assert_array_equal(y[tails], x[tails])
    np.testing.assert_array_equal(ld[tails], 0.0)
    np.testing.assert_allclose(y[~tails], x[~tails], atol=1e-11)      # edges map to edges
    np.testing.assert_allclose(ld[~tails], 0.0, atol=1e-8)            # with slope 1
    d_x, d_theta = spline_backward(cache, np.ones_like(x), np.zeros_like(x))
    np.testing.assert_array_equal(d_x[tails], 1.0)
    assert not d_theta[tails].any()


@given(seed=seeds(), n_bins=st.integers(1, 12), scale=st.floats(0.0, 6.0),
       bound=st.floats(0.5, 5.0))
def test_monotone_for_any_parameters(seed, n_bins, scale, bound):
    """(SPL.5) g' > 0 for any parameters: y strictly increases along a sorted grid, log g'
    is finite, and the image of [-B, B] is [-B, B]."""
    rng = np.random.default_rng(seed)
    theta = scale * rng.standard_normal(n_spline_params(n_bins))
    grid = np.linspace(-1.2 * bound, 1.2 * bound, 2001)
    theta_b = np.broadcast_to(theta, (grid.size, 1, theta.size))
    y, ld, _ = spline_forward(grid[:, None], theta_b, bound)
    assert np.all(np.diff(y[:, 0]) > 0)
    assert np.all(np.isfinite(ld))
    inside = np.abs(grid) <= bound
    assert y[inside, 0].min() >= -bound - 1e-12 and y[inside, 0].max() <= bound + 1e-12


@given(seed=seeds(), n_bins=st.integers(1, 10))
def test_log_derivative_matches_finite_difference(seed, n_bins):
    """(SPL.5) log g'(x) equals the log of a fourth-order central difference of (SPL.4)."""
    rng = np.random.default_rng(seed)
    bound = 3.0
    w, h, d = _random_spline(rng, 50, n_bins, bound, 1.0)
    x = rng.uniform(-3.2, 3.2, 50)
    _, ld = ks.rq_spline_forward(x, w, h, d, bound)
    fd = _fd_derivative(lambda v: ks.rq_spline_forward(v, w, h, d, bound)[0], x)
    # absolute 1e-7, relative where |log g'| > 1 (the issue's bar for log-determinants)
    assert np.all(np.abs(ld - np.log(fd)) <= 1e-7 * np.maximum(1.0, np.abs(ld)))


@given(seed=seeds(), n_bins=st.integers(1, 10), scale=st.floats(0.0, 3.0))
def test_inverse_round_trip(seed, n_bins, scale):
    """(SPL.7)-(SPL.8) g^{-1}(g(x)) = x to 1e-10 relative to max|x| (numba and NumPy paths);
    log dx/dy = -log g'(x)."""
    rng = np.random.default_rng(seed)
    bound = 2.0
    theta = scale * rng.standard_normal((30, 2, n_spline_params(n_bins)))
    x = rng.uniform(-2.5, 2.5, (30, 2))
    y, ld, _ = spline_forward(x, theta, bound)
    x_back, ld_inv = spline_inverse(y, theta, bound)
    assert np.max(np.abs(x_back - x)) <= 1e-10 * np.max(np.abs(x))
    np.testing.assert_allclose(ld_inv, -ld, rtol=0, atol=1e-9)
    w, h, d, _ = spline_parameters(theta.reshape(60, -1), bound)
    x_np, _ = ks.rq_spline_inverse_numpy(y.reshape(-1), w, h, d, bound)
    assert np.max(np.abs(x_np - x.reshape(-1))) <= 1e-10 * np.max(np.abs(x))


def test_stable_root_at_linear_bins(rng):
    """(SPL.8) at theta = 0 every bin is linear and a = 0 in (SPL.7): the textbook root
    (-b + sqrt(b^2 - 4ac)) / (2a) is 0/0, the stable root 2c / (-b - sqrt(...)) is exact."""
    n_bins, bound = 4, 1.0
    w, h, d, _ = spline_parameters(np.zeros((1, n_spline_params(n_bins))), bound)
    s, hk, d0, d1 = h[0, 0] / w[0, 0], h[0, 0], d[0, 0], d[0, 1]
    dy = 0.3 * hk
    m = d0 + d1 - 2 * s
    a, b, c = hk * (s - d0) + dy * m, hk * d0 - dy * m, -s * dy
    assert a == 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        textbook = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * np.float64(a))
    assert not np.isfinite(textbook)
    np.testing.assert_allclose(ks._rq_solve(dy, s, hk, d0, d1), 0.3, rtol=1e-14)
    y = rng.uniform(-1, 1, 200)
    x, ld = spline_inverse(y[:, None], np.zeros((200, 1, n_spline_params(n_bins))), bound)
    np.testing.assert_allclose(x[:, 0], y, atol=1e-15)
    np.testing.assert_allclose(ld, 0.0, atol=1e-14)


# ------------------------------------------------------------------------------------------------
# the backward pass: dot-product tests (nprefgen.testing) and a broken backward caught
# ------------------------------------------------------------------------------------------------


def _kernel_vjp_results(rng, backward, n_bins=5, m=40):
    bound = 2.0
    w, h, d = _random_spline(rng, m, n_bins, bound, 1.0)
    x = rng.uniform(-2.4, 2.4, m)
    args = {"x": x, "widths": w, "heights": h, "derivatives": d}
    results = []
    for name in args:
        def fun(a, name=name):
            kw = dict(args, **{name: a})
            return ks.rq_spline_forward(kw["x"], kw["widths"], kw["heights"], kw["derivatives"], bound)

        def vjp(v, name=name):
            grads = backward(x, w, h, d, bound, v[0], v[1])
            return grads[list(args).index(name)]

        results.append(vjp_error(fun, vjp, args[name], rng=rng, step=STEP, name=name))
    return results


@given(seed=seeds(), n_bins=st.integers(1, 8))
def test_kernel_backward_dot_product(seed, n_bins):
    """(SPL.9a), (SPL.9b), (SPL.9c), (SPL.9d), (SPL.9e): <u, J^T v> == <v, J u> for x, widths,
    heights and derivatives (numba kernel and NumPy twin)."""
    for backward in (ks.rq_spline_backward, ks.rq_spline_backward_numpy):
        for r in _kernel_vjp_results(np.random.default_rng(seed), backward, n_bins):
            assert r.ok, str(r)


def test_wrong_backward_is_caught(rng, monkeypatch):
    """A backward that drops the 2/s term of dlog g'/ds (SPL.9b) or the prefix-sum gradient
    (SPL.9e) fails the dot-product test."""
    good = ks._rq_partials

    def dropped_term(xi, s, h, d0, d1, gy, gl):
        g_xi, g_s, g_h, g_d0, g_d1 = good(xi, s, h, d0, d1, gy, gl)
        return g_xi, g_s - gl * 2.0 / s, g_h, g_d0, g_d1

    monkeypatch.setattr(ks, "_rq_partials", dropped_term)
    res = {r.name: r for r in _kernel_vjp_results(rng, ks.rq_spline_backward_numpy)}
    assert not res["widths"].ok and not res["heights"].ok
    assert res["x"].ok and res["derivatives"].ok         # the check is specific, not noisy
    monkeypatch.setattr(ks, "_rq_partials", good)

    def no_prefix(x, w, h, d, bound, gy, gl):
        d_x, d_w, d_h, d_d = ks.rq_spline_backward_numpy(x, w, h, d, bound, gy, gl)
        xk = ks._knots_numpy(w, bound)
        k = ks._bin_index_numpy(xk, x)
        inside = np.abs(x) <= bound
        before = (np.arange(w.shape[1])[None, :] < k[:, None]) & inside[:, None]
        return d_x, np.where(before, 0.0, d_w), d_h, d_d

    res = {r.name: r for r in _kernel_vjp_results(rng, no_prefix)}
    assert not res["widths"].ok


@given(seed=seeds(), n_bins=st.integers(1, 8))
def test_parameter_backward_dot_product(seed, n_bins):
    """(SPL.10)-(SPL.11) VJP of theta -> (widths, heights, derivatives), and of the whole
    theta -> (y, log g') map used by the coupling."""
    rng = np.random.default_rng(seed)
    bound = 2.0
    theta = rng.standard_normal((6, 3, n_spline_params(n_bins)))
    _, _, _, cache = spline_parameters(theta, bound)
    r = vjp_error(lambda t: spline_parameters(t, bound)[:3],
                  lambda v: spline_parameters_backward(cache, *v), theta, rng=rng, step=STEP)
    assert r.ok, str(r)
    x = rng.uniform(-2.3, 2.3, (6, 3))
    _, _, s_cache = spline_forward(x, theta, bound)
    r = vjp_error(lambda t: spline_forward(x, t, bound)[:2],
                  lambda v: spline_backward(s_cache, *v)[1], theta, rng=rng, step=STEP)
    assert r.ok, str(r)
    r = vjp_error(lambda x_: spline_forward(x_, theta, bound)[:2],
                  lambda v: spline_backward(s_cache, *v)[0], x, rng=rng, step=STEP)
    assert r.ok, str(r)


# ------------------------------------------------------------------------------------------------
# SplineCoupling: the bijector checks (SPL.12)-(SPL.13)
# ------------------------------------------------------------------------------------------------


def _coupling(seed, dim, context_dim, n_bins, scale=0.3):
    rng = np.random.default_rng(seed)
    mask = np.zeros(dim)
    mask[rng.permutation(dim)[: rng.integers(0 if context_dim else 1, dim)]] = 1
    b = SplineCoupling(dim, mask, [7, 5], n_bins, 2.0, rng=rng, context_dim=context_dim,
                       activation="tanh")
    randomize_parameters(b, rng=rng, scale=scale)   # leave the zero (identity) init
    x = 1.2 * rng.standard_normal((5, dim))
    c = rng.standard_normal((5, context_dim)) if context_dim else None
    return b, x, c, rng


@given(seed=seeds(), dim=st.integers(2, 6), context_dim=st.integers(0, 3), n_bins=st.integers(1, 6))
def test_coupling_bijector_battery(seed, dim, context_dim, n_bins):
    """(SPL.12)-(SPL.13) the battery of nprefgen.testing.bijector_checks: inverse(forward(x)) == x
    to 1e-10 relative; log_det == log|det J| of a central-difference Jacobian to 1e-7 (relative
    where |log_det| > 1); inverse log_det == -log_det; fused == separate; backward passes the
    dot-product test for the input, the context and every conditioner parameter."""
    b, x, c, rng = _coupling(seed, dim, context_dim, n_bins)
    report = check_bijector(b, x, c, rng=rng, jacobian_step=STEP, grad_step=STEP)
    assert len(report.gradients) == 1 + (context_dim > 0) + len(list(b.named_parameters()))


def test_wrong_log_derivative_is_caught(rng, monkeypatch):
    """A log-derivative that drops the -2 log(den) term of (SPL.5) is caught by the battery's
    Jacobian log-det check (and the correct one passes it)."""
    b, x, c, _ = _coupling(3, 4, 1, 4)
    assert bijector_report(b, x, c, rng=rng, jacobian_step=STEP, grad_step=STEP).ok
    good = ks._rq_eval

    def wrong_eval(xi, s, h, d0, d1):
        dy, ld = good(xi, s, h, d0, d1)
        t = xi * (1.0 - xi)
        return dy, ld + 2.0 * np.log(s + (d0 + d1 - 2.0 * s) * t)

    monkeypatch.setattr(ks, "_rq_eval", wrong_eval)
    monkeypatch.setattr(fs, "rq_spline_theta_forward_saved", ks.rq_spline_theta_forward_saved_numpy)
    failures = bijector_report(b, x, c, rng=rng, jacobian_step=STEP, grad_step=STEP).failures
    assert any(f.startswith("log-det vs finite-difference") for f in failures), failures
    assert any("inverse log-det" in f for f in failures), failures


def test_new_coupling_is_identity(rng):
    """(SPL.3) the zero-initialised last layer makes a fresh coupling the identity."""
    b = SplineCoupling(6, [1, 0, 1, 0, 1, 0], 16, 8, 3.0, rng=rng, context_dim=2)
    x = rng.standard_normal((10, 6))
    z, log_det = b.forward(x, rng.standard_normal((10, 2)))
    np.testing.assert_allclose(z, x, atol=1e-14)
    np.testing.assert_allclose(log_det, 0.0, atol=1e-13)


def test_coupling_float32(rng):
    """float32 parameters and inputs run end to end and stay float32."""
    b = SplineCoupling(4, [1, 1, 0, 0], 8, 4, 2.0, rng=rng, dtype=np.float32)
    for _, p, _ in b.named_parameters():
        p[...] = 0.3 * rng.standard_normal(p.shape)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    z, log_det, cache = b.forward_cached(x)
    assert z.dtype == np.float32 and log_det.dtype == np.float32
    d_x, _ = b.backward(cache, np.ones_like(z), np.ones_like(log_det))
    assert d_x.dtype == np.float32 and np.all(np.isfinite(d_x))
    x_back, _ = b.inverse(z)
    np.testing.assert_allclose(x_back, x, atol=1e-4)


def test_bad_inputs_raise(rng):
    """Bad inputs raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="mask"):
        SplineCoupling(3, [1, 1, 1], 8, 4, 2.0, rng=rng)
    with pytest.raises(ValueError, match="mask"):
        SplineCoupling(3, [0, 0, 0], 8, 4, 2.0, rng=rng)
    with pytest.raises(ValueError, match="mask"):
        SplineCoupling(3, [0, 2, 1], 8, 4, 2.0, rng=rng)
    with pytest.raises(ValueError, match="n_bins"):
        SplineCoupling(3, [0, 1, 1], 8, 0, 2.0, rng=rng)
    with pytest.raises(ValueError, match="bound"):
        SplineCoupling(3, [0, 1, 1], 8, 4, -1.0, rng=rng)
    with pytest.raises(ValueError, match="min_width"):
        SplineCoupling(3, [0, 1, 1], 8, 4, 1.0, rng=rng, min_width=0.3)
    with pytest.raises(ValueError, match="rng"):
        SplineCoupling(3, [0, 1, 1], 8, 4, 1.0, rng="0")
    with pytest.raises(ValueError, match="theta"):
        spline_parameters(np.zeros((2, 4)), 1.0)
    with pytest.raises(ValueError, match="theta"):
        spline_forward(np.zeros((2, 3)), np.zeros((2, 2, 5)), 1.0)
    b = SplineCoupling(3, [0, 1, 1], 8, 4, 2.0, rng=rng, context_dim=2)
    with pytest.raises(ValueError, match="context"):
        b.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="x"):
        b.forward(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="x"):
        b.forward(np.full((4, 3), np.nan), np.zeros((4, 2)))
