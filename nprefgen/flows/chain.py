"""Composition of bijectors (derivations/flows.md, FLOW.2).

    f = f_K o ... o f_1,   log|det J_f(x)| = sum_k log|det J_{f_k}(h_{k-1})|,   h_0 = x     (FLOW.2)

The backward pass runs the bijectors in reverse; every one receives the same d_log_det (the
total is a plain sum), and the context gradients of the conditional ones add up.
"""
from __future__ import annotations

import numpy as np

from nprefgen.flows.base import Bijector


class Chain(Bijector):
    """Bijectors applied in order x -> z; children are named "0", "1", ... .

    Every bijector must have the same ``dim``; conditional ones (``context_dim > 0``) must share
    the chain's ``context_dim`` and receive the context, the others receive None.
    """

    def __init__(self, bijectors, context_dim: int | None = None) -> None:
        bijectors = list(bijectors)
        if not bijectors:
            raise ValueError("bijectors: expected at least one bijector, got none")
        for i, b in enumerate(bijectors):
            if not isinstance(b, Bijector):
                raise ValueError(f"bijectors[{i}]: expected an nprefgen.flows Bijector, got {type(b).__name__}")
        dims = {b.dim for b in bijectors}
        if len(dims) != 1:
            raise ValueError(f"bijectors: expected one event dimension, got dims "
                             f"{[b.dim for b in bijectors]}")
        ctx = {b.context_dim for b in bijectors if b.context_dim}
        if context_dim is None:
            context_dim = max(ctx) if ctx else 0
        if ctx - {context_dim}:
            want = "0 (an unconditional chain)" if context_dim == 0 else f"0 or {context_dim}"
            raise ValueError(f"bijectors: expected context_dim {want} for every bijector, "
                             f"got {[b.context_dim for b in bijectors]}")
        super().__init__(dims.pop(), context_dim)
        self.bijectors = bijectors
        for i, b in enumerate(bijectors):
            self.add_child(str(i), b)

    def _ctx(self, b, context):
        return context if b.context_dim else None

    def forward_cached(self, x, context=None):
        """(FLOW.2) x: (n, D) -> z: (n, D), log_det: (n,) summed over the bijectors, caches."""
        x = self._check_x(x)
        return self._forward_cached(x, self._check_context(context, x.shape[0]))

    def _forward_cached(self, x, context=None):
        log_det = np.zeros(x.shape[0], dtype=x.dtype)
        caches = []
        for b in self.bijectors:
            x, ld, c = b._forward_cached(x, self._ctx(b, context))
            log_det += ld
            caches.append(c)
        return x, log_det, (caches, x.shape[0])

    def inverse(self, z, context=None):
        """(FLOW.2) z: (n, D) -> x: (n, D), log_det_inv: (n,), through the bijectors in reverse."""
        z = self._check_x(z, "z")
        context = self._check_context(context, z.shape[0])
        log_det_inv = np.zeros(z.shape[0], dtype=z.dtype)
        for b in reversed(self.bijectors):
            z, ld = b.inverse(z, self._ctx(b, context))
            log_det_inv += ld
        return z, log_det_inv

    def backward(self, cache, d_z, d_log_det):
        """(FLOW.2) reverse-mode through the chain: d_z: (n, D), d_log_det: (n,) -> d_x, d_context."""
        d_z, d_log_det = self._check_cotangents(d_z, d_log_det, cache[1])
        return self._backward(cache, d_z, d_log_det)

    def _backward(self, cache, d_z, d_log_det, context_grad: bool = True):
        """Unchecked :meth:`backward`; ``context_grad`` False returns d_context None without
        summing the bijectors' context gradients (a flow's training does not use them)."""
        caches, n = cache
        d_context = np.zeros((n, self.context_dim), dtype=d_z.dtype) \
            if self.context_dim and context_grad else None
        for b, c in zip(reversed(self.bijectors), reversed(caches)):
            d_z, d_c = b._backward(c, d_z, d_log_det)
            if d_c is not None and d_context is not None:
                d_context += d_c
        return d_z, d_context

    def __len__(self) -> int:
        return len(self.bijectors)

    def __getitem__(self, i: int) -> Bijector:
        return self.bijectors[i]

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(b) for b in self.bijectors)
        return f"{type(self).__name__}(\n  {inner}\n)"
