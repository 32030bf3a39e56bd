"""Tour section: field-level inference, the lecture's closing example (derivations/fields.md).

NPE on the power spectrum and NPE with a CNN embedding on the raw map, trained on the same
simulations, against the exact field-level posterior of a Gaussian random field (FIELD.5,
slice sampling); then the log-normal field, which has no exact posterior.
"""
from __future__ import annotations

import time

import matplotlib
import numpy as np

from nprefgen._threads import blas_threads
from nprefgen.metrics.c2st import c2st
from nprefgen.plots.sbi import pair_plot
from nprefgen.sbi import NPE, CNNEmbedding
from nprefgen.sbi import diagnostics as dg
from nprefgen.sbi.cosmology import exact_field_posterior, field_task
from nprefgen.tour import rules

ORDER = 54
TITLE = "SBI at the field level: a CNN on the map vs the power spectrum vs the exact posterior"


def _settings(quick: bool) -> dict:
    if quick:
        return dict(n_side=8, n_sim=300, epochs=3, flow=dict(n_transforms=2, hidden=16),
                    cnn=dict(channels=(4, 8), hidden=(16,)), n_post=200, n_c2st=100, chains=8,
                    warmup=50, thin=2, n_test=10, n_draws=50)
    return dict(n_side=16, n_sim=1000, epochs=40, flow=dict(n_transforms=3, hidden=32),
                cnn=dict(channels=(8, 16), hidden=(32,)), n_post=800, n_c2st=500, chains=16,
                warmup=500, thin=20, n_test=40, n_draws=200)


