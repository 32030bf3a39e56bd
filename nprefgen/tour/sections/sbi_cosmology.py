"""Tour section: (A, n) of a Gaussian random field, Gaussian likelihood + MCMC vs NPE."""
from __future__ import annotations

import time

import matplotlib
import numpy as np

from nprefgen.plots.sbi import coverage_plot, fields_and_summaries_plot, pair_plot
from nprefgen.sbi import NPE, MCMCPosterior, simulate_from_prior
from nprefgen.sbi import diagnostics as dg
from nprefgen.sbi.cosmology import (
    BOX_SIZE, GaussianSummaryLikelihood, cosmology_grf, estimate_covariance,
)
from nprefgen.tour import rules

ORDER = 52
TITLE = "SBI: the amplitude and slope of a Gaussian random field"


def _settings(quick: bool) -> dict:
    if quick:
        return dict(n_side=16, n_bins=5, n_cov=40, n_sim=400, flow=dict(n_transforms=2, hidden=16),
                    epochs=5, n_post=400, n_test=12, n_draws=30, chains=4, warmup=15)
    return dict(n_side=32, n_bins=8, n_cov=300, n_sim=4000, flow=dict(n_transforms=4, hidden=32),
                epochs=100, n_post=2000, n_test=100, n_draws=100, chains=8, warmup=200)


def _field_figure(sim, theta, rng):
    """Noisy fields at each theta (k, 2) and their summaries against mu(theta)."""
    fields = sim.fields(theta, rng=rng)
    mu, _ = sim.mean_summary(theta)
    return fields_and_summaries_plot(fields, [f"A = {t[0]:.2f}, n = {t[1]:.2f}" for t in theta],
                                     sim.summarize(fields), mu)


