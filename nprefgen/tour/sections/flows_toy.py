"""Tour section: RealNVP, MAF and rational-quadratic spline flows fitted to 2-D toy densities;
the bijector battery (derivations/flows.md, derivations/splines.md)."""
from __future__ import annotations

import time
import warnings

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen.data.toys import TOYS
from nprefgen.flows import (
    IAF, MAF, ActNorm, AffineCoupling, LogitTransform, Permutation, SplineCoupling, Standardize,
    alternating_mask, maf, realnvp, spline_flow,
)
from nprefgen.plots.flows import plot_histories, plot_toy_flows
from nprefgen.testing.bijector_checks import bijector_report, randomize_parameters

ORDER = 41
TITLE = "Normalizing flows: RealNVP, MAF and spline flows on 2-D toys"

_TOYS = ("two_moons", "8gaussians")


def _battery_rows(rng):
    """Every bijector kind, random parameters, a conditional one where it applies."""
    d, n = 4, 6
    cases = [
        ("AffineCoupling (FLOW.5-8), context 2",
         AffineCoupling(alternating_mask(d), [8], rng=rng, context_dim=2, activation="tanh"), 2),
        ("MAF (FLOW.12, 12, 15), context 2", MAF(d, [8], rng=rng, context_dim=2, activation="tanh"), 2),
        ("IAF (FLOW.15, 14)", IAF(d, [8], rng=rng, activation="tanh"), 0),
        ("SplineCoupling (SPL.12, 13), context 2",
         SplineCoupling(d, alternating_mask(d), [8], 5, 3.0, rng=rng, context_dim=2,
                        activation="tanh"), 2),
        ("Permutation (FLOW.17)", Permutation.random(d, rng=rng), 0),
        ("ActNorm (FLOW.18, 18)", ActNorm(d), 0),
        ("Standardize (FLOW.18)", Standardize(rng.standard_normal(d), np.exp(rng.standard_normal(d))), 0),
        ("LogitTransform (FLOW.21)", LogitTransform(d), 0),
    ]
    rows = []
    for name, b, c_dim in cases:
        randomize_parameters(b, rng=rng, scale=0.4)
        x = rng.uniform(0.05, 0.95, (n, d)) if isinstance(b, LogitTransform) else rng.standard_normal((n, d))
        c = rng.standard_normal((n, c_dim)) if c_dim else None
        r = bijector_report(b, x, c, rng=rng)
        worst = max((g.rel_error for g in r.gradients if abs(g.rhs) > g.noise), default=0.0)
        rows.append([name, r.round_trip, float(np.max(r.log_det)), r.inverse_log_det, worst,
                     len(r.gradients), r.ok])
    return rows


