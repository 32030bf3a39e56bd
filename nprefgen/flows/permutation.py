"""Permutations of the coordinates (derivations/flows.md, FLOW.17).

    z = x[:, perm],   log_det = 0,   x = z[:, perm^{-1}]                              (FLOW.17)

Stacked coupling or autoregressive layers need them so that every coordinate is eventually
transformed and conditioned on every other one. The permutation is a buffer (saved with a flow).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_int, check_rng
from nprefgen.flows.base import Bijector, check_parameter_count


def _dim(dim) -> int:
    """D >= 1, bounded before a (D,) array is built."""
    dim = check_int(dim, "dim", low=1)
    return check_parameter_count(dim, f"a Permutation of dim {dim}", name="dim")


class Permutation(Bijector):
    """A fixed permutation ``perm`` of 0..D-1 (FLOW.17); unconditional, no parameters."""

    def __init__(self, perm) -> None:
        arr = np.asarray(perm)
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer) \
                or sorted(arr.tolist()) != list(range(arr.size)):
            raise ValueError(f"perm: expected a permutation of 0..D-1 as integers, got {arr.tolist()!r}"[:300])
        super().__init__(arr.size)
        self.perm = self.register_buffer("perm", arr.astype(np.int64).copy())
        self.inv_perm = np.argsort(self.perm)

    @classmethod
    def reverse(cls, dim: int) -> "Permutation":
        """D-1, ..., 0 (the MAF paper's choice between layers)."""
        return cls(np.arange(_dim(dim))[::-1].copy())

    @classmethod
    def random(cls, dim: int, *, rng=None) -> "Permutation":
        """A uniformly random permutation drawn from ``rng`` (sbi's choice between layers)."""
        return cls(check_rng(rng).permutation(_dim(dim)))

    def validate_buffers(self, buffers) -> None:
        super().validate_buffers(buffers)
        if sorted(np.asarray(buffers["perm"]).tolist()) != list(range(self.dim)):
            raise ValueError(f"buffers['perm']: expected a permutation of 0..{self.dim - 1}, "
                             f"got {np.asarray(buffers['perm']).tolist()}"[:300])

    def _buffers_loaded(self) -> None:
        if sorted(self.perm.tolist()) != list(range(self.dim)):
            raise ValueError(f"buffers['perm']: expected a permutation of 0..{self.dim - 1}, "
                             f"got {self.perm.tolist()}")
        self.inv_perm = np.argsort(self.perm)

    def forward_cached(self, x, context=None):
        """(FLOW.17) x: (n, D) -> z = x[:, perm], log_det = 0: (n,), cache = n."""
        x = self._check_x(x)
        self._check_context(context, x.shape[0])
        return self._forward_cached(x)

    def _forward_cached(self, x, context=None):
        """:meth:`forward_cached` unchecked (a Flow checked x once, for every bijector)."""
        return x[:, self.perm], np.zeros(x.shape[0], dtype=x.dtype), x.shape[0]

    def inverse(self, z, context=None):
        """(FLOW.17) z: (n, D) -> x = z[:, perm^{-1}], log_det_inv = 0."""
        z = self._check_x(z, "z")
        self._check_context(context, z.shape[0])
        return z[:, self.inv_perm], np.zeros(z.shape[0], dtype=z.dtype)

    def backward(self, n, d_z, d_log_det):
        """(FLOW.17) the transpose of a permutation is its inverse: d_x = d_z[:, perm^{-1}]."""
        d_z, _ = self._check_cotangents(d_z, d_log_det, n)
        return self._backward(n, d_z, d_log_det)

    def _backward(self, n, d_z, d_log_det):
        """:meth:`backward` unchecked (the cotangents come from the Flow's own backward)."""
        return d_z[:, self.inv_perm], None

    def __repr__(self) -> str:
        return f"Permutation({self.perm.tolist()})"
