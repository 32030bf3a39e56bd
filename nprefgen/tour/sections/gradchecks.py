"""Tour section: the dot-product test of every layer, loss, bijector and kernel, and a planted bug
it catches."""
from __future__ import annotations

import numpy as np

from nprefgen.testing import DEFAULT_RTOL, vjp_error
from nprefgen.testing.gradcheck import DEFAULT_STEP
from nprefgen.tour.gradchecks import planted_bug_checks, run_gradchecks

ORDER = 15
TITLE = "Gradient checks of every layer, loss, bijector and kernel"

_EXPLANATION = (
    "Every backward pass in nprefgen is written by hand, so every one is checked. For a map f with "
    "Jacobian J, a backward pass computes the vector-Jacobian product J^T v. Draw random directions "
    "u (shaped like the input) and v (shaped like the output): the identity <u, J^T v> = <v, J u> "
    "must hold, and J u is a single directional derivative, which a fourth-order central difference "
    "[-f(x+2hu) + 8f(x+hu) - 8f(x-hu) + f(x-2hu)] / 12h gives to about 1e-12 from four calls of f "
    "(derivations/nn.md, NN.18-NN.19). One scalar comparison covers the whole Jacobian: a wrong "
    "entry of J^T v changes the left side for almost every u. The relative error is "
    "|lhs - rhs| / max(||u|| ||J^T v||, |rhs|); the bar is rtol = {rtol:.0e} in float64, and correct "
    "layers sit near 1e-12. Each parameter is checked separately, so a failure names the array "
    "whose gradient is wrong."
)


def _step_sweep(rng_seed: int, steps: np.ndarray):
    """Relative error of the dot-product test against the step h, for a correct tanh MLP and for
    the planted bug, with the same directions at every h."""
    from nprefgen.nn import MLP
    from nprefgen.tour.gradchecks import BrokenLinear

    rng = np.random.default_rng(rng_seed)
    net = MLP(3, [8, 8], 2, rng=rng, activation="tanh")
    broken = BrokenLinear(3, 2, rng=rng)
    x = rng.standard_normal((5, 3))
    w = broken.params["weight"]
    w0 = w.copy()

    def net_vjp(v):
        net.zero_grad()
        _, cache = net.forward(x)
        return net.backward(cache, v)

    def broken_fun(w_):
        w[...] = w_
        try:
            return broken.forward(x)[0]
        finally:
            w[...] = w0

    def broken_vjp(v):
        broken.zero_grad()
        _, cache = broken.forward(x)
        broken.backward(cache, v)
        return broken.grads["weight"].copy()

    good, bad = [], []
    for h in steps:
        # the same (u, v) at every h: a fresh generator with the same seed
        good.append(vjp_error(lambda x_: net.forward(x_)[0], net_vjp, x, step=float(h),
                              rng=np.random.default_rng(rng_seed + 1)).rel_error)
        bad.append(vjp_error(broken_fun, broken_vjp, w0, step=float(h),
                             rng=np.random.default_rng(rng_seed + 1)).rel_error)
    return np.array(good), np.array(bad)


