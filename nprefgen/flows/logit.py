"""Dequantization, the logit transform and bits per dimension (derivations/flows.md, FLOW.21-FLOW.22;
derivations/splines.md, SPL.14-SPL.16 for integer pixels: :func:`pixels_to_logit`,
:func:`logit_to_pixels`, :func:`pixel_log_likelihood`).

Pixel data are integers k in {0, ..., L-1} (L = 256 levels for MNIST). A continuous density on
them is obtained by uniform dequantization (Theis et al. 2016; the MAF paper):

    x = (k + u) / L,   u ~ U[0, 1)^D,   x in [0, 1)^D                                  (FLOW.20)

and a flow is trained in logit space (Papamakarios et al. 2017, lambda = 1e-6):

    p = lambda + (1 - 2 lambda) x / a,   y = logit(p) = log p - log(1 - p),
    log_det = sum_d [log(1 - 2 lambda) - log a - log p_d - log(1 - p_d)]              (FLOW.21)

(a = ``data_scale``, 1 for x in [0, 1]). With :class:`LogitTransform` as the first bijector of a
flow, ``log_prob`` is the density of x itself (data space); a flow trained directly on logit-space
data converts with :func:`data_log_prob_from_logit`. Bits per dimension of the dequantized data
(a density on [0, 1)^D, FLOW.22):

    bits/dim = -log p(x) / (D ln 2) + log2 L          (+8 for 256 levels, as in the MAF paper)

which is the density of the pixel values k + u on [0, L)^D. Its average over u is an upper bound
on the discrete model's code length in bits per pixel: by Jensen,
E_u log p((k + u)/L) - D log L <= log P(k) with P(k) the mass of k's cell (derivations/flows.md).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_int, check_rng, check_scalar
from nprefgen.flows.base import Bijector

LAMBDA = 1e-6


def logit_forward(x, lam: float = LAMBDA, data_scale: float = 1.0):
    """(FLOW.21) x: (n, D) in [0, data_scale] -> y: (n, D), log_det: (n,)."""
    p = lam + (1.0 - 2.0 * lam) * (x / data_scale)
    log_p, log_1mp = np.log(p), np.log1p(-p)
    y = log_p - log_1mp
    per_dim = float(np.log1p(-2.0 * lam) - np.log(data_scale)) - log_p - log_1mp  # float32 stays
    return y, per_dim.sum(axis=1)


def logit_inverse(y, lam: float = LAMBDA, data_scale: float = 1.0):
    """(FLOW.21) inverse: p = sigmoid(y), x = a (p - lambda) / (1 - 2 lambda); log_det_inv = -log_det.

    y: (n, D) -> x: (n, D), log_det_inv: (n,). log p = -softplus(-y), log(1-p) = -softplus(y).
    """
    y = check_array(y, "y", ndim=2)
    log_p, log_1mp = -np.logaddexp(0.0, -y), -np.logaddexp(0.0, y)
    p = np.exp(log_p)
    x = data_scale * (p - lam) / (1.0 - 2.0 * lam)
    per_dim = float(np.log1p(-2.0 * lam) - np.log(data_scale)) - log_p - log_1mp  # float32 stays
    return x, -per_dim.sum(axis=1)


def logit_backward(x, d_y, d_log_det, lam: float = LAMBDA, data_scale: float = 1.0):
    """VJP of (FLOW.21): with c = (1 - 2 lambda)/a, dy/dx = c / (p (1-p)) and
    dlog_det/dx = c (2p - 1) / (p (1-p)).  x, d_y: (n, D), d_log_det: (n,) -> d_x: (n, D)."""
    p = lam + (1.0 - 2.0 * lam) * (x / data_scale)
    c_over = ((1.0 - 2.0 * lam) / data_scale) / (p * (1.0 - p))
    return c_over * (d_y + d_log_det[:, None] * (2.0 * p - 1.0))


class LogitTransform(Bijector):
    """x in [0, a]^D -> logit space (FLOW.21), with its log-det so densities stay in data space.

    Parameters
    ----------
    dim : int, D
    lam : float in (0, 0.5), lambda (1e-6 as in the MAF paper) keeps p away from 0 and 1
    data_scale : float > 0, a (1 for dequantized data in [0, 1); 256 for raw k + u pixels)
    """

    def __init__(self, dim: int, lam: float = LAMBDA, data_scale: float = 1.0) -> None:
        super().__init__(dim)
        self.lam = check_scalar(lam, "lam", low=0.0, high=0.5, low_inclusive=False, high_inclusive=False)
        self.data_scale = check_scalar(data_scale, "data_scale", low=0.0, low_inclusive=False)

    def _check_range(self, x):
        if np.any(x < 0) or np.any(x > self.data_scale):
            raise ValueError(f"x: expected values in [0, {self.data_scale}] for the logit transform, "
                             f"got range [{x.min():.4g}, {x.max():.4g}]")

    def forward_cached(self, x, context=None):
        """(FLOW.21) x: (n, D) in [0, a] -> y: (n, D), log_det: (n,), cache = x."""
        x = self._check_x(x)
        self._check_context(context, x.shape[0])
        self._check_range(x)
        y, log_det = logit_forward(x, self.lam, self.data_scale)
        return y, log_det, x

    def inverse(self, z, context=None):
        z = self._check_x(z, "z")
        self._check_context(context, z.shape[0])
        return logit_inverse(z, self.lam, self.data_scale)

    def backward(self, x, d_z, d_log_det):
        d_z, d_log_det = self._check_cotangents(d_z, d_log_det, x.shape[0])
        return logit_backward(x, d_z, d_log_det, self.lam, self.data_scale), None

    def __repr__(self) -> str:
        return f"LogitTransform(dim={self.dim}, lam={self.lam:g}, data_scale={self.data_scale:g})"


def dequantize(pixels, levels: int = 256, *, rng=None, noise=None) -> np.ndarray:
    """(FLOW.20) Integer pixels k in {0..L-1}, (n, D) -> x = (k + u) / L in [0, 1)^D.

    rng : None, int or Generator (SPEC 7) drawing u ~ U[0, 1)^D; ``noise``: optional u of the
    same shape in [0, 1) instead (tests and fixed test sets).
    """
    rng = check_rng(rng)
    levels = check_int(levels, "levels", low=2)
    k = check_array(pixels, "pixels", ndim=2, dtype=np.float64)
    if np.any(k != np.round(k)) or np.any(k < 0) or np.any(k > levels - 1):
        raise ValueError(f"pixels: expected integers in [0, {levels - 1}], got range "
                         f"[{k.min():.4g}, {k.max():.4g}] (non-integers present: {bool(np.any(k != np.round(k)))})")
    if noise is None:
        u = rng.random(k.shape)
    else:
        u = check_array(noise, "noise", shape=k.shape)
        if np.any(u < 0) or np.any(u >= 1):
            raise ValueError("noise: expected values in [0, 1)")
    return (k + u) / levels


def pixels_to_logit(pixels, levels: int, lam: float = LAMBDA, *, rng=None, noise=None):
    """(SPL.14) Dequantize integer pixels (FLOW.20) and map them to logit space (FLOW.21).

    Parameters
    ----------
    pixels : (n, D) integer-valued pixels v in [0, levels - 1].
    levels : L, the number of grey levels (17 for the digits, 256 for MNIST).
    lam : lambda in (0, 0.5), the squeeze away from 0 and 1 (0.05 for the 17-level digits).
    rng : None, int or Generator drawing the noise e ~ U(0, 1)^D (unless ``noise`` is given).
    noise : (n, D) in [0, 1), the noise itself (tests, fixed test sets).

    Returns
    -------
    y : (n, D), the logit-space data.
    log_jac : (n,), sum_i log |dy_i / d v~_i| (SPL.15), so that
        ``log p(v~) = log q(y) + log_jac`` for a density q in logit space and v~ = v + e.
    """
    levels = check_int(levels, "levels", low=2)
    check_scalar(lam, "lam", low=0.0, high=0.5, low_inclusive=False, high_inclusive=False)
    x = dequantize(pixels, levels, rng=rng, noise=noise)          # (v + e) / L in [0, 1)
    y, log_det = logit_forward(x, lam)                              # (SPL.14)
    return y, log_det - x.shape[1] * np.log(levels)                 # (SPL.15): dx/dv~ = 1/L


def logit_to_pixels(y, levels: int, lam: float = LAMBDA) -> np.ndarray:
    """Invert (SPL.14) up to the noise: logit-space values -> integer pixels in [0, levels-1].

    y: (n, D) -> (n, D) float array of integers (floor of the dequantized value, clipped).
    """
    y = check_array(y, "y", ndim=2)
    levels = check_int(levels, "levels", low=2)
    check_scalar(lam, "lam", low=0.0, high=0.5, low_inclusive=False, high_inclusive=False)
    p = 1.0 / (1.0 + np.exp(-np.clip(y, -50.0, 50.0)))
    v = (p - lam) / (1.0 - 2.0 * lam) * levels
    return np.clip(np.floor(v), 0, levels - 1)


def pixel_log_likelihood(log_q, log_jac) -> np.ndarray:
    """(SPL.15) log p(v~) = log q(y) + log_jac: logit-space density -> dequantized pixel units
    (the density of v~ = v + e on [0, L)^D). log_q, log_jac: (n,) -> (n,)."""
    log_q = check_array(log_q, "log_q", ndim=1, allow_inf=True)
    log_jac = check_array(log_jac, "log_jac", shape=log_q.shape)
    return log_q + log_jac


def data_log_prob_from_logit(log_prob_logit, y, lam: float = LAMBDA) -> np.ndarray:
    """(FLOW.21) Density of x in [0, 1]^D from the density of y = logit(lambda + (1-2 lambda) x):

    log p(x) = log p(y) + D log(1 - 2 lambda) - sum_d [log s_d + log(1 - s_d)],  s = sigmoid(y).
    log_prob_logit: (n,), y: (n, D) -> (n,).
    """
    y = check_array(y, "y", ndim=2)
    lp = check_array(log_prob_logit, "log_prob_logit", shape=(y.shape[0],), finite=False)
    check_scalar(lam, "lam", low=0.0, high=0.5, low_inclusive=False, high_inclusive=False)
    _, log_det_inv = logit_inverse(y, lam)          # = -log_det at x
    return lp - log_det_inv


def bits_per_dim(log_prob, dim: int, levels: int = 256) -> np.ndarray:
    """(FLOW.22, SPL.16) Bits per dimension of a density on [0, 1)^D over dequantized L-level data:
    -log p / (D ln 2) + log2(L). log_prob: scalar or (n,) in nats -> same shape.

    The one bits/dim of the package: a log-density ``log_pixels`` of the pixel values v~ on
    [0, L)^D (as :func:`pixel_log_likelihood` gives) is ``log_pixels + D log L`` on [0, 1)^D,
    so its bits/dim, -log_pixels / (D ln 2) (SPL.16), is ``bits_per_dim(log_pixels + D log L,
    D, L)``.
    """
    dim = check_int(dim, "dim", low=1)
    levels = check_int(levels, "levels", low=2)
    lp = check_array(log_prob, "log_prob", ndim=(0, 1), allow_inf=True)
    return -lp / (dim * np.log(2.0)) + np.log2(levels)


def log_prob_from_bits_per_dim(bpd, dim: int, levels: int = 256) -> np.ndarray:
    """(FLOW.22) solved for log p: -(bpd - log2 L) D ln 2 (the inverse of :func:`bits_per_dim`)."""
    dim = check_int(dim, "dim", low=1)
    levels = check_int(levels, "levels", low=2)
    bpd = check_array(bpd, "bpd", ndim=(0, 1))
    return -(bpd - np.log2(levels)) * dim * np.log(2.0)
