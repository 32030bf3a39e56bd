"""C2ST of nprefgen's NPE and rejection ABC against reference posteriors, as in sbibm.

For a task, a method and a simulation budget: draw the budget from the prior predictive, train
once (NPE is amortised) or keep the closest draws (REJ-ABC: the 100 closest, smoothed by a KDE
restricted to the prior; a round kernel with its bandwidth by leave-one-out likelihood, the
shape of sbibm's KDE, by default), then for each of ``--n-obs`` observations
(theta*, x_o) from the prior predictive compare ``--n-samples`` posterior draws with as many
reference draws by C2ST (nprefgen.metrics.c2st: sbibm's recipe; derivations/sbi.md SBI.20).
The mean over observations is printed next to sbibm's published value for the same budget
(Lueckmann et al. 2021; /work/shared/REFERENCES.md).

    python benchmarks/bench_sbi_c2st.py --task two_moons --method npe --sims 1000
    python benchmarks/bench_sbi_c2st.py --task gaussian_linear --method npe --sims 10000
    python benchmarks/bench_sbi_c2st.py --task two_moons --method rej_abc --sims 100000
    python benchmarks/bench_sbi_c2st.py --task slcp --method smc_abc --sims 10000

Tasks: two_moons, gaussian_linear (10-D), slcp, gaussian_linear_uniform (10-D) and
gaussian_mixture, each with its own reference posterior (nprefgen.sbi.tasks, tasks_more).
Methods: npe, rej_abc, smc_abc (population Monte Carlo ABC, run per observation with the whole
budget, as sbibm does; its weighted population is smoothed by the weighted KDE).

Each invocation runs one (task, method, budget) so that every run stays within a couple of
minutes on the shared 2-core machine. The observations are drawn from a fixed seed, so every
run sees the same 10 (theta*, x_o) pairs per task.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nprefgen.metrics.c2st import c2st  # noqa: E402
from nprefgen.sbi import (  # noqa: E402
    NPE, ABCPosterior, get_task, rejection_abc, simulate_from_prior, smc_abc,
)

PUBLISHED = {  # sbibm, mean C2ST over 10 observations (REFERENCES.md)
    ("two_moons", "npe"): {1000: 0.725, 10000: 0.606, 100000: 0.542},
    ("gaussian_linear", "npe"): {1000: 0.695, 10000: 0.552, 100000: 0.506},
    ("two_moons", "rej_abc"): {1000: 0.960, 10000: 0.847, 100000: 0.664},
}
TASK_NAMES = ["two_moons", "gaussian_linear", "slcp", "gaussian_linear_uniform", "gaussian_mixture"]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=TASK_NAMES, default="two_moons")
    ap.add_argument("--method", choices=["npe", "rej_abc", "smc_abc"], default="npe")
    ap.add_argument("--sims", type=int, default=1000)
    ap.add_argument("--n-obs", type=int, default=10)
    ap.add_argument("--n-samples", type=int, default=2000,
                    help="posterior and reference draws per observation (sbibm: 10000; 2000 here for time)")
    ap.add_argument("--c2st-epochs", type=int, default=200)
    ap.add_argument("--flow", default="nsf")
    ap.add_argument("--transforms", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=50)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--max-epochs", type=int, default=1000)
    ap.add_argument("--abc-keep", type=int, default=100,
                    help="REJ-ABC: number of closest simulations kept (sbibm's default 100)")
    ap.add_argument("--abc-bandwidth", choices=["cv", "cv_iso", "scott"], default="cv_iso",
                    help="KDE bandwidth for REJ-ABC (sbibm: cross-validated, one bandwidth for "
                         "all coordinates; cv_iso is that shape, cv a Cov-shaped kernel)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    task = get_task(args.task)
    obs_rng = np.random.default_rng(12345)                 # the same observations in every run
    theta_obs, x_obs = task.observations(args.n_obs, rng=obs_rng)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    sims = None if args.method == "smc_abc" else simulate_from_prior(
        task.prior, task.simulator, args.sims, rng=rng)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    if args.method == "npe":
        npe = NPE(task.prior, flow=args.flow, n_transforms=args.transforms, hidden=args.hidden)
        posterior = npe.train(sims.theta, sims.x, rng=rng, lr=args.lr, max_epochs=args.max_epochs)
        detail = f"{npe.history_['epochs']} epochs"
    t_train = time.perf_counter() - t0
    scores, t_sample, t_c2st, acc = [], 0.0, 0.0, []
    for i in range(args.n_obs):
        reference = task.reference_posterior(x_obs[i], args.n_samples, rng=rng)
        t0 = time.perf_counter()
        if args.method == "npe":
            draws = posterior.sample(args.n_samples, x_obs[i], rng=rng)
            acc.append(posterior.acceptance_rate)
        elif args.method == "rej_abc":
            kept = rejection_abc(x_obs[i], sims.theta, sims.x,
                                 n_keep=min(args.abc_keep, args.sims), scale=None)
            draws = ABCPosterior(kept, task.prior, bandwidth=args.abc_bandwidth).sample(
                args.n_samples, rng=rng)
        else:       # SMC-ABC simulates its own budget per observation (not amortised)
            pop = smc_abc(x_obs[i], task.prior, task.simulator, args.sims, rng=rng, scale=None)
            draws = ABCPosterior(pop, task.prior, bandwidth=args.abc_bandwidth).sample(
                args.n_samples, rng=rng)
            acc.append(pop.eps)
        t_sample += time.perf_counter() - t0
        t0 = time.perf_counter()
        scores.append(c2st(reference, draws, rng=rng, max_epochs=args.c2st_epochs))
        t_c2st += time.perf_counter() - t0
        print(f"  observation {i + 1}: C2ST {scores[-1]:.3f}", flush=True)
    if args.method == "rej_abc":
        detail = f"{args.abc_keep} closest + KDE ({args.abc_bandwidth} bandwidth)"
    elif args.method == "smc_abc":
        detail = f"SMC-ABC population + weighted KDE ({args.abc_bandwidth}), final eps mean {np.mean(acc):.3g}"
    else:
        detail += f", acceptance {np.mean(acc):.3f}"
    published = PUBLISHED.get((args.task, args.method), {}).get(args.sims)
    mean = float(np.mean(scores))
    print(f"{args.task} {args.method} sims={args.sims}: C2ST mean {mean:.3f} "
          f"(sd {np.std(scores):.3f}, {args.n_obs} obs, {args.n_samples} draws), "
          f"sbibm {published if published is not None else 'n/a'}; {detail}; "
          f"simulate {t_sim:.1f} s, train {t_train:.1f} s, sample {t_sample:.1f} s, "
          f"C2ST {t_c2st:.1f} s; load {os.getloadavg()[0]:.1f}")
    return {"mean": mean, "scores": scores, "published": published}


if __name__ == "__main__":
    main()
