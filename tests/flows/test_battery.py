"""The bijector battery itself (FLOW.23-FLOW.24): it passes correct bijectors and catches a
dropped log-det term, a wrong inverse, a wrong backward (input, parameter or context part) and a
forward that differs from forward_cached."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.flows import MAF, AffineCoupling, ElementwiseAffine, alternating_mask
from nprefgen.testing.bijector_checks import (
    bijector_report, check_bijector, jacobian_fd, log_det_errors, randomize_parameters,
)


class DroppedLogDetTerm(AffineCoupling):
    """(FLOW.7) with the first transformed coordinate's s_1 left out of the sum."""

    def forward_cached(self, x, context=None):
        z, log_det, cache = super().forward_cached(x, context)
        s = cache[0][1]                        # the transform's cache: (x_B, s, exp(s))
        return z, log_det - s[:, 0], cache

    def forward(self, x, context=None):
        z, log_det, _ = self.forward_cached(x, context)
        return z, log_det


class ForgetsConditionerPath(AffineCoupling):
    """(FLOW.9) backward without the conditioner's contribution to d_x_A."""

    def backward(self, cache, d_z, d_log_det):
        d_x, d_c = super().backward(cache, d_z, d_log_det)
        d_x[:, self._sel_a] = d_z[:, self._sel_a]
        return d_x, d_c


class WrongShiftGradient(ElementwiseAffine):
    """(FLOW.18) d_shift scaled by 2: only the parameter check can see it."""

    def backward(self, x, d_z, d_log_det):
        d_x, _ = super().backward(x, d_z, d_log_det)
        self.grads["shift"] += d_z.sum(axis=0)
        return d_x, None


class WrongInverse(ElementwiseAffine):
    def inverse(self, z, context=None):
        x, ld = super().inverse(z, context)
        return x * 1.0000001, ld


class NoContextGradient(MAF):
    def backward(self, cache, d_z, d_log_det):
        d_x, d_c = super().backward(cache, d_z, d_log_det)
        return d_x, np.zeros_like(d_c)


class Drifting(ElementwiseAffine):
    """forward() returns something forward_cached() does not."""

    def forward(self, x, context=None):
        z, ld = super().forward(x, context)
        return z + 1e-9, ld


def _setup(b, rng, n=4, context_dim=0):
    randomize_parameters(b, rng=rng, scale=0.5)
    x = rng.standard_normal((n, b.dim))
    c = rng.standard_normal((n, context_dim)) if context_dim else None
    return x, c


def test_correct_bijectors_pass(rng):
    """The unbroken parents pass the whole battery."""
    for b, cd in ((AffineCoupling(alternating_mask(4), [5], rng=rng, activation="tanh", context_dim=1), 1),
                  (ElementwiseAffine(3), 0), (MAF(3, [4], rng=rng, context_dim=2, activation="tanh"), 2)):
        x, c = _setup(b, rng, context_dim=cd)
        report = check_bijector(b, x, c, rng=rng)
        assert report.ok and np.all(report.log_det < 1e-9) and report.round_trip < 1e-14


def test_dropped_log_det_term_is_caught(rng):
    """(FLOW.23) a coupling that drops one s_j from its log-det fails the FD-Jacobian check on
    every sample, by about |s_1| (far above the 1e-7 bar)."""
    b = DroppedLogDetTerm(alternating_mask(4), [5], rng=rng, activation="tanh")
    x, _ = _setup(b, rng)
    with pytest.raises(AssertionError, match="log-det vs finite-difference Jacobian"):
        check_bijector(b, x, rng=rng)
    assert np.all(log_det_errors(b, x) > 1e-4)


@pytest.mark.parametrize("cls, context_dim, needle", [
    (ForgetsConditionerPath, 0, "input"),
    (NoContextGradient, 2, "context"),
])
def test_wrong_backward_is_caught(rng, cls, context_dim, needle):
    """(FLOW.24) dropping the conditioner path or the context gradient fails the dot-product test."""
    if cls is NoContextGradient:
        b = cls(3, [4], rng=rng, context_dim=context_dim, activation="tanh")
    else:
        b = cls(alternating_mask(4), [5], rng=rng, activation="tanh")
    x, c = _setup(b, rng, context_dim=context_dim)
    report = bijector_report(b, x, c, rng=rng)
    assert [r.name for r in report.gradients if not r.ok] == [needle]


def test_wrong_parameter_gradient_is_caught(rng):
    """(FLOW.24) a doubled shift gradient fails exactly the 'shift' check."""
    b = WrongShiftGradient(3)
    x, _ = _setup(b, rng)
    report = bijector_report(b, x, rng=rng)
    assert [r.name for r in report.gradients if not r.ok] == ["shift"]


def test_wrong_inverse_and_drifting_forward_are_caught(rng):
    """Round trip at 1e-10 catches a 1e-7 relative error; forward != forward_cached is caught."""
    b = WrongInverse(3)
    x, _ = _setup(b, rng)
    assert any("round trip" in f for f in bijector_report(b, x, rng=rng).failures)
    b = Drifting(3)
    x, _ = _setup(b, rng)
    assert any("forward_cached" in f for f in bijector_report(b, x, rng=rng).failures)


def test_jacobian_fd_of_a_known_map(rng):
    """(FLOW.23) the batched FD Jacobian of an elementwise affine map is diag(exp(log_scale))."""
    b = ElementwiseAffine(3)
    randomize_parameters(b, rng=rng)
    jac = jacobian_fd(b, rng.standard_normal((2, 3)))
    np.testing.assert_allclose(jac, np.broadcast_to(np.diag(np.exp(b.params["log_scale"])), (2, 3, 3)),
                               atol=1e-10)


def test_battery_bad_inputs(rng):
    b = ElementwiseAffine(2)
    with pytest.raises(ValueError, match="context"):
        check_bijector(b, np.ones((3, 2)), np.ones((2, 1)), rng=rng)
    with pytest.raises(ValueError, match="rng"):
        check_bijector(b, np.ones((3, 2)), rng="1")
    with pytest.raises(ValueError, match="x"):
        check_bijector(b, np.ones(3), rng=rng)
