"""The machinery shared by the contract batteries: a registry of named sub-checks, the runner
that names every failure, and the assertions (bit-identical, close, ValueError naming an argument)."""
from __future__ import annotations

import inspect
import re
from typing import Callable, Iterator

import numpy as np

# float32 keeps 24 significand bits (eps 1.2e-7); a float64 computation fed float32-rounded input,
# or a float32 computation of a few dozen terms, agrees with float64 to ~ terms * eps32 (FLOAT32_RTOL).
FLOAT32_RTOL = 64 * float(np.finfo(np.float32).eps)
NOT_AN_RNG = "42"      # a string: SPEC 7 takes None, an int seed or a Generator, nothing else

CHECKS: dict[str, tuple[str, ...]] = {}
_REGISTRY: dict[str, dict[str, Callable]] = {}


def _check(kind: str, name: str):
    """Register a sub-check of battery ``kind`` under ``name`` (order of definition is kept)."""
    def deco(fn):
        _REGISTRY.setdefault(kind, {})[name] = fn
        CHECKS[kind] = tuple(_REGISTRY[kind])
        return fn
    return deco


def _run(kind: str, checks: Iterator[tuple[str, Callable]], label: str) -> list[str]:
    passed, failed = [], []
    for name, thunk in checks:
        try:
            thunk()
        except AssertionError as err:
            failed.append(f"{name}: {err}")
        else:
            passed.append(name)
    if failed:
        raise AssertionError(f"{kind} contract failed for {label}:\n  " + "\n  ".join(failed))
    return passed


def expect_value_error(thunk: Callable, arg: str, what: str) -> None:
    """Assert that ``thunk()`` raises ValueError whose message starts with ``arg`` (the name)."""
    try:
        thunk()
    except ValueError as err:
        if not re.match(rf"{re.escape(arg)}\b", str(err)):
            raise AssertionError(f"{what}: ValueError does not start with the argument name "
                                 f"{arg!r}: {str(err)[:200]!r}") from None
        return
    except Exception as err:   # noqa: BLE001 - the point is to report the wrong kind of error
        raise AssertionError(f"{what}: expected ValueError naming {arg!r}, got "
                             f"{type(err).__name__}: {str(err)[:200]}") from None
    raise AssertionError(f"{what}: expected ValueError naming {arg!r}, nothing was raised")


def _bad(x: np.ndarray, kind: str) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    if kind == "nan":
        x.flat[-1] = np.nan
    elif kind == "inf":
        x.flat[0] = np.inf
    elif kind == "empty":
        x = x[:0]
    return x


def _first_param(method) -> str:
    """The name of a method's first argument (``X`` or ``x`` or ``theta``): errors must name it."""
    return next(iter(inspect.signature(method).parameters))


def _rng_is_keyword_only(method, label: str) -> None:
    params = inspect.signature(method).parameters
    if "rng" not in params:
        return
    p = params["rng"]
    if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is not None:
        raise AssertionError(f"{label}: expected a keyword-only rng=None (SPEC 7), got "
                             f"{p.kind.description} with default {p.default!r}")


def _same(a, b, what: str) -> None:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
        diff = np.max(np.abs(a - b)) if a.shape == b.shape else f"shapes {a.shape} vs {b.shape}"
        raise AssertionError(f"{what}: expected bit-identical results, max difference {diff}")


def _close(a, b, rtol: float, what: str) -> None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    if a.shape != b.shape or not np.all(np.abs(a - b) <= rtol * scale):
        raise AssertionError(f"{what}: expected agreement to {rtol:.1e} x {scale:.3g}, got "
                             f"{np.max(np.abs(a - b)) if a.shape == b.shape else (a.shape, b.shape)}")


def _grads(module) -> dict[str, np.ndarray]:
    return {n: g.copy() for n, _, g in module.named_parameters()}
