"""Shared pieces of the bad-input sweeps (tests/test_bad_inputs*.py): the bad arrays and a table.

A row is ``(callable path, kind, argument, thunk)``; the sweep calls ``thunk()`` and expects a
ValueError whose message starts with the argument's name.
"""
from __future__ import annotations

import numpy as np


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
        """The shape / nan / inf / empty rows of one array argument: ``call(array)``.

        ``wrong=None``: any shape is valid (elementwise functions); ``inf=False``: +-inf is part
        of the documented contract (say why at the call)."""
        good = tuple(good)
        if wrong is not None:
            case(path, "shape", arg, lambda: call(A(*wrong)))
        case(path, "nan", arg, lambda: call(NAN(*good)))
        if inf:
            case(path, "inf", arg, lambda: call(INF(*good)))
        case(path, "empty", arg, lambda: call(E(*(empty or (0,) + good[1:]))))

    return cases, case, arrays
