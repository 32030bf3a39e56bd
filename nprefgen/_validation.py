"""Input checks shared by every public function.

Every check raises ``ValueError`` whose message names the argument, says what was expected and
what was received, so that bad input never turns into silent NaNs downstream.
"""
from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.float64, np.float32)


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"[:200]


def check_array(
    x,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    shape: tuple | None = None,
    dtype=None,
    finite: bool = True,
    allow_inf: bool = False,
    allow_empty: bool = False,
    copy: bool = False,
) -> np.ndarray:
    """Convert ``x`` to a floating array and check it.

    Parameters
    ----------
    x : array_like
    name : str
        The argument's name, used in the error message.
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    shape : tuple, optional
        Expected shape; ``None`` entries match any size, e.g. ``(None, 3)``.
    dtype : numpy dtype, optional
        Target dtype. By default float64, except that float32 input stays float32.
    finite : bool
        Reject NaN and inf.
    allow_inf : bool
        With ``finite``, reject only NaN: +-inf are valid values (e.g. log-probabilities).
    allow_empty : bool
        Accept arrays with zero elements.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise ValueError(f"{name}: expected a numeric array, got {_describe(x)}")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name}: expected a numeric array, got {_describe(x)}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: expected a real array, got dtype {arr.dtype}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in FLOAT_DTYPES else np.float64
    arr = np.array(arr, dtype=dtype, copy=True) if copy else np.asarray(arr, dtype=dtype)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(
                f"{name}: expected {want} dimensions, got shape {arr.shape} ({arr.ndim} dimensions)"
            )
    if shape is not None:
        ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape))
        if not ok:
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if finite and allow_inf:
        if np.isnan(arr).any():
            raise ValueError(f"{name}: expected no NaN, got {int(np.isnan(arr).sum())} NaN entries")
    elif finite and not np.all(np.isfinite(arr)):
        n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: expected finite values, got {n_bad} NaN/inf entries")
    return arr


def check_int(x, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """An integer in ``[low, high]``; bools are rejected."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {_describe(x)}")
    x = int(x)
    if (low is not None and x < low) or (high is not None and x > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {x}")
    return x


def check_scalar(
    x,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """A finite real number in the given interval."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ValueError(f"{name}: expected a real number, got {_describe(x)}")
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {x}")
    bad_low = low is not None and (x < low if low_inclusive else x <= low)
    bad_high = high is not None and (x > high if high_inclusive else x >= high)
    if bad_low or bad_high:
        lb = "[" if low_inclusive else "("
        rb = "]" if high_inclusive else ")"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}: expected a number in {lb}{lo}, {hi}{rb}, got {x}")
    return x


def check_choice(x, name: str, choices) -> str:
    """One of a fixed set of options."""
    try:
        ok = x in choices
    except TypeError:                    # an unhashable x against a dict or set of options
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {_describe(x)}")
    return x


def check_pair(x, name: str, *, low: int) -> tuple[int, int]:
    """An int or a pair of ints (height, width), each >= ``low``: kernel sizes, strides, padding."""
    if isinstance(x, (tuple, list, np.ndarray)):
        if len(x) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {_describe(x)}")
        return check_int(x[0], name, low=low), check_int(x[1], name, low=low)
    v = check_int(x, name, low=low)
    return v, v


def check_shape(x, name: str, *, ndim: int | None = None, low: int = 0) -> tuple[int, ...]:
    """A tuple of integer sizes >= ``low`` (an int is a 1-D shape), e.g. the shape to allocate."""
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):
        x = (x,)
    if not isinstance(x, (tuple, list)):
        raise ValueError(f"{name}: expected a shape (a tuple of ints), got {_describe(x)}")
    if ndim is not None and len(x) != ndim:
        raise ValueError(f"{name}: expected a shape of {ndim} sizes, got {tuple(x)!r}")
    return tuple(check_int(s, name, low=low) for s in x)


def check_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """float64 or float32, the two dtypes nprefgen computes in."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    # `is None` first: a dtype compares equal to None (NumPy reads None as float64)
    if dt is None or dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"{name}: expected float64 or float32, got {_describe(dtype)}")
    return dt


def check_callable(f, name: str):
    """A callable (a function, a model's method, ...)."""
    if not callable(f):
        raise ValueError(f"{name}: expected a callable, got {_describe(f)}")
    return f


def check_str(x, name: str) -> str:
    """A string."""
    if not isinstance(x, str):
        raise ValueError(f"{name}: expected a str, got {_describe(x)}")
    return x


def check_rng(rng, name: str = "rng") -> np.random.Generator:
    """Normalise ``rng`` as Scientific Python's SPEC 7 does: None (fresh OS entropy), an int seed
    (or a ``SeedSequence``) or a ``numpy.random.Generator`` (used as is) -> a Generator.

    nprefgen never uses global random state: the legacy ``RandomState`` and bools are refused.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise ValueError(f"{name}: expected a non-negative int seed, got {rng}")
        return np.random.default_rng(int(rng))
    raise ValueError(
        f"{name}: expected None, a non-negative int seed or a numpy.random.Generator "
        f"(SPEC 7), got {_describe(rng)}"
    )


def check_same_length(a: np.ndarray, name_a: str, b: np.ndarray, name_b: str) -> None:
    """Two batch-first arrays that must hold the same number of samples."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_b}: expected {a.shape[0]} rows to match {name_a}, got {b.shape[0]}"
        )


