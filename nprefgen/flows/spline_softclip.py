"""The rational-quadratic spline with zuko's parameterisation (derivations/splines.md,
SPL.19-SPL.21).

nprefgen's :class:`~nprefgen.flows.spline.SplineTransform` builds its knots with a minimum bin
size and softplus derivatives (SPL.2-SPL.3), the convention of Durkan et al. and nflows. zuko's
``MonotonicRQSTransform`` differs in every piece but the spline itself: the logits are softly
clipped, there is no minimum bin size, and the knot derivatives are exponentials,

    w~ = w / (1 + |w| / b_s),  h~ = h / (1 + |h| / b_s),  d~ = d / (1 + |d| / b_d)      (SPL.19)
    widths = 2B softmax(w~),  heights = 2B softmax(h~),  derivatives = [1, exp(d~), 1]   (SPL.20)

with b_d = -log(slope) and b_s = b_d / 2 (zuko: slope = 1e-3, B = 5), so every interior
derivative lies in (slope, 1/slope). The spline, its inverse and its VJP are the kernels of
:mod:`nprefgen.kernels.spline` (SPL.4-SPL.9e); this module adds the parameterisation and its VJP

    d_w = softmax'(w~)^T (2B d_widths) / (1 + |w|/b_s)^2,
    d_d = d_derivatives[1:-1] exp(d~) / (1 + |d|/b_d)^2                                  (SPL.21)

(the same for h). ``theta = 0`` is the identity on [-B, B], as in nprefgen's own spline.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_int, check_scalar
from nprefgen.flows.coupling import ElementwiseTransform
from nprefgen.kernels.spline import rq_spline_backward, rq_spline_forward, rq_spline_inverse


def _softclip(v, b):
    """v / (1 + |v| / b) and its derivative 1 / (1 + |v| / b)^2, elementwise."""
    u = 1.0 + np.abs(v) / b
    return v / u, 1.0 / (u * u)


def _softmax(v):
    e = np.exp(v - np.max(v, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def softclip_spline_parameters(theta, bound: float, slope: float):
    """(SPL.19)-(SPL.20) theta: (m, 3K-1) = [K width, K height, K-1 derivative logits] ->
    widths (m, K), heights (m, K), derivatives (m, K+1), cache for the VJP."""
    n_bins = (theta.shape[-1] + 1) // 3
    b_d = -float(np.log(slope))
    w, dw = _softclip(theta[:, :n_bins], b_d / 2.0)                   # (SPL.19)
    h, dh = _softclip(theta[:, n_bins:2 * n_bins], b_d / 2.0)
    d, dd = _softclip(theta[:, 2 * n_bins:], b_d)
    p_w, p_h = _softmax(w), _softmax(h)                               # (SPL.20)
    derivatives = np.ones((theta.shape[0], n_bins + 1), dtype=theta.dtype)
    derivatives[:, 1:-1] = np.exp(d)
    return (2.0 * bound * p_w, 2.0 * bound * p_h, derivatives,
            (p_w, p_h, dw, dh, derivatives[:, 1:-1] * dd))


def softclip_spline_parameters_backward(cache, bound: float, d_widths, d_heights, d_derivatives):
    """(SPL.21) VJP of :func:`softclip_spline_parameters` -> d_theta: (m, 3K-1)."""
    p_w, p_h, dw, dh, ddd = cache
    g_w = 2.0 * bound * d_widths
    g_h = 2.0 * bound * d_heights
    return np.concatenate([p_w * (g_w - np.sum(g_w * p_w, axis=1, keepdims=True)) * dw,
                           p_h * (g_h - np.sum(g_h * p_h, axis=1, keepdims=True)) * dh,
                           d_derivatives[:, 1:-1] * ddd], axis=1)


class SoftclipSplineTransform(ElementwiseTransform):
    """The RQ spline of (SPL.4-SPL.9e) with zuko's parameterisation (SPL.19-SPL.21), identity
    tails outside [-B, B]; h: (n, d_B (3K-1)) read coordinate-major as (n, d_B, 3K-1).

    Parameters
    ----------
    n_bins : K >= 1; bound : B > 0 (zuko: 5.0); slope : the minimum slope in (0, 1) (zuko: 1e-3).
    """

    coordinate_major = True

    def __init__(self, n_bins: int = 8, bound: float = 5.0, slope: float = 1e-3) -> None:
        self.n_bins = check_int(n_bins, "n_bins", low=1)
        self.bound = check_scalar(bound, "bound", low=0.0, low_inclusive=False)
        self.slope = check_scalar(slope, "slope", low=0.0, high=1.0, low_inclusive=False,
                                  high_inclusive=False)
        self.n_params = 3 * self.n_bins - 1

    def _knots(self, v, h):
        theta = h.reshape(v.size, self.n_params)
        return np.ascontiguousarray(v).reshape(-1), softclip_spline_parameters(theta, self.bound,
                                                                               self.slope)

    def forward(self, x_b, h):
        """(SPL.20), (SPL.4)-(SPL.6): x_b: (n, d_B) -> y_b, log_det = sum_B log g'(x_B), cache."""
        x, (w, hh, d, cache) = self._knots(x_b, h)
        y, log_deriv = rq_spline_forward(x, w, hh, d, self.bound)
        return (y.reshape(x_b.shape), log_deriv.reshape(x_b.shape).sum(axis=1),
                (x, w, hh, d, cache, x_b.shape))

    def inverse(self, y_b, h):
        """(SPL.7-SPL.8) y_b: (n, d_B) -> x_b, log_det_inv: (n,)."""
        y, (w, hh, d, _) = self._knots(y_b, h)
        x, log_deriv_inv = rq_spline_inverse(y, w, hh, d, self.bound)
        return x.reshape(y_b.shape), log_deriv_inv.reshape(y_b.shape).sum(axis=1)

    def backward(self, cache, d_y, d_log_det):
        """(SPL.9a-SPL.9e), (SPL.21): d_y: (n, d_B), d_log_det: (n,) -> d_x_b, d_h."""
        x, w, hh, d, pcache, shape = cache
        d_log_deriv = np.ascontiguousarray(np.broadcast_to(d_log_det[:, None], shape)).reshape(-1)
        d_x, d_w, d_h, d_d = rq_spline_backward(x, w, hh, d, self.bound,
                                                np.ascontiguousarray(d_y).reshape(-1), d_log_deriv)
        d_theta = softclip_spline_parameters_backward(pcache, self.bound, d_w, d_h, d_d)
        return d_x.reshape(shape), d_theta.reshape(shape[0], -1)

    def __repr__(self) -> str:
        return (f"SoftclipSplineTransform(n_bins={self.n_bins}, bound={self.bound:g}, "
                f"slope={self.slope:g})")
