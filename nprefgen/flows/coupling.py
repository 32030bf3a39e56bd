"""Coupling layers: one :class:`Coupling` and its elementwise transforms (derivations/flows.md,
FLOW.5-FLOW.9; derivations/splines.md, SPL.12-SPL.13).

A binary mask splits x into a conditioning part x_A (mask 1, passed through unchanged) and a
transformed part x_B (mask 0); a conditioner MLP fed ``[x_A, c]`` outputs the parameters h of an
elementwise, invertible transform g applied to every coordinate of x_B:

    y_A = x_A,    y_B = g(x_B; h),    h = NN([x_A, c]),    log_det = sum_B log g'(x_B; h)

:class:`Coupling` owns the mask split, the conditioner and the merge (and the merge's VJP: x_A
gets the identity path plus the conditioner's input gradient); the transform is an object with
``forward``/``inverse``/``backward`` on (n, d_B) blocks. Two transforms exist:
:class:`AffineTransform` below and :class:`nprefgen.flows.spline.SplineTransform`; the thin
subclasses :class:`AffineCoupling` and :class:`nprefgen.flows.spline.SplineCoupling` only choose
one (the idea of zuko's GeneralCouplingTransform, written with explicit VJPs).

The affine transform (RealNVP):

    y_A = x_A,    y_B = x_B * exp(s) + t,    (raw_s, t) = NN([x_A, c])              (FLOW.5)

with s = b tanh(raw_s / b) a bounded scale (FLOW.6): |s| < b keeps every step's volume change
within e^{+-b d_B}, which is what keeps early training from blowing up (the tanh soft clamp of
Glow/FrEIA; ``bound=None`` removes it). The Jacobian is block triangular with diagonal
(1, ..., 1, e^{s_1}, ..., e^{s_dB}), so log|det| = sum s (FLOW.7) and the inverse needs one
conditioner pass (FLOW.8). The elementwise transform and its VJP (FLOW.9) live in
:mod:`nprefgen.kernels.coupling` (training keeps s and e = exp(s) in the cache, so the backward
kernel evaluates no tanh or exp); the conditioner outputs ``[raw_s, t]`` (2 d_B units), its last
layer zero-initialised so that a fresh coupling is the identity.

Validation happens once, at the public entry points (``forward_cached``, ``inverse``,
``backward``); chains call the unchecked ``_forward_cached``/``_backward``, and the transforms
never re-check the arrays the coupling hands them.

References: Dinh, Sohl-Dickstein & Bengio (2017), "Density estimation using Real NVP".
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar
from nprefgen.flows.base import Bijector, check_parameter_count, hidden_widths, mlp_parameter_count
from nprefgen.kernels.coupling import (
    affine_coupling_backward_saved, affine_coupling_forward_saved, affine_coupling_inverse,
)
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.containers import MLP


# -- masks (1 = conditioning part A, passed through; 0 = transformed part B) ------------------------
def half_mask(dim: int, flip: bool = False) -> np.ndarray:
    """First half (``ceil(dim/2)`` entries) conditions, second half is transformed; ``flip`` swaps.

    dim: int -> (dim,) float array of 0/1.
    """
    dim = check_int(dim, "dim", low=2)
    m = np.zeros(dim)
    m[: (dim + 1) // 2] = 1.0
    return 1.0 - m if flip else m


def alternating_mask(dim: int, parity: int = 0) -> np.ndarray:
    """Even coordinates condition (parity 0) or odd ones (parity 1). -> (dim,) float array."""
    dim = check_int(dim, "dim", low=2)
    parity = check_int(parity, "parity", low=0, high=1)
    return ((np.arange(dim) + parity) % 2 == 0).astype(np.float64)


def checkerboard_mask(shape, parity: int = 0) -> np.ndarray:
    """Checkerboard over an image ``shape`` (h, w) or (c, h, w), flattened in C order.

    Pixel (i, j) conditions when ``(i + j + parity)`` is even; every channel shares the pattern.
    -> (prod(shape),) float array of 0/1.
    """
    shape = tuple(check_int(s, "shape", low=1) for s in shape)
    if len(shape) not in (2, 3) or int(np.prod(shape)) < 2:
        raise ValueError(f"shape: expected (h, w) or (c, h, w) with at least 2 pixels, got {shape}")
    parity = check_int(parity, "parity", low=0, high=1)
    h, w = shape[-2:]
    board = ((np.arange(h)[:, None] + np.arange(w)[None, :] + parity) % 2 == 0).astype(np.float64)
    return np.broadcast_to(board, shape).reshape(-1).copy()


def coupling_masks(kind: str, dim: int, n_layers: int, image_shape=None) -> list[np.ndarray]:
    """The masks of ``n_layers`` stacked couplings, alternating which part is transformed.

    kind : "alternating" (even/odd coordinates), "half" (first/second half) or "checkerboard"
        (needs ``image_shape`` (h, w) or (c, h, w) with D pixels). For D = 1 (a conditional
        flow of one variable) every mask is all zero: the conditioner sees only the context.
    """
    check_choice(kind, "mask", ("alternating", "half", "checkerboard"))
    dim = check_int(dim, "dim", low=1)
    n_layers = check_int(n_layers, "n_layers", low=1)
    check_parameter_count(dim * n_layers, f"{n_layers} masks of {dim} entries", name="n_layers")
    if kind == "checkerboard" and (image_shape is None or int(np.prod(image_shape)) != dim):
        raise ValueError(f"image_shape: expected a shape with {dim} pixels for a checkerboard "
                         f"mask, got {image_shape}")
    if dim == 1:
        return [np.zeros(1) for _ in range(n_layers)]
    if kind == "alternating":
        return [alternating_mask(dim, parity=k % 2) for k in range(n_layers)]
    if kind == "half":
        return [half_mask(dim, flip=bool(k % 2)) for k in range(n_layers)]
    return [checkerboard_mask(image_shape, parity=k % 2) for k in range(n_layers)]


def _selector(idx: np.ndarray):
    """A basic slice when ``idx`` is an arithmetic progression (column views, no copies)."""
    if idx.size == 1:
        return slice(int(idx[0]), int(idx[0]) + 1)
    step = int(idx[1] - idx[0])
    if step > 0 and np.all(np.diff(idx) == step):
        return slice(int(idx[0]), int(idx[-1]) + 1, step)
    return idx


# -- elementwise transforms -------------------------------------------------------------------------
class ElementwiseTransform:
    """The interface a :class:`Coupling` needs from its transform y_B = g(x_B; h).

    ``h: (n, d_B * n_params)`` is the conditioner's raw output; each transform decides its
    layout. The methods receive arrays the coupling has already validated and run unchecked.

    - ``forward(x_b, h) -> y_b: (n, d_B), log_det: (n,), cache``
    - ``inverse(y_b, h) -> x_b: (n, d_B), log_det_inv: (n,)``
    - ``backward(cache, d_y: (n, d_B), d_log_det: (n,)) -> d_x_b: (n, d_B), d_h: (n, d_B * n_params)``

    A transform holds hyper-parameters only (no trained parameters, no per-call state), and
    ``h = 0`` must be the identity so that a zero-initialised conditioner starts at the identity.
    """

    n_params: int = 0

    def forward(self, x_b, h):
        raise NotImplementedError

    def inverse(self, y_b, h):
        raise NotImplementedError

    def backward(self, cache, d_y, d_log_det):
        raise NotImplementedError


class AffineTransform(ElementwiseTransform):
    """y_B = x_B exp(s) + t with s = b tanh(raw_s / b) (FLOW.5-FLOW.6); h = [raw_s, t] (2 d_B).

    bound : b > 0 of (FLOW.6), or None for an unbounded scale (stored as 0.0).
    """

    n_params = 2

    def __init__(self, bound: float | None = 3.0) -> None:
        self.bound = 0.0 if bound is None else check_scalar(bound, "bound", low=0.0,
                                                            low_inclusive=False)

    def forward(self, x_b, h):
        """(FLOW.5)-(FLOW.7); the cache keeps s and e = exp(s) so (FLOW.9) needs no exp/tanh."""
        d_b = x_b.shape[1]
        y_b, log_det, s, e = affine_coupling_forward_saved(x_b, h[:, :d_b], h[:, d_b:], self.bound)
        return y_b, log_det, (x_b, s, e)

    def inverse(self, y_b, h):
        """(FLOW.8) one pass: x_B = (y_B - t) exp(-s), log_det_inv = -sum s."""
        d_b = y_b.shape[1]
        return affine_coupling_inverse(y_b, h[:, :d_b], h[:, d_b:], self.bound)

    def backward(self, cache, d_y, d_log_det):
        """(FLOW.9) -> d_x_b, d_h = [d_raw_s, d_t]."""
        x_b, s, e = cache
        d_x_b, d_raw_s, d_t = affine_coupling_backward_saved(x_b, s, e, self.bound, d_y, d_log_det)
        return d_x_b, np.concatenate([d_raw_s, d_t], axis=1)

    def __repr__(self) -> str:
        return f"AffineTransform(bound={self.bound or None})"


# -- the coupling -----------------------------------------------------------------------------------
def check_mask(mask, context_dim: int, dim: int | None = None) -> np.ndarray:
    """A coupling mask: (D,) of 0/1 with at least one 0 (transformed) and, without a context,
    at least one 1 (conditioning). -> float64 copy."""
    mask = check_array(mask, "mask", ndim=1) if dim is None else check_array(mask, "mask", shape=(dim,))
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError("mask: expected entries in {0, 1}, got other values")
    if not np.any(mask == 0):
        raise ValueError("mask: expected at least one 0 (a transformed coordinate), got all ones")
    if not np.any(mask == 1) and context_dim == 0:
        raise ValueError("mask: expected at least one 1 (a conditioning coordinate) for an "
                         "unconditional coupling, got all zeros")
    return mask


class Coupling(Bijector):
    """A coupling layer with any elementwise transform (FLOW.5), (SPL.12): y_A = x_A,
    y_B = g(x_B; NN([x_A, c])).

    Parameters
    ----------
    mask : (D,) array of 0/1
        1 marks the conditioning part x_A, 0 the transformed part x_B; see :func:`half_mask`,
        :func:`alternating_mask`, :func:`checkerboard_mask`. At least one 0 is required, and at
        least one 1 unless the coupling has a context.
    transform : ElementwiseTransform
        g, e.g. :class:`AffineTransform` or :class:`nprefgen.flows.spline.SplineTransform`.
    hidden : int (two hidden layers of that width) or sequence of int
        Hidden widths of the conditioner MLP (its child ``net``, outputting
        ``d_B * transform.n_params`` units).
    rng : None, int or numpy.random.Generator (SPEC 7), for the conditioner's initial weights.
    context_dim : int
        C, the size of the context concatenated to x_A at the conditioner's input.
    activation : str
        Conditioner activation (``nprefgen.nn`` name).
    zero_init : bool
        Zero the conditioner's last layer so the coupling starts as the identity.
    dtype : float64 (default) or float32, of the conditioner's weights and the mask buffer.

    Attributes ``mask`` (a buffer), ``net`` (the conditioner), ``transform``, ``hidden``.
    The conditioner's total parameter count is refused above
    :data:`nprefgen.flows.base.MAX_PARAMETERS` before anything is allocated.
    """

    def __init__(self, mask, transform: ElementwiseTransform, hidden=(64, 64), *, rng=None,
                 context_dim: int = 0, activation: str = "relu", zero_init: bool = True,
                 dtype=np.float64) -> None:
        context_dim = check_int(context_dim, "context_dim", low=0)
        mask = check_mask(mask, context_dim)
        super().__init__(mask.size, context_dim)
        if not isinstance(transform, ElementwiseTransform):
            raise ValueError(f"transform: expected an ElementwiseTransform, got "
                             f"{type(transform).__name__}")
        rng = check_rng(rng)
        check_choice(activation, "activation", ACTIVATIONS)
        self.transform = transform
        self.hidden = hidden_widths(hidden)
        d_a, d_b = int(mask.sum()), int(mask.size - mask.sum())
        n_out = d_b * transform.n_params
        check_parameter_count(mlp_parameter_count([d_a + self.context_dim, *self.hidden, n_out]),
                              f"{type(self).__name__} conditioner")
        self.mask = self.register_buffer("mask", mask.astype(dtype))
        self.net = self.add_child("net", MLP(d_a + self.context_dim, self.hidden, n_out, rng=rng,
                                             activation=activation, dtype=dtype))
        if zero_init:
            for p in self.net.layers[-1].params.values():
                p[...] = 0.0
        self._buffers_loaded()

    def validate_buffers(self, buffers) -> None:
        super().validate_buffers(buffers)
        mask = np.asarray(buffers["mask"])
        if not np.all((mask == 0) | (mask == 1)) or int(mask.sum()) != self._d_a:
            raise ValueError(f"buffers['mask']: expected entries in {{0, 1}} with {self._d_a} ones "
                             f"(the coupling's split), got {mask.tolist()}"[:300])

    def _buffers_loaded(self) -> None:
        idx_a = np.flatnonzero(self.mask == 1)
        idx_b = np.flatnonzero(self.mask == 0)
        if idx_b.size == 0 or idx_a.size + self.context_dim == 0 or \
                idx_a.size != getattr(self, "_d_a", idx_a.size):
            raise ValueError("mask: a loaded mask must keep the coupling's split sizes")
        self._d_a, self._d_b = idx_a.size, idx_b.size
        self._sel_a = _selector(idx_a) if idx_a.size else idx_a
        self._sel_b = _selector(idx_b)

    def _conditioner_input(self, x_a, context):
        return x_a if context is None else np.concatenate([x_a, context.astype(x_a.dtype, copy=False)],
                                                          axis=1)

    def forward_cached(self, x, context=None):
        """(FLOW.5), (SPL.12) x: (n, D), context: (n, C) or None -> z: (n, D), log_det: (n,), cache."""
        x = self._check_x(x)
        return self._forward_cached(x, self._check_context(context, x.shape[0]))

    def _forward_cached(self, x, context=None):
        h, net_cache = self.net._forward(self._conditioner_input(x[:, self._sel_a], context))
        x_b = x[:, self._sel_b]
        y_b, log_det, t_cache = self.transform.forward(x_b, h)
        z = x.copy()
        z[:, self._sel_b] = y_b
        return z, log_det, (t_cache, net_cache, x.shape[0], context is not None)

    def inverse(self, z, context=None):
        """(FLOW.8), (SPL.8) z: (n, D) -> x: (n, D), log_det_inv: (n,). One conditioner pass."""
        z = self._check_x(z, "z")
        context = self._check_context(context, z.shape[0])
        h, _ = self.net._forward(self._conditioner_input(z[:, self._sel_a], context))
        x_b, log_det_inv = self.transform.inverse(z[:, self._sel_b], h)
        x = z.copy()
        x[:, self._sel_b] = x_b
        return x, log_det_inv

    def backward(self, cache, d_z, d_log_det):
        """(FLOW.9), (SPL.13) d_z: (n, D), d_log_det: (n,) -> d_x: (n, D), d_context: (n, C) or None."""
        d_z, d_log_det = self._check_cotangents(d_z, d_log_det, cache[2])
        return self._backward(cache, d_z, d_log_det)

    def _backward(self, cache, d_z, d_log_det):
        t_cache, net_cache, _, has_context = cache
        d_x_b, d_h = self.transform.backward(t_cache, d_z[:, self._sel_b], d_log_det)
        d_in = self.net._backward(net_cache, d_h)
        d_x = d_z.copy()
        d_x[:, self._sel_b] = d_x_b
        d_x[:, self._sel_a] += d_in[:, : self._d_a]            # x_A also feeds the conditioner
        return d_x, (d_in[:, self._d_a:] if has_context else None)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(dim={self.dim}, d_A={self._d_a}, hidden={self.hidden}, "
                f"context_dim={self.context_dim}, transform={self.transform!r})")


class AffineCoupling(Coupling):
    """RealNVP affine coupling, optionally conditioned on a context (FLOW.5-FLOW.9): a
    :class:`Coupling` with an :class:`AffineTransform`.

    Parameters
    ----------
    mask : (D,) array of 0/1 (see :class:`Coupling`).
    hidden : int or sequence of int, the conditioner's hidden widths.
    rng : None, int or numpy.random.Generator
    context_dim : int, C.
    activation : str, conditioner activation.
    bound : float or None, b of (FLOW.6); None for an unbounded scale.
    zero_init : bool, start as the identity.
    """

    def __init__(self, mask, hidden=(64, 64), *, rng=None, context_dim: int = 0,
                 activation: str = "relu", bound: float | None = 3.0, zero_init: bool = True) -> None:
        check_array(mask, "mask", ndim=1)
        transform = AffineTransform(bound)
        super().__init__(mask, transform, hidden, rng=rng, context_dim=context_dim,
                         activation=activation, zero_init=zero_init)

    @property
    def bound(self) -> float:
        """b of (FLOW.6); 0.0 means unbounded."""
        return self.transform.bound
