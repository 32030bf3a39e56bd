"""Hypothesis strategies for property tests of nprefgen and of the code checked against it.

Requires ``hypothesis`` (the ``test`` extra). Everything here draws float64 arrays of moderate
scale, so finite-difference checks are well conditioned.

>>> from hypothesis import given
>>> from nprefgen.testing.strategies import batch_shapes, arrays_for
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from nprefgen._validation import check_int, check_scalar, check_shape


def _check_range(low: int, high: int, name_low: str, name_high: str, minimum: int) -> None:
    """``minimum <= low <= high``; the arguments are checked when the strategy is built, not at
    the first draw (hypothesis would defer the error into the test run)."""
    check_int(low, name_low, low=minimum)
    check_int(high, name_high, low=low)


def seeds() -> st.SearchStrategy[int]:
    """Seeds for ``np.random.default_rng``."""
    return st.integers(min_value=0, max_value=2**32 - 1)


def rngs() -> st.SearchStrategy[np.random.Generator]:
    """Independent generators, shown by their seed in failure reports."""
    return seeds().map(np.random.default_rng)


def batch_shapes(min_batch: int = 1, max_batch: int = 8, min_features: int = 1,
                 max_features: int = 8) -> st.SearchStrategy[tuple[int, int]]:
    """``(n, d)`` pairs."""
    _check_range(min_batch, max_batch, "min_batch", "max_batch", 0)
    _check_range(min_features, max_features, "min_features", "max_features", 0)
    return st.tuples(st.integers(min_batch, max_batch), st.integers(min_features, max_features))


def image_shapes(max_batch: int = 3, max_channels: int = 3, min_size: int = 3,
                 max_size: int = 8) -> st.SearchStrategy[tuple[int, int, int, int]]:
    """``(n, c, h, w)`` tuples."""
    check_int(max_batch, "max_batch", low=1)
    check_int(max_channels, "max_channels", low=1)
    _check_range(min_size, max_size, "min_size", "max_size", 1)
    return st.tuples(st.integers(1, max_batch), st.integers(1, max_channels),
                     st.integers(min_size, max_size), st.integers(min_size, max_size))


def arrays_for(shape, scale: float = 1.0, away_from_zero: float = 0.0) -> st.SearchStrategy:
    """A float64 array of ``shape`` with N(0, scale^2) entries drawn from a hypothesis seed.

    ``away_from_zero`` pushes entries at least that far from 0 (keeps ReLU-like kinks out of
    finite-difference stencils).
    """
    return _arrays_for(check_shape(shape, "shape"), check_scalar(scale, "scale", low=0.0),
                       check_scalar(away_from_zero, "away_from_zero", low=0.0))


@st.composite
def _arrays_for(draw, shape, scale, away_from_zero) -> np.ndarray:
    rng = np.random.default_rng(draw(seeds()))
    x = scale * rng.standard_normal(shape)
    if away_from_zero > 0:
        x = np.where(x >= 0, x + away_from_zero, x - away_from_zero)
    return x


def strided_arrays(shape, scale: float = 1.0) -> st.SearchStrategy:
    """Like :func:`arrays_for`, in one of three memory layouts drawn by hypothesis: a
    non-contiguous view (every second entry along each axis of a larger array), a transpose
    (2-D only; for other ranks this kind is contiguous), or a plain contiguous array, so one
    strategy covers both the strided and the contiguous paths of a kernel. (A view with a single
    element is always flagged contiguous by NumPy.)"""
    return _strided_arrays(check_shape(shape, "shape"), check_scalar(scale, "scale", low=0.0))


@st.composite
def _strided_arrays(draw, shape, scale) -> np.ndarray:
    kind = draw(st.sampled_from(["step", "transpose", "contiguous"]))
    rng = np.random.default_rng(draw(seeds()))
    if kind == "step":
        big = scale * rng.standard_normal(tuple(2 * s for s in shape))
        return big[tuple(slice(None, None, 2) for _ in shape)]
    if kind == "transpose" and len(shape) == 2:
        return (scale * rng.standard_normal(shape[::-1])).T
    return scale * rng.standard_normal(shape)


def spd_matrices(dim: int | None = None, max_dim: int = 6, min_eig: float = 0.1,
                 max_eig: float = 10.0) -> st.SearchStrategy:
    """Symmetric positive-definite ``(d, d)`` matrices with eigenvalues in [min_eig, max_eig]."""
    if dim is not None:
        check_int(dim, "dim", low=1)
    check_int(max_dim, "max_dim", low=1)
    min_eig = check_scalar(min_eig, "min_eig", low=0.0, low_inclusive=False)
    max_eig = check_scalar(max_eig, "max_eig", low=min_eig)
    return _spd_matrices(dim, max_dim, min_eig, max_eig)


@st.composite
def _spd_matrices(draw, dim, max_dim, min_eig, max_eig) -> np.ndarray:
    d = dim if dim is not None else draw(st.integers(1, max_dim))
    rng = np.random.default_rng(draw(seeds()))
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = rng.uniform(min_eig, max_eig, size=d)
    s = (q * eig) @ q.T
    return 0.5 * (s + s.T)


def mlp_configs(max_in: int = 6, max_hidden: int = 12, max_depth: int = 3, max_out: int = 5,
                activations=("tanh", "sigmoid", "softplus")) -> st.SearchStrategy[dict]:
    """Keyword arguments for :func:`nprefgen.nn.MLP` (smooth activations by default).

    The defaults are infinitely differentiable, as the fourth-order stencil of the dot-product
    test (NN.19) assumes; ELU is only once differentiable at 0 (its second derivative jumps from
    1 to 0), so a pre-activation near 0 costs the stencil its O(h^4) accuracy."""
    from nprefgen.nn.activations import ACTIVATIONS

    for name, value, low in (("max_in", max_in, 1), ("max_hidden", max_hidden, 1),
                             ("max_depth", max_depth, 0), ("max_out", max_out, 1)):
        check_int(value, name, low=low)
    activations = list(activations) if isinstance(activations, (tuple, list)) else [activations]
    if not activations or any(a not in ACTIVATIONS for a in activations):
        raise ValueError(f"activations: expected a non-empty list of names from "
                         f"{sorted(ACTIVATIONS)}, got {activations!r}")
    return _mlp_configs(max_in, max_hidden, max_depth, max_out, activations)


@st.composite
def _mlp_configs(draw, max_in, max_hidden, max_depth, max_out, activations) -> dict:
    return {
        "in_features": draw(st.integers(1, max_in)),
        "hidden": draw(st.lists(st.integers(1, max_hidden), min_size=0, max_size=max_depth)),
        "out_features": draw(st.integers(1, max_out)),
        "activation": draw(st.sampled_from(activations)),
    }