def build(report) -> None:
    matplotlib.use("Agg")
    cfg = _settings(report.quick)
    rng = report.rng("sbi_cosmology")
    task = cosmology_grf(n_side=cfg["n_side"], n_bins=cfg["n_bins"])
    sim, prior = task.simulator, task.prior
    report.text(
        f"A {cfg['n_side']}x{cfg['n_side']} Gaussian random field on a periodic box of side 2 pi "
        "with P(k) = A k^-n, plus white pixel noise, summarised by the log of its binned power "
        "spectrum (SBI.6); prior A ~ U(0.5, 2), n ~ U(1, 3). The standard analysis: a Gaussian "
        "likelihood for the summaries with mean mu(theta) and a covariance estimated from "
        f"{cfg['n_cov']} simulations at the prior mean (SBI.7), sampled by slice sampling. "
        f"NPE instead learns q(theta | s) from {cfg['n_sim']} simulations and assumes neither a "
        "Gaussian likelihood nor a fixed covariance.")
    report.figure(_field_figure(sim, np.array([[1.0, 1.5], [1.0, 2.8]]), rng), "fields",
                  f"two noisy fields (box side {BOX_SIZE:.3g}) and their summaries")

    cov = estimate_covariance(sim, prior.mean, cfg["n_cov"], rng=rng)
    like = GaussianSummaryLikelihood(sim.mean_summary, cov)

    gauss = MCMCPosterior(prior, like, sim.n_bins, grad_log_likelihood=like.grad,
                          n_chains=cfg["chains"], n_warmup=cfg["warmup"], n_init=200)
    t0 = time.perf_counter()
    sims = simulate_from_prior(prior, sim, cfg["n_sim"], rng=rng)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    npe = NPE(prior, **cfg["flow"]).train(sims.theta, sims.x, rng=rng, max_epochs=cfg["epochs"],
                                          patience=15, lr=1e-3)
    t_npe = time.perf_counter() - t0

    theta_obs = np.array([1.3, 2.0])
    x_obs = sim(theta_obs[None], rng)[0]
    t0 = time.perf_counter()
    d_gauss = gauss.sample(cfg["n_post"], x_obs, rng=rng)
    t_mcmc = time.perf_counter() - t0
    diag = gauss.diagnostics_                    # kept by the posterior (MCMC.13)
    d_npe = npe.sample(cfg["n_post"], x_obs, rng=rng)
    report.figure(pair_plot({"Gaussian likelihood + MCMC": d_gauss, "NPE": d_npe},
                            theta_true=theta_obs, labels=["A", "n"], limits=[[0.5, 2.0], [1.0, 3.0]]),
                  "posterior", "posteriors for one observation; dashed: the true (A, n)")
    r_hat = rules.rhat(report, "Gaussian likelihood + slice: R-hat", np.max(diag["rhat_max"]))
    ess = rules.ess(report, "Gaussian likelihood + slice: ESS", np.min(diag["ess_min"]))
    report.table(
        ["method", "simulations", "mean A", "sd A", "mean n", "sd n", "R-hat",
         f"R-hat < {rules.RHAT_MAX:g}", "ESS", f"ESS >= {rules.ESS_MIN:g}", "seconds", "notes"],
        [["Gaussian likelihood + slice", cfg["n_cov"], *_moments(d_gauss), r_hat.value, r_hat,
          ess.value, ess, t_mcmc, f"{cfg['chains']} chains"],
         ["NPE", cfg["n_sim"], *_moments(d_npe), "-", None, "-", None, t_npe + t_sim,
          f"acceptance {npe.acceptance_rate:.3f}; simulating {t_sim:.1f} s"]],
        status_col=[7, 9],
        caption=f"one observation at A = {theta_obs[0]}, n = {theta_obs[1]}; R-hat and ESS of "
                f"the slice-sampling chains (MCMC.8, MCMC.9), flagged at R-hat >= "
                f"{rules.RHAT_MAX:g} and ESS < {rules.ESS_MIN:g}")

    # coverage over many test observations (SBI.16): HPD levels need log q up to a constant,
    # which both have (the unnormalised potential for MCMC, the flow for NPE)
    theta_t, x_t = task.observations(cfg["n_test"], rng=rng)
    draws = {"Gaussian likelihood + MCMC": gauss.sample_batched(cfg["n_draws"], x_t, rng=rng),
             "NPE": npe.sample_batched(cfg["n_draws"], x_t, rng=rng)}
    rules.leakage(report, f"NPE: mass inside the prior, {cfg['n_test']} test fields", npe,
                  show=True)
    rules.mcmc_converged(report, f"Gaussian likelihood + slice, chains of the {cfg['n_test']} "
                                 f"test fields", gauss.diagnostics_, show=True)
    levels, rows, tarp_curves = {}, [], {}
    for name, d in draws.items():
        if name == "NPE":
            lq = np.stack([npe.log_prob(d[i], x_t[i]) for i in range(cfg["n_test"])])
            lt = np.array([npe.log_prob(theta_t[i:i + 1], x_t[i])[0] for i in range(cfg["n_test"])])
        else:
            lq = np.stack([gauss.log_prob(d[i], x_t[i]) for i in range(cfg["n_test"])])
            lt = np.array([gauss.log_prob(theta_t[i:i + 1], x_t[i])[0] for i in range(cfg["n_test"])])
        f = dg.hpd_levels(lq, lt)
        levels[name] = dg.expected_coverage(f)
        t = dg.tarp_test(d, theta_t, rng=rng)
        tarp_curves[name] = t["ecp"]
        pit = dg.pit_values(d, theta_t, rng=rng)
        ps = {"HPD levels": float(dg.uniformity_pvalues(f[:, None])[0])}
        ps.update(zip(("PIT A", "PIT n"), (float(p) for p in dg.uniformity_pvalues(pit))))
        ps["TARP"] = float(t["pvalue"])
        row = [name]
        for what, p in ps.items():
            row += [p, rules.ks_uniform(report, f"{name}: {what}", p)]
        rows.append(row[:7] + [t["abs_area"]] + row[7:])
    report.figure(coverage_plot(dg.ALPHAS, levels, cfg["n_test"],
                                title=f"expected coverage, {cfg['n_test']} test fields"),
                  "coverage", "fraction of true (A, n) inside the alpha-HPD region (SBI.16); on the "
                              "diagonal when calibrated, below it when over-confident")
    report.figure(coverage_plot(dg.ALPHAS, tarp_curves, cfg["n_test"], title="TARP"),
                  "tarp", "TARP expected coverage probability (SBI.18)")
    report.table(["method", "KS p (HPD levels)", "uniform", "KS p PIT A", "uniform", "KS p PIT n",
                  "uniform", "TARP abs area", "TARP KS p", "uniform"], rows, status_col=[2, 4, 6, 9],
                 caption=f"calibration tests over {cfg['n_test']} test fields (p < 0.01 flags "
                         "miscalibration; TARP abs area = integral of abs(ECP - alpha), SBI.19, not checked)")


def _moments(d):
    return [float(d[:, 0].mean()), float(d[:, 0].std()), float(d[:, 1].mean()), float(d[:, 1].std())]