def build(report) -> None:
    import matplotlib.pyplot as plt

    rng = report.rng("gradchecks")
    rtol = DEFAULT_RTOL
    report.text(_EXPLANATION.format(rtol=rtol))

    # the same groups as `nprefgen gradcheck`: nn layers, losses, bijectors (input, context and
    # every parameter of <v, z> + <w, log_det>, FLOW.24) and the numba kernels with their twins
    rows = [(f"{g}: {d}", p, e, ok) for g, d, p, e, ok in run_gradchecks(rng=rng, rtol=rtol)]
    bug_rows = planted_bug_checks(rng=rng, rtol=rtol)
    n_bad = sum(not ok for *_, ok in rows)
    worst = max(err for _, _, err, _ in rows)
    report.text(f"{len(rows)} dot-product tests of nprefgen's layers, losses, bijectors and kernels "
                f"at rtol {rtol:.0e} (finite-difference step h = {DEFAULT_STEP:g}): "
                f"{len(rows) - n_bad} ok, {n_bad} failed; the largest relative error is {worst:.1e}.")
    rule = f"relative error < rtol {rtol:.0e}"
    report.table(["group: layer, loss, bijector or kernel", "gradient checked", "relative error",
                  "status"],
                 [[d, p, e, report.check(f"{d} / {p}", e, rule, ok, show=False)]
                  for d, p, e, ok in rows], status_col=3,
                 caption=f"Dot-product test of every layer, loss, bijector and kernel (rtol {rtol:.0e})")

    report.text("Can the test fail? Below, the same test runs on a Linear layer whose backward "
                "pass deliberately returns twice the true weight gradient (the planted bug). The "
                "weight row must fail the test, while the input and bias rows, whose gradients are "
                "still correct, pass it: the failure points at the broken array. The check here is "
                "that the test tells them apart.")
    bug_table = []
    for d, p, e, ok in bug_rows:
        expected = p != "weight"                 # only the weight gradient is wrong
        seen = "passes" if ok else "fails"
        want = "passes" if expected else "fails (planted bug)"
        bug_table.append([d, p, e, seen, want, report.check(
            f"planted bug / {p}: the test {'passes' if expected else 'fails'}", seen,
            f"the dot-product test {want} (rtol {rtol:.0e})", bool(ok) == expected, show=False)])
    report.table(["layer", "gradient checked", "relative error", "dot-product test", "expected",
                  "as expected"], bug_table, status_col=5,
                 caption="Planted bug: a Linear whose weight gradient is scaled by 2")

    # figure 1: where the errors fall relative to the bar
    errs = np.log10(np.maximum([e for _, _, e, _ in rows], 1e-18))
    bug_errs = {p: np.log10(max(e, 1e-18)) for _, p, e, _ in bug_rows}
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.hist(errs, bins=np.arange(-17, 1.01, 0.5), color="0.55", label="layers, losses, bijectors, kernels")
    ax.axvline(np.log10(rtol), color="k", ls="--", label=f"rtol {rtol:.0e}")
    for p, e in bug_errs.items():
        color = "tab:red" if p == "weight" else "tab:green"
        ax.plot([e], [0.5], marker="v", ms=10, color=color, ls="none",
                label=f"planted bug, {p}" + (" (FAIL)" if p == "weight" else ""))
    ax.set_xlabel("log10 relative error of the dot-product test")
    ax.set_ylabel("number of checks")
    ax.legend(fontsize=7, loc="upper right")
    report.figure(fig, "errors", "Relative errors of every check (grey) against the bar; the "
                                 "planted bug's weight gradient (red) is off by orders of magnitude.")

    # figure 2: why h = 1e-3: truncation error (h^4) against round-off (eps / h)
    steps = np.logspace(-6, -0.5, 8 if report.quick else 23)
    good, bad = _step_sweep(int(rng.integers(2**31)), steps)
    fig, ax = plt.subplots(figsize=(5.4, 3.6))
    ax.loglog(steps, np.maximum(good, 1e-18), "o-", label="correct backward (tanh MLP)")
    ax.loglog(steps, bad, "s-", color="tab:red", label="planted bug (weight gradient x2)")
    ax.axhline(rtol, color="k", ls="--", label=f"rtol {rtol:.0e}")
    ax.axvline(DEFAULT_STEP, color="0.6", ls=":", label=f"default h = {DEFAULT_STEP:g}")
    ax.set_xlabel("finite-difference step h")
    ax.set_ylabel("relative error")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    report.figure(fig, "step", "Error of the fourth-order difference against the step: round-off "
                               "(~eps/h) on the left, truncation (~h^4) on the right. A wrong "
                               "gradient stays far above the bar at every h.")

    failed = [f"{d} / {p} ({e:.1e})" for d, p, e, ok in rows if not ok]
    if failed:
        raise AssertionError(f"dot-product test failed for: {failed}")
    status = {p: ok for _, p, _, ok in bug_rows}
    if status.get("weight", True) or not all(ok for p, ok in status.items() if p != "weight"):
        raise AssertionError("the planted bug (Linear weight gradient x2) was not detected")
