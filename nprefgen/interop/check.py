"""check_against: a library flow against the nprefgen flow built from its parameters.

Every quantity is compared in float64 with the normwise relative error

    rel = max |ours - theirs| / max(max |theirs|, tiny)

(one number per array: the error relative to the array's scale, so a near-zero entry does not
blow it up). Per library transform, fed the *library's* input to that transform (errors do not
compound): output, log-det, and the inverse of the library's output. For the whole flow: log p,
and the gradients of sum_i log p(x_i | c_i) with respect to x, the context and every library
parameter (nprefgen's hand-written backward, mapped back through the ParamLinks, against
torch.autograd).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nprefgen._validation import check_array
from nprefgen.interop._torch import numpy, require, tensor

TINY = 1e-300


@dataclass(frozen=True)
class Row:
    """One compared quantity: where (stage), what, the max abs error, the normwise rel error."""

    stage: str
    quantity: str
    abs_err: float
    rel_err: float
    scale: float


@dataclass
class CheckReport:
    """Rows of :class:`Row`; ``max_rel`` over all rows; ``ok(tol)``; a readable ``str``."""

    library: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def max_rel(self) -> float:
        return max((r.rel_err for r in self.rows), default=0.0)

    def ok(self, tol: float = 1e-10) -> bool:
        return self.max_rel <= tol

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
        lines = [f"nprefgen vs {self.library}: max relative error {self.max_rel:.2e}",
                 f"{'stage':<{w}}  {'quantity':<{q}}  {'abs err':>9}  {'rel err':>9}  {'scale':>9}"]
        for r in self.rows:
            lines.append(f"{r.stage:<{w}}  {r.quantity:<{q}}  {r.abs_err:9.2e}  {r.rel_err:9.2e}  "
                         f"{r.scale:9.2e}")
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


def check_against(their_flow, x, context=None, *, adapted=None) -> CheckReport:
    """Compare a zuko or nflows flow with nprefgen, transform by transform.

    their_flow : zuko.flows.Flow or nflows.flows.Flow (evaluated in a float64 copy)
    x : (n, D) points; context : (n, C) or None
    adapted : an Adapted from :func:`adapt` to reuse (e.g. with a planted change), default built
    -> :class:`CheckReport` (``print(report)`` gives the table, ``report.ok(1e-10)``).
    """
    torch = require("torch")
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
    report = CheckReport(adapted.library)
    c_t = None if context is None else tensor(context)
    u = x
    with torch.no_grad():
        for st in adapted.stages:
            y_t, ld_t = st.forward(tensor(u), c_t)
            y, ld = numpy(y_t), numpy(ld_t) * np.ones(u.shape[0])
            z, our_ld = u, np.zeros(u.shape[0])
            for i in st.ours:
                b = flow.bijectors[i]
                z, ldi = b.forward(z, context if b.context_dim else None)
                our_ld = our_ld + ldi
            report.rows.append(_row(st.name, "output", z, y))
            report.rows.append(_row(st.name, "log_det", our_ld, ld))
            x_back = y
            for i in reversed(st.ours):
                b = flow.bijectors[i]
                x_back, _ = b.inverse(x_back, context if b.context_dim else None)
            report.rows.append(_row(st.name, "inverse", x_back, numpy(st.inverse(y_t, c_t))))
            if st.notes:
                report.notes.append(f"{st.name}: {st.notes}")
            u = y
    # the whole flow: log p and gradients of sum log p
    x_t = tensor(x, requires_grad=True)
    c_t = None if context is None else tensor(context, requires_grad=True)
    params = adapted.parameters
    lp_t = adapted.log_prob(x_t, c_t)
    inputs = [x_t] + ([c_t] if c_t is not None else []) + list(params.values())
    grads = torch.autograd.grad(lp_t.sum(), inputs, allow_unused=True)
    flow.zero_grad()
    lp, d_x, d_c = flow.log_prob_and_grad(x, context)
    report.rows.append(_row("flow", "log_prob", lp, numpy(lp_t)))
    report.rows.append(_row("flow", "grad x", d_x, numpy(grads[0])))
    k = 1
    if c_t is not None:
        report.rows.append(_row("flow", "grad context", d_c, numpy(grads[1])))
        k = 2
    ours = adapted.grads_to_theirs()
    for (name, p), g in zip(params.items(), grads[k:]):
        theirs = np.zeros(tuple(p.shape)) if g is None else numpy(g)
        report.rows.append(_row("flow", f"grad {name}", ours.get(name, np.zeros_like(theirs)),
                                theirs))
    flow.zero_grad()
    return report
