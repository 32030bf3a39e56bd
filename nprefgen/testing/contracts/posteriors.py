"""The contract of amortised posterior estimators (NPE, NLE): ``train(theta, x, *, rng)`` returns
a posterior with ``sample(n, x=..., rng=...)`` and ``log_prob(theta, x=...)``; history_."""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from nprefgen._validation import check_array, check_callable, check_int
from nprefgen.testing.contracts.base import (
    NOT_AN_RNG, _REGISTRY, _bad, _check, _rng_is_keyword_only, _run, _same, expect_value_error,
)


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
