"""Hypothesis strategies for property tests of nprefgen and of the code checked against it.

Requires ``hypothesis`` (the ``test`` extra). Everything here draws float64 arrays of moderate
scale, so finite-difference checks are well conditioned.

>>> from hypothesis import given
>>> from nprefgen.testing.strategies import batch_shapes, arrays_for
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


def seeds() -> st.SearchStrategy[int]:
    """Seeds for ``np.random.default_rng``."""
    return st.integers(min_value=0, max_value=2**32 - 1)


def rngs() -> st.SearchStrategy[np.random.Generator]:
    """Independent generators, shown by their seed in failure reports."""
    return seeds().map(np.random.default_rng)


def batch_shapes(min_batch: int = 1, max_batch: int = 8, min_features: int = 1,
                 max_features: int = 8) -> st.SearchStrategy[tuple[int, int]]:
    """``(n, d)`` pairs."""
    return st.tuples(st.integers(min_batch, max_batch), st.integers(min_features, max_features))


def image_shapes(max_batch: int = 3, max_channels: int = 3, min_size: int = 3,
                 max_size: int = 8) -> st.SearchStrategy[tuple[int, int, int, int]]:
    """``(n, c, h, w)`` tuples."""
    return st.tuples(st.integers(1, max_batch), st.integers(1, max_channels),
                     st.integers(min_size, max_size), st.integers(min_size, max_size))


@st.composite
def arrays_for(draw, shape, scale: float = 1.0, away_from_zero: float = 0.0) -> np.ndarray:
    """A float64 array of ``shape`` with N(0, scale^2) entries drawn from a hypothesis seed.

    ``away_from_zero`` pushes entries at least that far from 0 (keeps ReLU-like kinks out of
    finite-difference stencils).
    """
    rng = np.random.default_rng(draw(seeds()))
    x = scale * rng.standard_normal(shape)
    if away_from_zero > 0:
        x = np.where(x >= 0, x + away_from_zero, x - away_from_zero)
    return x


@st.composite
def strided_arrays(draw, shape, scale: float = 1.0) -> np.ndarray:
    """Like :func:`arrays_for`, in one of three memory layouts drawn by hypothesis: a
    non-contiguous view (every second entry along each axis of a larger array), a transpose
    (2-D only; for other ranks this kind is contiguous), or a plain contiguous array, so one
    strategy covers both the strided and the contiguous paths of a kernel. (A view with a single
    element is always flagged contiguous by NumPy.)"""
    kind = draw(st.sampled_from(["step", "transpose", "contiguous"]))
    rng = np.random.default_rng(draw(seeds()))
    if kind == "step":
        big = scale * rng.standard_normal(tuple(2 * s for s in shape))
        return big[tuple(slice(None, None, 2) for _ in shape)]
    if kind == "transpose" and len(shape) == 2:
        return (scale * rng.standard_normal(shape[::-1])).T
    return scale * rng.standard_normal(shape)


@st.composite
def spd_matrices(draw, dim: int | None = None, max_dim: int = 6, min_eig: float = 0.1,
                 max_eig: float = 10.0) -> np.ndarray:
    """Symmetric positive-definite ``(d, d)`` matrices with eigenvalues in [min_eig, max_eig]."""
    d = dim if dim is not None else draw(st.integers(1, max_dim))
    rng = np.random.default_rng(draw(seeds()))
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = rng.uniform(min_eig, max_eig, size=d)
    s = (q * eig) @ q.T
    return 0.5 * (s + s.T)


@st.composite
def mlp_configs(draw, max_in: int = 6, max_hidden: int = 12, max_depth: int = 3, max_out: int = 5,
                activations=("tanh", "sigmoid", "softplus", "elu")) -> dict:
    """Keyword arguments for :func:`nprefgen.nn.MLP` (smooth activations by default)."""
    return {
        "in_features": draw(st.integers(1, max_in)),
        "hidden": draw(st.lists(st.integers(1, max_hidden), min_size=0, max_size=max_depth)),
        "out_features": draw(st.integers(1, max_out)),
        "activation": draw(st.sampled_from(list(activations))),
    }
