"""Elementwise affine bijectors: trained (ElementwiseAffine, ActNorm) and fixed (Standardize)
(derivations/flows.md, FLOW.18-FLOW.19).

    z = x exp(log_scale) + shift,   log_det = sum_d log_scale_d                        (FLOW.18)

ActNorm (Kingma & Dhariwal 2018, Glow) is the same map with a data-dependent initialisation:
``initialize(x)`` sets the parameters so that the first batch leaves with zero mean and unit
variance per coordinate (FLOW.19). It is an explicit call (``Flow.fit`` makes it on the first
batch, ``Flow.initialize`` propagates a batch through the chain); ``forward`` never changes the
parameters, and an ActNorm that was never initialised is the identity.

Standardize is the fixed z-scoring ``z = (x - mean) / std`` (FLOW.18 with log_scale = -log std,
shift = -mean/std) whose mean and std are buffers, not parameters: prepend it to a flow to
train on z-scored data while ``log_prob`` still reports the density of the raw data (its
log_det = -sum log std is included). ``Standardize.from_data(x)`` computes the statistics;
``Standardize(dim=D)`` is an unfitted one that ``initialize(x)`` fits (the builders' default).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_scalar
from nprefgen.flows.base import Bijector


def elementwise_affine_forward(x, log_scale, shift):
    """(FLOW.18) x: (n, D), log_scale, shift: (D,) -> z: (n, D), log_det: (n,)."""
    z = x * np.exp(log_scale) + shift
    return z, np.full(x.shape[0], log_scale.sum(), dtype=z.dtype)


def elementwise_affine_inverse(z, log_scale, shift):
    """(FLOW.18) inverse: x = (z - shift) exp(-log_scale), log_det_inv = -sum log_scale."""
    x = (z - shift) * np.exp(-log_scale)
    return x, np.full(z.shape[0], -log_scale.sum(), dtype=x.dtype)


class ElementwiseAffine(Bijector):
    """Trained per-coordinate scale and shift (FLOW.18); parameters ``log_scale``, ``shift`` (D,),
    initialised to the identity."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.add_param("log_scale", np.zeros(self.dim))
        self.add_param("shift", np.zeros(self.dim))

    def forward_cached(self, x, context=None):
        """(FLOW.18) x: (n, D) -> z: (n, D), log_det: (n,), cache = x."""
        x = self._check_x(x)
        self._check_context(context, x.shape[0])
        z, log_det = elementwise_affine_forward(x, self.params["log_scale"], self.params["shift"])
        return z, log_det, x

    def inverse(self, z, context=None):
        z = self._check_x(z, "z")
        self._check_context(context, z.shape[0])
        return elementwise_affine_inverse(z, self.params["log_scale"], self.params["shift"])

    def backward(self, x, d_z, d_log_det):
        """(FLOW.18) d_x = d_z e^{log_scale}; d_log_scale = sum_n d_z x e^{log_scale} + sum_n d_log_det;
        d_shift = sum_n d_z."""
        d_z, d_log_det = self._check_cotangents(d_z, d_log_det, x.shape[0])
        scale = np.exp(self.params["log_scale"])
        d_x = d_z * scale
        self.grads["log_scale"] += (d_x * x).sum(axis=0) + d_log_det.sum()
        self.grads["shift"] += d_z.sum(axis=0)
        return d_x, None


