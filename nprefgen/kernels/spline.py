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

from nprefgen.kernels._jit import kernel

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
    """(SPL.7)-(SPL.8) The xi in [0, 1] with y - y_k = dy: the stable root 2c / (-b - sqrt(b^2 - 4ac))."""
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
def _rq_forward_loop(x, widths, heights, derivatives, bound, y, log_deriv):
    for i in range(x.shape[0]):
        v = x[i]
        if v < -bound or v > bound:
            y[i] = v
            log_deriv[i] = 0.0
            continue
        k, xk = _bin_and_left_knot(widths, i, v, bound)
        yk = _left_knot(heights, i, k, bound)
        w = widths[i, k]
        h = heights[i, k]
        dy, ld = _rq_eval_jit((v - xk) / w, h / w, h, derivatives[i, k], derivatives[i, k + 1])
        y[i] = yk + dy
        log_deriv[i] = ld


@kernel
def _rq_inverse_loop(y, widths, heights, derivatives, bound, x, log_deriv_inv):
    for i in range(y.shape[0]):
        v = y[i]
        if v < -bound or v > bound:
            x[i] = v
            log_deriv_inv[i] = 0.0
            continue
        k, yk = _bin_and_left_knot(heights, i, v, bound)
        xk = _left_knot(widths, i, k, bound)
        w = widths[i, k]
        h = heights[i, k]
        s = h / w
        d0 = derivatives[i, k]
        d1 = derivatives[i, k + 1]
        xi = _rq_solve_jit(v - yk, s, h, d0, d1)
        x[i] = xk + xi * w
        log_deriv_inv[i] = -_rq_eval_jit(xi, s, h, d0, d1)[1]


@kernel
def _rq_backward_loop(x, widths, heights, derivatives, bound, d_y, d_log_deriv,
                      d_x, d_widths, d_heights, d_derivatives):
    for i in range(x.shape[0]):
        v = x[i]
        for j in range(widths.shape[1]):
            d_widths[i, j] = 0.0
            d_heights[i, j] = 0.0
        for j in range(derivatives.shape[1]):
            d_derivatives[i, j] = 0.0
        if v < -bound or v > bound:
            d_x[i] = d_y[i]
            continue
        k, xk = _bin_and_left_knot(widths, i, v, bound)
        w = widths[i, k]
        h = heights[i, k]
        s = h / w
        xi = (v - xk) / w
        gy = d_y[i]
        g_xi, g_s, g_h, g_d0, g_d1 = _rq_partials_jit(xi, s, h, derivatives[i, k],
                                                      derivatives[i, k + 1], gy, d_log_deriv[i])
        d_x[i] = g_xi / w
        d_xk = -g_xi / w
        for j in range(k):
            d_widths[i, j] = d_xk
            d_heights[i, j] = gy
        d_widths[i, k] = -g_xi * xi / w - g_s * s / w
        d_heights[i, k] = g_h + g_s / w
        d_derivatives[i, k] = g_d0
        d_derivatives[i, k + 1] = g_d1


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
