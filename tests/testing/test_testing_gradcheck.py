"""The gradient checker itself: the dot-product test (NN.18) passes on known VJPs and fails on
wrong ones, the fourth-order stencil (NN.19) has O(h^4) error, results report what they found."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.nn import Linear, Tanh
from nprefgen.testing import (
    DEFAULT_RTOL, VJPResult, check_layer, check_vjp, directional_derivative, gradcheck, layer_vjp_errors,
    vjp_error,
)


def _f(x):
    return np.sin(x) * x ** 2


def _f_vjp(x):
    return lambda v: v * (np.cos(x) * x ** 2 + 2 * x * np.sin(x))


def test_check_vjp_passes_known_functions(rng):
    """(NN.18) elementwise, linear, tuple-valued and scalar functions with their exact VJPs."""
    x = rng.standard_normal((3, 4))
    results = check_vjp(_f, _f_vjp(x), x, rng=rng, n_directions=3)
    assert len(results) == 3 and all(r.ok and r.rel_error < 1e-10 for r in results)
    A = rng.standard_normal((5, 12))
    check_vjp(lambda z: A @ z.ravel(), lambda v: (A.T @ v).reshape(3, 4), x, rng=rng)
    # tuple output: (sum of squares per row, tanh) with a tuple cotangent
    check_vjp(lambda z: ((z ** 2).sum(axis=1), np.tanh(z)),
              lambda v: 2 * x * v[0][:, None] + v[1] * (1 - np.tanh(x) ** 2), x, rng=rng)
    a = rng.standard_normal(6)
    gradcheck(lambda z: np.log(np.sum(np.exp(z))), lambda z: np.exp(z) / np.sum(np.exp(z)), a, rng=rng)


def test_check_vjp_fails_wrong_gradients(rng):
    """(NN.18) wrong derivatives, a transposed Jacobian and a single wrong entry are all caught."""
    x = rng.standard_normal((3, 4))
    with pytest.raises(AssertionError, match="dot-product test failed"):
        check_vjp(_f, lambda v: v * np.cos(x) * x ** 2, x, rng=rng)          # product rule forgotten
    A = rng.standard_normal((4, 4))
    with pytest.raises(AssertionError):
        check_vjp(lambda z: z @ A, lambda v: v @ A, x, rng=rng)               # A instead of A^T
    B = A.copy()
    B[2, 1] += 1e-3                                                           # one entry off by 1e-3
    r = vjp_error(lambda z: z @ A, lambda v: v @ B.T, x, rng=rng)
    assert not r.ok and r.rel_error > 1e-6
    with pytest.raises(AssertionError):
        gradcheck(lambda z: float(np.sum(z ** 3)), lambda z: 2 * z ** 2, x, rng=rng)


def test_fourth_order_difference(rng):
    """(NN.19) the stencil's error falls like h^4 (halving h divides it by ~16) and is far below
    the second-order central difference at the same h."""
    x, u = rng.standard_normal(5), rng.standard_normal(5)
    exact = np.exp(x) * u
    errs = [np.max(np.abs(directional_derivative(np.exp, x, u, step=h)[0] - exact))
            for h in (4e-2, 2e-2)]
    assert 12.0 < errs[0] / errs[1] < 20.0
    h = 2e-2
    second = (np.exp(x + h * u) - np.exp(x - h * u)) / (2 * h)
    assert errs[1] < 1e-3 * np.max(np.abs(second - exact))
    tup = directional_derivative(lambda z: (z, 2 * z), x, u)
    np.testing.assert_allclose(tup[0], u, rtol=1e-10)
    np.testing.assert_allclose(tup[1], 2 * u, rtol=1e-10)


def test_vjp_result_reporting(rng):
    """VJPResult: ok against rtol, readable str with both sides and the status."""
    good = VJPResult("weight", 1.0, 1.0 + 1e-12, 1e-12, DEFAULT_RTOL)
    bad = VJPResult("weight", 1.0, 2.0, 0.5, DEFAULT_RTOL)
    assert good.ok and not bad.ok
    assert "weight" in str(good) and str(good).endswith("ok") and "1.00e-12" in str(good)
    assert "FAIL" in str(bad) and "5.00e-01" in str(bad)
    # an exactly-zero Jacobian: both sides are round-off, judged by the stencil's noise bound
    x = rng.standard_normal(4)
    r = vjp_error(lambda z: 0 * z + 3.0, lambda v: np.zeros(4), x, rng=rng)
    assert r.ok and r.noise > 0 and abs(r.lhs - r.rhs) <= r.noise
    # ... which does not hide a nonzero claimed gradient
    r = vjp_error(lambda z: 0 * z + 3.0, lambda v: 1e-6 * v, x, rng=rng)
    assert not r.ok


def test_layer_vjp_errors_restores_and_reports(rng):
    """One result per input and parameter; parameters restored, gradients zeroed afterwards."""
    layer = Linear(3, 2, rng=rng)
    before = layer.state_dict()
    x = rng.standard_normal((4, 3))
    results = layer_vjp_errors(layer, x, rng=rng)
    assert [r.name for r in results] == ["input", "weight", "bias"]
    assert all(r.ok for r in results)
    for name, p in layer.state_dict().items():
        np.testing.assert_array_equal(p, before[name])
    assert all(np.all(g == 0) for _, _, g in layer.named_parameters())
    assert len(check_layer(Tanh(), x, rng=rng)) == 1


def test_bad_inputs_raise(rng):
    x = rng.standard_normal(3)
    with pytest.raises(ValueError, match="vjp: expected a gradient of shape"):
        vjp_error(np.sin, lambda v: np.zeros(4), x, rng=rng)
    with pytest.raises(ValueError, match="v: expected shapes"):
        vjp_error(np.sin, lambda v: v, x, rng=rng, v=np.zeros(4))
    with pytest.raises(ValueError, match="step"):
        vjp_error(np.sin, lambda v: v, x, rng=rng, step=0.0)
    with pytest.raises(ValueError, match="n_directions"):
        check_vjp(np.sin, lambda v: v, x, rng=rng, n_directions=0)
    with pytest.raises(ValueError, match="rng"):
        check_vjp(np.sin, lambda v: v, x, rng="1")
    with pytest.raises(ValueError, match="x: expected finite"):
        check_vjp(np.sin, lambda v: v, np.array([np.nan]), rng=rng)
    with pytest.raises(ValueError, match="float64"):
        layer_vjp_errors(Linear(3, 2, rng=rng, dtype=np.float32), x[None], rng=rng)