def _maps_figure(maps, titles):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.2))
    for ax, m, t in zip(np.atleast_1d(axes), maps, titles):
        im = ax.imshow(m, cmap="magma")
        ax.set_title(t, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def _train(prior, theta, maps, spectra, cfg, rng):
    fit = dict(max_epochs=cfg["epochs"], patience=10, lr=1e-3)
    n = maps.shape[-1]
    t0 = time.perf_counter()
    ps = NPE(prior, **cfg["flow"]).train(theta, spectra, rng=rng, **fit)
    t_ps = time.perf_counter() - t0
    t0 = time.perf_counter()
    cnn = NPE(prior, **cfg["flow"], embedding=CNNEmbedding((n, n), 8, cfg["cnn"]["channels"],
                                                            hidden=cfg["cnn"]["hidden"], rng=rng))
    cnn = cnn.train(theta, maps, rng=rng, **fit)
    return {"NPE power spectrum": (ps, t_ps), "NPE CNN on the map": (cnn, time.perf_counter() - t0)}


def _calibration(report, kind, posts, theta_t, xs, cfg, rng):
    """Mean posterior sd and HPD calibration (SBI.16) of each NPE over test observations."""
    rows = []
    for name, (post, _) in posts.items():
        x = xs[name]
        d = post.sample_batched(cfg["n_draws"], x, rng=rng)
        lq = np.stack([post.log_prob(d[i], x[i]) for i in range(len(x))])
        lt = np.array([post.log_prob(theta_t[i:i + 1], x[i])[0] for i in range(len(x))])
        f = dg.hpd_levels(lq, lt)
        p = float(dg.uniformity_pvalues(f[:, None])[0])
        sd = d.std(axis=1).mean(axis=0)
        rows.append([name, float(sd[0]), float(sd[1]), float(np.mean(f <= 0.68)),
                     float(np.mean(f <= 0.95)), p,
                     rules.ks_uniform(report, f"{kind}: {name}: HPD levels", p)])
    return rows


def build(report) -> None:
    matplotlib.use("Agg")
    cfg = _settings(report.quick)
    rng = report.rng("sbi_fields")
    n = cfg["n_side"]
    report.text(
        f"The lecture's closing example: infer (A, n) of P(k) = A k^-n from a whole {n}x{n} map "
        "rather than from a summary chosen by hand. For a Gaussian field with white noise the "
        "likelihood of the map is exact and diagonal in Fourier space (FIELD.4-FIELD.5), so the "
        "field-level posterior is known: slice sampling gives the reference. NPE on the log "
        "binned power spectrum (SBI.6) and NPE with a CNN embedding trained jointly on the raw "
        f"map (FIELD.1-FIELD.2) learn from the same {cfg['n_sim']} simulations. The log-normal "
        "field exp(g - sigma_g^2/2) - 1 of such a Gaussian g (FIELD.7) is non-Gaussian: its "
        "spectrum no longer holds all the information. Prior A ~ U(0.5, 2), n ~ U(1, 3). The budget "
        "here is small (CPU seconds); benchmarks/bench_field_level.py runs the same comparison "
        "with 3000 simulations and 100 test maps (numbers in benchmarks/RESULTS.md).")
    with blas_threads(1):
        results = {}
        for kind in ("gaussian", "lognormal"):
            task = field_task(kind, n_side=n)
            sim, prior = task.simulator, task.prior
            theta, maps = task.observations(cfg["n_sim"], rng=rng)
            posts = _train(prior, theta, maps, sim.summarize(maps), cfg, rng)
            theta_t, maps_t = task.observations(cfg["n_test"], rng=rng)
            xs = {"NPE power spectrum": sim.summarize(maps_t), "NPE CNN on the map": maps_t}
            results[kind] = (task, posts, theta_t, maps_t, xs)

        task, posts, theta_t, maps_t, xs = results["gaussian"]
        ln_task = results["lognormal"][0]
        theta_show = np.array([[1.3, 2.0]])
        report.figure(_maps_figure(
            [task.simulator(theta_show, rng)[0], ln_task.simulator(theta_show, rng)[0]],
            ["Gaussian field, A = 1.3, n = 2", "log-normal field, A = 1.3, n = 2"]),
            "maps", "one noisy map of each field at the same (A, n)")

        # the exact posterior at one observation, and C2ST of both NPEs against it
        x_obs = maps_t[0]
        t0 = time.perf_counter()
        exact, mcmc = exact_field_posterior(task.prior, x_obs, cfg["n_post"], n_side=n,
                                            n_chains=cfg["chains"], n_warmup=cfg["warmup"],
                                            thin=cfg["thin"], rng=rng)
        t_exact = time.perf_counter() - t0
        res = mcmc.mcmc_result
        r_hat = rules.rhat(report, "exact posterior (slice): R-hat", np.max(res.rhat()))
        ess = rules.ess(report, "exact posterior (slice): ESS", np.min(res.ess()))
        draws = {"exact (slice sampling)": exact}
        rows = [["exact (slice sampling)", "-", None, *_moments(exact), t_exact,
                 f"R-hat {r_hat.value:.3f}, ESS {ess.value:.0f}"]]
        m = cfg["n_c2st"]                  # the first m exact draws come from every chain
        for name, (post, seconds) in posts.items():
            d = post.sample(cfg["n_post"], xs[name][0], rng=rng)
            draws[name] = d
            score = c2st(exact[:m], d[:m], rng=rng)
            check = rules.c2st(report, f"Gaussian field: {name} vs exact: C2ST", score, m,
                               show=False)
            rows.append([name, score, check, *_moments(d), seconds, ""])
        report.figure(pair_plot(draws, theta_true=theta_t[0], labels=["A", "n"],
                                limits=[[0.5, 2.0], [1.0, 3.0]]),
                      "posterior", "posteriors for one Gaussian-field map; dashed: the true (A, n)")
        report.table(["method", "C2ST vs exact", "C2ST at chance", "mean A", "sd A", "mean n",
                      "sd n", "seconds", "notes"], rows, status_col=[2],
                     caption=f"one Gaussian-field map at A = {theta_t[0, 0]:.2f}, n = "
                             f"{theta_t[0, 1]:.2f}; moments from {cfg['n_post']} draws each, C2ST "
                             f"from {m} + {m}, flagged above the 1 % bar of a chance classifier; "
                             f"the exact posterior is "
                             f"slice-sampled ({cfg['chains']} chains, thinned by {cfg['thin']})")

        header = ["method", "mean sd A", "mean sd n", "68 % HPD coverage", "95 % HPD coverage",
                  "KS p (HPD levels)", "uniform"]
        for kind, label in (("gaussian", "Gaussian"), ("lognormal", "log-normal")):
            _, posts_k, theta_k, _, xs_k = results[kind]
            report.table(header, _calibration(report, label, posts_k, theta_k, xs_k, cfg, rng),
                         status_col=[6],
                         caption=f"{label} field: mean posterior sd and calibration over "
                                 f"{cfg['n_test']} test maps ({cfg['n_draws']} draws each, "
                                 f"SBI.16); narrower at equal calibration is better")


def _moments(d):
    return [float(d[:, 0].mean()), float(d[:, 0].std()), float(d[:, 1].mean()),
            float(d[:, 1].std())]
