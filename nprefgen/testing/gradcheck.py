"""The dot-product test for hand-written gradients (derivations/nn.md, NN.18-NN.19).

For f: R^n -> R^m and its vector-Jacobian product ``vjp(v) = J^T v``, draw random u in R^n and
v in R^m and compare

    (NN.18)  <u, J^T v>   with   <v, J u>,

where J u is the directional derivative from a fourth-order central difference

    (NN.19)  J u ~ [-f(x + 2hu) + 8 f(x + hu) - 8 f(x - hu) + f(x - 2hu)] / (12 h),

whose truncation error is O(h^4) (h = 1e-3 gives ~1e-12) and whose round-off is ~eps/h. One
scalar per direction covers the whole Jacobian: any wrong entry of J^T v changes the left side
for almost every u. The relative error is

    |lhs - rhs| / max(||u|| ||J^T v||, |rhs|, tiny),

the Cauchy-Schwarz scale of the left side, which a cancellation in the random sum cannot make
tiny. Float64 only; in smooth regions nprefgen's layers reach ~1e-11, and the documented bar
is ``rtol = 1e-8``.

Where the Jacobian is zero along the drawn directions (a fully masked weight, a constant
function), both sides are pure round-off and no relative error is meaningful. The stencil's
round-off is bounded by ``noise = 16 eps ||v|| || |f(x+2hu)| + 8|f(x+hu)| + 8|f(x-hu)| + |f(x-2hu)| || / (12 h)``
(eps the float64 machine epsilon, times 16 for the evaluation error of f itself), and a check
also passes when ``|lhs - rhs| <= noise``. A wrong gradient differs by far more than that.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from nprefgen._validation import check_array, check_callable, check_int, check_rng, check_scalar

DEFAULT_RTOL = 1e-8
DEFAULT_STEP = 1e-3


@dataclass
class VJPResult:
    """One dot-product test: ``lhs = <u, J^T v>``, ``rhs = <v, J u>`` and their relative error."""

    name: str
    lhs: float
    rhs: float
    rel_error: float
    rtol: float
    noise: float = 0.0
    """Estimated round-off of ``rhs`` (absolute); ``|lhs - rhs| <= noise`` also passes."""

    @property
    def ok(self) -> bool:
        return bool(self.rel_error <= self.rtol or abs(self.lhs - self.rhs) <= self.noise)

    def __str__(self) -> str:
        status = "ok" if self.ok else "FAIL"
        if self.ok and self.rel_error > self.rtol:
            status = f"ok (|lhs - rhs| within round-off {self.noise:.1e})"
        return (f"{self.name}: <u, J^T v> = {self.lhs:.12g}, <v, J u> = {self.rhs:.12g}, "
                f"relative error {self.rel_error:.2e} (rtol {self.rtol:.0e}) {status}")


def _as_tuple(y) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(a, dtype=np.float64) for a in y) if isinstance(y, (tuple, list)) \
        else (np.asarray(y, dtype=np.float64),)


def _dot(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    return float(sum(np.sum(x * y) for x, y in zip(a, b)))


def directional_derivative(fun: Callable, x: np.ndarray, u: np.ndarray, step: float = DEFAULT_STEP):
    """(NN.19) J u of ``fun`` at ``x`` along ``u`` by the fourth-order central difference.

    ``fun`` may return an array or a tuple of arrays; the result has the same structure (tuple).
    x and u: float64 arrays of the same shape.
    """
    check_callable(fun, "fun")
    x = check_array(x, "x", dtype=np.float64)
    u = check_array(u, "u", shape=x.shape, dtype=np.float64)
    check_scalar(step, "step", low=0.0, low_inclusive=False)
    return _stencil(fun, x, u, step)[0]


def _stencil(fun: Callable, x: np.ndarray, u: np.ndarray, step: float):
    """(NN.19) ``(J u, magnitude)``, ``magnitude`` the stencil's ``sum_k |c_k f_k| / (12 h)`` per entry,
    which bounds its round-off when multiplied by the machine epsilon."""
    fp2, fp1, fm1, fm2 = (_as_tuple(fun(x + c * step * u)) for c in (2.0, 1.0, -1.0, -2.0))
    ju = tuple((-a + 8.0 * b - 8.0 * c + d) / (12.0 * step) for a, b, c, d in zip(fp2, fp1, fm1, fm2))
    mag = tuple((np.abs(a) + 8.0 * np.abs(b) + 8.0 * np.abs(c) + np.abs(d)) / (12.0 * step)
                for a, b, c, d in zip(fp2, fp1, fm1, fm2))
    return ju, mag


def vjp_error(fun: Callable, vjp: Callable, x, *, rng=None, step: float = DEFAULT_STEP,
              rtol: float = DEFAULT_RTOL, name: str = "x", v=None) -> VJPResult:
    """(NN.18) One dot-product test of ``vjp`` against ``fun`` at ``x``.

    Parameters
    ----------
    fun : callable
        ``x -> y`` (array or tuple of arrays).
    vjp : callable
        ``v -> J^T v`` with ``v`` shaped like ``fun(x)``; returns an array shaped like ``x``.
    x : (any shape) float64 array
    rng : numpy.random.Generator
        Draws the directions u and v (standard normal).
    v : optional cotangent(s) to use instead of random ones.
    """
    check_callable(fun, "fun")
    check_callable(vjp, "vjp")
    rng = check_rng(rng)
    x = check_array(x, "x", dtype=np.float64)
    check_scalar(step, "step", low=0.0, low_inclusive=False)
    check_scalar(rtol, "rtol", low=0.0, low_inclusive=False)
    y = _as_tuple(fun(x))
    if v is None:
        v = tuple(rng.standard_normal(a.shape) for a in y)
    else:
        v = _as_tuple(v)
        if [a.shape for a in v] != [a.shape for a in y]:
            raise ValueError(f"v: expected shapes {[a.shape for a in y]}, got {[a.shape for a in v]}")
    u = rng.standard_normal(x.shape)
    vjp_v = np.asarray(vjp(v if len(v) > 1 else v[0]), dtype=np.float64)
    if vjp_v.shape != x.shape:
        raise ValueError(f"vjp: expected a gradient of shape {x.shape}, got {vjp_v.shape}")
    lhs = float(np.sum(u * vjp_v))
    ju, mag = _stencil(fun, x, u, step)
    rhs = _dot(v, ju)
    scale = max(float(np.linalg.norm(u) * np.linalg.norm(vjp_v)), abs(rhs), 1e-300)
    # round-off bound of rhs (see the module docstring): |<v, err>| <= ||v|| ||err||
    noise = 16.0 * np.finfo(np.float64).eps * float(np.sqrt(sum(np.sum(a * a) for a in v))) \
        * float(np.sqrt(sum(np.sum(m * m) for m in mag)))
    return VJPResult(name, lhs, rhs, abs(lhs - rhs) / scale, rtol, noise)


def check_vjp(fun: Callable, vjp: Callable, x, *, rng=None, n_directions: int = 2,
              step: float = DEFAULT_STEP, rtol: float = DEFAULT_RTOL, name: str = "x") -> list[VJPResult]:
    """Run :func:`vjp_error` for ``n_directions`` random (u, v) and raise AssertionError on failure.

    Returns the results, so callers can report the errors (the tour prints them as a table).
    """
    check_int(n_directions, "n_directions", low=1)
    rng = check_rng(rng)                  # once: an int seed must not repeat the same directions
    results = [vjp_error(fun, vjp, x, rng=rng, step=step, rtol=rtol, name=name) for _ in range(n_directions)]
    bad = [r for r in results if not r.ok]
    if bad:
        raise AssertionError("dot-product test failed:\n" + "\n".join(str(r) for r in bad))
    return results


def gradcheck(fun: Callable, grad: Callable, x, *, rng=None, **kwargs) -> list[VJPResult]:
    """Scalar-valued special case: ``grad(x)`` is the gradient of ``fun(x)`` (a float), shaped
    like ``x``."""
    check_callable(grad, "grad")
    x = check_array(x, "x", dtype=np.float64)
    g = np.asarray(grad(x), dtype=np.float64)
    if g.shape != x.shape:
        raise ValueError(f"grad: expected a gradient of shape {x.shape}, got {g.shape}")
    return check_vjp(fun, lambda v: float(v) * g, x, rng=rng, **kwargs)


def layer_vjp_errors(layer, x, *, rng=None, step: float = DEFAULT_STEP,
                     rtol: float = DEFAULT_RTOL) -> list[VJPResult]:
    """Dot-product tests of a :class:`nprefgen.nn.Module` for its input and every parameter.

    The layer must be float64. Parameters are perturbed in place and restored; the layer's
    gradients are zeroed before and after. Returns one result per input/parameter (no raising).
    """
    lacking = [a for a in ("forward", "backward", "named_parameters", "zero_grad")
               if not callable(getattr(layer, a, None))]
    if lacking:
        raise ValueError(f"layer: expected an object with the nprefgen.nn.Module contract, got "
                         f"{type(layer).__name__} without {lacking}")
    rng = check_rng(rng)
    x = check_array(x, "x", dtype=np.float64)
    check_scalar(rtol, "rtol", low=0.0, low_inclusive=False)
    named = list(layer.named_parameters())
    for pname, p, _ in named:
        if p.dtype != np.float64:
            raise ValueError(f"layer: expected float64 parameters for a gradient check, "
                             f"got {p.dtype} for {pname!r}")
    y0, _ = layer.forward(x)
    v = rng.standard_normal(np.shape(y0))

    def input_vjp(v_):
        layer.zero_grad()
        _, cache = layer.forward(x)
        return layer.backward(cache, v_)

    results = [vjp_error(lambda x_: layer.forward(x_)[0], input_vjp, x, rng=rng, step=step,
                         rtol=rtol, name="input", v=v)]
    for pname, p, g in named:
        original = p.copy()

        def fun(p_, p=p):
            p[...] = p_
            try:
                return layer.forward(x)[0]
            finally:
                p[...] = original

        def param_vjp(v_, g=g):
            layer.zero_grad()
            _, cache = layer.forward(x)
            layer.backward(cache, v_)
            return g.copy()

        results.append(vjp_error(fun, param_vjp, original, rng=rng, step=step, rtol=rtol,
                                 name=pname, v=v))
    layer.zero_grad()
    return results


def check_layer(layer, x, *, rng=None, **kwargs) -> list[VJPResult]:
    """:func:`layer_vjp_errors`, raising AssertionError if any check fails."""
    results = layer_vjp_errors(layer, x, rng=rng, **kwargs)
    bad = [r for r in results if not r.ok]
    if bad:
        raise AssertionError(f"dot-product test failed for {layer!r}:\n" + "\n".join(str(r) for r in bad))
    return results
