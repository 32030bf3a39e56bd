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

:class:`SplineTransform` is the same spline as a coupling's elementwise transform, with the
unchecked fast path (the kernels straight on the conditioner's output), and
:class:`SplineCoupling` is the :class:`nprefgen.flows.coupling.Coupling` that uses it
(SPL.12-SPL.13). The builder :func:`nprefgen.flows.spline_flow` lives in
:mod:`nprefgen.flows.builders` with the other builders.

References: Durkan et al. (2019), arXiv:1906.04032; Gregory & Delbourgo (1982), "Piecewise
rational quadratic interpolation to monotonic data", IMA J. Numer. Anal. 2(2).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nprefgen._validation import check_array, check_int, check_scalar
from nprefgen.flows.base import check_parameter_count, hidden_widths, mlp_parameter_count
from nprefgen.flows.coupling import Coupling, ElementwiseTransform, check_mask
from nprefgen.kernels.spline import (
    rq_parameters_backward_numpy, rq_parameters_numpy, rq_spline_theta_backward,
    rq_spline_theta_backward_saved, rq_spline_theta_forward, rq_spline_theta_forward_saved,
    rq_spline_theta_inverse,
)

DEFAULT_MIN_WIDTH = 1e-3
DEFAULT_MIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3
TAIL_FRACTION = 0.01
"""Share of a spline coupling's transformed training values allowed outside [-B, B] before
:meth:`SplineCoupling.check_fit_data` warns (a standard normal has 0.27% beyond 3)."""


class TailBoundWarning(UserWarning):
    """Training data outside a spline's [-B, B], where the spline is the identity."""


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
# the spline as a coupling's elementwise transform, and the coupling
# ---------------------------------------------------------------------------------------------


class SplineTransform(ElementwiseTransform):
    """The RQ spline of (SPL.2-SPL.9e) as a coupling transform; h: (n, d_B (3K-1)) is read as
    theta: (n, d_B, 3K-1) (coordinate-major), identity tails outside [-B, B].

    Parameters
    ----------
    n_bins : K >= 1; bound : B > 0; min_width, min_height, min_derivative : see
    :func:`spline_parameters`.
    """

    def __init__(self, n_bins: int = 8, bound: float = 3.0, min_width: float = DEFAULT_MIN_WIDTH,
                 min_height: float = DEFAULT_MIN_HEIGHT,
                 min_derivative: float = DEFAULT_MIN_DERIVATIVE) -> None:
        self.n_bins = check_int(n_bins, "n_bins", low=1)
        self.bound = check_scalar(bound, "bound", low=0.0, low_inclusive=False)
        _check_minimums(self.n_bins, min_width, min_height, min_derivative)
        self.mins = (float(min_width), float(min_height), float(min_derivative))
        self.n_params = 3 * self.n_bins - 1

    def _flat(self, v, h):
        n, d_b = v.shape
        return np.ascontiguousarray(v).reshape(-1), h.reshape(n * d_b, self.n_params)

    def forward(self, x_b, h):
        """(SPL.12) the transformed block: (SPL.4)-(SPL.6) per element; x_b: (n, d_B) -> y_b,
        log_det = sum_B log g'(x_B): (n,), cache. The cache keeps every element's knots (the
        saved pair of :mod:`nprefgen.kernels.spline`), so the backward rebuilds none of them."""
        x_flat, theta = self._flat(x_b, h)
        y, log_deriv, saved = rq_spline_theta_forward_saved(x_flat, theta, self.bound, *self.mins)
        return (y.reshape(x_b.shape), log_deriv.reshape(x_b.shape).sum(axis=1),
                (x_flat, saved, x_b.shape))

    def inverse(self, y_b, h):
        """(SPL.7-SPL.8) y_b: (n, d_B) -> x_b, log_det_inv: (n,)."""
        y_flat, theta = self._flat(y_b, h)
        x, log_deriv_inv = rq_spline_theta_inverse(y_flat, theta, self.bound, *self.mins)
        return x.reshape(y_b.shape), log_deriv_inv.reshape(y_b.shape).sum(axis=1)

    def backward(self, cache, d_y, d_log_det):
        """(SPL.13) through (SPL.9a)-(SPL.11): d_y: (n, d_B), d_log_det: (n,) -> d_x_b: (n, d_B),
        d_h: (n, d_B (3K-1)); every element gets d_log_det of its row."""
        x_flat, saved, shape = cache
        d_log_deriv = np.ascontiguousarray(np.broadcast_to(d_log_det[:, None], shape)).reshape(-1)
        d_x, d_theta = rq_spline_theta_backward_saved(x_flat, saved, self.bound, *self.mins[:2],
                                                      np.ascontiguousarray(d_y).reshape(-1),
                                                      d_log_deriv)
        return d_x.reshape(shape), d_theta.reshape(shape[0], -1)

    def __repr__(self) -> str:
        return f"SplineTransform(n_bins={self.n_bins}, bound={self.bound})"


class SplineCoupling(Coupling):
    """Rational-quadratic spline coupling, (SPL.12) and (SPL.13): a
    :class:`~nprefgen.flows.coupling.Coupling` with a :class:`SplineTransform`.

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
    bound : B > 0; the identity holds outside [-B, B] (standardise the data first, as the
        builders do by default, or inputs beyond B are left untransformed).
    rng : None, int or numpy.random.Generator, for the conditioner's initial weights.
    context_dim : int, size of the context vector (0: unconditional).
    activation : the conditioner's hidden activation.
    min_width, min_height, min_derivative : see :func:`spline_parameters`.
    zero_init : bool, zero the conditioner's last layer, so that a new coupling is exactly the
        identity (SPL.3) and training starts from the base density (default True).
    dtype : float64 (default) or float32.
    """

    def __init__(self, dim: int, mask, hidden: int | Sequence[int] = 64, n_bins: int = 8,
                 bound: float = 3.0, *, rng=None, context_dim: int = 0,
                 activation: str = "relu", min_width: float = DEFAULT_MIN_WIDTH,
                 min_height: float = DEFAULT_MIN_HEIGHT,
                 min_derivative: float = DEFAULT_MIN_DERIVATIVE, zero_init: bool = True,
                 dtype=np.float64) -> None:
        dim = check_int(dim, "dim", low=1)
        context_dim = check_int(context_dim, "context_dim", low=0)
        mask = check_mask(mask, context_dim, dim)
        d_a, d_b = int(mask.sum()), int(mask.size - mask.sum())
        widths = hidden_widths(hidden)
        # sizes first, naming the argument that makes the conditioner too large
        check_parameter_count(mlp_parameter_count([d_a + context_dim, *widths, 2 * d_b]),
                              "SplineCoupling conditioner")
        check_parameter_count(mlp_parameter_count([d_a + context_dim, *widths,
                                                   d_b * n_spline_params(n_bins)]),
                              "SplineCoupling conditioner", name="n_bins")
        transform = SplineTransform(n_bins, bound, min_width, min_height, min_derivative)
        super().__init__(mask, transform, widths, rng=rng, context_dim=context_dim,
                         activation=activation, zero_init=zero_init, dtype=dtype)

    def check_fit_data(self, x, context=None) -> None:
        """Warn (:class:`TailBoundWarning`) when more than :data:`TAIL_FRACTION` of the values
        this coupling would transform, ``x[:, B]`` with ``x: (n, D)`` its input, lie outside
        [-B, B]: the spline is the identity there, so such data are left unmodelled (a flow
        built with ``standardize=False`` on data of scale >> B). A warning, not an error: heavy
        tails legitimately put a few values beyond B."""
        x = self._check_x(x)
        outside = float(np.mean(np.abs(x[:, self._sel_b]) > self.bound))
        if outside > TAIL_FRACTION:
            import warnings

            warnings.warn(f"x: {100 * outside:.1f}% of the values a SplineCoupling transforms lie "
                          f"outside its tail bound [-{self.bound:g}, {self.bound:g}], where the "
                          f"spline is the identity; standardise the data (the builders' default "
                          f"standardize=True) or raise `bound`", TailBoundWarning, stacklevel=3)

    @property
    def n_bins(self) -> int:
        return self.transform.n_bins

    @property
    def bound(self) -> float:
        """B: the spline acts on [-B, B], the identity outside."""
        return self.transform.bound

    @property
    def mins(self) -> tuple[float, float, float]:
        return self.transform.mins
