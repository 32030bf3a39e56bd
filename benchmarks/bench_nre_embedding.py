"""NRE with a deep-set embedding against NRE on the flattened set, on an iid-set simulator.

Each simulation is a set of ``--k`` iid draws x_j ~ N(theta, 0.1 I) of gaussian_linear
(theta ~ N(0, 0.1 I) in ``--dim`` dimensions), shape (n, k, dim). Two NREs train on the same
``--sims`` sets with the same seed: one with a DeepSetEmbedding (SBI.25a, FIELD.3: permutation
invariant, any set size), one on the set flattened to (n, k dim). For ``--n-obs`` observed sets
(from a fixed seed) each posterior's ``--draws`` MCMC draws are compared with as many exact
posterior draws (SBI.2) by C2ST (SBI.20), and the posterior sd with the exact one. The deep-set
posterior is also evaluated on sets of twice the size (2k draws, exact posterior narrower by
about sqrt(2)), which the flattened network cannot take at all; a mean-pooled deep set cannot
tell 2k draws from k draws with the same mean, so its posterior stays as wide as for k (sd ratio
sqrt((2k + 1) / (k + 1))). Both networks instead take the 2k draws as two iid sets of k, their
log-ratios summed (SBI.24), which is exact. One BLAS thread; CPU time.

    python benchmarks/bench_nre_embedding.py
    python benchmarks/bench_nre_embedding.py --sims 5000 --k 20 --n-obs 5
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nprefgen.metrics.c2st import c2st  # noqa: E402
from nprefgen.sbi import NRE, DeepSetEmbedding  # noqa: E402
from nprefgen.sbi.tasks import gaussian_linear, gaussian_linear_posterior  # noqa: E402


def simulate_sets(task, theta, k, rng):
    """(n, p) -> (n, k, p): k iid draws of the task's simulator per theta."""
    x = task.simulator(np.repeat(theta, k, axis=0), rng)
    return x.reshape(theta.shape[0], k, -1)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dim", type=int, default=2)
    ap.add_argument("--k", type=int, default=10, help="iid draws per simulated set")
    ap.add_argument("--sims", type=int, default=2000)
    ap.add_argument("--n-obs", type=int, default=3)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--out-features", type=int, default=8)
    ap.add_argument("--max-epochs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    task = gaussian_linear(dim=args.dim)
    rng = np.random.default_rng(args.seed)
    theta = task.prior.sample(args.sims, rng=rng)
    x = simulate_sets(task, theta, args.k, rng)
    obs_rng = np.random.default_rng(12345)
    theta_o = task.prior.sample(args.n_obs, rng=obs_rng)
    x_o = simulate_sets(task, theta_o, args.k, obs_rng)
    x_o2 = simulate_sets(task, theta_o, 2 * args.k, obs_rng)          # sets twice as large
    runs = {
        "deep set": (NRE(task.prior, embedding=DeepSetEmbedding(
            args.dim, args.out_features, rng=args.seed)), x, lambda s: s),
        "flattened": (NRE(task.prior), x.reshape(args.sims, -1), lambda s: s.reshape(-1)),
    }
    out = {}
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")                  # per-run MCMC warnings: R-hat reported
        for name, (est, x_train, shape) in runs.items():
            t0 = time.process_time()
            post = est.train(theta, x_train, rng=args.seed, max_epochs=args.max_epochs,
                             progress=False)
            t_train = time.process_time() - t0
            two = ((lambda s: s.reshape(2, args.k, -1)) if name == "deep set"
                   else (lambda s: s.reshape(2, -1)))          # 2k draws as 2 iid sets of k
            cases = [(x_o, "k", shape)] + ([(x_o2, "2k", shape)] if name == "deep set" else []) \
                + [(x_o2, "2k as 2 x k, SBI.24", two)]
            for sets, label, as_input in cases:
                c2, sd_ratio, rhat = [], [], []
                t0 = time.process_time()
                for i in range(args.n_obs):
                    draws = post.sample(args.draws, as_input(sets[i]), rng=rng)
                    rhat.append(float(np.max(post.diagnostics_["rhat_max"])))
                    mu, var = gaussian_linear_posterior(sets[i], 0.0, 0.1, 0.1)
                    exact = mu + np.sqrt(var) * rng.standard_normal((args.draws, args.dim))
                    c2.append(c2st(exact, draws, rng=rng))
                    sd_ratio.append(float(np.mean(draws.std(axis=0)) / np.sqrt(var)))
                t_sample = time.process_time() - t0
                key = f"{name}, sets of {label}"
                out[key] = dict(c2st=c2, sd_ratio=sd_ratio, rhat=rhat, epochs=est.history_["epochs"],
                                cpu_train=t_train, cpu_sample=t_sample)
                print(f"{key:34s} C2ST {np.mean(c2):.3f} ({', '.join(f'{c:.3f}' for c in c2)}); "
                      f"sd / exact sd {np.mean(sd_ratio):.2f}; max R-hat {max(rhat):.2f}; "
                      f"{est.history_['epochs']} epochs; CPU train {t_train:.1f} s, sample "
                      f"{t_sample:.1f} s", flush=True)
    print(f"dim {args.dim}, k {args.k}, {args.sims} sets, {args.n_obs} observations, "
          f"{args.draws} draws; load {os.getloadavg()[0]:.1f}")
    return out


if __name__ == "__main__":
    main()