def check_spd(x, name: str, *, rtol: float = 1e-10) -> np.ndarray:
    """A symmetric positive definite (d, d) matrix: a covariance, a precision, a mass matrix.

    Symmetry is checked to ``rtol`` relative to the largest entry (a product like ``A @ A.T`` may
    differ from its transpose in the last bits); the returned float64 copy is exactly symmetric,
    ``(x + x.T) / 2``, so that everything computed from it (a Cholesky factor for sampling, an
    inverse for densities) describes one and the same matrix. Positive definiteness is checked by
    a Cholesky factorisation.
    """
    x = check_array(x, name, ndim=2, dtype=np.float64)
    if x.shape[0] != x.shape[1]:
        raise ValueError(f"{name}: expected a square matrix, got shape {x.shape}")
    scale = float(np.max(np.abs(x)))
    asym = float(np.max(np.abs(x - x.T)))
    if not asym <= rtol * scale:
        raise ValueError(f"{name}: expected a symmetric matrix, got max |{name} - {name}^T| = "
                         f"{asym:.3g} (largest entry {scale:.3g})")
    x = 0.5 * (x + x.T)
    try:
        np.linalg.cholesky(x)
    except np.linalg.LinAlgError:
        low = float(np.linalg.eigvalsh(x)[0])
        raise ValueError(f"{name}: expected a positive definite matrix, got smallest eigenvalue "
                         f"{low:.3g}") from None
    return x


MAX_ALLOC_BYTES = 1 << 33           # 8 GiB: larger requests are refused up front


def check_alloc(shape, name: str, *, itemsize: int = 8, limit: int | None = None) -> tuple:
    """Refuse an allocation that hyper-parameters ask for when it exceeds ``limit`` bytes
    (default ``MAX_ALLOC_BYTES``), before it is attempted: a ValueError naming the argument and
    the size, instead of a MemoryError or minutes of swapping. ``shape``: sizes whose product is
    the number of elements. Returns the shape as a tuple of ints."""
    shape = tuple(int(s) for s in shape)
    limit = MAX_ALLOC_BYTES if limit is None else limit
    n_bytes = itemsize
    for s in shape:
        n_bytes *= s                               # Python ints: no overflow
    if n_bytes > limit:
        raise ValueError(f"{name}: expected a size that fits in memory, got a request for an array "
                         f"of shape {shape} ({n_bytes / 2 ** 30:.3g} GiB, more than the "
                         f"{limit / 2 ** 30:.3g} GiB limit)")
    return shape


def check_finite_result(x, name: str, what: str, source=None):
    """Raise a ValueError blaming the *scale* of input ``name`` when an intermediate ``what``
    computed from finite input is not finite (an overflow inside, e.g. squares of |x| > 1e154).
    ``source``: the input array, whose largest magnitude the message reports. Returns ``x``."""
    if not np.all(np.isfinite(x)):
        size = ""
        if source is not None and np.size(source):
            size = f" (largest |{name}| = {float(np.max(np.abs(source))):.3g})"
        raise ValueError(f"{name}: expected values on a scale float64 can handle here, but the "
                         f"{what} overflowed to NaN/inf at this input's scale{size}; rescale "
                         f"{name} (e.g. standardise it) first")
    return x
