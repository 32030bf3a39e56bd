"""The bijector contract (derivations/flows.md).

A bijector f maps data x to latent z = f(x) with a tractable log|det df/dx|, optionally
conditioned on a context vector c per sample::

    z, log_det = b.forward(x, context=None)        # x: (n, D) -> z: (n, D), log_det: (n,)
    x, log_det_inv = b.inverse(z, context=None)    # log_det_inv = -log_det at the same point

For training, ``forward_cached`` also returns an explicit cache and ``backward`` turns the
gradients of a loss with respect to ``z`` and ``log_det`` into gradients with respect to ``x``
and the context, while *adding* the parameter gradients into ``b.grads`` (and its children's),
exactly like :class:`nprefgen.nn.Module`. No per-call state lives on the bijector.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nprefgen._validation import check_array, check_int
from nprefgen.nn.base import Module


class Bijector(Module):
    """Base class. Subclasses implement ``forward_cached``, ``backward`` and ``inverse``.

    Attributes
    ----------
    dim : int, the event dimension D.
    context_dim : int, the context size (0 for an unconditional bijector).
    """

    def __init__(self, dim: int, context_dim: int = 0) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", low=1)
        self.context_dim = check_int(context_dim, "context_dim", low=0)

    # -- checks shared by every bijector --------------------------------------------------------
    def _check_x(self, x, name: str = "x") -> np.ndarray:
        x = check_array(x, name, ndim=2)
        if x.shape[1] != self.dim:
            raise ValueError(f"{name}: {type(self).__name__} expected shape (n, {self.dim}), got {x.shape}")
        return x

    def _check_context(self, context, n: int) -> np.ndarray | None:
        if self.context_dim == 0:
            if context is not None:
                raise ValueError(f"context: {type(self).__name__} is unconditional, expected None, "
                                 f"got {np.shape(context)}")
            return None
        if context is None:
            raise ValueError(f"context: {type(self).__name__} expected shape (n, {self.context_dim}), got None")
        context = check_array(context, "context", ndim=2)
        if context.shape != (n, self.context_dim):
            raise ValueError(f"context: expected shape ({n}, {self.context_dim}), got {context.shape}")
        return context

    # -- the contract ---------------------------------------------------------------------------
    def forward_cached(self, x, context=None) -> tuple[np.ndarray, np.ndarray, Any]:
        """x: (n, D), context: (n, C) or None -> z: (n, D), log_det: (n,), cache."""
        raise NotImplementedError

    def forward(self, x, context=None) -> tuple[np.ndarray, np.ndarray]:
        """z = f(x), log|det df/dx| per sample."""
        z, log_det, _ = self.forward_cached(x, context)
        return z, log_det

    def inverse(self, z, context=None) -> tuple[np.ndarray, np.ndarray]:
        """x = f^{-1}(z), log|det df^{-1}/dz| = -log|det df/dx| per sample."""
        raise NotImplementedError

    def backward(self, cache, d_z: np.ndarray, d_log_det: np.ndarray):
        """Gradients of a loss L(z, log_det).

        d_z: (n, D), d_log_det: (n,) -> (d_x: (n, D), d_context: (n, C) or None).
        Parameter gradients are accumulated into ``self.grads`` (and children's).
        """
        raise NotImplementedError

    def __call__(self, x, context=None):
        return self.forward(x, context)
