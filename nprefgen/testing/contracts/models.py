"""The model contracts (DESIGN.md "Models"): fit returns self and sets history_, determinism per
seed, SPEC 7 rng, save/load, bad input; density models add log_prob and sample; distributions
(priors) have sample and log_prob without fit."""
from __future__ import annotations

from typing import Callable, Iterator

import inspect
import os
import re
import tempfile

import numpy as np

from nprefgen._validation import check_array, check_callable, check_int
from nprefgen.testing.contracts.base import (
    FLOAT32_RTOL, NOT_AN_RNG, _REGISTRY, _bad, _check, _close, _first_param, _rng_is_keyword_only,
    _run, _same, expect_value_error,
)


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
    """save(path) then ``factory().load(path)`` returns that same object (the one convention of
    derivations/README.md, "Files") and computes bit-identical outputs."""
    model = c.fitted
    if not (callable(getattr(model, "save", None)) and callable(getattr(model, "load", None))):
        raise AssertionError(f"{type(model).__name__}: expected save(path) and load(path)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        model.save(path)
        fresh = c.factory()
        loaded = fresh.load(path)
    if loaded is not fresh:
        raise AssertionError(f"load: expected obj.load(path) to return obj itself, got "
                             f"{type(loaded).__name__}")
    _same(c.out(loaded), c.out(model), "output after save/load")


def _tampered_copies(path: str, folder: str) -> Iterator[tuple[str, str]]:
    """(what, path) of broken copies of a good file: truncated; its first floating array set
    to NaN; that array cut by one entry along its first axis."""
    data = open(path, "rb").read()
    out = os.path.join(folder, "truncated.npz")
    with open(out, "wb") as f:
        f.write(data[:len(data) // 2])
    yield "a truncated file", out
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    name = next(k for k, v in arrays.items() if v.dtype.kind == "f" and v.size
                and not k.startswith("__meta__."))
    for what, value in (("NaN in " + name, np.where(np.arange(arrays[name].size).reshape(
                            arrays[name].shape) == 0, np.nan, arrays[name])),
                        ("a wrong shape of " + name, arrays[name][:-1])):
        out = os.path.join(folder, "tampered.npz")
        np.savez(out, **{**arrays, name: value})
        yield what, out


def _load_bad_file(c: _ModelCase):
    """A bad file (truncated, NaN, wrong shape) -> ValueError naming ``path``; the model loading
    it keeps computing exactly what it computed before (all or nothing)."""
    model = c.fit(c.factory())
    before = c.out(model)
    with tempfile.TemporaryDirectory() as tmp:
        good = os.path.join(tmp, "model.npz")
        model.save(good)
        for what, path in _tampered_copies(good, tmp):
            expect_value_error(lambda: model.load(path), "path", f"load({what})")
            _same(c.out(model), before, f"output after a failed load of {what}")


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
                 "load_bad_file_leaves_model_unchanged": _load_bad_file, "bad_fit_input": _bad_fit}
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
