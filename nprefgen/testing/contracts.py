"""Contract checks derived from the API, for nprefgen's classes and for yours.

The way scikit-learn's ``check_estimator`` derives its checks from the estimator API, each
function here derives a battery of named sub-checks from one of nprefgen's contracts
(DESIGN.md, "Contracts every part keeps"):

* :func:`check_layer` -- ``y, cache = layer.forward(x)``; ``d_x = layer.backward(cache, d_y)``
  accumulates into ``layer.grads``; no per-call state; the dot-product test (NN.18); bad input.
* :func:`check_bijector` -- the flow battery of :mod:`nprefgen.testing.bijector_checks`
  (round trip, log-det against a finite-difference ``slogdet`` (FLOW.23), fused == separate,
  backward (FLOW.24)) plus the layer-like and bad-input checks.
* :func:`check_density_model` -- ``fit(X, *, rng)`` returns self and sets ``history_``;
  ``log_prob(X) -> (n,)``; ``sample(n, *, rng) -> (n, d)``; the same seed gives bit-identical
  fits and samples, different seeds differ; ``rng`` keyword-only accepting None, an int or a
  Generator (SPEC 7); ``save``/``load`` round trip; bad input -> ValueError naming the argument.
* :func:`check_model` -- the narrower contract of models that are not densities (autoencoders,
  contrastive encoders, PCA, probes): fit returns self, ``history_``, determinism, save/load.
* :func:`check_distribution` -- ``sample``/``log_prob`` without ``fit`` (priors).
* :func:`check_posterior_estimator` -- NPE/NLE: ``train(theta, x, *, rng)`` returns a posterior
  with ``sample(n, x=..., rng=...)`` and ``log_prob(theta, x=...)``, and sets ``history_``.

Every ``*_checks`` function yields ``(name, thunk)`` pairs; a thunk raises ``AssertionError``
saying what broke. ``check_*`` runs them all and raises one ``AssertionError`` naming every failed
sub-check (``layer contract failed: no_per_call_state: ...``), so a failure says which contract
broke. The names of a battery are listed in ``CHECKS[kind]`` (to parametrize tests by them).

"Bad input" means a ``ValueError`` whose message starts with the argument's name (the
``name: expected ..., got ...`` form of nprefgen/_validation.py).

>>> import numpy as np
>>> from nprefgen.nn import Linear
>>> from nprefgen.testing.contracts import check_layer
>>> passed = check_layer(Linear(3, 2, rng=0), np.random.default_rng(1).standard_normal((4, 3)))
>>> "backward_dot_product" in passed
True
"""
from __future__ import annotations

import copy
import inspect
import os
import re
import tempfile
from typing import Callable, Iterator

import numpy as np

from nprefgen._validation import check_array, check_callable, check_int, check_rng
from nprefgen.testing import bijector_checks as BC
from nprefgen.testing.gradcheck import layer_vjp_errors

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


# ================================================================================================
# layers: y, cache = layer.forward(x); d_x = layer.backward(cache, d_y)
# ================================================================================================
class _LayerCase:
    def __init__(self, layer, x, rng):
        lacking = [a for a in ("forward", "backward", "named_parameters", "zero_grad")
                   if not callable(getattr(layer, a, None))]
        if lacking:
            raise ValueError(f"layer: expected an object with the nprefgen.nn.Module contract, got "
                             f"{type(layer).__name__} without {lacking}")
        if x is None:
            d = getattr(layer, "in_features", None)
            if d is None:
                raise ValueError(f"x: {type(layer).__name__} has no in_features; pass an input x")
            x = np.random.default_rng(0).standard_normal((4, int(d)))
        self.layer, self.x = layer, check_array(x, "x", dtype=np.float64)
        self.seed = int(check_rng(rng).integers(2**32))

    def rng(self, k: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, k])

    def cotangent(self, k: int = 0):
        y, _ = self.layer.forward(self.x)
        return self.rng(k).standard_normal(np.shape(y))


@_check("layer", "forward_returns_output_and_cache")
def _layer_forward(c: _LayerCase):
    out = c.layer.forward(c.x)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise AssertionError(f"forward: expected (y, cache), got {type(out).__name__}")
    y = out[0]
    if not isinstance(y, np.ndarray) or y.shape[:1] != c.x.shape[:1] or not np.all(np.isfinite(y)):
        raise AssertionError(f"forward: expected a finite array with {c.x.shape[0]} rows, got "
                             f"{getattr(y, 'shape', type(y).__name__)}")
    d_x = c.layer.backward(out[1], c.rng().standard_normal(y.shape))
    c.layer.zero_grad()
    if np.shape(d_x) != c.x.shape:
        raise AssertionError(f"backward: expected d_x of shape {c.x.shape}, got {np.shape(d_x)}")


