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
from nprefgen.kernels.spline import (
    rq_parameters_backward_numpy, rq_parameters_numpy, rq_spline_theta_backward,
    rq_spline_theta_forward, rq_spline_theta_inverse,
)
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
    # (SPL.2) softmax sizes with a minimum; (SPL.3) softplus derivatives shifted so theta = 0
    # gives 1, boundary derivatives 1
    widths, heights, derivatives, pcache = rq_parameters_numpy(theta, bound, min_width, min_height,
                                                               min_derivative)
    return widths, heights, derivatives, (pcache, bound, min_width, min_height)


def spline_parameters_backward(cache, d_widths, d_heights, d_derivatives) -> np.ndarray:
    """VJP of :func:`spline_parameters` (SPL.10-SPL.11).

    d_widths, d_heights: (..., K), d_derivatives: (..., K+1) -> d_theta: (..., 3K-1). The
    boundary derivatives are constants, so their gradient is dropped.
    """
    pcache, bound, min_width, min_height = cache
    # (SPL.10) softmax VJP p * (g - <g, p>); (SPL.11) softplus' = sigmoid
    return rq_parameters_backward_numpy(pcache, bound, min_width, min_height, d_widths, d_heights,
                                        d_derivatives)


# ---------------------------------------------------------------------------------------------
# the batch spline: x (n, d), theta (n, d, 3K-1)
# ---------------------------------------------------------------------------------------------


