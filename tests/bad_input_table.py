"""Shared pieces of the bad-input sweeps (tests/test_bad_inputs*.py): the bad arrays and a table.

A row is ``(callable path, kind, argument, thunk)``; the sweep calls ``thunk()`` and expects a
ValueError whose message starts with the argument's name, except for kind "array": one array
argument's derived contract (check_array_argument), which raises AssertionError naming what broke.
"""
from __future__ import annotations

import numpy as np

from nprefgen.testing.contracts import check_array_argument


def R(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def A(*shape) -> np.ndarray:
    return R(1).standard_normal(shape)


def NAN(*shape) -> np.ndarray:
    a = A(*shape)
    a.flat[-1] = np.nan
    return a


def INF(*shape) -> np.ndarray:
    a = A(*shape)
    a.flat[0] = np.inf
    return a


def E(*shape) -> np.ndarray:
    return np.zeros(shape)


def make_table():
    """A fresh ``(CASES, case, arrays)`` for one test module."""
    cases: list[tuple[str, str, str, object]] = []

    def case(path: str, kind: str, arg: str, thunk) -> None:
        cases.append((path, kind, arg, thunk))

    def arrays(path, arg, call, good, wrong=None, empty=None, inf=True):
        """One array argument, checked by nprefgen.testing.contracts.check_array_argument (valid
        input accepted; NaN, inf, empty, wrong shape, a string -> ValueError naming ``arg``).

        ``good``: a valid value (when standard normal draws of its shape are not valid) or a shape;
        ``wrong=None``: any shape is valid (elementwise functions); ``inf=False``: +-inf is part
        of the documented contract (say why at the call)."""
        good = good if isinstance(good, np.ndarray) else tuple(good)   # a valid value, or its shape
        shape = np.shape(good) if isinstance(good, np.ndarray) else good

        def thunk():
            check_array_argument(call, arg, good, wrong=wrong, empty=empty or (0,) + shape[1:],
                                 allow_inf=not inf, any_shape=wrong is None)
        cases.append((path, "array", arg, thunk))

    return cases, case, arrays