@_check("layer", "deterministic_and_input_untouched")
def _layer_deterministic(c: _LayerCase):
    x = c.x.copy()
    y1, cache = c.layer.forward(x)
    y2, _ = c.layer.forward(x)
    _same(y1, y2, "forward twice")
    c.layer.backward(cache, c.cotangent())
    c.layer.zero_grad()
    _same(x, c.x, "the input after forward and backward")


@_check("layer", "no_per_call_state")
def _layer_no_state(c: _LayerCase):
    """Two forwards, then the first one's backward == a lone forward-backward (siamese use)."""
    v = c.cotangent()
    x2 = c.x + c.rng(1).standard_normal(c.x.shape)
    c.layer.zero_grad()
    y1, cache1 = c.layer.forward(c.x)
    y_keep = y1.copy()
    c.layer.forward(x2)
    _same(y1, y_keep, "the first output after a second forward")
    d1 = c.layer.backward(cache1, v)
    g1 = _grads(c.layer)
    c.layer.zero_grad()
    _, cache = c.layer.forward(c.x)
    d0 = c.layer.backward(cache, v)
    g0 = _grads(c.layer)
    c.layer.zero_grad()
    _same(d1, d0, "d_x of the first call after a second forward")
    for name in g0:
        _same(g1[name], g0[name], f"grads[{name!r}] of the first call after a second forward")


@_check("layer", "gradients_accumulate")
def _layer_accumulate(c: _LayerCase):
    c.layer.zero_grad()
    _, cache = c.layer.forward(c.x)
    v = c.cotangent()
    c.layer.backward(cache, v)
    g1 = _grads(c.layer)
    c.layer.backward(cache, v)
    for name, g in _grads(c.layer).items():
        _close(g, 2.0 * g1[name], 1e-14, f"grads[{name!r}] after two backward calls (expected twice one)")
    c.layer.zero_grad()
    for name, g in _grads(c.layer).items():
        if np.any(g != 0):
            raise AssertionError(f"zero_grad: grads[{name!r}] is not zero")


@_check("layer", "backward_dot_product")
def _layer_dot(c: _LayerCase):
    bad = [str(r) for r in layer_vjp_errors(c.layer, c.x, rng=c.rng(2)) if not r.ok]
    if bad:
        raise AssertionError("(NN.18) " + "; ".join(bad))


@_check("layer", "bad_input_x")
def _layer_bad_x(c: _LayerCase):
    for kind in ("nan", "inf", "empty"):
        expect_value_error(lambda: c.layer.forward(_bad(c.x, kind)), "x", f"forward({kind} x)")
    # a layer that declares its input size (in_features: the last axis; in_channels: axis 1 of
    # (n, c, h, w)) refuses any other size and any other number of dimensions; for the others
    # (elementwise layers) any shape is part of the contract, or refused with a ValueError
    shape = list(c.x.shape)
    axis = -1 if hasattr(c.layer, "in_features") else 1 if hasattr(c.layer, "in_channels") else None
    shape[-1 if axis is None else axis] += 1
    wide = c.rng(3).standard_normal(shape)
    for bad, what in ((wide, "x with a wrong input size"), (c.x[0], "x without its batch axis")):
        if axis is None:
            try:
                c.layer.forward(bad)
                continue
            except Exception:   # noqa: BLE001
                pass
        expect_value_error(lambda: c.layer.forward(bad), "x", f"forward({what})")
    expect_value_error(lambda: c.layer.forward("abc"), "x", "forward(a string)")


@_check("layer", "bad_cotangent")
def _layer_bad_dy(c: _LayerCase):
    y, cache = c.layer.forward(c.x)
    v = c.rng().standard_normal(y.shape)
    for kind in ("nan", "inf"):
        expect_value_error(lambda: c.layer.backward(cache, _bad(v, kind)), "d_y", f"backward({kind} d_y)")
    wrong = c.rng().standard_normal(y.shape[:-1] + (y.shape[-1] + 1,))
    expect_value_error(lambda: c.layer.backward(cache, wrong), "d_y", "backward(d_y of the wrong shape)")
    c.layer.zero_grad()


@_check("layer", "float32_accepted")
def _layer_float32(c: _LayerCase):
    x32 = c.x.astype(np.float32)
    y64, _ = c.layer.forward(x32.astype(np.float64))
    y, _ = c.layer.forward(x32)
    _close(y, y64, FLOAT32_RTOL, "forward(float32 x) against forward(float64 x)")
    if callable(getattr(c.layer, "astype", None)):
        layer32 = copy.deepcopy(c.layer).astype(np.float32)
        y32, cache = layer32.forward(x32)
        if y32.dtype != np.float32:
            raise AssertionError(f"astype(float32).forward(float32 x): expected float32, got {y32.dtype}")
        _close(y32, y64, FLOAT32_RTOL, "a float32 layer against float64")
        d_x = layer32.backward(cache, np.ones_like(y32))
        if np.asarray(d_x).dtype != np.float32:
            raise AssertionError(f"a float32 layer's backward: expected float32 d_x, got "
                                 f"{np.asarray(d_x).dtype}")


