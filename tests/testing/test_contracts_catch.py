"""The contract batteries can fail: a deliberately broken backward, a broken log-det, per-call
state on a layer, a fit that does not return self and a non-deterministic sampler are each
caught, and the failure names the sub-check that broke."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.flows import ElementwiseAffine
from nprefgen.models.gmm import GaussianMixture
from nprefgen.nn import Linear, Tanh
from nprefgen.testing.bijector_checks import randomize_parameters
from nprefgen.testing.contracts import (
    CHECKS, check_bijector, check_density_model, check_layer, check_model, expect_value_error,
)


class BrokenBackward(Linear):
    """(NN.2a) d_x with W instead of W^T-times-d_y's transpose: scaled by 1.5."""

    def backward(self, cache, d_y):
        return 1.5 * super().backward(cache, d_y)


class StatefulTanh(Tanh):
    """Keeps the last output on self: a second forward overwrites what backward uses."""

    def forward(self, x):
        y, cache = super().forward(x)
        self.last = y
        return y, cache

    def backward(self, cache, d_y):
        return d_y * (1.0 - self.last ** 2)


class BrokenLogDet(ElementwiseAffine):
    """(FLOW.18) log_det off by a constant."""

    def forward_cached(self, x, context=None):
        z, log_det, cache = super().forward_cached(x, context)
        return z, log_det + 1e-3, cache

    def forward(self, x, context=None):
        z, log_det, _ = self.forward_cached(x, context)
        return z, log_det


class FitReturnsHistory(GaussianMixture):
    def fit(self, X, *, rng=None):
        super().fit(X, rng=rng)
        self.history_ = [0.0]
        return {"loss": [0.0]}


class SeedIgnoringSampler(GaussianMixture):
    """sample() draws from global state, not from rng."""

    def fit(self, X, *, rng=None):
        super().fit(X, rng=rng)
        self.history_ = [0.0]
        return self

    def sample(self, n, *, rng=None):
        return super().sample(n, rng=np.random.default_rng())


X2 = np.random.default_rng(0).standard_normal((40, 2))


def _failed(err) -> set[str]:
    return {line.strip().split(":")[0] for line in str(err.value).splitlines()[1:]}


def test_correct_layers_pass_every_check():
    x = np.random.default_rng(1).standard_normal((4, 3))
    assert check_layer(Linear(3, 2, rng=0), x, rng=0) == list(CHECKS["layer"])
    assert check_layer(Tanh(), x, rng=0) == list(CHECKS["layer"])


def test_a_broken_backward_is_caught():
    x = np.random.default_rng(1).standard_normal((4, 3))
    with pytest.raises(AssertionError, match="layer contract failed for BrokenBackward") as err:
        check_layer(BrokenBackward(3, 2, rng=0), x, rng=0)
    assert _failed(err) == {"backward_dot_product"}


def test_per_call_state_is_caught():
    x = np.random.default_rng(1).standard_normal((4, 3))
    with pytest.raises(AssertionError) as err:
        check_layer(StatefulTanh(), x, rng=0)
    assert "no_per_call_state" in _failed(err)


def test_a_broken_log_det_is_caught():
    b = BrokenLogDet(3)
    randomize_parameters(b, rng=np.random.default_rng(2))
    x = np.random.default_rng(3).standard_normal((5, 3))
    with pytest.raises(AssertionError, match="bijector contract failed for BrokenLogDet") as err:
        check_bijector(b, x, rng=0)
    assert {"log_det_matches_jacobian", "inverse_log_det"} <= _failed(err)
    good = ElementwiseAffine(3)
    randomize_parameters(good, rng=np.random.default_rng(2))
    assert check_bijector(good, x, rng=0) == list(CHECKS["bijector"])


def test_a_fit_that_does_not_return_self_is_caught():
    with pytest.raises(AssertionError) as err:
        check_density_model(lambda: FitReturnsHistory(2), X2)
    assert "fit_returns_self" in _failed(err)        # (and the sample/save checks of the parent)
    with pytest.raises(AssertionError) as err:
        check_model(lambda: FitReturnsHistory(2), X2)
    assert "fit_returns_self" in _failed(err)


def test_a_sampler_that_ignores_its_seed_is_caught():
    with pytest.raises(AssertionError) as err:
        check_density_model(lambda: SeedIgnoringSampler(2), X2)
    assert {"sample_deterministic_per_seed"} <= _failed(err)


def test_expect_value_error_wants_the_argument_name_first():
    def raises(msg, exc=ValueError):
        def f():
            raise exc(msg)
        return f
    expect_value_error(raises("x: expected (n, 2), got (3,)"), "x", "ok")
    with pytest.raises(AssertionError, match="does not start with"):
        expect_value_error(raises("bad shape for x"), "x", "name last")
    with pytest.raises(AssertionError, match="got TypeError"):
        expect_value_error(raises("x: nope", TypeError), "x", "wrong type")
    with pytest.raises(AssertionError, match="nothing was raised"):
        expect_value_error(lambda: None, "x", "silent")