def _flat_spline_inputs(v, theta, bound, mins, name):
    v = check_array(v, name, ndim=2)
    theta = check_array(theta, "theta", ndim=3)
    if theta.shape[:2] != v.shape:
        raise ValueError(f"theta: expected shape ({v.shape[0]}, {v.shape[1]}, 3K-1) to match "
                         f"{name}, got {theta.shape}")
    p = theta.shape[-1]
    if p < 2 or (p + 1) % 3 != 0:
        raise ValueError(f"theta: expected a last axis of 3K-1 entries (K >= 1 bins), got {p}")
    _check_minimums((p + 1) // 3, *mins)
    return v, v.reshape(-1), theta.reshape(-1, p)


def spline_forward(x, theta, bound: float, min_width: float = DEFAULT_MIN_WIDTH,
                   min_height: float = DEFAULT_MIN_HEIGHT,
                   min_derivative: float = DEFAULT_MIN_DERIVATIVE):
    """Elementwise RQ spline y = g(x; theta) with linear tails (SPL.2-SPL.6).

    x: (n, d), theta: (n, d, 3K-1) -> y: (n, d), log_deriv: (n, d) = log g'(x), cache.
    One fused numba pass builds each element's knots from theta and evaluates the spline.
    """
    bound = check_scalar(bound, "bound", low=0.0, low_inclusive=False)
    mins = (min_width, min_height, min_derivative)
    x, x_flat, theta_flat = _flat_spline_inputs(x, theta, bound, mins, "x")
    y, log_deriv = rq_spline_theta_forward(x_flat, theta_flat, bound, *mins)
    return y.reshape(x.shape), log_deriv.reshape(x.shape), (x_flat, theta_flat, bound, mins, theta.shape)


def spline_inverse(y, theta, bound: float, min_width: float = DEFAULT_MIN_WIDTH,
                   min_height: float = DEFAULT_MIN_HEIGHT,
                   min_derivative: float = DEFAULT_MIN_DERIVATIVE):
    """x = g^{-1}(y; theta) by the stable quadratic root (SPL.7-SPL.8).

    y: (n, d), theta: (n, d, 3K-1) -> x: (n, d), log_deriv_inv: (n, d) = -log g'(x).
    """
    bound = check_scalar(bound, "bound", low=0.0, low_inclusive=False)
    mins = (min_width, min_height, min_derivative)
    y, y_flat, theta_flat = _flat_spline_inputs(y, theta, bound, mins, "y")
    x, log_deriv_inv = rq_spline_theta_inverse(y_flat, theta_flat, bound, *mins)
    return x.reshape(y.shape), log_deriv_inv.reshape(y.shape)


def spline_backward(cache, d_y, d_log_deriv):
    """VJP of :func:`spline_forward` (SPL.9a-SPL.11).

    d_y, d_log_deriv: (n, d) -> d_x: (n, d), d_theta: (n, d, 3K-1).
    """
    x_flat, theta_flat, bound, mins, theta_shape = cache
    shape = theta_shape[:2]
    d_y = check_array(d_y, "d_y", shape=shape)
    d_log_deriv = check_array(d_log_deriv, "d_log_deriv", shape=shape)
    d_x, d_theta = rq_spline_theta_backward(x_flat, theta_flat, bound, *mins, d_y.reshape(-1),
                                            np.ascontiguousarray(d_log_deriv).reshape(-1))
    return d_x.reshape(shape), d_theta.reshape(theta_shape)


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
        rng = check_rng(rng)
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

    def validate_buffers(self, buffers) -> None:
        super().validate_buffers(buffers)
        mask = np.asarray(buffers["mask"])
        if not np.all((mask == 0) | (mask == 1)) or int(mask.sum()) != self.idx_a.size:
            raise ValueError(f"buffers['mask']: expected entries in {{0, 1}} with "
                             f"{self.idx_a.size} ones (the coupling's split), got "
                             f"{mask.tolist()}"[:300])

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


# ---------------------------------------------------------------------------------------------
# the builder
# ---------------------------------------------------------------------------------------------


def spline_flow(dim: int, n_layers: int, hidden, *, rng: np.random.Generator, context_dim: int = 0,
                n_bins: int = 8, bound: float = 3.0, mask: str = "alternating", image_shape=None,
                activation: str = "relu", actnorm: bool = False, standardize=None,
                standardize_context=None):
    """A neural spline flow: ``n_layers`` :class:`SplineCoupling` layers (SPL.12), masks flipping
    between layers, as :func:`nprefgen.flows.realnvp` builds affine ones.

    Parameters
    ----------
    dim : int, D >= 2 (D = 1 only for a conditional flow: the single coordinate is transformed
        with the context as the conditioner's only input)
    n_layers : int, number of spline couplings
    hidden : int (two hidden layers of that width) or sequence of widths, per conditioner
    rng : numpy.random.Generator
    context_dim : int, C for a conditional flow
    n_bins, bound : K and B of each spline (identity outside [-B, B])
    mask : "alternating", "half" or "checkerboard" (needs ``image_shape`` with prod = D)
    activation : conditioner activation
    actnorm : an ActNorm (FLOW.18) before every coupling
    standardize, standardize_context : as in :func:`nprefgen.flows.realnvp`

    Returns a :class:`nprefgen.flows.Flow` whose ``config`` rebuilds it (builder name "spline",
    registered with :func:`nprefgen.flows.register_builder` when this module is imported).
    """
    from nprefgen.flows.builders import _finish, _hidden, _prefix
    from nprefgen.flows.coupling import coupling_masks
    from nprefgen.flows.elementwise import ActNorm
    from nprefgen.flows.flow import Flow

    dim = check_int(dim, "dim", low=1)
    n_layers = check_int(n_layers, "n_layers", low=1)
    context_dim = check_int(context_dim, "context_dim", low=0)
    if dim == 1 and context_dim == 0:
        raise ValueError("dim: expected >= 2 for an unconditional spline flow (a coupling needs a "
                         "coordinate to condition on), got 1")
    widths = _hidden(hidden)
    rng = check_rng(rng)
    masks = coupling_masks(mask, dim, n_layers, image_shape)
    layers = _prefix(dim, standardize)
    for m in masks:
        if actnorm:
            layers.append(ActNorm(dim))
        layers.append(SplineCoupling(dim, m, widths, n_bins, bound, rng=rng, context_dim=context_dim,
                                     activation=activation))
    config = dict(builder="spline", dim=dim, n_layers=n_layers, hidden=widths,
                  context_dim=context_dim, n_bins=int(n_bins), bound=float(bound), mask=mask,
                  image_shape=None if image_shape is None else [int(s) for s in image_shape],
                  activation=activation, actnorm=bool(actnorm),
                  standardize=standardize is not None and standardize is not False)
    return _finish(Flow(layers, context_dim=context_dim), config, standardize_context)


def _register() -> None:
    from nprefgen.flows.builders import register_builder

    register_builder("spline", spline_flow)


_register()
