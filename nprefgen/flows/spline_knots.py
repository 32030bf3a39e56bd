"""The rational-quadratic spline with nflows' knot construction (derivations/splines.md,
SPL.22-SPL.23).

nprefgen's :class:`~nprefgen.flows.spline.SplineTransform` and nflows'
``unconstrained_rational_quadratic_spline`` (linear tails) agree in exact arithmetic up to a
shift of the derivative pre-activation (SPL.3), but differ in two details that matter in float64:

- nflows builds the knots first and the bins from them: kappa_j = 2B sum_{i<j} q_i - B with the
  end knots set to -B and B exactly, w_k = kappa_{k+1} - kappa_k (SPL.22);
- PyTorch's ``F.softplus`` returns its argument above 20, so a knot derivative above ~20 differs
  from the exact softplus by up to 2e-9 (1e-10 relative), which an inverse through a bin of slope
  1e-6 amplifies to 1e-8 in x.

:class:`KnotSplineTransform` reproduces both (``softplus_threshold=20``,
``derivative_offset=0``), and ``logit_divisor`` the division by sqrt(hidden_features) that nflows
applies to the width and height logits when the network has that attribute. The spline itself, its inverse and its VJP are the kernels
of :mod:`nprefgen.kernels.spline` (SPL.4-SPL.9e); this module adds the parameterisation

    q = m + (1 - K m) softmax(theta_w / l),   kappa as above,   w_k = kappa_{k+1} - kappa_k,
    delta = (1, m_d + sp(theta_d + o), 1),   sp(v) = v if v > tau else log(1 + e^v)      (SPL.22)

and its VJP (SPL.23): d_kappa_j = d_w_{j-1} - d_w_j for the interior knots (the end knots are
constants), d_q_i = 2B sum_{j > i, j < K} d_kappa_j, d_theta_w = (1 - K m) p (d_q - <d_q, p>) / l,
d_theta_d = d_delta sp'(theta_d + o) with sp' = 1 above tau, sigmoid below.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_int, check_scalar
from nprefgen.flows.coupling import ElementwiseTransform
from nprefgen.kernels.spline import rq_spline_backward, rq_spline_forward, rq_spline_inverse


def _sigmoid(v):
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sizes(logits, left, right, minimum, divisor):
    """(SPL.22) one of widths/heights on [left, right]: logits (m, K) -> sizes (m, K) from the
    knots, cache."""
    k = logits.shape[1]
    v = logits / divisor
    e = np.exp(v - np.max(v, axis=1, keepdims=True))
    p = e / np.sum(e, axis=1, keepdims=True)
    q = minimum + (1.0 - minimum * k) * p
    knots = np.zeros((logits.shape[0], k + 1), dtype=logits.dtype)
    knots[:, 1:] = np.cumsum(q, axis=1)
    knots = (right - left) * knots + left
    knots[:, 0], knots[:, -1] = left, right
    return np.diff(knots, axis=1), p


def _sizes_backward(p, d_sizes, length, minimum, divisor):
    """(SPL.23) VJP of :func:`_sizes`: d_sizes (m, K) -> d_logits (m, K)."""
    k = p.shape[1]
    d_knots = np.zeros((p.shape[0], k + 1), dtype=d_sizes.dtype)
    d_knots[:, 1:] += d_sizes
    d_knots[:, :-1] -= d_sizes
    d_knots[:, 0] = d_knots[:, -1] = 0.0                 # the end knots are set exactly
    # knot j (1 <= j <= K-1) = 2B sum_{i<j} q_i - B: q_i collects the knots after it
    d_q = length * np.cumsum(d_knots[:, ::-1], axis=1)[:, ::-1][:, 1:]
    d_p = (1.0 - minimum * k) * d_q
    return p * (d_p - np.sum(d_p * p, axis=1, keepdims=True)) / divisor


def knot_spline_parameters(theta, bound, min_width, min_height, min_derivative,
                           softplus_threshold=20.0, derivative_offset=0.0, logit_divisor=1.0,
                           tails="linear"):
    """(SPL.22) theta: (m, 3K-1) = [K width, K height, K-1 derivative logits] -> widths (m, K),
    heights (m, K), derivatives (m, K+1) on [-B, B], cache for the VJP. ``tails=None``: nflows'
    spline on [0, 1] (B ignored) with all K+1 derivatives free, theta: (m, 3K+1)."""
    k = (theta.shape[1] + 1) // 3 if tails == "linear" else (theta.shape[1] - 1) // 3
    left, right = (-bound, bound) if tails == "linear" else (0.0, 1.0)
    w, p_w = _sizes(theta[:, :k], left, right, min_width, logit_divisor)
    h, p_h = _sizes(theta[:, k:2 * k], left, right, min_height, logit_divisor)
    v = theta[:, 2 * k:] + derivative_offset
    sp, dsp = np.logaddexp(0.0, v), _sigmoid(v)
    if softplus_threshold is not None:
        above = v > softplus_threshold
        sp, dsp = np.where(above, v, sp), np.where(above, 1.0, dsp)
    d = np.ones((theta.shape[0], k + 1), dtype=theta.dtype)
    if tails == "linear":
        d[:, 1:-1] = min_derivative + sp
    else:
        d[:] = min_derivative + sp
    return w, h, d, (p_w, p_h, dsp, right - left, tails)


def knot_spline_parameters_backward(cache, bound, min_width, min_height, logit_divisor,
                                    d_widths, d_heights, d_derivatives):
    """(SPL.23) VJP of :func:`knot_spline_parameters` -> d_theta: (m, 3K-1), or (m, 3K+1)
    without tails."""
    p_w, p_h, dsp, length, tails = cache
    d_d = d_derivatives[:, 1:-1] if tails == "linear" else d_derivatives
    return np.concatenate([_sizes_backward(p_w, d_widths, length, min_width, logit_divisor),
                           _sizes_backward(p_h, d_heights, length, min_height, logit_divisor),
                           d_d * dsp], axis=1)


class KnotSplineTransform(ElementwiseTransform):
    """The RQ spline with nflows' knots and PyTorch's softplus (SPL.22-SPL.23), identity tails
    outside [-B, B]; h: (n, d_B (3K-1)) read coordinate-major as (n, d_B, 3K-1).

    ``tails=None`` is nflows' ``rational_quadratic_spline`` without tails: the spline on [0, 1]
    with all K+1 derivatives free (h: (n, d_B (3K+1))); it is evaluated as the spline on [-1, 1]
    with doubled bins, y = (G(2x - 1) + 1) / 2, whose slope is G'. nflows refuses inputs outside
    [0, 1]; here they pass unchanged (the identity).

    Parameters
    ----------
    n_bins : K; bound : B (nflows' tail_bound); min_width, min_height, min_derivative : as nflows
    softplus_threshold : tau (PyTorch: 20.0; None for the exact softplus)
    derivative_offset : o added to the derivative pre-activation (nflows: 0; nprefgen's own
        spline: log(e^(1 - min_derivative) - 1))
    logit_divisor : l dividing the width and height logits (nflows, when the network has
        ``hidden_features`` H: sqrt(H))
    tails : "linear" (default) or None (the [0, 1] spline; ``bound`` is then ignored)
    """

    coordinate_major = True

    def __init__(self, n_bins: int = 10, bound: float = 1.0, min_width: float = 1e-3,
                 min_height: float = 1e-3, min_derivative: float = 1e-3,
                 softplus_threshold: float | None = 20.0, derivative_offset: float = 0.0,
                 logit_divisor: float = 1.0, tails: str | None = "linear") -> None:
        self.n_bins = check_int(n_bins, "n_bins", low=1)
        self.bound = check_scalar(bound, "bound", low=0.0, low_inclusive=False)
        self.min_width = check_scalar(min_width, "min_width", low=0.0, high=1.0 / self.n_bins,
                                      high_inclusive=False)
        self.min_height = check_scalar(min_height, "min_height", low=0.0, high=1.0 / self.n_bins,
                                       high_inclusive=False)
        self.min_derivative = check_scalar(min_derivative, "min_derivative", low=0.0)
        self.softplus_threshold = None if softplus_threshold is None else \
            check_scalar(softplus_threshold, "softplus_threshold")
        self.derivative_offset = check_scalar(derivative_offset, "derivative_offset")
        self.logit_divisor = check_scalar(logit_divisor, "logit_divisor", low=0.0, low_inclusive=False)
        if tails not in ("linear", None):
            raise ValueError(f"tails: expected 'linear' or None, got {tails!r}")
        self.tails = tails
        self.n_params = 3 * self.n_bins - 1 if tails == "linear" else 3 * self.n_bins + 1
        self._bound = self.bound if tails == "linear" else 1.0      # the kernels' interval

    def _knots(self, v, h):
        """Flat inputs in the kernels' frame and the kernels' widths, heights, derivatives."""
        theta = h.reshape(v.size, self.n_params)
        w, hh, d, cache = knot_spline_parameters(
            theta, self.bound, self.min_width, self.min_height, self.min_derivative,
            self.softplus_threshold, self.derivative_offset, self.logit_divisor, self.tails)
        v = np.ascontiguousarray(v).reshape(-1)
        if self.tails is None:                  # [0, 1] -> [-1, 1]: x' = 2x - 1, bins doubled
            v, w, hh = 2.0 * v - 1.0, 2.0 * w, 2.0 * hh
        return v, (w, hh, d, cache)

    def forward(self, x_b, h):
        """(SPL.22), (SPL.4)-(SPL.6): x_b: (n, d_B) -> y_b, log_det: (n,), cache."""
        x, (w, hh, d, cache) = self._knots(x_b, h)
        y, log_deriv = rq_spline_forward(x, w, hh, d, self._bound)
        if self.tails is None:
            y = (y + 1.0) / 2.0
        return (y.reshape(x_b.shape), log_deriv.reshape(x_b.shape).sum(axis=1),
                (x, w, hh, d, cache, x_b.shape))

    def inverse(self, y_b, h):
        """(SPL.7-SPL.8) y_b: (n, d_B) -> x_b, log_det_inv: (n,)."""
        y, (w, hh, d, _) = self._knots(y_b, h)
        x, log_deriv_inv = rq_spline_inverse(y, w, hh, d, self._bound)
        if self.tails is None:
            x = (x + 1.0) / 2.0
        return x.reshape(y_b.shape), log_deriv_inv.reshape(y_b.shape).sum(axis=1)

    def backward(self, cache, d_y, d_log_det):
        """(SPL.9a-SPL.9e), (SPL.23): d_y: (n, d_B), d_log_det: (n,) -> d_x_b, d_h."""
        x, w, hh, d, pcache, shape = cache
        d_log_deriv = np.ascontiguousarray(np.broadcast_to(d_log_det[:, None], shape)).reshape(-1)
        d_y = np.ascontiguousarray(d_y).reshape(-1)
        if self.tails is None:                  # y = (y' + 1) / 2: d_y' = d_y / 2
            d_y = d_y / 2.0
        d_x, d_w, d_h, d_d = rq_spline_backward(x, w, hh, d, self._bound, d_y, d_log_deriv)
        if self.tails is None:                  # x' = 2x - 1, w' = 2w: the chain factors 2
            d_x, d_w, d_h = 2.0 * d_x, 2.0 * d_w, 2.0 * d_h
        d_theta = knot_spline_parameters_backward(pcache, self.bound, self.min_width,
                                                  self.min_height, self.logit_divisor, d_w, d_h, d_d)
        return d_x.reshape(shape), d_theta.reshape(shape[0], -1)

    def __repr__(self) -> str:
        return (f"KnotSplineTransform(n_bins={self.n_bins}, bound={self.bound:g}, "
                f"softplus_threshold={self.softplus_threshold}, logit_divisor={self.logit_divisor:g}, "
                f"tails={self.tails!r})")
