"""check_against: a library flow against the nprefgen flow built from its parameters.

Every quantity is compared in float64 with the normwise relative error

    rel = max |ours - theirs| / max(max |theirs|, tiny)

(one number per array: the error relative to the array's scale, so a near-zero entry does not
blow it up). Per library transform, fed the *library's* input to that transform (errors do not
compound): output, log-det, and the inverse of the library's output. For the whole flow: log p,
and the gradients of sum_i log p(x_i | c_i) with respect to x, the context and every library
parameter (nprefgen's hand-written backward, mapped back through the ParamLinks, against
torch.autograd).

Ill-conditioned quantities. Two correct float64 evaluations differ by the rounding of their
different operation orders, amplified by the condition number of the quantity: an autoregressive
inverse through scales of e^-30, a log p summed from terms of size 10^3, the gradient of a deep
residual network with activations of 10^4. The report measures that amplification on the library
itself: it re-evaluates the library with every input and every parameter multiplied by
(1 + u r), r = +-1 at random and u = 2^-53 the unit roundoff, and records the normwise change
as the row's ``floor`` (two such perturbations, the larger kept): the effect of one rounding
of the data, kappa u. A backward-stable evaluation is exact for data perturbed by at most
m u, m the longest chain of roundings (here the largest fan-in of a layer, ``fan_in``), so two of
them differ by at most about 2 m kappa u. A row passes ``ok(tol)`` when

    rel <= tol   or   rel <= 2 * fan_in * floor                                 (the bound)

and the table shows both numbers, so a row that passes only by its floor says so ("floor").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nprefgen._validation import check_array, check_rng
from nprefgen.interop._torch import numpy, require, tensor

TINY = 1e-300


@dataclass(frozen=True)
class Row:
    """One compared quantity: where (stage), what, the max abs error, the normwise rel error,
    the scale max |theirs|, and the library's own rounding floor (module docstring)."""

    stage: str
    quantity: str
    abs_err: float
    rel_err: float
    scale: float
    floor: float = 0.0


@dataclass
class CheckReport:
    """Rows of :class:`Row`; ``max_rel`` over all rows; ``ok(tol)``; a readable ``str``."""

    library: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fan_in: int = 1

    @property
    def max_rel(self) -> float:
        return max((r.rel_err for r in self.rows), default=0.0)

    def bound(self, row: Row, tol: float = 1e-10) -> float:
        """The row's pass mark: max(tol, 2 fan_in floor) (module docstring)."""
        return max(tol, 2.0 * self.fan_in * row.floor)

    def failures(self, tol: float = 1e-10) -> list[Row]:
        return [r for r in self.rows if not r.rel_err <= self.bound(r, tol)]

    def ok(self, tol: float = 1e-10) -> bool:
        """Every row within ``tol``, or within its rounding bound 2 fan_in floor."""
        return not self.failures(tol)

    def worst(self) -> Row:
        return max(self.rows, key=lambda r: r.rel_err)

    def by_quantity(self) -> dict[str, float]:
        """Max relative error per quantity kind (parameter gradients pooled as 'grad params')."""
        out: dict[str, float] = {}
        for r in self.rows:
            key = "grad params" if r.quantity.startswith("grad ") and r.quantity not in (
                "grad x", "grad context") else r.quantity
            out[key] = max(out.get(key, 0.0), r.rel_err)
        return out

    def __str__(self) -> str:
        w = max([len(r.stage) for r in self.rows] + [5])
        q = max([len(r.quantity) for r in self.rows] + [8])
        lines = [f"nprefgen vs {self.library}: max relative error {self.max_rel:.2e}; "
                 f"{len(self.failures())} of {len(self.rows)} rows above max(1e-10, "
                 f"2 x {self.fan_in} x floor)",
                 f"{'stage':<{w}}  {'quantity':<{q}}  {'abs err':>9}  {'rel err':>9}  {'scale':>9}  "
                 f"{'floor':>9}  pass"]
        for r in self.rows:
            mark = "ok" if r.rel_err <= 1e-10 else ("floor" if r.rel_err <= self.bound(r) else "FAIL")
            lines.append(f"{r.stage:<{w}}  {r.quantity:<{q}}  {r.abs_err:9.2e}  {r.rel_err:9.2e}  "
                         f"{r.scale:9.2e}  {r.floor:9.2e}  {mark}")
        lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)


def _row(stage, quantity, ours, theirs) -> Row:
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        raise ValueError(f"{stage} {quantity}: shapes differ, nprefgen {ours.shape} vs "
                         f"library {theirs.shape}")
    scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
    err = float(np.max(np.abs(ours - theirs))) if theirs.size else 0.0
    if not (np.all(np.isfinite(ours)) and np.all(np.isfinite(theirs))):
        err = float("inf") if not np.array_equal(ours, theirs, equal_nan=True) else 0.0
    return Row(stage, quantity, err, err / max(scale, TINY), scale)


def adapt(their_flow):
    """The adapter for a zuko or nflows flow (an :class:`~nprefgen.interop.mapping.Adapted`)."""
    mod = type(their_flow).__module__.split(".")[0]
    if mod == "zuko":
        from nprefgen.interop.zuko import from_zuko
        return from_zuko(their_flow)
    if mod == "nflows":
        from nprefgen.interop.nflows import from_nflows
        return from_nflows(their_flow)
    raise ValueError(f"their_flow: expected a zuko or nflows flow, got {type(their_flow).__module__}."
                     f"{type(their_flow).__name__}")