def layer_checks(layer, x=None, *, rng=None) -> Iterator[tuple[str, Callable[[], None]]]:
    """The layer battery as ``(name, thunk)`` pairs. layer: a float64 ``nprefgen.nn.Module`` (or
    any object with forward/backward/named_parameters/zero_grad); x: (n, ...) float64 input in the
    layer's smooth region (default: standard normal (4, in_features))."""
    case = _LayerCase(layer, x, rng)
    for name, fn in _REGISTRY["layer"].items():
        yield name, (lambda fn=fn: fn(case))


def check_layer(layer, x=None, *, rng=None) -> list[str]:
    """Run :func:`layer_checks`; raise AssertionError naming every failed sub-check, else return
    the names of the passed ones."""
    return _run("layer", layer_checks(layer, x, rng=rng), type(layer).__name__)


# ================================================================================================
# bijectors: z, log_det = b.forward(x, context); x, log_det_inv = b.inverse(z, context)
# ================================================================================================
class _BijectorCase(_LayerCase):
    def __init__(self, b, x, context, rng):
        self.layer, self.seed = b, int(check_rng(rng).integers(2**32))
        self.x, self.context = BC._inputs(b, x, context)

    def forward(self, x, context="same"):
        return self.layer.forward(x, self.context if isinstance(context, str) else context)


@_check("bijector", "shapes")
def _bij_shapes(c):
    bad = BC.shape_errors(c.layer, c.x, c.context)
    if bad:
        raise AssertionError("; ".join(bad))


@_check("bijector", "round_trip")
def _bij_round_trip(c):
    err = BC.round_trip_error(c.layer, c.x, c.context)
    if not err <= BC.ROUND_TRIP_TOL:
        raise AssertionError(f"inverse(forward(x)): relative error {err:.2e} > {BC.ROUND_TRIP_TOL:.0e}")


@_check("bijector", "log_det_matches_jacobian")
def _bij_log_det(c):
    err = BC.log_det_errors(c.layer, c.x, c.context)
    if not np.all(err <= BC.LOG_DET_TOL):
        raise AssertionError(f"(FLOW.23) log_det against slogdet of the finite-difference Jacobian: "
                             f"worst error {np.max(err):.2e} > {BC.LOG_DET_TOL:.0e}")


@_check("bijector", "inverse_log_det")
def _bij_inv_log_det(c):
    err = BC.inverse_log_det_error(c.layer, c.x, c.context)
    if not err <= BC.LOG_DET_TOL:
        raise AssertionError(f"|log_det_inv(f(x)) + log_det(x)| = {err:.2e} > {BC.LOG_DET_TOL:.0e}")


@_check("bijector", "fused_equals_separate")
def _bij_fused(c):
    err = BC.cached_error(c.layer, c.x, c.context)
    if not err <= 1e-12 * max(1.0, float(np.max(np.abs(c.x)))):
        raise AssertionError(f"forward != forward_cached: max difference {err:.2e}")


@_check("bijector", "backward_dot_product")
def _bij_dot(c):
    bad = [str(r) for r in BC.backward_errors(c.layer, c.x, c.context, rng=c.rng(2), step=1e-4)
           if not r.ok]
    if bad:
        raise AssertionError("(FLOW.24) " + "; ".join(bad))


@_check("bijector", "deterministic_and_input_untouched")
def _bij_deterministic(c):
    x = c.x.copy()
    z1, ld1 = c.forward(x)
    z2, ld2 = c.forward(x)
    _same(z1, z2, "forward twice (z)")
    _same(ld1, ld2, "forward twice (log_det)")
    c.layer.inverse(z1, c.context)
    _same(x, c.x, "the input after forward and inverse")


@_check("bijector", "no_per_call_state")
def _bij_no_state(c):
    b = c.layer
    z, ld = c.forward(c.x)
    v, w = c.rng(1).standard_normal(z.shape), c.rng(2).standard_normal(ld.shape)
    x2 = c.x + 0.1 * c.rng(3).standard_normal(c.x.shape)
    b.zero_grad()
    _, _, cache1 = b.forward_cached(c.x, c.context)
    b.forward_cached(x2, c.context)
    d1 = b.backward(cache1, v, w)
    g1 = _grads(b)
    b.zero_grad()
    _, _, cache = b.forward_cached(c.x, c.context)
    d0 = b.backward(cache, v, w)
    g0 = _grads(b)
    b.zero_grad()
    _same(d1[0], d0[0], "d_x of the first call after a second forward")
    for name in g0:
        _same(g1[name], g0[name], f"grads[{name!r}] of the first call after a second forward")


