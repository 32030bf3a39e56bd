"""The bijector contract (DESIGN.md "Bijectors"): the battery of bijector_checks (FLOW.23-FLOW.24)
plus determinism, no per-call state, accumulation, bad input and float32."""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from nprefgen._validation import check_rng
from nprefgen.testing import bijector_checks as BC
from nprefgen.testing.contracts.base import (
    FLOAT32_RTOL, _REGISTRY, _bad, _check, _close, _grads, _run, _same, expect_value_error,
)
from nprefgen.testing.contracts.layers import _LayerCase


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
