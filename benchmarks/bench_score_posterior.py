"""Score-based posterior estimation (NPSE, derivations/score.md SCORE.15-SCORE.18) next to NPE on
the same simulations: C2ST against the reference posterior on two_moons and gaussian_linear.

For each task: ``--sims`` pairs from the prior predictive (seed ``--seed``), one NPSE (conditional
NCSN, DSM, annealed Langevin) and one NPE (the default neural spline flow) trained on exactly those
pairs, then for each of ``--n-obs`` observations (a fixed seed) ``--n-samples`` draws from both
and from the reference posterior, and the C2ST accuracy of each against the reference (0.5 is
indistinguishable). Prints training and sampling wall-clock times, the acceptance rate inside the
prior, and the per-observation and mean C2ST.

``sbi``'s score estimator is not run here: the ``sbi`` package is not installed in the venv.

Run from the repository root: ``python benchmarks/bench_score_posterior.py`` (a few minutes on the
shared 2-core machine at 10^4 simulations, 2000 draws, 3 observations).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nprefgen._threads import blas_threads  # noqa: E402
from nprefgen.metrics.c2st import c2st  # noqa: E402
from nprefgen.sbi import NPE, get_task  # noqa: E402
from nprefgen.sbi.score_posterior import NPSE  # noqa: E402


def run_task(name: str, args) -> list[dict]:
    task = get_task(name, dim=args.gl_dim) if name == "gaussian_linear" else get_task(name)
    g = np.random.default_rng(args.seed)
    theta = task.prior.sample(args.sims, rng=g)
    x = task.simulator(theta, g)
    _, xs = task.observations(args.n_obs, rng=1000 + args.seed)
    refs = [task.reference_posterior(xo, args.n_samples, rng=2000 + i) for i, xo in enumerate(xs)]
    rows = []
    methods = ["npse"] + ([] if args.skip_npe else ["npe"])
    for method in methods:
        t0 = time.perf_counter()
        if method == "npse":
            est = NPSE(task.prior, hidden=tuple(args.hidden), n_levels=args.levels,
                       n_steps_each=args.steps)
            post = est.train(theta, x, rng=args.seed, max_epochs=args.epochs,
                             batch_size=args.batch)
        else:
            est = NPE(task.prior)
            post = est.train(theta, x, rng=args.seed)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        draws = post.sample_batched(args.n_samples, xs, rng=args.seed + 1)
        t_sample = time.perf_counter() - t0
        scores = [c2st(ref, d, rng=0) for ref, d in zip(refs, draws)]
        rows.append(dict(task=name, method=method, train=t_train, sample=t_sample,
                         epochs=est.history_["epochs"], accept=post.acceptance_rate,
                         c2st=scores))
        print(f"{name:16s} {method:5s} train {t_train:7.1f} s ({est.history_['epochs']} epochs)  "
              f"sample {t_sample:6.1f} s  accept {post.acceptance_rate:.3f}  C2ST "
              f"{np.mean(scores):.3f}  per obs {', '.join(f'{s:.3f}' for s in scores)}",
              flush=True)
    return rows


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=["two_moons", "gaussian_linear"])
    p.add_argument("--sims", type=int, default=10_000)
    p.add_argument("--n-obs", type=int, default=3)
    p.add_argument("--n-samples", type=int, default=2000)
    p.add_argument("--gl-dim", type=int, default=10, help="gaussian_linear's dimension")
    p.add_argument("--epochs", type=int, default=400, help="NPSE's maximum epochs (early "
                   "stopping after 20 without improvement usually ends it first)")
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    p.add_argument("--levels", type=int, default=20)
    p.add_argument("--steps", type=int, default=50, help="Langevin steps per level")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-npe", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (1: no contention on "
                   "a shared machine; small matrix products gain nothing from more)")
    args = p.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f}; sims {args.sims}, draws {args.n_samples}, "
          f"{args.n_obs} observations", flush=True)
    rows = []
    with blas_threads(args.threads):
        for name in args.tasks:
            rows += run_task(name, args)
    return rows


if __name__ == "__main__":
    main()
