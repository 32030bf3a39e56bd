"""The elementwise monotone rational-quadratic spline (derivations/splines.md, SPL.1-SPL.9e).

Durkan, Bekasov, Murray & Papamakarios (2019), "Neural Spline Flows". Every element ``x[i]`` has
its own spline on ``[-B, B]`` with ``K`` bins, given by already-normalised bin widths
``widths[i]`` (positive, summing to 2B), heights ``heights[i]`` (positive, summing to 2B) and
knot derivatives ``derivatives[i]`` (positive, ``K + 1`` of them, the two boundary ones 1 in a
flow). Outside ``[-B, B]`` the map is the identity (linear tails, SPL.6).

Three kernels, each beside its NumPy twin with the same contract:

- ``rq_spline_forward``: x -> (y, log dy/dx)                         (SPL.1, SPL.4-SPL.6)
- ``rq_spline_inverse``: y -> (x, log dx/dy = -log g'(x))            (SPL.7-SPL.8)
- ``rq_spline_backward``: VJP of the forward pair w.r.t. x, widths, heights, derivatives
                          (SPL.9a-SPL.9e)

The per-element formulas live once, in the small scalar-or-array helpers ``_rq_eval``,
``_rq_solve`` and ``_rq_partials``: the NumPy twins call them on arrays, the numba loops call
their jitted copies on scalars, so the two paths evaluate the same expressions.
"""
from __future__ import annotations

import numpy as np

from nprefgen.kernels.jit import kernel

# ---------------------------------------------------------------------------------------------
# the per-element formulas (shared by both paths)
# ---------------------------------------------------------------------------------------------


def _rq_eval(xi, s, h, d0, d1):
    """(SPL.4)-(SPL.5) In one bin: xi in [0, 1], slope s = h/w, height h, knot derivatives d0, d1.

    Returns ``(y - y_k, log g'(x))``.
    """
    t = xi * (1.0 - xi)
    den = s + (d0 + d1 - 2.0 * s) * t
    dy = h * (s * xi * xi + d0 * t) / den
    n2 = d1 * xi * xi + 2.0 * s * t + d0 * (1.0 - xi) * (1.0 - xi)
    log_deriv = 2.0 * np.log(s) + np.log(n2) - 2.0 * np.log(den)
    return dy, log_deriv


def _rq_solve(dy, s, h, d0, d1):
    """(SPL.7)-(SPL.8) The xi in [0, 1] with y - y_k = dy, by the stable root
    2c / (-b - sqrt(b^2 - 4ac))."""
    m = d0 + d1 - 2.0 * s
    a = h * (s - d0) + dy * m
    b = h * d0 - dy * m
    c = -s * dy
    disc = np.maximum(b * b - 4.0 * a * c, 0.0)
    return 2.0 * c / (-b - np.sqrt(disc))


def _rq_partials(xi, s, h, d0, d1, gy, gl):
    """(SPL.9a)-(SPL.9b) Cotangent-weighted partials of (y, log g') w.r.t. xi, s, h, d0, d1.

    ``gy``, ``gl`` are the cotangents of y and of log g'(x). Returns
    ``(G_xi, G_s, G_h, G_d0, G_d1)`` with G_u = gy dy/du + gl dlog g'/du (h held apart from s).
    """
    t = xi * (1.0 - xi)
    dt = 1.0 - 2.0 * xi
    m = d0 + d1 - 2.0 * s
    den = s + m * t
    p = s * xi * xi + d0 * t
    n2 = d1 * xi * xi + 2.0 * s * t + d0 * (1.0 - xi) * (1.0 - xi)
    r = h / den
    q = h * p / (den * den)
    # (SPL.9a) y - y_k = h p / den
    dy_dxi = r * (2.0 * s * xi + d0 * dt) - q * m * dt
    dy_ds = r * xi * xi - q * (1.0 - 2.0 * t)
    dy_dh = p / den
    dy_dd0 = (r - q) * t
    dy_dd1 = -q * t
    # (SPL.9b) log g' = 2 log s + log n2 - 2 log den
    dl_dxi = (2.0 * d1 * xi + 2.0 * s * dt - 2.0 * d0 * (1.0 - xi)) / n2 - 2.0 * m * dt / den
    dl_ds = 2.0 / s + 2.0 * t / n2 - 2.0 * (1.0 - 2.0 * t) / den
    dl_dd0 = (1.0 - xi) * (1.0 - xi) / n2 - 2.0 * t / den
    dl_dd1 = xi * xi / n2 - 2.0 * t / den
    return (gy * dy_dxi + gl * dl_dxi, gy * dy_ds + gl * dl_ds, gy * dy_dh,
            gy * dy_dd0 + gl * dl_dd0, gy * dy_dd1 + gl * dl_dd1)


