"""One test battery for any bijector (derivations/flows.md, FLOW.23-FLOW.24).

Every bijector ``b`` of :mod:`nprefgen.flows` (and any object keeping the same contract:
``forward_cached``, ``forward``, ``inverse``, ``backward``, ``named_parameters``, ``zero_grad``)
must pass, at float64 and for any input in its domain:

* round trip: ``inverse(forward(x)) == x`` to <= 1e-10 relative to ``max|x|``;
* log-det: ``log_det`` equals ``log|det J|`` of a central-difference Jacobian (FLOW.23), per
  sample, to <= 1e-7 absolute, or relative where ``|log_det| > 1``;
* inverse log-det: ``log_det_inv`` at ``z = f(x)`` equals ``-log_det`` (FLOW.2 for f^{-1} o f);
* fused == separate: ``forward`` returns what ``forward_cached`` returns;
* backward: the dot-product test (NN.18) for the loss ``L = <v, z> + <w, log_det>`` (FLOW.24)
  with random v, w, with respect to the input, every parameter and the context.

The ``*_error(s)`` functions return numbers (so a tour or a user can print them);
:func:`check_bijector` runs them all and raises ``AssertionError`` listing what failed. The
bar is much tighter than flow libraries use (zuko: autograd Jacobian at atol 1e-4; FrEIA:
rtol 0.03), because nprefgen is meant to serve as the oracle for those implementations.

>>> from nprefgen.testing.bijector_checks import check_bijector
>>> check_bijector(b, x, context, rng=np.random.default_rng(0))   # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nprefgen._validation import check_array, check_rng, check_scalar
from nprefgen.testing.gradcheck import DEFAULT_RTOL, VJPResult, vjp_error

ROUND_TRIP_TOL = 1e-10
LOG_DET_TOL = 1e-7
JACOBIAN_STEP = 1e-4


def _inputs(b, x, context):
    x = check_array(x, "x", ndim=2, dtype=np.float64)
    if context is not None:
        context = check_array(context, "context", ndim=2, dtype=np.float64)
        if context.shape[0] != x.shape[0]:
            raise ValueError(f"context: expected {x.shape[0]} rows to match x, got {context.shape[0]}")
    return x, context


def _fourth_order(fun, x, u, step):
    """(NN.19) directional derivative of ``fun`` at ``x`` along ``u`` (any pytree of one array)."""
    fp2, fp1, fm1, fm2 = (fun(x + c * step * u) for c in (2.0, 1.0, -1.0, -2.0))
    return (-fp2 + 8.0 * fp1 - 8.0 * fm1 + fm2) / (12.0 * step)


def jacobian_fd(b, x, context=None, step: float = JACOBIAN_STEP) -> np.ndarray:
    """(FLOW.23) Per-sample Jacobians dz/dx by fourth-order central differences.

    Bijectors act on each sample independently, so moving coordinate j of *every* sample at once
    gives column j of all n Jacobians in one batched call: 4 D forward calls in all.

    x: (n, D), context: (n, C) or None -> J: (n, D, D) with ``J[i, a, j] = dz_ia / dx_ij``.
    """
    x, context = _inputs(b, x, context)
    check_scalar(step, "step", low=0.0, low_inclusive=False)
    n, d = x.shape
    jac = np.empty((n, d, d))
    for j in range(d):
        e = np.zeros_like(x)
        e[:, j] = 1.0
        jac[:, :, j] = _fourth_order(lambda x_: b.forward(x_, context)[0], x, e, step)
    return jac


def round_trip_error(b, x, context=None) -> float:
    """max |f^{-1}(f(x)) - x| / max|x| (scale 1 when x is all zero)."""
    x, context = _inputs(b, x, context)
    z, _ = b.forward(x, context)
    x_rec, _ = b.inverse(z, context)
    scale = float(np.max(np.abs(x))) or 1.0
    return float(np.max(np.abs(np.asarray(x_rec) - x))) / scale


def log_det_errors(b, x, context=None, step: float = JACOBIAN_STEP) -> np.ndarray:
    """(FLOW.23) Per-sample |log_det - log|det J_fd|| / max(1, |log|det J_fd||). x: (n, D) -> (n,)."""
    x, context = _inputs(b, x, context)
    _, log_det = b.forward(x, context)
    sign, logabs = np.linalg.slogdet(jacobian_fd(b, x, context, step))
    err = np.abs(np.asarray(log_det) - logabs) / np.maximum(1.0, np.abs(logabs))
    return np.where(sign == 0, np.inf, err)


def inverse_log_det_error(b, x, context=None) -> float:
    """max over samples of |log_det_inv(f(x)) + log_det(x)| / max(1, |log_det(x)|)."""
    x, context = _inputs(b, x, context)
    z, log_det = b.forward(x, context)
    _, log_det_inv = b.inverse(z, context)
    err = np.abs(np.asarray(log_det_inv) + log_det) / np.maximum(1.0, np.abs(log_det))
    return float(np.max(err))


def cached_error(b, x, context=None) -> float:
    """max |forward - forward_cached| over z and log_det (fused == separate; should be 0)."""
    x, context = _inputs(b, x, context)
    z1, ld1 = b.forward(x, context)
    z2, ld2, _ = b.forward_cached(x, context)
    return float(max(np.max(np.abs(z1 - z2)), np.max(np.abs(ld1 - ld2))))


def shape_errors(b, x, context=None) -> list[str]:
    """Shapes of forward and inverse outputs: z (n, D), log_det (n,)."""
    x, context = _inputs(b, x, context)
    n, d = x.shape
    z, log_det = b.forward(x, context)
    x_rec, log_det_inv = b.inverse(z, context)
    bad = []
    for name, arr, want in (("z", z, (n, d)), ("log_det", log_det, (n,)),
                            ("x (inverse)", x_rec, (n, d)), ("log_det_inv", log_det_inv, (n,))):
        if np.shape(arr) != want:
            bad.append(f"{name}: expected shape {want}, got {np.shape(arr)}")
    return bad


def backward_errors(b, x, context=None, *, rng=None, step: float = 1e-3,
                    rtol: float = DEFAULT_RTOL) -> list[VJPResult]:
    """(FLOW.24) Dot-product tests of ``b.backward`` for L = <v, z> + <w, log_det>.

    One result for the input, one for the context (when given) and one per parameter. The
    bijector's parameters are perturbed in place and restored; its gradients are left zero.
    """
    rng = check_rng(rng)
    x, context = _inputs(b, x, context)
    z0, ld0 = b.forward(x, context)
    cot = (rng.standard_normal(np.shape(z0)), rng.standard_normal(np.shape(ld0)))  # (v, w)

    def run_backward(x_, c_, cot_):
        b.zero_grad()
        _, _, cache = b.forward_cached(x_, c_)
        return b.backward(cache, cot_[0], cot_[1])

    results = [vjp_error(lambda x_: b.forward(x_, context), lambda v: run_backward(x, context, v)[0],
                         x, rng=rng, step=step, rtol=rtol, name="input", v=cot)]
    if context is not None:
        results.append(vjp_error(lambda c_: b.forward(x, c_), lambda v: run_backward(x, context, v)[1],
                                 context, rng=rng, step=step, rtol=rtol, name="context", v=cot))
    for pname, p, g in list(b.named_parameters()):
        if p.dtype != np.float64:
            raise ValueError(f"b: expected float64 parameters for a gradient check, got {p.dtype} "
                             f"for {pname!r}")
        original = p.copy()

        def fun(p_, p=p, original=original):
            p[...] = p_
            try:
                return b.forward(x, context)
            finally:
                p[...] = original

        def param_vjp(v, g=g):
            run_backward(x, context, v)
            return g.copy()

        results.append(vjp_error(fun, param_vjp, original, rng=rng, step=step, rtol=rtol,
                                 name=pname, v=cot))
    b.zero_grad()
    return results


@dataclass
class BijectorReport:
    """Everything :func:`check_bijector` measured, and what failed."""

    round_trip: float
    log_det: np.ndarray
    inverse_log_det: float
    cached: float
    gradients: list[VJPResult]
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        n_bad = sum(not r.ok for r in self.gradients)
        # relative errors of checks whose both sides are pure round-off are not meaningful
        meaningful = [r.rel_error for r in self.gradients if abs(r.rhs) > r.noise]
        worst_grad = max(meaningful, default=0.0)
        return (f"round trip {self.round_trip:.1e}, log-det {np.max(self.log_det):.1e}, "
                f"inverse log-det {self.inverse_log_det:.1e}, cached {self.cached:.1e}, "
                f"gradients {worst_grad:.1e} ({len(self.gradients)} checks, {n_bad} failed)")


def bijector_report(b, x, context=None, *, rng=None,
                    round_trip_tol: float = ROUND_TRIP_TOL, log_det_tol: float = LOG_DET_TOL,
                    grad_rtol: float = DEFAULT_RTOL, jacobian_step: float = JACOBIAN_STEP,
                    grad_step: float = 1e-4) -> BijectorReport:
    """Run the whole battery and collect the numbers (no raising)."""
    x, context = _inputs(b, x, context)
    failures = shape_errors(b, x, context)
    rt = round_trip_error(b, x, context)
    ld = log_det_errors(b, x, context, jacobian_step)
    inv = inverse_log_det_error(b, x, context)
    cached = cached_error(b, x, context)
    grads = backward_errors(b, x, context, rng=rng, step=grad_step, rtol=grad_rtol)
    if not rt <= round_trip_tol:
        failures.append(f"round trip: relative error {rt:.2e} > {round_trip_tol:.0e}")
    if not np.all(ld <= log_det_tol):
        worst = int(np.argmax(np.where(np.isfinite(ld), ld, np.inf)))
        failures.append(f"log-det vs finite-difference Jacobian: error {ld[worst]:.2e} > "
                        f"{log_det_tol:.0e} at sample {worst} ({int(np.sum(~(ld <= log_det_tol)))} "
                        f"of {ld.size} samples fail)")
    if not inv <= log_det_tol:
        failures.append(f"inverse log-det: |log_det_inv + log_det| = {inv:.2e} > {log_det_tol:.0e}")
    if not cached == 0.0 and not cached <= 1e-12 * max(1.0, float(np.max(np.abs(x)))):
        failures.append(f"forward != forward_cached: max difference {cached:.2e}")
    failures.extend(str(r) for r in grads if not r.ok)
    return BijectorReport(rt, ld, inv, cached, grads, failures)


def check_bijector(b, x, context=None, *, rng=None, **tolerances) -> BijectorReport:
    """The battery for one bijector at inputs ``x: (n, D)`` and ``context: (n, C)`` or None.

    Raises ``AssertionError`` naming every failed check; returns the :class:`BijectorReport`.
    Keyword tolerances: ``round_trip_tol`` (1e-10), ``log_det_tol`` (1e-7), ``grad_rtol``
    (1e-8), ``jacobian_step`` (1e-4), ``grad_step`` (1e-4).
    """
    report = bijector_report(b, x, context, rng=rng, **tolerances)
    if not report.ok:
        raise AssertionError(f"bijector checks failed for {type(b).__name__}:\n  "
                             + "\n  ".join(report.failures))
    return report


def randomize_parameters(module, *, rng=None, scale: float = 0.5) -> None:
    """Overwrite every parameter with N(0, scale^2) draws (in place); ``rng``: None, an int seed
    or a Generator (SPEC 7).

    Flows start near the identity (zero-initialised last layers), where many gradients are
    exactly zero; tests randomise the parameters first so that every check has something to see.
    """
    rng = check_rng(rng)
    check_scalar(scale, "scale", low=0.0)
    for _, p, _ in module.named_parameters():
        p[...] = scale * rng.standard_normal(p.shape)
