"""Tour section: score-based posterior estimation (NPSE) side by side with NPE
(derivations/score.md, SCORE.15-SCORE.18).

A conditional NCSN s(theta, x, sigma) is trained by denoising score matching on simulated pairs
(SCORE.15); for an observation, annealed Langevin dynamics on theta with the context folded into
the network (SCORE.17) samples the posterior, whose score equals the joint's (SCORE.16); draws
outside the prior are rejected (SCORE.18). NPE (SBI.10) is trained on the same simulations; both
are judged by C2ST against the analytic posterior.
"""
from __future__ import annotations

import time

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen.metrics.c2st import c2st
from nprefgen.sbi.npe import NPE
from nprefgen.sbi.score_posterior import NPSE
from nprefgen.sbi.tasks import gaussian_linear
from nprefgen.tour import rules

ORDER = 53
TITLE = "SBI with a score network: NPSE next to NPE"


def _scatter(panels: dict, title: str):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.0),
                             sharex=True, sharey=True)
    for ax, (name, pts) in zip(axes, panels.items()):
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4)
        ax.set_title(name, fontsize=8)
    fig.suptitle(title, fontsize=8)
    return fig


def build(report) -> None:
    rng = report.rng("sbi_score")
    quick = report.quick
    n_sims, n_post = (1500, 300) if quick else (5000, 1000)
    task = gaussian_linear(dim=2)
    theta = task.prior.sample(n_sims, rng=rng)
    x = task.simulator(theta, rng)
    _, xo = task.observations(1, rng=rng)
    ref = task.reference_posterior(xo[0], n_post, rng=rng)
    report.text(
        "Score-based posterior estimation: a conditional NCSN s(theta, x, sigma) (input "
        "[theta, x, log sigma], softplus MLP) is trained by denoising score matching on the "
        "simulated pairs with noise on theta only (SCORE.15). Its minimiser is the score of the "
        "perturbed posterior, which equals the score of the joint in theta since p(x) does not "
        "depend on theta (SCORE.16). For one observation the context is folded into the first "
        "layer's bias (SCORE.17) and the numba annealed Langevin loop (SCORE.12, SCORE.13) "
        "samples theta; draws outside the prior are rejected (SCORE.18). NPE (a neural spline "
        "flow, SBI.10) is trained on the same simulations. Task: gaussian_linear in 2-D, whose "
        "posterior is Gaussian in closed form.")
    rows, panels = [], {"reference": ref}
    for name in ("NPSE", "NPE"):
        t0 = time.perf_counter()
        with blas_threads(1):
            if name == "NPSE":
                est = NPSE(task.prior, hidden=(32, 32) if quick else (64, 64),
                           n_levels=10 if quick else 15, n_steps_each=20 if quick else 40)
                post = est.train(theta, x, rng=rng, max_epochs=60 if quick else 40,
                                 batch_size=100 if quick else 200)
            else:
                est = NPE(task.prior, flow="maf" if quick else "nsf", n_transforms=2 if quick else 5,
                          hidden=16 if quick else 50)
                post = est.train(theta, x, rng=rng, max_epochs=25 if quick else 60)
            t_fit = time.perf_counter() - t0
            t0 = time.perf_counter()
            draws = post.sample(n_post, xo[0], rng=rng)
            t_sample = time.perf_counter() - t0
        score = c2st(ref, draws, rng=rng, max_epochs=50 if quick else 200)
        check = rules.c2st(report, f"gaussian_linear 2-D, {name}: C2ST", score, n_post)
        mean_err = float(np.max(np.abs(draws.mean(0) - ref.mean(0))))
        var_ratio = np.diag(np.cov(draws.T)) / np.diag(np.cov(ref.T))
        rows.append([name, score, check, mean_err, f"{var_ratio[0]:.2f}, {var_ratio[1]:.2f}",
                     est.history_["epochs"], t_fit, t_sample])
        panels[name] = draws
    report.table(["method", "C2ST", f"C2ST <= {rules.c2st_bar(n_post):.3f}",
                  "max |mean error|", "variance ratio to reference", "epochs", "fit s",
                  "sampling s"], rows,
                 caption=f"{n_sims} simulations, {n_post} posterior draws of each against "
                         f"{n_post} reference draws; C2ST flagged above "
                         f"{rules.c2st_bar(n_post):.3f} (chance at the 1 % level)"
                         + (" (quick mode: small networks, a few epochs, NPE a MAF; flags are expected)" if quick else ""))
    report.figure(_scatter(panels, "posterior draws for one observation"), "draws",
                  "reference posterior, NPSE (annealed Langevin) and NPE draws")
