"""Field-level inference at equal simulation budgets (derivations/fields.md, FIELD.1-FIELD.7).

For the Gaussian random field toy (P(k) = A k^-n, white pixel noise, N x N maps on a box of side
2 pi) and the log-normal field built from it, train from the SAME simulations

* NPE on the log binned power spectrum (SBI.6),
* NPE with a CNN embedding trained jointly on the raw map (FIELD.1, FIELD.2),

and compare them with the exact field-level posterior of the Gaussian field (FIELD.5, slice
sampling): C2ST against the exact draws at a few observations, posterior widths (mean posterior
sd over test observations) and calibration (coverage of the 68 % / 95 % highest-density regions
over test observations, KS p-value of the HPD levels, SBI.16). The log-normal field has no exact
posterior: widths at equal calibration are what the CNN can gain over the spectrum.

    python benchmarks/bench_field_level.py                       # 16x16 maps, 3000 simulations
    python benchmarks/bench_field_level.py --n-side 32 --sims 3000 --kinds gaussian

Everything runs with one BLAS thread (nprefgen._threads.blas_threads). Prints a table per field.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen.metrics.c2st import c2st
from nprefgen.sbi import NPE, CNNEmbedding, MCMCPosterior
from nprefgen.sbi import diagnostics as dg
from nprefgen.sbi.cosmology import GaussianFieldLikelihood, field_task


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-side", type=int, default=16)
    p.add_argument("--noise-sd", type=float, default=0.1)
    p.add_argument("--sims", type=int, default=3000, help="simulation budget (both NPEs)")
    p.add_argument("--kinds", default="gaussian,lognormal")
    p.add_argument("--n-obs", type=int, default=5, help="observations for C2ST vs the exact posterior")
    p.add_argument("--n-test", type=int, default=100, help="test observations for widths/coverage")
    p.add_argument("--draws", type=int, default=1000, help="posterior draws per observation")
    p.add_argument("--max-epochs", type=int, default=300)
    p.add_argument("--channels", default="8,16,16",
                   help="the CNN's convolution widths (first stride 1, then stride 2)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def hpd_f(log_prob, draws, theta_true, xs):
    """(SBI.16) HPD level of the truth per test observation from log q of draws and truth."""
    lq = np.stack([log_prob(draws[i], xs[i]) for i in range(len(xs))])
    lt = np.array([log_prob(theta_true[i:i + 1], xs[i])[0] for i in range(len(xs))])
    return dg.hpd_levels(lq, lt)


def grid_draws(like, prior, field, n, rng, size=400):
    """n draws of the exact posterior (FIELD.5) from a size x size grid over the prior box,
    uniformly jittered inside the chosen cells."""
    lo, hi = prior.low, prior.high
    a = np.linspace(lo[0], hi[0], size + 1)
    b = np.linspace(lo[1], hi[1], size + 1)
    centres = np.stack(np.meshgrid((a[1:] + a[:-1]) / 2, (b[1:] + b[:-1]) / 2, indexing="ij"),
                       -1).reshape(-1, 2)
    lp = like.log_prob(centres, field)
    w = np.exp(lp - lp.max())
    idx = rng.choice(centres.shape[0], n, p=w / w.sum())
    return centres[idx] + (rng.random((n, 2)) - 0.5) * [a[1] - a[0], b[1] - b[0]]


def calibration(f):
    return {"cov68": float(np.mean(f <= 0.68)), "cov95": float(np.mean(f <= 0.95)),
            "ks_p": float(dg.uniformity_pvalues(f[:, None])[0])}


def run_kind(kind, args, rng):
    task = field_task(kind, n_side=args.n_side, noise_sd=args.noise_sd)
    sim, prior, n = task.simulator, task.prior, args.n_side
    t0 = time.perf_counter()
    theta, maps = task.observations(args.sims, rng=rng)
    spectra = sim.summarize(maps)
    t_sim = time.perf_counter() - t0
    theta_t, maps_t = task.observations(args.n_test, rng=rng)
    spec_t = sim.summarize(maps_t)

    out = {}
    fit = dict(max_epochs=args.max_epochs, patience=20, lr=1e-3)
    t0 = time.perf_counter()
    npe_ps = NPE(prior, n_transforms=4, hidden=32)
    post_ps = npe_ps.train(theta, spectra, rng=rng, **fit)
    out["NPE power spectrum"] = dict(post=post_ps, x=spec_t, seconds=time.perf_counter() - t0,
                                     epochs=npe_ps.history_["epochs"])
    t0 = time.perf_counter()
    npe_cnn = NPE(prior, n_transforms=4, hidden=32,
                  embedding=CNNEmbedding((n, n), 8, tuple(int(c) for c in args.channels.split(",")),
                                         hidden=(32,), rng=rng))
    post_cnn = npe_cnn.train(theta, maps, rng=rng, **fit)
    out["NPE CNN on the map"] = dict(post=post_cnn, x=maps_t, seconds=time.perf_counter() - t0,
                                     epochs=npe_cnn.history_["epochs"])
    for name, o in out.items():
        d = o["post"].sample_batched(args.draws, o["x"], rng=rng)
        o["draws"] = d
        o["sd"] = d.std(axis=1).mean(axis=0)
        o.update(calibration(hpd_f(o["post"].log_prob, d, theta_t, o["x"])))

    if kind == "gaussian":
        like = GaussianFieldLikelihood(n, args.noise_sd)
        # A and n are ~0.9 correlated: slice sampling needs long chains (thin 10) to mix
        exact = MCMCPosterior(prior, like, n * n, grad_log_likelihood=like.grad, n_chains=16,
                              n_warmup=500, thin=10)
        t0 = time.perf_counter()
        d = exact.sample_batched(args.draws, maps_t.reshape(args.n_test, -1), rng=rng)
        conv = exact.convergence()
        e = dict(draws=d, sd=d.std(axis=1).mean(axis=0), seconds=time.perf_counter() - t0,
                 rhat=float(np.max(conv["rhat"])), ess=float(np.min(conv["ess"])), epochs="-")
        e.update(calibration(hpd_f(lambda t, x: exact.log_prob(t, x.ravel()), d, theta_t,
                                   maps_t)))
        for name, o in out.items():
            o["c2st"] = float(np.mean([c2st(e["draws"][i], o["draws"][i], rng=rng)
                                       for i in range(args.n_obs)]))
        # the MCMC reference against a brute-force grid posterior (2 parameters: exact to the
        # grid's resolution), at the same observations: C2ST ~ 0.5 when the chains mixed
        e["c2st"] = float(np.mean([c2st(grid_draws(like, prior, maps_t[i], args.draws, rng),
                                        e["draws"][i], rng=rng) for i in range(args.n_obs)]))
        out = {"exact (slice sampling)": e, **out}
    return out, t_sim


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"field-level inference: {args.n_side}x{args.n_side} maps, noise sd {args.noise_sd}, "
          f"{args.sims} simulations, {args.n_test} test maps x {args.draws} draws, C2ST at the "
          f"first {args.n_obs}; CNN channels {args.channels}; load average {os.getloadavg()[0]:.1f}")
    with blas_threads(1):
        for kind in args.kinds.split(","):
            res, t_sim = run_kind(kind, args, rng)
            print(f"\n{kind} field (simulating {args.sims} maps: {t_sim:.1f} s)")
            print(f"{'method':24s} {'C2ST':>6s} {'sd A':>7s} {'sd n':>7s} {'cov68':>6s} "
                  f"{'cov95':>6s} {'KS p':>6s} {'epochs':>6s} {'seconds':>8s}  notes")
            for name, o in res.items():
                c = f"{o['c2st']:.3f}" if "c2st" in o else "-"
                note = (f"R-hat max {o['rhat']:.3f}, ESS min {o['ess']:.0f}; its C2ST: against "
                        f"a {400}x{400} grid posterior" if "rhat" in o else "")
                print(f"{name:24s} {c:>6s} {o['sd'][0]:7.4f} {o['sd'][1]:7.4f} "
                      f"{o['cov68']:6.2f} {o['cov95']:6.2f} {o['ks_p']:6.3f} "
                      f"{str(o['epochs']):>6s} {o['seconds']:8.1f}  {note}")


if __name__ == "__main__":
    main()