@_check("bijector", "gradients_accumulate")
def _bij_accumulate(c):
    b = c.layer
    b.zero_grad()
    z, ld, cache = b.forward_cached(c.x, c.context)
    v, w = c.rng(1).standard_normal(z.shape), c.rng(2).standard_normal(ld.shape)
    b.backward(cache, v, w)
    g1 = _grads(b)
    b.backward(cache, v, w)
    for name, g in _grads(b).items():
        _close(g, 2.0 * g1[name], 1e-14, f"grads[{name!r}] after two backward calls (expected twice one)")
    b.zero_grad()


@_check("bijector", "bad_input")
def _bij_bad(c):
    b, x, ctx = c.layer, c.x, c.context
    for kind in ("nan", "inf", "empty"):
        expect_value_error(lambda: b.forward(_bad(x, kind), ctx), "x", f"forward({kind} x)")
        expect_value_error(lambda: b.inverse(_bad(x, kind), ctx), "z", f"inverse({kind} z)")
    wide = np.concatenate([x, x[:, :1]], axis=1)
    expect_value_error(lambda: b.forward(wide, ctx), "x", "forward(x with D + 1 columns)")
    expect_value_error(lambda: b.inverse(wide, ctx), "z", "inverse(z with D + 1 columns)")
    expect_value_error(lambda: b.forward(x[0], ctx), "x", "forward(a 1-D x)")
    if ctx is None:
        expect_value_error(lambda: b.forward(x, np.zeros((x.shape[0], 1))), "context",
                           "forward(x, context) of an unconditional bijector")
    else:
        expect_value_error(lambda: b.forward(x, None), "context",
                           "forward(x, None) of a conditional bijector")
        expect_value_error(lambda: b.forward(x, _bad(ctx, "nan")), "context", "forward(x, nan context)")
        expect_value_error(lambda: b.forward(x, ctx[:-1]), "context", "forward(x, context with one row less)")
    _, _, cache = b.forward_cached(x, ctx)
    z, _ = b.forward(x, ctx)
    expect_value_error(lambda: b.backward(cache, _bad(z, "nan"), np.zeros(x.shape[0])), "d_z",
                       "backward(nan d_z)")
    expect_value_error(lambda: b.backward(cache, z, np.zeros(x.shape[0] + 1)), "d_log_det",
                       "backward(d_log_det of the wrong length)")
    b.zero_grad()


@_check("bijector", "float32_accepted")
def _bij_float32(c):
    x32 = c.x.astype(np.float32)
    z64, ld64 = c.forward(x32.astype(np.float64))
    z, ld = c.forward(x32)
    _close(z, z64, FLOAT32_RTOL, "forward(float32 x) against forward(float64 x): z")
    _close(ld, ld64, FLOAT32_RTOL, "forward(float32 x) against forward(float64 x): log_det")


def bijector_checks(b, x, context=None, *, rng=None) -> Iterator[tuple[str, Callable[[], None]]]:
    """The bijector battery as ``(name, thunk)`` pairs. x: (n, D) float64 inputs in the domain,
    context: (n, C) or None. Randomise the parameters first (``bijector_checks.randomize_parameters``):
    a freshly initialised flow is the identity, where many gradients are exactly zero."""
    case = _BijectorCase(b, x, context, rng)
    for name, fn in _REGISTRY["bijector"].items():
        yield name, (lambda fn=fn: fn(case))


def check_bijector(b, x, context=None, *, rng=None) -> list[str]:
    """Run :func:`bijector_checks`; raise AssertionError naming every failed sub-check."""
    return _run("bijector", bijector_checks(b, x, context, rng=rng), type(b).__name__)


# ================================================================================================
# models: fit(X, *, rng) -> self with history_; density models add log_prob, sample, save/load
# ================================================================================================
class _ModelCase:
    """One model class under test: ``factory()`` builds a fresh, identically initialised model."""

    def __init__(self, factory, X, y=None, fit_kwargs=None, output=None, n_samples: int = 7):
        check_callable(factory, "factory")
        self.factory, self.X = factory, check_array(X, "X", ndim=2, dtype=np.float64)
        self.y = y
        self.fit_kwargs = dict(fit_kwargs or {})
        self.n = check_int(n_samples, "n_samples", low=2)
        self._fitted = None
        self.output = output

    def args(self, X):
        return (X,) if self.y is None else (X, self.y)

    def fit(self, model=None, X=None, rng=0):
        model = self.factory() if model is None else model
        return model.fit(*self.args(self.X if X is None else X), rng=rng, **self.fit_kwargs) \
            if "rng" in inspect.signature(model.fit).parameters \
            else model.fit(*self.args(self.X if X is None else X), **self.fit_kwargs)

    @property
    def fitted(self):
        if self._fitted is None:
            model = self.factory()
            self.fit(model)
            self._fitted = model
        return self._fitted

    def out(self, model):
        """What the model computes from X: log_prob, else transform/encode/features/predict."""
        if self.output is not None:
            return self.output(model, self.X)
        for name in ("log_prob", "transform", "encode", "features", "predict_proba", "predict"):
            if callable(getattr(model, name, None)):
                return getattr(model, name)(self.X)
        raise AssertionError(f"{type(model).__name__}: no log_prob/transform/encode/features/predict "
                             f"to compare; pass output=")