def _theirs(adapted, us, ys, x, context, delta: float, rng) -> dict:
    """The library's quantities keyed by (stage, quantity): per stage the output and log-det at
    ``us[k]`` and the inverse at ``ys[k]``; log p and the gradients at (x, context). With
    ``delta > 0`` every input and parameter is multiplied by (1 + delta r), r = +-1 at random
    (the parameters are restored afterwards)."""
    torch = require("torch")

    def pert(a):
        return a if a is None or not delta else a * (1.0 + delta * rng.choice([-1.0, 1.0], np.shape(a)))

    params = adapted.parameters
    saved = {n: p.detach().clone() for n, p in params.items()}
    out = {}
    try:
        with torch.no_grad():
            for p in params.values():
                p.copy_(tensor(pert(numpy(p))))
            c_t = None if context is None else tensor(pert(context))
            for k, st in enumerate(adapted.stages):
                y_t, ld_t = st.forward(tensor(pert(us[k])), c_t)
                out[st.name, "output"] = numpy(y_t)
                out[st.name, "log_det"] = numpy(ld_t) * np.ones(us[k].shape[0])
                out[st.name, "inverse"] = numpy(st.inverse(tensor(pert(ys[k])), c_t))
        x_t = tensor(pert(x), requires_grad=True)
        c_t = None if context is None else tensor(pert(context), requires_grad=True)
        lp_t = adapted.log_prob(x_t, c_t)
        inputs = [x_t] + ([c_t] if c_t is not None else []) + list(params.values())
        grads = torch.autograd.grad(lp_t.sum(), inputs, allow_unused=True)
    finally:
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(saved[n])
    out["flow", "log_prob"] = numpy(lp_t)
    out["flow", "grad x"] = numpy(grads[0])
    k = 1
    if c_t is not None:
        out["flow", "grad context"] = numpy(grads[1])
        k = 2
    for (name, p), g in zip(params.items(), grads[k:]):
        out["flow", f"grad {name}"] = np.zeros(tuple(p.shape)) if g is None else numpy(g)
    return out


def _fan_in(flow) -> int:
    """The largest fan-in of a linear layer in the flow (>= the event dimension)."""
    widths = [flow.dim + flow.context_dim]
    for mod in flow.modules():
        w = mod.params.get("weight") if hasattr(mod, "params") else None
        if w is not None and w.ndim == 2:
            widths.append(w.shape[1])
    return int(max(widths))


def check_against(their_flow, x, context=None, *, adapted=None, rng=None) -> CheckReport:
    """Compare a zuko or nflows flow with nprefgen, transform by transform.

    their_flow : zuko.flows.Flow or nflows.flows.Flow (evaluated in a float64 copy)
    x : (n, D) points; context : (n, C) or None
    adapted : an Adapted from :func:`adapt` to reuse (e.g. with a planted change), default built
    rng : None, int or Generator (SPEC 7): the signs of the rounding-floor perturbations
    -> :class:`CheckReport` (``print(report)`` gives the table, ``report.ok(1e-10)``).
    """
    torch = require("torch")
    rng = check_rng(rng)
    adapted = adapt(their_flow) if adapted is None else adapted
    flow = adapted.flow
    x = check_array(x, "x", ndim=2, dtype=np.float64)
    if x.shape[1] != flow.dim:
        raise ValueError(f"x: expected shape (n, {flow.dim}), got {x.shape}")
    if flow.context_dim:
        context = check_array(context, "context", shape=(x.shape[0], flow.context_dim),
                              dtype=np.float64)
    elif context is not None:
        raise ValueError(f"context: the flow is unconditional, expected None, got {np.shape(context)}")
    report = CheckReport(adapted.library, fan_in=_fan_in(flow))
    # the library's stage inputs and outputs, in sequence
    us, ys = [x], []
    c_t = None if context is None else tensor(context)
    with torch.no_grad():
        for st in adapted.stages:
            ys.append(numpy(st.forward(tensor(us[-1]), c_t)[0]))
            us.append(ys[-1])
    theirs = _theirs(adapted, us, ys, x, context, 0.0, rng)
    shaken = [_theirs(adapted, us, ys, x, context, 2.0 ** -53, rng) for _ in range(2)]

    def row(stage, quantity, ours):
        ref = theirs[stage, quantity]
        scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, TINY)
        floor = max(float(np.max(np.abs(s[stage, quantity] - ref))) if ref.size else 0.0
                    for s in shaken) / scale
        r = _row(stage, quantity, ours, ref)
        report.rows.append(Row(r.stage, r.quantity, r.abs_err, r.rel_err, r.scale, floor))

    for k, st in enumerate(adapted.stages):
        z, our_ld = us[k], np.zeros(x.shape[0])
        for i in st.ours:
            b = flow.bijectors[i]
            z, ldi = b.forward(z, context if b.context_dim else None)
            our_ld = our_ld + ldi
        row(st.name, "output", z)
        row(st.name, "log_det", our_ld)
        x_back = ys[k]
        for i in reversed(st.ours):
            b = flow.bijectors[i]
            x_back, _ = b.inverse(x_back, context if b.context_dim else None)
        row(st.name, "inverse", x_back)
        if st.notes:
            report.notes.append(f"{st.name}: {st.notes}")
    # the whole flow: log p and gradients of sum log p
    flow.zero_grad()
    lp, d_x, d_c = flow.log_prob_and_grad(x, context)
    row("flow", "log_prob", lp)
    row("flow", "grad x", d_x)
    if context is not None:
        row("flow", "grad context", d_c)
    ours = adapted.grads_to_theirs()
    for name, p in adapted.parameters.items():
        row("flow", f"grad {name}", ours.get(name, np.zeros(tuple(p.shape))))
    flow.zero_grad()
    return report
