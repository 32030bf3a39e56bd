"""Masked autoregressive flow (MAF) and inverse autoregressive flow (IAF) layers
(derivations/flows.md, FLOW.12-FLOW.14).

Both are built on one :class:`~nprefgen.flows.made.MADE` giving ``(mu, raw_alpha)`` with
alpha = b tanh(raw_alpha / b) (FLOW.6), and both keep the direction convention of every nprefgen
bijector: ``forward`` maps data x to the base variable z.

MAF (Papamakarios, Pavlakou & Murray 2017), the density direction in one pass:

    z_i = (x_i - mu_i(x_<i)) exp(-alpha_i(x_<i)),   log_det = -sum_i alpha_i       (FLOW.12)

and the sampling direction sequential over the D coordinates (one MADE pass each):

    x_i = z_i exp(alpha_i(x_<i)) + mu_i(x_<i)                                       (FLOW.13)

IAF (Kingma et al. 2016) swaps the costs: its inverse (sampling) is one pass,

    x = g(z) = z exp(alpha(z)) + mu(z),            forward z = g^{-1}(x) sequential   (FLOW.15)

and its backward solves the triangular system J_g^T lambda = a by D MADE input-VJPs (FLOW.16),
where the Jacobian is  J_g = diag(exp alpha) + N  with N strictly triangular in the order.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_rng, check_scalar
from nprefgen.flows.base import Bijector
from nprefgen.flows.made import MADE, made_masks
from nprefgen.kernels.coupling import (
    affine_coupling_forward, affine_coupling_inverse, soft_clamp_numpy,
)
from nprefgen.kernels.maf_affine import maf_affine_backward


class _MADEBijector(Bijector):
    """Shared construction: the MADE child ``made``, its order as a buffer, the bound."""

    def __init__(self, dim, hidden, *, rng, context_dim, order, activation, bound, zero_init):
        super().__init__(dim, context_dim)
        rng = check_rng(rng)
        self.bound = 0.0 if bound is None else check_scalar(bound, "bound", low=0.0, low_inclusive=False)
        self.made = self.add_child("made", MADE(dim, hidden, rng=rng, context_dim=context_dim,
                                                order=order, activation=activation,
                                                zero_init=zero_init))
        self.order = self.register_buffer("order", self.made.degrees[0].astype(np.float64))

    def validate_buffers(self, buffers) -> None:
        super().validate_buffers(buffers)
        if sorted(np.asarray(buffers["order"]).tolist()) != list(range(1, self.dim + 1)):
            raise ValueError(f"buffers['order']: expected a permutation of 1..{self.dim}, "
                             f"got {np.asarray(buffers['order']).tolist()}"[:300])

    def _buffers_loaded(self) -> None:
        order = self.order.astype(np.int64)
        if sorted(order.tolist()) != list(range(1, self.dim + 1)):
            raise ValueError(f"buffers['order']: expected a permutation of 1..{self.dim}, "
                             f"got {order.tolist()}")
        self.made.degrees[0] = order
        for layer, mask in zip(self.made.masked_layers(), made_masks(self.made.degrees, self.context_dim)):
            layer.mask[...] = mask

    def _made(self, h, context):
        """(mu, raw_alpha, alpha, dalpha/draw, cache) at the MADE input h: (n, D)."""
        out, cache = self.made.forward(h, context)
        mu, raw = out[:, : self.dim], out[:, self.dim:]
        alpha, d_clamp = soft_clamp_numpy(raw, self.bound)      # (FLOW.6)
        return mu, raw, alpha, d_clamp, cache

    def _sequential_positions(self):
        """Coordinates sorted by degree: the order a sequential pass fills them in."""
        return np.argsort(self.made.degrees[0], kind="stable")


class MAF(_MADEBijector):
    """One MAF layer: a MADE bijector, density direction in one pass (FLOW.12), sampling
    sequential (FLOW.13).

    Parameters
    ----------
    dim : int, D
    hidden : sequence of int, MADE hidden widths
    rng : None, int or numpy.random.Generator (SPEC 7)
    context_dim : int, C (the context feeds every hidden unit)
    order : (D,) permutation of 1..D or None (identity order); chains of MAF layers usually
        reverse or permute the order between layers (see :func:`nprefgen.flows.flow.maf`)
    activation : str
    bound : float or None, b of (FLOW.6) for alpha
    zero_init : bool, start as the identity
    """

    def __init__(self, dim: int, hidden=(64, 64), *, rng=None, context_dim: int = 0,
                 order=None, activation: str = "relu", bound: float | None = 3.0,
                 zero_init: bool = True) -> None:
        super().__init__(dim, hidden, rng=rng, context_dim=context_dim, order=order,
                         activation=activation, bound=bound, zero_init=zero_init)

    def forward_cached(self, x, context=None):
        """(FLOW.12) x: (n, D) -> z: (n, D), log_det = -sum alpha: (n,), cache."""
        x = self._check_x(x)
        return self._forward_cached(x, self._check_context(context, x.shape[0]))

    def _forward_cached(self, x, context=None):
        """(FLOW.12) unchecked: a Flow checked x and the context once, for every bijector."""
        out, cache = self.made._forward(x, context)
        mu, raw = out[:, : self.dim], out[:, self.dim:]
        # (FLOW.12) is the coupling inverse (FLOW.8) with s = alpha, t = mu: the same kernel
        z, log_det = affine_coupling_inverse(x, raw, mu, self.bound)
        return z, log_det, (z, raw, cache)

    def backward(self, cache, d_z, d_log_det):
        """(FLOW.14) d_z: (n, D), d_log_det: (n,) -> d_x: (n, D), d_context: (n, C) or None.

        With e = exp(-alpha):  d_x = d_z e + MADE^T[d_mu, d_raw];  d_mu = -d_z e;
        d_alpha = -d_z z - d_log_det;  d_raw = d_alpha (1 - (alpha/b)^2).
        """
        d_z, d_log_det = self._check_cotangents(d_z, d_log_det, cache[0].shape[0])
        return self._backward(cache, d_z, d_log_det)

    def _backward(self, cache, d_z, d_log_det):
        """(FLOW.14) unchecked (the cotangents come from the Flow's own backward)."""
        z, raw, made_cache = cache
        if self.bound > 0:
            u = raw / self.bound
            np.tanh(u, out=u)                          # alpha = b u  (FLOW.6)
            e = np.multiply(u, -self.bound)            # -alpha, bit for bit
        else:
            u, e = raw, np.negative(raw)
        np.exp(e, out=e)                               # e = exp(-alpha)
        # (FLOW.14) the rest in one pass (kernels/maf_affine.py): d_x, d_out = [d_mu, d_raw] and
        # its column sum, the MADE output layer's bias gradient
        d_x, d_out, d_b = maf_affine_backward(d_z, z, d_log_det, u, e, self.bound)
        d_made_x, d_context = self.made._backward(made_cache, d_out, d_b=d_b)
        d_x += d_made_x
        return d_x, d_context

    def inverse(self, z, context=None):
        """(FLOW.13) z: (n, D) -> x: (n, D), log_det_inv = sum alpha: (n,). D MADE passes."""
        z = self._check_x(z, "z")
        context = self._check_context(context, z.shape[0])
        x = np.zeros_like(z)
        log_det_inv = np.zeros(z.shape[0], dtype=z.dtype)
        for i in self._sequential_positions():
            # outputs for coordinate i depend only on the coordinates already filled in
            mu, raw, _, _, _ = self._made(x, context)
            x_i, ld_i = affine_coupling_forward(z[:, i:i + 1], raw[:, i:i + 1], mu[:, i:i + 1], self.bound)
            x[:, i] = x_i[:, 0]
            log_det_inv += ld_i
        return x, log_det_inv

    def __repr__(self) -> str:
        return f"MAF(dim={self.dim}, hidden={self.made.hidden}, context_dim={self.context_dim})"


class IAF(_MADEBijector):
    """One IAF layer: sampling (inverse) in one pass (FLOW.15), density (forward) sequential,
    backward by a triangular solve with D MADE input-VJPs (FLOW.16). Same parameters as MAF."""

    def __init__(self, dim: int, hidden=(64, 64), *, rng=None, context_dim: int = 0,
                 order=None, activation: str = "relu", bound: float | None = 3.0,
                 zero_init: bool = True) -> None:
        super().__init__(dim, hidden, rng=rng, context_dim=context_dim, order=order,
                         activation=activation, bound=bound, zero_init=zero_init)

    def inverse(self, z, context=None):
        """(FLOW.15) z: (n, D) -> x = z exp(alpha(z)) + mu(z): (n, D), log_det_inv = sum alpha."""
        z = self._check_x(z, "z")
        context = self._check_context(context, z.shape[0])
        out, _ = self.made.forward(z, context)
        return affine_coupling_forward(z, out[:, self.dim:], out[:, : self.dim], self.bound)

    def forward_cached(self, x, context=None):
        """(FLOW.15) x: (n, D) -> z = g^{-1}(x) sequentially, log_det = -sum alpha(z), cache."""
        x = self._check_x(x)
        context = self._check_context(context, x.shape[0])
        z = np.zeros_like(x)
        for i in self._sequential_positions():
            mu, raw, _, _, _ = self._made(z, context)
            z_i, _ = affine_coupling_inverse(x[:, i:i + 1], raw[:, i:i + 1], mu[:, i:i + 1], self.bound)
            z[:, i] = z_i[:, 0]
        mu, raw, alpha, d_clamp, made_cache = self._made(z, context)   # one more pass for the cache
        return z, -alpha.sum(axis=1), (z, alpha, d_clamp, made_cache)

    def backward(self, cache, d_z, d_log_det):
        """(FLOW.16) Implicit differentiation of x = g(z; theta, c).

        a = d_z - d_log_det * d(sum alpha)/dz;  solve J_g^T lambda = a by the fixed point
        lambda <- (a - N^T lambda) exp(-alpha), exact after D steps (N^T is nilpotent);
        d_x = lambda;  parameters and context get -(dg/dtheta)^T lambda - d_log_det dsum(alpha)/dtheta.
        """
        z, alpha, d_clamp, made_cache = cache
        d_z, d_log_det = self._check_cotangents(d_z, d_log_det, z.shape[0])
        zero = np.zeros_like(z)
        e_alpha = np.exp(alpha)
        e_neg = 1.0 / e_alpha
        d_ld_alpha = np.broadcast_to(-d_log_det[:, None], z.shape) * d_clamp
        a = d_z + self.made.input_vjp(made_cache, np.concatenate([zero, d_ld_alpha], axis=1))[0]
        lam = a * e_neg
        for _ in range(self.dim - 1):
            # N^T lambda: the VJP of g minus its diagonal part exp(alpha)
            n_t_lam = self.made.input_vjp(made_cache, np.concatenate(
                [lam, lam * z * e_alpha * d_clamp], axis=1))[0]
            lam = (a - n_t_lam) * e_neg
        d_alpha = -lam * z * e_alpha - d_log_det[:, None]
        _, d_context = self.made.backward(made_cache, np.concatenate([-lam, d_alpha * d_clamp], axis=1))
        return lam, d_context

    def __repr__(self) -> str:
        return f"IAF(dim={self.dim}, hidden={self.made.hidden}, context_dim={self.context_dim})"