def build(report) -> None:
    rng = report.rng("flows_toy")
    quick = report.quick
    n_train, n_test = (400, 400) if quick else (4000, 4000)
    layers, hidden = (4, 16) if quick else (8, 64)
    n_bins, bound = 8, 3.0
    fit_kw = dict(epochs=3 if quick else 60, batch_size=256, lr=2e-3, patience=10, progress=False)
    builders = (("RealNVP", realnvp, {}), ("MAF", maf, {}),
                ("Spline", spline_flow, dict(n_bins=n_bins, bound=bound)))

    report.text(
        "A flow maps data x to a standard normal z = f(x) through invertible layers; the density "
        "follows from the change of variables log p(x) = log N(f(x)) + log|det J_f(x)| (FLOW.1), "
        "the log-determinants of the layers adding up (FLOW.2). RealNVP stacks affine couplings "
        "(FLOW.5): half of the coordinates pass unchanged and set a scale and shift for the other "
        "half, so the Jacobian is block triangular and its log-determinant is the sum of the "
        "log-scales (FLOW.7); masks alternate between layers. MAF stacks MADE layers (FLOW.11, "
        "FLOW.12): each coordinate is shifted and scaled by functions of the earlier ones, in one "
        "network pass for the density and one pass per coordinate for sampling (FLOW.13); the order "
        "is reversed between layers. The spline flow (Durkan et al. 2019) keeps RealNVP's "
        "alternating couplings but replaces the affine map by a monotone rational-quadratic spline "
        f"per coordinate (SPL.4) with {n_bins} bins on [-{bound:g}, {bound:g}] (identity outside), "
        "its widths, heights and knot derivatives (SPL.2, SPL.3) set by the conditioner; the "
        "log-determinant is the sum of the log spline slopes (SPL.12). All three are trained by "
        "maximum likelihood with Adam, a 10% validation split and early stopping that restores the "
        f"best weights. Budget: {n_train} training points, at most {fit_kw['epochs']} epochs "
        f"(patience {fit_kw['patience']}) per flow, the same depth and width for all three; "
        + ("quick mode shrinks everything to a few seconds." if quick else
           "the whole section takes under a minute on 2 cores (56 s measured on a shared, busy "
           "machine; quick mode: a few seconds)."))

    report.table(["bijector", "round trip", "log-det vs FD Jacobian", "inverse log-det",
                  "worst dot-product error", "gradient checks", "status"],
                 [row[:-1] + [report.check(f"bijector battery: {row[0]}", row[4], "every bar "
                                           "of the caption", bool(row[-1]), show=False)]
                  for row in _battery_rows(rng)], status_col=6,
                 caption="the bijector battery (FLOW.23, FLOW.24) at float64 with random parameters: "
                         "round trip relative to max|x| (bar 1e-10), log-det against log|det| of a "
                         "fourth-order central-difference Jacobian (bar 1e-7), log_det_inv + log_det, "
                         "and the dot-product test of backward for the input, every parameter and the "
                         "context (bar 1e-8)")

    rows, histories = [], {}
    with blas_threads(1):          # fits, test log p and the density grids alike
        for toy_name in _TOYS:
            toy = TOYS[toy_name]
            x, x_test = toy.sample(n_train, rng=rng), toy.sample(n_test, rng=rng)
            flows = {}
            for name, build_flow, extra in builders:
                flow = build_flow(2, layers, hidden, rng=rng, actnorm=True, **extra)
                t0 = time.perf_counter()
                with warnings.catch_warnings():      # a divergence is flagged in the table instead
                    warnings.simplefilter("ignore", RuntimeWarning)
                    hist = flow.fit(x, rng=rng, on_divergence="warn", **fit_kw).history_
                seconds = time.perf_counter() - t0
                trained = report.check(
                    f"{name} on {toy_name}: training", hist["stopped"].replace("_", " "),
                    "no divergence (nprefgen/nn/train.py: every loss finite and no epoch above "
                    "best + 3(1 + |best|)); the best weights are restored either way",
                    hist["stopped"] != "diverged", show=False)
                flows[name] = flow
                histories[f"{name}, {toy_name}"] = hist
                test = -flow.mean_nll(x_test)
                true = float(np.mean(toy.log_prob(x_test))) if toy.has_log_prob else None
                rows.append([toy_name, name, flow.num_parameters(), hist["epochs"],
                             hist["best_epoch"] + 1, trained, test, "-" if true is None else true,
                             "-" if true is None else true - test, seconds])
            fig = plot_toy_flows(x, flows, toy.bounds, rng=rng, n_samples=1000 if quick else 3000,
                                 n_grid=80 if quick else 200, title=toy_name,
                                 true_log_prob=toy.log_prob if toy.has_log_prob else None)
            report.figure(fig,
                          f"{toy_name}", f"{toy_name}: {n_train} training points (top left), the "
                                         "learned densities (FLOW.1, top) and samples x = f^-1(z) "
                                         "(bottom) of RealNVP, MAF and the spline flow"
                                         + ("; bottom left the true density (closed form)"
                                            if toy.has_log_prob else ""))
    report.table(["toy", "flow", "parameters", "epochs", "best epoch", "training",
                  "test mean log p", "true mean log p", "gap (KL estimate)", "fit seconds"], rows,
                 status_col=5,
                 caption=f"{layers} layers with ActNorm, conditioners of two hidden layers of {hidden} "
                         f"ReLU units (spline: {n_bins} bins on [-{bound:g}, {bound:g}]); test "
                         f"log-likelihood on {n_test} fresh samples. Where the toy has a closed-form "
                         "density the gap estimates KL(p || p_flow) >= 0: affine flows are smooth "
                         "deformations of one Gaussian and spread mass between separated modes; "
                         "the spline couplings (SPL.4) bend each coordinate more freely and "
                         "reduce it.")
    report.figure(plot_histories(histories), "histories",
                  "mean negative log-likelihood per epoch: training (thin, measured during the "
                  "epoch) and validation (thick); dots mark the restored best epochs")
