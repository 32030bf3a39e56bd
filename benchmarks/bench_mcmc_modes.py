"""Do the MCMC posteriors put the right mass in every mode? (derivations/sbi.md, MCMC.10-MCMC.12)

Three multimodal posteriors, each sampled by :class:`nprefgen.sbi.MCMCPosterior` with its
default settings (or ``--chains`` / ``--warmup``):

* ``mixture2`` / ``mixture4``: an explicit likelihood whose posterior is a mixture of 2 (4)
  well-separated mirror-image Gaussian modes with unequal, known weights (no training);
* ``two_moons``: NLE (the tour's full settings: 3000 simulations, a 3-transform spline flow with
  32 hidden units, 60 epochs) on sbibm's two_moons; the two crescents are mirror images under
  theta_1 + theta_2 -> -(theta_1 + theta_2), so each holds half of the posterior mass;
* ``squares``: NLE on a task where each parameter enters only through its square,
  x_k = theta_k^2 + 0.1 eps_k, theta ~ U(-1.5, 1.5)^2: four mirror-image copies of equal mass;
  its reference posterior is exact (a product of 1-D densities sampled on a fine grid).

Per task it prints the fraction of draws per mode against the true weights, the largest split
R-hat and smallest ESS (MCMC.8, MCMC.9) over parameters, the C2ST against reference draws
(SBI.20) and the sampling time.

    python benchmarks/bench_mcmc_modes.py                    # all four, ~2 min
    python benchmarks/bench_mcmc_modes.py --tasks mixture2,mixture4
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nprefgen.metrics.c2st import c2st  # noqa: E402
from nprefgen.sbi import NLE, BoxUniform, MCMCPosterior, simulate_from_prior  # noqa: E402
from nprefgen.sbi.tasks import two_moons  # noqa: E402

SQUARES_NOISE = 0.1


def mixture(n_modes: int):
    """(prior, log_likelihood, weights, centres, label_fn): a 2-D posterior of n_modes Gaussian
    modes (sd 0.1) at the mirror images of (1, 1) (or (+-1, 0) for 2 modes) under a flat box."""
    if n_modes == 2:
        centres, weights = np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([0.3, 0.7])
    else:
        centres = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
        weights = np.array([0.1, 0.2, 0.3, 0.4])
    sd = 0.1
    log_w = np.log(weights)

    def log_likelihood(theta, x):
        d2 = ((theta[:, None, :] - centres[None]) ** 2).sum(axis=2) / sd ** 2   # (m, K)
        a = log_w - 0.5 * d2
        top = a.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))[:, 0]

    def label(theta):
        return np.argmin(((theta[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)

    def reference(n, rng):
        k = rng.choice(len(weights), n, p=weights)
        return centres[k] + sd * rng.standard_normal((n, 2))

    return BoxUniform([-3.0, -3.0], [3.0, 3.0]), log_likelihood, weights, label, reference


def squares_simulator(theta, rng):
    return theta ** 2 + SQUARES_NOISE * rng.standard_normal(theta.shape)


def squares_reference(x_obs, n, rng, low=-1.5, high=1.5):
    """Exact draws: p(theta_k | x_k) ~ N(x_k; theta_k^2, 0.1^2) on [low, high], per coordinate,
    by inverse CDF on a grid of 200,001 points (then uniform jitter inside the cell)."""
    grid = np.linspace(low, high, 200_001)
    out = np.empty((n, x_obs.shape[0]))
    for k, xk in enumerate(x_obs):
        logp = -0.5 * ((xk - grid ** 2) / SQUARES_NOISE) ** 2
        p = np.exp(logp - logp.max())
        cdf = np.cumsum(p)
        cdf /= cdf[-1]
        idx = np.searchsorted(cdf, rng.uniform(size=n))
        out[:, k] = grid[np.minimum(idx, grid.size - 1)] + (grid[1] - grid[0]) * (rng.uniform(size=n) - 0.5)
    return out


def quadrant(theta):
    return (theta[:, 0] < 0).astype(int) + 2 * (theta[:, 1] < 0).astype(int)


def moon(theta):
    return (theta[:, 0] + theta[:, 1] < 0).astype(int)


def mcmc_settings(args) -> dict:
    """The MCMC settings given on the command line (the others stay the posterior's defaults)."""
    given = (("n_chains", args.chains), ("n_warmup", args.warmup),
             ("jump_every", args.jump_every), ("n_jump_proposals", args.n_jump))
    return {k: v for k, v in given if v is not None}


def nle_task(name, rng, args):
    if name == "two_moons":
        task = two_moons()
        prior, sim = task.prior, task.simulator
        theta_true = np.array([0.3, 0.2])
        x_obs = sim(theta_true[None], rng)[0]
        ref = task.reference_posterior(x_obs, args.n, rng=rng)
        weights, label = np.array([0.5, 0.5]), moon
    else:
        prior = BoxUniform([-1.5, -1.5], [1.5, 1.5])
        sim = squares_simulator
        theta_true = np.array([0.9, -1.1])
        x_obs = sim(theta_true[None], rng)[0]
        ref = squares_reference(x_obs, args.n, rng)
        weights, label = np.full(4, 0.25), quadrant
    sims = simulate_from_prior(prior, sim, args.sims, rng=rng)
    t0 = time.process_time()
    model = NLE(prior, n_transforms=3, hidden=32)
    model.train(sims.theta, sims.x, rng=rng, max_epochs=60, patience=10, lr=1e-3)
    post = model.posterior(**mcmc_settings(args))
    t_train = time.process_time() - t0
    return post, x_obs, ref, weights, label, t_train


def jump_rate(post) -> float:
    """The mean fraction of jumps that moved a chain (nan without jumps or on the old code)."""
    d = getattr(post, "diagnostics_", None)
    rate = np.asarray(d["jump_rate"]) if d else np.array([np.nan])
    return float(rate.mean()) if np.all(np.isfinite(rate)) else float("nan")


def run(name, rng, args) -> dict:
    if name.startswith("mixture"):
        prior, like, weights, label, reference = mixture(int(name[-1]))
        post = MCMCPosterior(prior, like, 1, **mcmc_settings(args))
        x_obs, ref, t_train = np.zeros(1), reference(args.n, rng), 0.0
    else:
        post, x_obs, ref, weights, label, t_train = nle_task(name, rng, args)
    t0 = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draws = post.sample(args.n, x_obs, rng=rng)
    t_sample = time.process_time() - t0
    conv = post.convergence()
    frac = np.bincount(label(draws), minlength=len(weights)) / draws.shape[0]
    score = c2st(ref, draws, rng=rng, max_epochs=args.c2st_epochs)
    return {"task": name, "weights": weights, "fractions": frac,
            "rhat_max": float(np.max(conv["rhat"])), "ess_min": float(np.min(conv["ess"])),
            "c2st": float(score), "train_cpu_s": t_train, "sample_cpu_s": t_sample,
            "chains": post.n_chains, "jump_rate": jump_rate(post),
            "warnings": [type(w.message).__name__ for w in caught]}


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="mixture2,mixture4,two_moons,squares")
    ap.add_argument("--n", type=int, default=1000, help="posterior (and reference) draws")
    ap.add_argument("--sims", type=int, default=3000)
    ap.add_argument("--chains", type=int, default=None, help="default: the posterior's")
    ap.add_argument("--warmup", type=int, default=None, help="default: the posterior's")
    ap.add_argument("--jump-every", type=int, default=None,
                    help="iterated-SIR jump every this many sweeps (0: none; default: the posterior's)")
    ap.add_argument("--n-jump", type=int, default=None, help="proposals per jump (default: the posterior's)")
    ap.add_argument("--c2st-epochs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = []
    print(f"load average {os.getloadavg()[0]:.2f}")
    for name in args.tasks.split(","):
        r = run(name, np.random.default_rng(args.seed), args)
        out.append(r)
        print(f"{r['task']:10s} chains {r['chains']:3d}  fractions "
              f"{np.round(r['fractions'], 3).tolist()} (true {r['weights'].tolist()})  "
              f"R-hat max {r['rhat_max']:.2f}  ESS min {r['ess_min']:.0f}  C2ST {r['c2st']:.3f}  "
              f"jump rate {r['jump_rate']:.2f}  CPU s: train {r['train_cpu_s']:.1f}, sample {r['sample_cpu_s']:.1f}  "
              f"warnings {sorted(set(r['warnings'])) or 'none'}", flush=True)
    return out


if __name__ == "__main__":
    main()