class ActNorm(ElementwiseAffine):
    """ElementwiseAffine with the data-dependent initialisation of Glow (FLOW.19).

    ``initialized`` is a buffer (0 or 1) so that a saved, trained flow is not re-initialised.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__(dim)
        self.eps = check_scalar(eps, "eps", low=0.0)
        self._flag = self.register_buffer("initialized", np.zeros(1))

    def validate_buffers(self, buffers) -> None:
        super().validate_buffers(buffers)
        if np.asarray(buffers["initialized"])[0] not in (0.0, 1.0):
            raise ValueError(f"buffers['initialized']: expected 0 or 1, got "
                             f"{np.asarray(buffers['initialized']).tolist()}")

    @property
    def initialized(self) -> bool:
        return bool(self._flag[0])

    def initialize(self, x) -> "ActNorm":
        """(FLOW.19) log_scale = -log(std(x) + eps), shift = -mean(x) exp(log_scale); x: (n, D).

        The batch then leaves with mean 0 and variance ~1 per coordinate. Needs n >= 2.
        """
        x = self._check_x(x)
        if x.shape[0] < 2:
            raise ValueError(f"x: expected at least 2 samples to initialise ActNorm, got {x.shape[0]}")
        mean = x.mean(axis=0)
        std = np.sqrt(((x - mean) ** 2).mean(axis=0))          # two-pass variance
        self.params["log_scale"][...] = -np.log(std + self.eps)
        self.params["shift"][...] = -mean * np.exp(self.params["log_scale"])
        self._flag[0] = 1.0
        return self


class Standardize(Bijector):
    """Fixed z-scoring z = (x - mean) / std (FLOW.18); ``mean``, ``std`` are buffers (D,).

    No parameters: optimizers never move it. ``log_det = -sum log std`` so densities stay those of
    the raw x. Three ways to build it:

    - ``Standardize(mean, std)``: fitted, with the given statistics;
    - ``Standardize.from_data(x)``: fitted to ``x: (n, D)``;
    - ``Standardize(dim=D)``: *unfitted*; ``initialize(x)`` later sets mean and std from data
      (``Flow.initialize`` and ``Flow.fit`` call it, like ActNorm's data-dependent init, FLOW.19).

    ``initialized`` is a buffer (0 or 1), so a saved fitted flow loads fitted. An unfitted
    Standardize is never silently the identity: ``forward``/``inverse`` (hence ``log_prob`` and
    ``sample`` of a flow that holds one) raise a ValueError that says to fit or initialise first.
    """

    # files written before the flag existed held only fitted (or load-filled) Standardizes
    legacy_buffers = {"initialized": 1.0}

    def __init__(self, mean=None, std=None, *, dim: int | None = None,
                 min_std: float = 1e-12) -> None:
        self.min_std = check_scalar(min_std, "min_std", low=0.0, low_inclusive=False)
        if mean is None and std is None:
            if dim is None:
                raise ValueError("dim: expected the dimension of an unfitted Standardize (or give "
                                 "mean and std), got None")
            super().__init__(dim)
            mean, std, flag = np.zeros(self.dim), np.ones(self.dim), 0.0
        else:
            mean = check_array(mean, "mean", ndim=1, dtype=np.float64)
            std = check_array(std, "std", shape=mean.shape, dtype=np.float64)
            if np.any(std <= 0):
                raise ValueError(f"std: expected positive entries, got min {std.min()}")
            if dim is not None and dim != mean.size:
                raise ValueError(f"dim: expected {mean.size} (the size of mean), got {dim}")
            super().__init__(mean.size)
            flag = 1.0
        self.mean = self.register_buffer("mean", mean.copy())
        self.std = self.register_buffer("std", std.copy())
        self._flag = self.register_buffer("initialized", np.full(1, flag))

    @property
    def initialized(self) -> bool:
        return bool(self._flag[0])

    @staticmethod
    def statistics(x, min_std: float = 1e-12):
        """Mean and standard deviation (two-pass, floored at ``min_std``) of ``x: (n, D)``."""
        mean = x.mean(axis=0)
        std = np.sqrt(((x - mean) ** 2).mean(axis=0))
        return mean, np.maximum(std, min_std)

    def validate_buffers(self, buffers) -> None:
        super().validate_buffers(buffers)
        if not np.all(np.asarray(buffers["std"]) > 0):
            raise ValueError(f"buffers['std']: expected positive entries, got min "
                             f"{np.min(buffers['std'])}")

    @classmethod
    def from_data(cls, x, min_std: float = 1e-12) -> "Standardize":
        """Mean and standard deviation of ``x: (n, D)`` (std floored at ``min_std``)."""
        x = check_array(x, "x", ndim=2, dtype=np.float64)
        check_scalar(min_std, "min_std", low=0.0, low_inclusive=False)
        return cls(*cls.statistics(x, min_std), min_std=min_std)

    def initialize(self, x) -> "Standardize":
        """Set mean and std from ``x: (n, D)``, n >= 2, and mark the bijector fitted."""
        x = self._check_x(x)
        if x.shape[0] < 2:
            raise ValueError(f"x: expected at least 2 samples to fit Standardize, got {x.shape[0]}")
        mean, std = self.statistics(x.astype(np.float64), self.min_std)
        self.mean[...] = mean
        self.std[...] = std
        self._flag[0] = 1.0
        return self

    def _check_fitted(self) -> None:
        if not self._flag[0]:
            raise ValueError("Standardize: not fitted yet (its mean and std are unknown). Call "
                             "flow.fit(x) or flow.initialize(x) first, pass the data to the builder "
                             "(standardize=x), or build with standardize=False")

    def _buffers_loaded(self) -> None:
        if np.any(self.std <= 0) or not np.all(np.isfinite(self.std)):
            raise ValueError("buffers['std']: expected positive finite entries")

    def forward_cached(self, x, context=None):
        """(FLOW.18) x: (n, D) -> z = (x - mean)/std, log_det = -sum log std, cache = n."""
        x = self._check_x(x)
        self._check_context(context, x.shape[0])
        return self._forward_cached(x)

    def _forward_cached(self, x, context=None):
        """:meth:`forward_cached` unchecked (a Flow checked x once, for every bijector)."""
        self._check_fitted()
        z = (x - self.mean) / self.std
        return z, np.full(x.shape[0], -np.log(self.std).sum()), x.shape[0]

    def inverse(self, z, context=None):
        z = self._check_x(z, "z")
        self._check_context(context, z.shape[0])
        self._check_fitted()
        return z * self.std + self.mean, np.full(z.shape[0], np.log(self.std).sum())

    def backward(self, n, d_z, d_log_det):
        """d_x = d_z / std (no parameters)."""
        d_z, _ = self._check_cotangents(d_z, d_log_det, n)
        return self._backward(n, d_z, d_log_det)

    def _backward(self, n, d_z, d_log_det):
        """:meth:`backward` unchecked (the cotangents come from the Flow's own backward)."""
        return d_z / self.std, None

    def __repr__(self) -> str:
        return f"Standardize(dim={self.dim}{'' if self.initialized else ', unfitted'})"