_rq_eval_jit = kernel(_rq_eval)
_rq_solve_jit = kernel(_rq_solve)
_rq_partials_jit = kernel(_rq_partials)


# ---------------------------------------------------------------------------------------------
# NumPy twins
# ---------------------------------------------------------------------------------------------


def _knots_numpy(sizes: np.ndarray, bound: float) -> np.ndarray:
    """(SPL.1) sizes: (m, K) -> knots: (m, K+1), -B + cumulative sums (summed left to right)."""
    start = np.full((sizes.shape[0], 1), -bound, dtype=sizes.dtype)
    return np.cumsum(np.concatenate([start, sizes], axis=1), axis=1)


def _bin_index_numpy(knots: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(SPL.1) Index k in [0, K-1] of the bin holding v: the number of interior knots <= v."""
    return np.sum(knots[:, 1:-1] <= v[:, None], axis=1)


def _take(a: np.ndarray, rows: np.ndarray, k: np.ndarray) -> np.ndarray:
    return a[rows, k]


def rq_spline_forward_numpy(x, widths, heights, derivatives, bound):
    """(SPL.1, SPL.4-SPL.6) y = g(x) and log g'(x), elementwise.

    x: (m,), widths: (m, K), heights: (m, K), derivatives: (m, K+1), bound: B > 0
    -> y: (m,), log_deriv: (m,). Identity (log_deriv 0) outside [-B, B].
    """
    y = x.copy()
    log_deriv = np.zeros_like(x)
    rows = np.nonzero((x >= -bound) & (x <= bound))[0]
    if rows.size == 0:
        return y, log_deriv
    xk = _knots_numpy(widths[rows], bound)
    yk = _knots_numpy(heights[rows], bound)
    k = _bin_index_numpy(xk, x[rows])
    i = np.arange(rows.size)
    w = _take(widths[rows], i, k)
    h = _take(heights[rows], i, k)
    xi = (x[rows] - xk[i, k]) / w
    dy, ld = _rq_eval(xi, h / w, h, derivatives[rows, k], derivatives[rows, k + 1])
    y[rows] = yk[i, k] + dy
    log_deriv[rows] = ld
    return y, log_deriv


def rq_spline_inverse_numpy(y, widths, heights, derivatives, bound):
    """(SPL.7-SPL.8) x = g^{-1}(y) and log dx/dy = -log g'(x), elementwise; shapes as the forward."""
    x = y.copy()
    log_deriv_inv = np.zeros_like(y)
    rows = np.nonzero((y >= -bound) & (y <= bound))[0]
    if rows.size == 0:
        return x, log_deriv_inv
    xk = _knots_numpy(widths[rows], bound)
    yk = _knots_numpy(heights[rows], bound)
    k = _bin_index_numpy(yk, y[rows])
    i = np.arange(rows.size)
    w = _take(widths[rows], i, k)
    h = _take(heights[rows], i, k)
    s = h / w
    d0 = derivatives[rows, k]
    d1 = derivatives[rows, k + 1]
    xi = _rq_solve(y[rows] - yk[i, k], s, h, d0, d1)
    x[rows] = xk[i, k] + xi * w
    log_deriv_inv[rows] = -_rq_eval(xi, s, h, d0, d1)[1]
    return x, log_deriv_inv


def rq_spline_backward_numpy(x, widths, heights, derivatives, bound, d_y, d_log_deriv):
    """(SPL.9a-SPL.9e) VJP of x -> (y, log g'(x)) for cotangents d_y: (m,), d_log_deriv: (m,).

    Returns d_x: (m,), d_widths: (m, K), d_heights: (m, K), d_derivatives: (m, K+1). The knots
    depend on the widths and heights through the cumulative sums (SPL.1), so a bin's left knot
    sends its gradient to every earlier bin (SPL.9e).
    """
    m, n_bins = widths.shape
    d_x = d_y.copy()                                        # (SPL.6) identity tails
    d_widths = np.zeros_like(widths)
    d_heights = np.zeros_like(heights)
    d_derivatives = np.zeros_like(derivatives)
    rows = np.nonzero((x >= -bound) & (x <= bound))[0]
    if rows.size == 0:
        return d_x, d_widths, d_heights, d_derivatives
    xk = _knots_numpy(widths[rows], bound)
    k = _bin_index_numpy(xk, x[rows])
    i = np.arange(rows.size)
    w = _take(widths[rows], i, k)
    h = _take(heights[rows], i, k)
    s = h / w
    xi = (x[rows] - xk[i, k]) / w
    gy = d_y[rows]
    g_xi, g_s, g_h, g_d0, g_d1 = _rq_partials(xi, s, h, derivatives[rows, k],
                                              derivatives[rows, k + 1], gy, d_log_deriv[rows])
    d_x[rows] = g_xi / w                                    # (SPL.9c)
    d_xk = -g_xi / w
    before = np.arange(n_bins)[None, :] < k[:, None]       # (SPL.9e) bins left of k
    d_widths[rows] = d_xk[:, None] * before
    d_heights[rows] = gy[:, None] * before
    d_widths[rows, k] = -g_xi * xi / w - g_s * s / w       # (SPL.9d)
    d_heights[rows, k] = g_h + g_s / w
    d_derivatives[rows, k] = g_d0
    d_derivatives[rows, k + 1] = g_d1
    return d_x, d_widths, d_heights, d_derivatives


# ---------------------------------------------------------------------------------------------
# numba kernels
# ---------------------------------------------------------------------------------------------


@kernel
def _bin_and_left_knot(sizes, i, v, bound):
    """(SPL.1) The bin k of v and its left knot, summing sizes left to right from -B."""
    n_bins = sizes.shape[1]
    left = -bound
    k = 0
    for j in range(1, n_bins):
        nxt = left + sizes[i, j - 1]
        if nxt <= v:
            k = j
            left = nxt
        else:
            break
    return k, left


@kernel
def _left_knot(sizes, i, k, bound):
    left = -bound
    for j in range(k):
        left = left + sizes[i, j]
    return left


@kernel
def _forward_row(v, widths, heights, derivatives, r, bound):
    """(SPL.4-SPL.6) One element with the spline in row r: -> (y, log g')."""
    if v < -bound or v > bound:
        return v, 0.0
    k, xk = _bin_and_left_knot(widths, r, v, bound)
    yk = _left_knot(heights, r, k, bound)
    w = widths[r, k]
    h = heights[r, k]
    dy, ld = _rq_eval_jit((v - xk) / w, h / w, h, derivatives[r, k], derivatives[r, k + 1])
    return yk + dy, ld


@kernel
def _inverse_row(v, widths, heights, derivatives, r, bound):
    """(SPL.7-SPL.8) One element with the spline in row r: -> (x, -log g'(x))."""
    if v < -bound or v > bound:
        return v, 0.0
    k, yk = _bin_and_left_knot(heights, r, v, bound)
    xk = _left_knot(widths, r, k, bound)
    w = widths[r, k]
    h = heights[r, k]
    s = h / w
    d0 = derivatives[r, k]
    d1 = derivatives[r, k + 1]
    xi = _rq_solve_jit(v - yk, s, h, d0, d1)
    return xk + xi * w, -_rq_eval_jit(xi, s, h, d0, d1)[1]


@kernel
def _backward_row(v, widths, heights, derivatives, r, bound, gy, gl,
                  d_widths, d_heights, d_derivatives, rd):
    """(SPL.9a-SPL.9e) One element: writes row rd of the knot gradients, returns d_x."""
    for j in range(widths.shape[1]):
        d_widths[rd, j] = 0.0
        d_heights[rd, j] = 0.0
    for j in range(derivatives.shape[1]):
        d_derivatives[rd, j] = 0.0
    if v < -bound or v > bound:
        return gy
    k, xk = _bin_and_left_knot(widths, r, v, bound)
    w = widths[r, k]
    h = heights[r, k]
    s = h / w
    xi = (v - xk) / w
    g_xi, g_s, g_h, g_d0, g_d1 = _rq_partials_jit(xi, s, h, derivatives[r, k],
                                                  derivatives[r, k + 1], gy, gl)
    d_xk = -g_xi / w
    for j in range(k):
        d_widths[rd, j] = d_xk
        d_heights[rd, j] = gy
    d_widths[rd, k] = -g_xi * xi / w - g_s * s / w
    d_heights[rd, k] = g_h + g_s / w
    d_derivatives[rd, k] = g_d0
    d_derivatives[rd, k + 1] = g_d1
    return g_xi / w


@kernel
def _rq_forward_loop(x, widths, heights, derivatives, bound, y, log_deriv):
    for i in range(x.shape[0]):
        y[i], log_deriv[i] = _forward_row(x[i], widths, heights, derivatives, i, bound)


@kernel
def _rq_inverse_loop(y, widths, heights, derivatives, bound, x, log_deriv_inv):
    for i in range(y.shape[0]):
        x[i], log_deriv_inv[i] = _inverse_row(y[i], widths, heights, derivatives, i, bound)


@kernel
def _rq_backward_loop(x, widths, heights, derivatives, bound, d_y, d_log_deriv,
                      d_x, d_widths, d_heights, d_derivatives):
    for i in range(x.shape[0]):
        d_x[i] = _backward_row(x[i], widths, heights, derivatives, i, bound, d_y[i],
                               d_log_deriv[i], d_widths, d_heights, d_derivatives, i)


def rq_spline_forward(x, widths, heights, derivatives, bound):
    """(SPL.1, SPL.4-SPL.6) Numba kernel; same contract as ``rq_spline_forward_numpy``."""
    y = np.empty_like(x)
    log_deriv = np.empty_like(x)
    _rq_forward_loop(x, widths, heights, derivatives, float(bound), y, log_deriv)
    return y, log_deriv


def rq_spline_inverse(y, widths, heights, derivatives, bound):
    """(SPL.7-SPL.8) Numba kernel; same contract as ``rq_spline_inverse_numpy``."""
    x = np.empty_like(y)
    log_deriv_inv = np.empty_like(y)
    _rq_inverse_loop(y, widths, heights, derivatives, float(bound), x, log_deriv_inv)
    return x, log_deriv_inv


def rq_spline_backward(x, widths, heights, derivatives, bound, d_y, d_log_deriv):
    """(SPL.9a-SPL.9e) Numba kernel; same contract as ``rq_spline_backward_numpy``."""
    d_x = np.empty_like(x)
    d_widths = np.empty_like(widths)
    d_heights = np.empty_like(heights)
    d_derivatives = np.empty_like(derivatives)
    _rq_backward_loop(x, widths, heights, derivatives, float(bound), d_y, d_log_deriv,
                      d_x, d_widths, d_heights, d_derivatives)
    return d_x, d_widths, d_heights, d_derivatives


# ---------------------------------------------------------------------------------------------
# fused: unconstrained parameters theta -> spline (SPL.2-SPL.3, SPL.10-SPL.11) in one pass
# ---------------------------------------------------------------------------------------------
#
# theta: (m, 3K-1) per element, laid out [K width logits, K height logits, K-1 derivative
# pre-activations]; mins = (min_width, min_height, min_derivative). The NumPy twins are the
# composition of rq_parameters_numpy with the knot-level twins above; the numba loops build
# each element's knots in scratch rows and reuse the row helpers.


def derivative_shift(min_derivative: float) -> float:
    """(SPL.3) c0 = log(e^{1 - min_derivative} - 1): softplus(c0) + min_derivative = 1."""
    return float(np.log(np.expm1(1.0 - min_derivative)))


def rq_parameters_numpy(theta, bound, min_width, min_height, min_derivative):
    """(SPL.2-SPL.3) theta: (..., 3K-1) -> widths (..., K), heights (..., K), derivatives (..., K+1),
    and the cache (p_w, p_h, pre) for :func:`rq_parameters_backward_numpy`."""
    n_bins = (theta.shape[-1] + 1) // 3
    a_w = theta[..., :n_bins]
    a_h = theta[..., n_bins:2 * n_bins]
    e_w = np.exp(a_w - np.max(a_w, axis=-1, keepdims=True))
    e_h = np.exp(a_h - np.max(a_h, axis=-1, keepdims=True))
    p_w = e_w / np.sum(e_w, axis=-1, keepdims=True)
    p_h = e_h / np.sum(e_h, axis=-1, keepdims=True)
    widths = 2.0 * bound * min_width + 2.0 * bound * (1.0 - n_bins * min_width) * p_w
    heights = 2.0 * bound * min_height + 2.0 * bound * (1.0 - n_bins * min_height) * p_h
    pre = theta[..., 2 * n_bins:] + derivative_shift(min_derivative)
    derivatives = np.ones(theta.shape[:-1] + (n_bins + 1,), dtype=theta.dtype)
    derivatives[..., 1:-1] = min_derivative + np.logaddexp(0.0, pre)
    return widths, heights, derivatives, (p_w, p_h, pre)


def rq_parameters_backward_numpy(cache, bound, min_width, min_height, d_widths, d_heights,
                                 d_derivatives):
    """(SPL.10-SPL.11) VJP of :func:`rq_parameters_numpy`: -> d_theta (..., 3K-1)."""
    p_w, p_h, pre = cache
    n_bins = p_w.shape[-1]
    d_pw = 2.0 * bound * (1.0 - n_bins * min_width) * d_widths
    d_ph = 2.0 * bound * (1.0 - n_bins * min_height) * d_heights
    d_theta = np.empty(p_w.shape[:-1] + (3 * n_bins - 1,), dtype=p_w.dtype)
    d_theta[..., :n_bins] = p_w * (d_pw - np.sum(d_pw * p_w, axis=-1, keepdims=True))
    d_theta[..., n_bins:2 * n_bins] = p_h * (d_ph - np.sum(d_ph * p_h, axis=-1, keepdims=True))
    e = np.exp(-np.abs(pre))
    sig = np.where(pre >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    d_theta[..., 2 * n_bins:] = sig * d_derivatives[..., 1:-1]
    return d_theta


def rq_spline_theta_forward_numpy(x, theta, bound, min_width, min_height, min_derivative):
    """(SPL.2-SPL.6) x: (m,), theta: (m, 3K-1) -> y: (m,), log_deriv: (m,)."""
    w, h, d, _ = rq_parameters_numpy(theta, bound, min_width, min_height, min_derivative)
    return rq_spline_forward_numpy(x, w, h, d, bound)


def rq_spline_theta_inverse_numpy(y, theta, bound, min_width, min_height, min_derivative):
    """(SPL.2-SPL.3, SPL.7-SPL.8) y: (m,), theta: (m, 3K-1) -> x: (m,), log_deriv_inv: (m,)."""
    w, h, d, _ = rq_parameters_numpy(theta, bound, min_width, min_height, min_derivative)
    return rq_spline_inverse_numpy(y, w, h, d, bound)


def rq_spline_theta_backward_numpy(x, theta, bound, min_width, min_height, min_derivative,
                                   d_y, d_log_deriv):
    """(SPL.9a-SPL.9e, SPL.10-SPL.11) VJP of the fused forward: -> d_x: (m,), d_theta: (m, 3K-1)."""
    w, h, d, cache = rq_parameters_numpy(theta, bound, min_width, min_height, min_derivative)
    d_x, d_w, d_h, d_d = rq_spline_backward_numpy(x, w, h, d, bound, d_y, d_log_deriv)
    return d_x, rq_parameters_backward_numpy(cache, bound, min_width, min_height, d_w, d_h, d_d)


@kernel
def _params_row(theta, i, bound, min_w, min_h, min_d, shift, w, h, d, p_w, p_h):
    """(SPL.2-SPL.3) Row i of theta -> row 0 of the scratch knots w, h, d (and the softmaxes)."""
    n_bins = w.shape[1]
    for off, p, minimum in ((0, p_w, min_w), (n_bins, p_h, min_h)):
        m = theta[i, off]
        for j in range(1, n_bins):
            m = max(m, theta[i, off + j])
        total = 0.0
        for j in range(n_bins):
            p[j] = np.exp(theta[i, off + j] - m)
            total += p[j]
        for j in range(n_bins):
            p[j] = p[j] / total
    for j in range(n_bins):
        w[0, j] = 2.0 * bound * min_w + 2.0 * bound * (1.0 - n_bins * min_w) * p_w[j]
        h[0, j] = 2.0 * bound * min_h + 2.0 * bound * (1.0 - n_bins * min_h) * p_h[j]
    d[0, 0] = 1.0
    d[0, n_bins] = 1.0
    for j in range(1, n_bins):
        pre = theta[i, 2 * n_bins + j - 1] + shift
        d[0, j] = min_d + (max(pre, 0.0) + np.log1p(np.exp(-abs(pre))))


@kernel
def _scratch(theta):
    n_bins = (theta.shape[1] + 1) // 3
    dt = theta.dtype
    return (np.empty((1, n_bins), dt), np.empty((1, n_bins), dt), np.empty((1, n_bins + 1), dt),
            np.empty(n_bins, dt), np.empty(n_bins, dt))


@kernel
def _rq_theta_forward_loop(x, theta, bound, min_w, min_h, min_d, shift, y, log_deriv):
    w, h, d, p_w, p_h = _scratch(theta)
    for i in range(x.shape[0]):
        if x[i] < -bound or x[i] > bound:
            y[i] = x[i]
            log_deriv[i] = 0.0
            continue
        _params_row(theta, i, bound, min_w, min_h, min_d, shift, w, h, d, p_w, p_h)
        y[i], log_deriv[i] = _forward_row(x[i], w, h, d, 0, bound)


@kernel
def _rq_theta_inverse_loop(y, theta, bound, min_w, min_h, min_d, shift, x, log_deriv_inv):
    w, h, d, p_w, p_h = _scratch(theta)
    for i in range(y.shape[0]):
        if y[i] < -bound or y[i] > bound:
            x[i] = y[i]
            log_deriv_inv[i] = 0.0
            continue
        _params_row(theta, i, bound, min_w, min_h, min_d, shift, w, h, d, p_w, p_h)
        x[i], log_deriv_inv[i] = _inverse_row(y[i], w, h, d, 0, bound)


@kernel
def _rq_theta_backward_loop(x, theta, bound, min_w, min_h, min_d, shift, d_y, d_log_deriv,
                            d_x, d_theta):
    w, h, d, p_w, p_h = _scratch(theta)
    d_w, d_h, d_d = np.empty_like(w), np.empty_like(h), np.empty_like(d)
    n_bins = w.shape[1]
    for i in range(x.shape[0]):
        if x[i] < -bound or x[i] > bound:
            d_x[i] = d_y[i]
            for j in range(theta.shape[1]):
                d_theta[i, j] = 0.0
            continue
        _params_row(theta, i, bound, min_w, min_h, min_d, shift, w, h, d, p_w, p_h)
        d_x[i] = _backward_row(x[i], w, h, d, 0, bound, d_y[i], d_log_deriv[i], d_w, d_h, d_d, 0)
        # (SPL.10) softmax VJP for widths and heights
        for off, p, dk, minimum in ((0, p_w, d_w, min_w), (n_bins, p_h, d_h, min_h)):
            scale = 2.0 * bound * (1.0 - n_bins * minimum)
            dot = 0.0
            for j in range(n_bins):
                dot += scale * dk[0, j] * p[j]
            for j in range(n_bins):
                d_theta[i, off + j] = p[j] * (scale * dk[0, j] - dot)
        # (SPL.11) softplus' = sigmoid
        for j in range(1, n_bins):
            pre = theta[i, 2 * n_bins + j - 1] + shift
            e = np.exp(-abs(pre))
            sig = 1.0 / (1.0 + e) if pre >= 0 else e / (1.0 + e)
            d_theta[i, 2 * n_bins + j - 1] = sig * d_d[0, j]


def rq_spline_theta_forward(x, theta, bound, min_width, min_height, min_derivative):
    """(SPL.2-SPL.6) Numba kernel; same contract as ``rq_spline_theta_forward_numpy``."""
    y = np.empty_like(x)
    log_deriv = np.empty_like(x)
    _rq_theta_forward_loop(x, theta, float(bound), float(min_width), float(min_height),
                           float(min_derivative), derivative_shift(min_derivative), y, log_deriv)
    return y, log_deriv


def rq_spline_theta_inverse(y, theta, bound, min_width, min_height, min_derivative):
    """(SPL.2-SPL.3, SPL.7-SPL.8) Numba kernel; same contract as ``rq_spline_theta_inverse_numpy``."""
    x = np.empty_like(y)
    log_deriv_inv = np.empty_like(y)
    _rq_theta_inverse_loop(y, theta, float(bound), float(min_width), float(min_height),
                           float(min_derivative), derivative_shift(min_derivative), x, log_deriv_inv)
    return x, log_deriv_inv


def rq_spline_theta_backward(x, theta, bound, min_width, min_height, min_derivative, d_y,
                             d_log_deriv):
    """(SPL.9a-SPL.9e, SPL.10-SPL.11) Numba kernel; same contract as
    ``rq_spline_theta_backward_numpy``."""
    d_x = np.empty_like(x)
    d_theta = np.empty_like(theta)
    _rq_theta_backward_loop(x, theta, float(bound), float(min_width), float(min_height),
                            float(min_derivative), derivative_shift(min_derivative), d_y,
                            d_log_deriv, d_x, d_theta)
    return d_x, d_theta


# ---------------------------------------------------------------------------------------------
# the saved pair for training: the forward keeps each element's knots, the backward reuses them
# ---------------------------------------------------------------------------------------------
#
# Training runs the fused forward and then its VJP on the same theta, and the VJP above rebuilds
# every element's knots (SPL.2-SPL.3: 2K exp, K-1 exp + log1p), which is more than half of its
# time. ``rq_spline_theta_forward_saved`` returns them as ``saved = (widths (m, K), heights
# (m, K), derivatives (m, K+1), p_w (m, K), p_h (m, K), sig (m, K-1))``, the softmaxes of
# (SPL.2) and the sigmoids (SPL.11) included, and ``rq_spline_theta_backward_saved`` takes them
# instead of theta: the same operations on the same values as the fused pair, so the results
# are bit-identical to ``rq_spline_theta_forward`` / ``rq_spline_theta_backward``. Rows of
# elements outside [-B, B] (identity tails, SPL.6) are left unwritten and never read. ``sig`` is
# float64 whatever theta's dtype (the fused backward multiplies a float64 sigmoid too).


def _sigmoid_numpy(pre):
    e = np.exp(-np.abs(pre))
    return np.where(pre >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def rq_spline_theta_forward_saved_numpy(x, theta, bound, min_width, min_height, min_derivative):
    """(SPL.2-SPL.6) x: (m,), theta: (m, 3K-1) -> y: (m,), log_deriv: (m,), saved (see above)."""
    w, h, d, (p_w, p_h, pre) = rq_parameters_numpy(theta, bound, min_width, min_height,
                                                   min_derivative)
    y, log_deriv = rq_spline_forward_numpy(x, w, h, d, bound)
    return y, log_deriv, (w, h, d, p_w, p_h, _sigmoid_numpy(pre))


def rq_spline_theta_backward_saved_numpy(x, saved, bound, min_width, min_height, d_y,
                                         d_log_deriv):
    """(SPL.9a-SPL.11) VJP from the saved knots: -> d_x: (m,), d_theta: (m, 3K-1)."""
    w, h, d, p_w, p_h, sig = saved
    n_bins = w.shape[1]
    d_x, d_w, d_h, d_d = rq_spline_backward_numpy(x, w, h, d, bound, d_y, d_log_deriv)
    d_theta = np.empty((x.shape[0], 3 * n_bins - 1), dtype=w.dtype)
    for off, p, dk, minimum in ((0, p_w, d_w, min_width), (n_bins, p_h, d_h, min_height)):
        d_p = 2.0 * bound * (1.0 - n_bins * minimum) * dk
        d_theta[:, off:off + n_bins] = p * (d_p - np.sum(d_p * p, axis=-1, keepdims=True))  # (SPL.10)
    d_theta[:, 2 * n_bins:] = sig * d_d[:, 1:-1]                                           # (SPL.11)
    return d_x, d_theta


@kernel
def _params_row_saved(theta, i, bound, min_w, min_h, min_d, shift, w, h, d, p_w, p_h, sig):
    """(SPL.2-SPL.3) Row i of theta -> row i of w, h, d, p_w, p_h and the sigmoids of (SPL.11);
    the arithmetic of ``_params_row`` in the same order."""
    n_bins = w.shape[1]
    for off, p in ((0, p_w), (n_bins, p_h)):
        m = theta[i, off]
        for j in range(1, n_bins):
            m = max(m, theta[i, off + j])
        total = 0.0
        for j in range(n_bins):
            p[i, j] = np.exp(theta[i, off + j] - m)
            total += p[i, j]
        for j in range(n_bins):
            p[i, j] = p[i, j] / total
    for j in range(n_bins):
        w[i, j] = 2.0 * bound * min_w + 2.0 * bound * (1.0 - n_bins * min_w) * p_w[i, j]
        h[i, j] = 2.0 * bound * min_h + 2.0 * bound * (1.0 - n_bins * min_h) * p_h[i, j]
    d[i, 0] = 1.0
    d[i, n_bins] = 1.0
    for j in range(1, n_bins):
        pre = theta[i, 2 * n_bins + j - 1] + shift
        e = np.exp(-abs(pre))
        d[i, j] = min_d + (max(pre, 0.0) + np.log1p(e))
        sig[i, j - 1] = 1.0 / (1.0 + e) if pre >= 0 else e / (1.0 + e)


@kernel
def _rq_theta_forward_saved_loop(x, theta, bound, min_w, min_h, min_d, shift, y, log_deriv,
                                 w, h, d, p_w, p_h, sig):
    for i in range(x.shape[0]):
        if x[i] < -bound or x[i] > bound:
            y[i] = x[i]
            log_deriv[i] = 0.0
            continue
        _params_row_saved(theta, i, bound, min_w, min_h, min_d, shift, w, h, d, p_w, p_h, sig)
        y[i], log_deriv[i] = _forward_row(x[i], w, h, d, i, bound)


@kernel
def _rq_theta_backward_saved_loop(x, w, h, d, p_w, p_h, sig, bound, min_w, min_h, d_y,
                                  d_log_deriv, d_x, d_theta):
    n_bins = w.shape[1]
    d_w, d_h, d_d = np.empty((1, n_bins), w.dtype), np.empty((1, n_bins), w.dtype), \
        np.empty((1, n_bins + 1), w.dtype)
    for i in range(x.shape[0]):
        if x[i] < -bound or x[i] > bound:
            d_x[i] = d_y[i]
            for j in range(d_theta.shape[1]):
                d_theta[i, j] = 0.0
            continue
        d_x[i] = _backward_row(x[i], w, h, d, i, bound, d_y[i], d_log_deriv[i], d_w, d_h, d_d, 0)
        for off, p, dk, minimum in ((0, p_w, d_w, min_w), (n_bins, p_h, d_h, min_h)):
            scale = 2.0 * bound * (1.0 - n_bins * minimum)                 # (SPL.10)
            dot = 0.0
            for j in range(n_bins):
                dot += scale * dk[0, j] * p[i, j]
            for j in range(n_bins):
                d_theta[i, off + j] = p[i, j] * (scale * dk[0, j] - dot)
        for j in range(1, n_bins):                                         # (SPL.11)
            d_theta[i, 2 * n_bins + j - 1] = sig[i, j - 1] * d_d[0, j]


def rq_spline_theta_forward_saved(x, theta, bound, min_width, min_height, min_derivative):
    """(SPL.2-SPL.6) Numba kernel; same contract as ``rq_spline_theta_forward_saved_numpy``, values
    bit-identical to ``rq_spline_theta_forward``."""
    m, n_bins = x.shape[0], (theta.shape[1] + 1) // 3
    y = np.empty_like(x)
    log_deriv = np.empty_like(x)
    saved = (np.empty((m, n_bins), theta.dtype), np.empty((m, n_bins), theta.dtype),
             np.empty((m, n_bins + 1), theta.dtype), np.empty((m, n_bins), theta.dtype),
             np.empty((m, n_bins), theta.dtype), np.empty((m, n_bins - 1)))
    _rq_theta_forward_saved_loop(x, theta, float(bound), float(min_width), float(min_height),
                                 float(min_derivative), derivative_shift(min_derivative), y,
                                 log_deriv, *saved)
    return y, log_deriv, saved


def rq_spline_theta_backward_saved(x, saved, bound, min_width, min_height, d_y, d_log_deriv):
    """(SPL.9a-SPL.11) Numba kernel; same contract as ``rq_spline_theta_backward_saved_numpy``,
    values bit-identical to ``rq_spline_theta_backward`` on the theta that ``saved`` came from."""
    w = saved[0]
    d_x = np.empty_like(x)
    d_theta = np.empty((x.shape[0], 3 * w.shape[1] - 1), dtype=w.dtype)
    _rq_theta_backward_saved_loop(x, *saved, float(bound), float(min_width), float(min_height),
                                  d_y, d_log_deriv, d_x, d_theta)
    return d_x, d_theta