def _fit_returns_self(c: _ModelCase):
    model = c.factory()
    got = c.fit(model)
    if got is not model:
        raise AssertionError(f"fit: expected to return self, got {type(got).__name__}")


def _fit_sets_history(c: _ModelCase):
    h = getattr(c.fitted, "history_", None)
    if h is None:
        raise AssertionError("fit: expected history_ to be set (the loss per epoch/iteration)")


def _fit_deterministic(c: _ModelCase):
    a, b = c.factory(), c.factory()
    c.fit(a, rng=0)
    c.fit(b, rng=np.random.default_rng(0))
    _same(c.out(a), c.out(b), "two fits with the same seed (int 0 and default_rng(0))")


def _fit_rng_keyword_only(c: _ModelCase):
    _rng_is_keyword_only(c.factory().fit, "fit")


def _save_load(c: _ModelCase):
    model = c.fitted
    if not (callable(getattr(model, "save", None)) and callable(getattr(model, "load", None))):
        raise AssertionError(f"{type(model).__name__}: expected save(path) and load(path)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        model.save(path)
        fresh = c.factory()
        loaded = fresh.load(path)
        loaded = fresh if loaded is None else loaded
    _same(c.out(loaded), c.out(model), "output after save/load")


def _bad_fit(c: _ModelCase):
    arg = _first_param(c.factory().fit)
    for kind in ("nan", "inf", "empty"):
        expect_value_error(lambda: c.fit(X=_bad(c.X, kind)), arg, f"fit({kind} {arg})")
    expect_value_error(lambda: c.fit(X=c.X[:, 0]), arg, f"fit(1-D {arg})")
    expect_value_error(lambda: c.fit(X="abc"), arg, f"fit(a string as {arg})")
    if "rng" in inspect.signature(c.factory().fit).parameters:
        expect_value_error(lambda: c.fit(rng=NOT_AN_RNG), "rng", "fit(rng='42')")


_MODEL_CHECKS = {"fit_returns_self": _fit_returns_self, "fit_sets_history_": _fit_sets_history,
                 "fit_deterministic_per_seed": _fit_deterministic,
                 "fit_rng_keyword_only": _fit_rng_keyword_only, "save_load_round_trip": _save_load,
                 "bad_fit_input": _bad_fit}
for _n, _f in _MODEL_CHECKS.items():
    _check("model", _n)(_f)
    _check("density_model", _n)(_f)


@_check("density_model", "log_prob_shape_finite")
def _dm_log_prob(c: _ModelCase):
    lp = c.fitted.log_prob(c.X)
    if np.shape(lp) != (c.X.shape[0],) or not np.all(np.isfinite(lp)):
        raise AssertionError(f"log_prob: expected finite values of shape ({c.X.shape[0]},), got "
                             f"{np.shape(lp)}")


@_check("density_model", "sample_shape")
def _dm_sample(c: _ModelCase):
    s = c.fitted.sample(c.n, rng=0)
    if np.shape(s) != (c.n, c.X.shape[1]) or not np.all(np.isfinite(s)):
        raise AssertionError(f"sample({c.n}): expected finite draws of shape ({c.n}, {c.X.shape[1]}), "
                             f"got {np.shape(s)}")


@_check("density_model", "sample_deterministic_per_seed")
def _dm_sample_det(c: _ModelCase):
    m = c.fitted
    _same(m.sample(c.n, rng=0), m.sample(c.n, rng=0), "sample with rng=0 twice")
    _same(m.sample(c.n, rng=0), m.sample(c.n, rng=np.random.default_rng(0)),
          "sample with rng=0 and rng=default_rng(0) (SPEC 7)")


@_check("density_model", "sample_seeds_differ")
def _dm_seeds_differ(c: _ModelCase):
    m = c.fitted
    if np.array_equal(m.sample(c.n, rng=0), m.sample(c.n, rng=1)):
        raise AssertionError("sample with rng=0 and rng=1 gave the same draws")
    g = np.random.default_rng(0)
    if np.array_equal(m.sample(c.n, rng=g), m.sample(c.n, rng=g)):
        raise AssertionError("two sample calls sharing one Generator gave the same draws")


@_check("density_model", "sample_rng_spec7")
def _dm_rng(c: _ModelCase):
    m = c.fitted
    _rng_is_keyword_only(m.sample, "sample")
    for rng in (None, 3, np.random.default_rng(3)):
        m.sample(2, rng=rng)


@_check("density_model", "bad_log_prob_input")
def _dm_bad_log_prob(c: _ModelCase):
    m = c.fitted
    arg = _first_param(m.log_prob)
    for kind in ("nan", "inf"):
        expect_value_error(lambda: m.log_prob(_bad(c.X, kind)), arg, f"log_prob({kind} {arg})")
    wide = np.concatenate([c.X, c.X[:, :1]], axis=1)
    expect_value_error(lambda: m.log_prob(wide), arg, f"log_prob({arg} with d + 1 columns)")
    # a single (d,) row is refused, or taken as one sample (a documented convenience of priors)
    try:
        one = m.log_prob(c.X[0])
    except Exception:   # noqa: BLE001
        expect_value_error(lambda: m.log_prob(c.X[0]), arg, f"log_prob(1-D {arg})")
    else:
        _same(one, m.log_prob(c.X[:1]), f"log_prob(1-D {arg}) against log_prob of one row")


@_check("density_model", "bad_sample_input")
def _dm_bad_sample(c: _ModelCase):
    m = c.fitted
    expect_value_error(lambda: m.sample(-1, rng=0), "n", "sample(-1)")
    expect_value_error(lambda: m.sample(2.5, rng=0), "n", "sample(2.5)")
    expect_value_error(lambda: m.sample(2, rng=NOT_AN_RNG), "rng", "sample(rng='42')")


@_check("density_model", "float32_input")
def _dm_float32(c: _ModelCase):
    """float32 data is accepted (and gives a finite fit) or refused with a ValueError naming it."""
    X32 = c.X.astype(np.float32)
    arg = _first_param(c.factory().fit)
    try:
        model = c.factory()
        c.fit(model, X=X32)
    except ValueError as err:
        if not (re.match(rf"{re.escape(arg)}\b", str(err)) and "float32" in str(err)):
            raise AssertionError(f"fit(float32 {arg}): a refusal must name {arg!r} and float32, got "
                                 f"{str(err)[:200]!r}") from None
        return
    lp = model.log_prob(X32)
    if not np.all(np.isfinite(lp)):
        raise AssertionError("log_prob after fit(float32 X): non-finite values")
    _close(c.fitted.log_prob(X32), c.fitted.log_prob(c.X.astype(np.float32).astype(np.float64)),
           FLOAT32_RTOL, "log_prob(float32 X) against log_prob(float64 X)")


def model_checks(factory, X, y=None, *, fit_kwargs=None, output=None) -> Iterator[tuple[str, Callable]]:
    """The model battery: ``factory()`` -> a fresh model (identical each call), X: (n, d) data,
    y: labels for supervised models (``fit(X, y)``), fit_kwargs: extra fit arguments (small
    epochs), output: ``(model, X) -> array`` compared across fits (default: the first of
    log_prob/transform/encode/features/predict_proba/predict)."""
    case = _ModelCase(factory, X, y, fit_kwargs, output)
    for name, fn in _REGISTRY["model"].items():
        yield name, (lambda fn=fn: fn(case))


def check_model(factory, X, y=None, *, fit_kwargs=None, output=None) -> list[str]:
    """Run :func:`model_checks`; raise AssertionError naming every failed sub-check."""
    return _run("model", model_checks(factory, X, y, fit_kwargs=fit_kwargs, output=output),
                getattr(factory, "__name__", repr(factory)))


def density_model_checks(factory, X, *, fit_kwargs=None,
                         n_samples: int = 7) -> Iterator[tuple[str, Callable]]:
    """The density-model battery (the model battery plus log_prob, sample, float32).

    factory: ``() -> model`` building a fresh, identically initialised model each call;
    X: (n, d) training data; fit_kwargs: extra fit arguments (keep training short)."""
    case = _ModelCase(factory, X, None, fit_kwargs, None, n_samples)
    for name, fn in _REGISTRY["density_model"].items():
        yield name, (lambda fn=fn: fn(case))


def check_density_model(factory, X, *, fit_kwargs=None, n_samples: int = 7) -> list[str]:
    """Run :func:`density_model_checks`; raise AssertionError naming every failed sub-check.

    >>> from nprefgen.models.gmm import GaussianMixture                  # doctest: +SKIP
    >>> check_density_model(lambda: GaussianMixture(2), X)              # doctest: +SKIP
    """
    return _run("density model", density_model_checks(factory, X, fit_kwargs=fit_kwargs,
                                                       n_samples=n_samples),
                getattr(factory, "__name__", repr(factory)))


# ================================================================================================
# distributions without fit (priors): sample(n, *, rng), log_prob(theta)
# ================================================================================================
class _DistCase:
    def __init__(self, dist, n_samples):
        self.dist, self.n = dist, check_int(n_samples, "n_samples", low=2)
        self.fitted = dist                          # the density-model sample checks reuse it
        self.X = np.asarray(dist.sample(self.n, rng=0), dtype=np.float64)


@_check("distribution", "sample_shape")
def _dist_sample(c):
    _dm_sample(c)


@_check("distribution", "log_prob_shape_finite")
def _dist_log_prob(c):
    _dm_log_prob(c)


for _n, _f in (("sample_deterministic_per_seed", _dm_sample_det), ("sample_seeds_differ", _dm_seeds_differ),
               ("sample_rng_spec7", _dm_rng), ("bad_sample_input", _dm_bad_sample),
               ("bad_log_prob_input", _dm_bad_log_prob)):
    _check("distribution", _n)(_f)


def distribution_checks(dist, *, n_samples: int = 7) -> Iterator[tuple[str, Callable]]:
    """The battery of a fixed distribution (a prior): ``sample(n, *, rng) -> (n, d)``,
    ``log_prob(theta: (n, d)) -> (n,)``, determinism per seed, SPEC 7 rng, bad input."""
    case = _DistCase(dist, n_samples)
    for name, fn in _REGISTRY["distribution"].items():
        yield name, (lambda fn=fn: fn(case))


def check_distribution(dist, *, n_samples: int = 7) -> list[str]:
    """Run :func:`distribution_checks`; raise AssertionError naming every failed sub-check."""
    return _run("distribution", distribution_checks(dist, n_samples=n_samples), type(dist).__name__)


# ================================================================================================
# posterior estimators (NPE, NLE): train(theta, x, *, rng) -> posterior
# ================================================================================================
class _PosteriorCase:
    def __init__(self, factory, theta, x, train_kwargs, n_samples):
        check_callable(factory, "factory")
        self.factory = factory
        self.theta = check_array(theta, "theta", ndim=2, dtype=np.float64)
        self.x = check_array(x, "x", ndim=2, dtype=np.float64)
        self.kw = dict(train_kwargs or {})
        self.n = check_int(n_samples, "n_samples", low=2)
        self.x_o = self.x[0]
        self._post = None

    def train(self, est=None, theta=None, x=None, rng=0):
        est = self.factory() if est is None else est
        return est, est.train(self.theta if theta is None else theta, self.x if x is None else x,
                              rng=rng, **self.kw)

    @property
    def posterior(self):
        if self._post is None:
            self._post = self.train()
        return self._post


@_check("posterior_estimator", "train_returns_posterior")
def _pe_returns(c):
    _, post = c.posterior
    lacking = [m for m in ("sample", "log_prob") if not callable(getattr(post, m, None))]
    if lacking:
        raise AssertionError(f"train: expected a posterior with sample and log_prob, got "
                             f"{type(post).__name__} without {lacking}")


@_check("posterior_estimator", "train_sets_history_")
def _pe_history(c):
    est, _ = c.posterior
    if getattr(est, "history_", None) is None:
        raise AssertionError("train: expected history_ on the estimator")


@_check("posterior_estimator", "posterior_sample_and_log_prob")
def _pe_shapes(c):
    _, post = c.posterior
    s = post.sample(c.n, x=c.x_o, rng=0)
    if np.shape(s) != (c.n, c.theta.shape[1]) or not np.all(np.isfinite(s)):
        raise AssertionError(f"posterior.sample({c.n}, x=x_o): expected shape ({c.n}, "
                             f"{c.theta.shape[1]}), got {np.shape(s)}")
    lp = post.log_prob(s, x=c.x_o)
    if np.shape(lp) != (c.n,) or not np.all(np.isfinite(lp)):
        raise AssertionError(f"posterior.log_prob(theta, x=x_o): expected finite ({c.n},), got "
                             f"{np.shape(lp)}")
    _same(post.sample(c.n, x=c.x_o, rng=0), s, "posterior.sample with rng=0 twice")
    if np.array_equal(post.sample(c.n, x=c.x_o, rng=1), s):
        raise AssertionError("posterior.sample with rng=0 and rng=1 gave the same draws")


@_check("posterior_estimator", "train_deterministic_per_seed")
def _pe_det(c):
    _, p1 = c.train(rng=0)
    _, p2 = c.train(rng=np.random.default_rng(0))
    _same(p1.log_prob(c.theta[:c.n], x=c.x_o), p2.log_prob(c.theta[:c.n], x=c.x_o),
          "posterior log_prob after two trainings with the same seed")


@_check("posterior_estimator", "rng_keyword_only")
def _pe_rng(c):
    _rng_is_keyword_only(c.factory().train, "train")
    _, post = c.posterior
    _rng_is_keyword_only(post.sample, "posterior.sample")


@_check("posterior_estimator", "bad_train_input")
def _pe_bad(c):
    for kind in ("nan", "inf"):
        expect_value_error(lambda: c.train(theta=_bad(c.theta, kind)), "theta", f"train({kind} theta)")
        expect_value_error(lambda: c.train(x=_bad(c.x, kind)), "x", f"train({kind} x)")
    expect_value_error(lambda: c.train(x=c.x[:-1]), "x", "train(x with one row less than theta)")
    expect_value_error(lambda: c.train(theta=np.concatenate([c.theta, c.theta[:, :1]], axis=1)),
                       "theta", "train(theta with p + 1 columns)")
    expect_value_error(lambda: c.train(theta=c.theta[:0], x=c.x[:0]), "theta", "train(empty theta)")
    expect_value_error(lambda: c.train(theta="abc"), "theta", "train(a string as theta)")
    expect_value_error(lambda: c.train(rng=NOT_AN_RNG), "rng", "train(rng='42')")


def posterior_estimator_checks(factory, theta, x, *, train_kwargs=None,
                               n_samples: int = 7) -> Iterator[tuple[str, Callable]]:
    """The battery of an amortised estimator: ``factory()`` -> a fresh NPE/NLE-like object with
    ``train(theta: (n, p), x: (n, d), *, rng) -> posterior``; train_kwargs keep training short."""
    case = _PosteriorCase(factory, theta, x, train_kwargs, n_samples)
    for name, fn in _REGISTRY["posterior_estimator"].items():
        yield name, (lambda fn=fn: fn(case))


def check_posterior_estimator(factory, theta, x, *, train_kwargs=None, n_samples: int = 7) -> list[str]:
    """Run :func:`posterior_estimator_checks`; raise AssertionError naming every failed sub-check."""
    return _run("posterior estimator", posterior_estimator_checks(factory, theta, x,
                                                                  train_kwargs=train_kwargs,
                                                                  n_samples=n_samples),
                getattr(factory, "__name__", repr(factory)))


# ================================================================================================
# one array argument of any function: bad values derived from one valid input
# ================================================================================================
def array_argument_checks(call: Callable, arg: str, good, *, wrong=None, empty=None,
                          allow_inf: bool = False, any_shape: bool = False
                          ) -> Iterator[tuple[str, Callable[[], None]]]:
    """Bad-input checks of one array argument, derived from a valid value of it.

    call: ``value -> result``, the function with every other argument fixed (e.g.
    ``lambda x: my_fn(x, 3)``); arg: the argument's name, which every ValueError must start with;
    good: a valid value (an array, or a shape tuple for standard normal draws);
    wrong: a shape that is invalid (default: one more trailing column, unless ``any_shape``);
    empty: the shape of an empty value (default: zero rows); allow_inf: +-inf is valid.

    Sub-checks: ``accepts_valid`` (the call with ``good`` succeeds), ``nan``, ``inf``, ``empty``,
    ``shape``, ``string`` -> ValueError naming ``arg``.
    """
    check_callable(call, "call")
    if isinstance(good, tuple):
        good = np.random.default_rng(1).standard_normal(good)
    good = np.asarray(good, dtype=np.float64)
    if wrong is None and not any_shape and good.ndim:
        wrong = good.shape[:-1] + (good.shape[-1] + 1,)
    empty = (0,) + good.shape[1:] if empty is None else tuple(empty)

    def accepts_valid():
        try:
            call(good.copy())
        except Exception as err:   # noqa: BLE001
            raise AssertionError(f"the valid {arg} of shape {good.shape} raised "
                                 f"{type(err).__name__}: {str(err)[:200]}") from None

    yield "accepts_valid", accepts_valid
    yield "nan", lambda: expect_value_error(lambda: call(_bad(good, "nan")), arg, f"{arg} with a NaN")
    if not allow_inf:
        yield "inf", lambda: expect_value_error(lambda: call(_bad(good, "inf")), arg, f"{arg} with an inf")
    yield "empty", lambda: expect_value_error(lambda: call(np.zeros(empty)), arg, f"empty {arg} {empty}")
    if wrong is not None:
        bad = np.random.default_rng(2).standard_normal(wrong)
        yield "shape", lambda: expect_value_error(lambda: call(bad), arg, f"{arg} of shape {tuple(wrong)}")
    yield "string", lambda: expect_value_error(lambda: call("abc"), arg, f"a string as {arg}")


def check_array_argument(call: Callable, arg: str, good, **options) -> list[str]:
    """Run :func:`array_argument_checks`; raise AssertionError naming every failed sub-check.

    >>> import numpy as np
    >>> from nprefgen.nn import sigmoid
    >>> check_array_argument(sigmoid, "x", (4, 3), any_shape=True)
    ['accepts_valid', 'nan', 'inf', 'empty', 'string']
    """
    return _run("array argument", array_argument_checks(call, arg, good, **options), arg)


for _n in ("accepts_valid", "nan", "inf", "empty", "shape", "string"):
    _check("array_argument", _n)(None)
