"""Rational-quadratic neural spline coupling (derivations/splines.md, SPL.1-SPL.13).

Durkan, Bekasov, Murray & Papamakarios (2019), "Neural Spline Flows", NeurIPS. Each transformed
dimension passes through its own monotone rational-quadratic spline on ``[-B, B]`` with ``K``
bins and identity tails outside; the spline's ``3K - 1`` unconstrained parameters come from a
conditioner network that sees the untouched dimensions (and the context).

Pure functions carry the maths:

- :func:`spline_parameters` / :func:`spline_parameters_backward`: unconstrained
  ``theta (..., 3K-1)`` -> widths, heights (softmax with a minimum bin size, SPL.2) and knot
  derivatives (softplus with a minimum, boundary derivatives 1, SPL.3), and the VJP (SPL.10-SPL.11).
- :func:`spline_forward`, :func:`spline_inverse`, :func:`spline_backward`: the elementwise spline
  for a batch, through the numba kernels of :mod:`nprefgen.kernels.spline` (SPL.4-SPL.9e).

:class:`SplineCoupling` is the thin bijector around them (SPL.12-SPL.13).

References: Durkan et al. (2019), arXiv:1906.04032; Gregory & Delbourgo (1982), "Piecewise
rational quadratic interpolation to monotonic data", IMA J. Numer. Anal. 2(2).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar
from nprefgen.flows.base import Bijector
from nprefgen.kernels.softplus import softplus, softplus_grad
from nprefgen.kernels.spline import rq_spline_backward, rq_spline_forward, rq_spline_inverse
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.containers import MLP

DEFAULT_MIN_WIDTH = 1e-3
DEFAULT_MIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3


# ---------------------------------------------------------------------------------------------
# parameterisation: theta -> (widths, heights, derivatives)
# ---------------------------------------------------------------------------------------------


def n_spline_params(n_bins: int) -> int:
    """3K - 1 unconstrained numbers per spline: K widths, K heights, K - 1 interior derivatives."""
    return 3 * check_int(n_bins, "n_bins", low=1) - 1


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - np.max(a, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _check_minimums(n_bins: int, min_width: float, min_height: float, min_derivative: float):
    check_scalar(min_width, "min_width", low=0.0, high=1.0 / n_bins, high_inclusive=False)
    check_scalar(min_height, "min_height", low=0.0, high=1.0 / n_bins, high_inclusive=False)
    check_scalar(min_derivative, "min_derivative", low=0.0, high=1.0, high_inclusive=False)


def spline_parameters(theta, bound: float, min_width: float = DEFAULT_MIN_WIDTH,
                      min_height: float = DEFAULT_MIN_HEIGHT,
                      min_derivative: float = DEFAULT_MIN_DERIVATIVE):
    """Unconstrained parameters -> a valid monotone spline on [-B, B] (SPL.2-SPL.3).

    Parameters
    ----------
    theta : (..., 3K-1) array, laid out as [K width logits, K height logits, K-1 derivative
        pre-activations].
    bound : B > 0.
    min_width, min_height : fractions of 2B every bin keeps, in [0, 1/K).
    min_derivative : lower bound of the interior knot derivatives, in [0, 1).

    Returns
    -------
    widths : (..., K), positive, summing to 2B   (SPL.2)
    heights : (..., K), positive, summing to 2B  (SPL.2)
    derivatives : (..., K+1), positive, first and last exactly 1 (SPL.3)
    cache : what :func:`spline_parameters_backward` needs.

    ``theta = 0`` gives equal bins and unit derivatives: the identity map (SPL.3).
    """
    theta = check_array(theta, "theta", ndim=(1, 2, 3, 4))
    bound = check_scalar(bound, "bound", low=0.0, low_inclusive=False)
    p = theta.shape[-1]
    if p < 2 or (p + 1) % 3 != 0:
        raise ValueError(f"theta: expected a last axis of 3K-1 entries (K >= 1 bins), got {p}")
    n_bins = (p + 1) // 3
    _check_minimums(n_bins, min_width, min_height, min_derivative)
    p_w = _softmax(theta[..., :n_bins])
    p_h = _softmax(theta[..., n_bins:2 * n_bins])
    scale_w = 2.0 * bound * (1.0 - n_bins * min_width)
    scale_h = 2.0 * bound * (1.0 - n_bins * min_height)
    widths = 2.0 * bound * min_width + scale_w * p_w                       # (SPL.2)
    heights = 2.0 * bound * min_height + scale_h * p_h                     # (SPL.2)
    # (SPL.3) shift so that theta = 0 gives derivative exactly 1: softplus(c) = 1 - min_derivative
    shift = np.log(np.expm1(1.0 - min_derivative))
    pre = theta[..., 2 * n_bins:] + shift
    derivatives = np.ones(theta.shape[:-1] + (n_bins + 1,), dtype=theta.dtype)
    derivatives[..., 1:-1] = min_derivative + softplus(pre)
    cache = (p_w, p_h, pre, scale_w, scale_h, n_bins)
    return widths, heights, derivatives, cache


def spline_parameters_backward(cache, d_widths, d_heights, d_derivatives) -> np.ndarray:
    """VJP of :func:`spline_parameters` (SPL.10-SPL.11).

    d_widths, d_heights: (..., K), d_derivatives: (..., K+1) -> d_theta: (..., 3K-1). The
    boundary derivatives are constants, so their gradient is dropped.
    """
    p_w, p_h, pre, scale_w, scale_h, n_bins = cache
    d_pw = scale_w * d_widths
    d_ph = scale_h * d_heights
    d_theta = np.empty(p_w.shape[:-1] + (3 * n_bins - 1,), dtype=p_w.dtype)
    # (SPL.10) softmax VJP: p * (g - <g, p>)
    d_theta[..., :n_bins] = p_w * (d_pw - np.sum(d_pw * p_w, axis=-1, keepdims=True))
    d_theta[..., n_bins:2 * n_bins] = p_h * (d_ph - np.sum(d_ph * p_h, axis=-1, keepdims=True))
    # (SPL.11) softplus' = sigmoid
    d_theta[..., 2 * n_bins:] = softplus_grad(pre) * d_derivatives[..., 1:-1]
    return d_theta


# ---------------------------------------------------------------------------------------------
# the batch spline: x (n, d), theta (n, d, 3K-1)
# ---------------------------------------------------------------------------------------------


def _flat_spline_inputs(v, theta, bound, mins, name):
    v = check_array(v, name, ndim=2)
    theta = check_array(theta, "theta", ndim=3)
    if theta.shape[:2] != v.shape:
        raise ValueError(f"theta: expected shape ({v.shape[0]}, {v.shape[1]}, 3K-1) to match "
                         f"{name}, got {theta.shape}")
    widths, heights, derivatives, pcache = spline_parameters(theta, bound, *mins)
    k = widths.shape[-1]
    flat = (v.reshape(-1), widths.reshape(-1, k), heights.reshape(-1, k),
            derivatives.reshape(-1, k + 1))
    return v, flat, pcache


def spline_forward(x, theta, bound: float, min_width: float = DEFAULT_MIN_WIDTH,
                   min_height: float = DEFAULT_MIN_HEIGHT,
                   min_derivative: float = DEFAULT_MIN_DERIVATIVE):
    """Elementwise RQ spline y = g(x; theta) with linear tails (SPL.4-SPL.6).

    x: (n, d), theta: (n, d, 3K-1) -> y: (n, d), log_deriv: (n, d) = log g'(x), cache.
    """
    bound = check_scalar(bound, "bound", low=0.0, low_inclusive=False)
    mins = (min_width, min_height, min_derivative)
    x, flat, pcache = _flat_spline_inputs(x, theta, bound, mins, "x")
    y, log_deriv = rq_spline_forward(*flat, bound)
    return y.reshape(x.shape), log_deriv.reshape(x.shape), (flat, pcache, bound, x.shape)


def spline_inverse(y, theta, bound: float, min_width: float = DEFAULT_MIN_WIDTH,
                   min_height: float = DEFAULT_MIN_HEIGHT,
                   min_derivative: float = DEFAULT_MIN_DERIVATIVE):
    """x = g^{-1}(y; theta) by the stable quadratic root (SPL.7-SPL.8).

    y: (n, d), theta: (n, d, 3K-1) -> x: (n, d), log_deriv_inv: (n, d) = -log g'(x).
    """
    bound = check_scalar(bound, "bound", low=0.0, low_inclusive=False)
    mins = (min_width, min_height, min_derivative)
    y, flat, _ = _flat_spline_inputs(y, theta, bound, mins, "y")
    x, log_deriv_inv = rq_spline_inverse(*flat, bound)
    return x.reshape(y.shape), log_deriv_inv.reshape(y.shape)


def spline_backward(cache, d_y, d_log_deriv):
    """VJP of :func:`spline_forward` (SPL.9a-SPL.11).

    d_y, d_log_deriv: (n, d) -> d_x: (n, d), d_theta: (n, d, 3K-1).
    """
    flat, pcache, bound, shape = cache
    d_y = check_array(d_y, "d_y", shape=shape)
    d_log_deriv = check_array(d_log_deriv, "d_log_deriv", shape=shape)
    d_x, d_w, d_h, d_d = rq_spline_backward(*flat, bound, d_y.reshape(-1), d_log_deriv.reshape(-1))
    k = d_w.shape[1]
    d_theta = spline_parameters_backward(pcache, d_w.reshape(shape + (k,)),
                                         d_h.reshape(shape + (k,)),
                                         d_d.reshape(shape + (k + 1,)))
    return d_x.reshape(shape), d_theta


# ---------------------------------------------------------------------------------------------
# the coupling bijector
# ---------------------------------------------------------------------------------------------


def _hidden_widths(hidden) -> list[int]:
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        h = check_int(hidden, "hidden", low=1)
        return [h, h]
    if not isinstance(hidden, (list, tuple)):
        raise ValueError(f"hidden: expected an int or a sequence of ints, got {hidden!r}")
    return [check_int(h, "hidden", low=1) for h in hidden]


class SplineCoupling(Bijector):
    """Rational-quadratic spline coupling (SPL.12-SPL.13).

    ``z_A = x_A`` and ``z_B = g(x_B; theta)``, ``theta = net([x_A, context])`` reshaped to
    ``(n, |B|, 3K-1)``; ``log_det = sum_B log g'(x_B)``.

    Parameters
    ----------
    dim : int, D.
    mask : (D,) array of 0/1. Entries 1 mark the identity dimensions A that feed the conditioner,
        entries 0 the dimensions B that are transformed (the RealNVP paper's ``b``). At least one
        0; at least one 1 unless ``context_dim > 0``.
    hidden : int (two hidden layers of that width) or sequence of hidden widths.
    n_bins : K >= 1.
    bound : B > 0; the identity holds outside [-B, B].
    rng : numpy.random.Generator, for the conditioner's initial weights.
    context_dim : int, size of the context vector (0: unconditional).
    activation : the conditioner's hidden activation.
    min_width, min_height, min_derivative : see :func:`spline_parameters`.
    zero_init : bool, zero the conditioner's last layer, so that a new coupling is exactly the
        identity (SPL.3) and training starts from the base density (default True).
    dtype : float64 (default) or float32.
    """

    def __init__(self, dim: int, mask, hidden: int | Sequence[int] = 64, n_bins: int = 8,
                 bound: float = 3.0, *, rng: np.random.Generator, context_dim: int = 0,
                 activation: str = "relu", min_width: float = DEFAULT_MIN_WIDTH,
                 min_height: float = DEFAULT_MIN_HEIGHT,
                 min_derivative: float = DEFAULT_MIN_DERIVATIVE, zero_init: bool = True,
                 dtype=np.float64) -> None:
        super().__init__(dim, context_dim)
        check_rng(rng)
        self.n_bins = check_int(n_bins, "n_bins", low=1)
        self.bound = check_scalar(bound, "bound", low=0.0, low_inclusive=False)
        _check_minimums(self.n_bins, min_width, min_height, min_derivative)
        self.mins = (float(min_width), float(min_height), float(min_derivative))
        check_choice(activation, "activation", ACTIVATIONS)
        mask = check_array(mask, "mask", shape=(self.dim,))
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError("mask: expected entries in {0, 1}, got other values")
        self.idx_a = np.flatnonzero(mask == 1)
        self.idx_b = np.flatnonzero(mask == 0)
        if self.idx_b.size == 0:
            raise ValueError("mask: expected at least one 0 (a transformed dimension), got all ones")
        if self.idx_a.size == 0 and self.context_dim == 0:
            raise ValueError("mask: expected at least one 1 (a conditioning dimension) when "
                             "context_dim is 0, got all zeros")
        self.register_buffer("mask", mask.astype(dtype))
        n_out = self.idx_b.size * n_spline_params(self.n_bins)
        net = MLP(self.idx_a.size + self.context_dim, _hidden_widths(hidden), n_out, rng=rng,
                  activation=activation, dtype=dtype)
        if zero_init:
            for p in net.layers[-1].params.values():
                p[...] = 0.0
        self.net = self.add_child("net", net)

    def _buffers_loaded(self) -> None:
        self.idx_a = np.flatnonzero(self.buffers["mask"] == 1)
        self.idx_b = np.flatnonzero(self.buffers["mask"] == 0)

    # -- conditioner -----------------------------------------------------------------------------
    def _conditioner_input(self, x_a: np.ndarray, context: np.ndarray | None) -> np.ndarray:
        return x_a if context is None else np.concatenate([x_a, context.astype(x_a.dtype)], axis=1)

    def _theta(self, inp: np.ndarray):
        out, net_cache = self.net.forward(inp)
        return out.reshape(inp.shape[0], self.idx_b.size, n_spline_params(self.n_bins)), net_cache

    # -- the contract ----------------------------------------------------------------------------
    def forward_cached(self, x, context=None):
        """(SPL.12) x: (n, D), context: (n, C) or None -> z: (n, D), log_det: (n,), cache."""
        x = self._check_x(x)
        context = self._check_context(context, x.shape[0])
        inp = self._conditioner_input(x[:, self.idx_a], context)
        theta, net_cache = self._theta(inp)
        y_b, log_deriv, s_cache = spline_forward(x[:, self.idx_b], theta, self.bound, *self.mins)
        z = x.copy()
        z[:, self.idx_b] = y_b
        return z, log_deriv.sum(axis=1), (net_cache, s_cache, x.shape, context is not None)

    def inverse(self, z, context=None):
        """(SPL.8) z: (n, D) -> x: (n, D), log_det_inv: (n,) = -log_det at x."""
        z = self._check_x(z, "z")
        context = self._check_context(context, z.shape[0])
        inp = self._conditioner_input(z[:, self.idx_a], context)
        theta, _ = self._theta(inp)
        x_b, log_deriv_inv = spline_inverse(z[:, self.idx_b], theta, self.bound, *self.mins)
        x = z.copy()
        x[:, self.idx_b] = x_b
        return x, log_deriv_inv.sum(axis=1)

    def backward(self, cache, d_z, d_log_det):
        """(SPL.13) d_z: (n, D), d_log_det: (n,) -> d_x: (n, D), d_context: (n, C) or None."""
        net_cache, s_cache, shape, has_context = cache
        d_z, d_log_det = self._check_cotangents(d_z, d_log_det, shape[0])
        n_b = self.idx_b.size
        d_log_deriv = np.broadcast_to(d_log_det[:, None], (shape[0], n_b))
        d_x_b, d_theta = spline_backward(s_cache, d_z[:, self.idx_b], d_log_deriv)
        d_inp = self.net.backward(net_cache, d_theta.reshape(shape[0], -1))
        d_x = np.empty(shape, dtype=d_z.dtype)
        n_a = self.idx_a.size
        d_x[:, self.idx_a] = d_z[:, self.idx_a] + d_inp[:, :n_a]
        d_x[:, self.idx_b] = d_x_b
        d_context = d_inp[:, n_a:] if has_context else None
        return d_x, d_context

    def __repr__(self) -> str:
        return (f"SplineCoupling(dim={self.dim}, transformed={self.idx_b.size}, n_bins={self.n_bins}, "
                f"bound={self.bound}, context_dim={self.context_dim})")
