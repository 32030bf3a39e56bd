"""Sampler or learned likelihood? For chosen two_moons observations (bench_sbi_c2st.py's, seed
12345), train NLE once on 10^4 prior simulations (``--method nle``) or run SNLE's 5 warm rounds per
observation (``--method snle``), then draw the final posterior twice: by its MCMC (slice + iSIR
jumps) and exactly on a 1000 x 1000 grid of the learned potential (bench_sbi_sequential.grid_sample).
Prints per observation: C2ST of each against the reference, C2ST of MCMC against grid (0.5: the
sampler is exact for the learned likelihood), the fraction of draws in the theta1 + theta2 > 0
crescent (1/2 for the reference by symmetry, SBI.3), and the MCMC's R-hat, ESS and jump rate.
One BLAS thread.

    python benchmarks/probe_nle_sampler.py --method nle --obs 6,7,9
    python benchmarks/probe_nle_sampler.py --method snle --obs 6,10
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_sbi_sequential import grid_sample  # noqa: E402

from nprefgen.metrics.c2st import c2st  # noqa: E402
from nprefgen.sbi import NLE, SNLE, get_task, simulate_from_prior  # noqa: E402


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", choices=["nle", "snle"], default="nle")
    ap.add_argument("--obs", default="6,7,9", help="observation numbers, 1-10")
    ap.add_argument("--sims", type=int, default=10000)
    ap.add_argument("--n-samples", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    task = get_task("two_moons")
    _, x_obs = task.observations(10, rng=np.random.default_rng(12345))
    rng = np.random.default_rng(args.seed)
    n, out = args.n_samples, []

    def frac(d):
        return float(np.mean(d[:, 0] + d[:, 1] > 0))

    warnings.simplefilter("ignore")                # the numbers below say it all
    with threadpool_limits(limits=1, user_api="blas"):
        if args.method == "nle":
            sims = simulate_from_prior(task.prior, task.simulator, args.sims, rng=rng)
            post = NLE(task.prior).train(sims.theta, sims.x, rng=rng)
        for k in (int(i) for i in args.obs.split(",")):
            x_o, t0 = x_obs[k - 1], time.process_time()
            if args.method == "snle":
                post = SNLE(task.prior, task.simulator).run(x_o, num_simulations=args.sims,
                                                            rounds=5, rng=rng)
            ref = task.reference_posterior(x_o, n, rng=rng)
            mcmc = post.sample(n, x_o, rng=rng)
            diag = post.diagnostics_
            grid = grid_sample(post, x_o, n, rng)
            row = dict(obs=k, c2st_mcmc=c2st(ref, mcmc, rng=rng), c2st_grid=c2st(ref, grid, rng=rng),
                       c2st_mcmc_vs_grid=c2st(grid, mcmc, rng=rng), frac_ref=frac(ref),
                       frac_mcmc=frac(mcmc), frac_grid=frac(grid),
                       rhat=float(diag["rhat_max"][0]), ess=float(diag["ess_min"][0]),
                       jump_rate=float(diag["jump_rate"][0]), cpu=time.process_time() - t0)
            out.append(row)
            print(json.dumps({a: round(b, 4) if isinstance(b, float) else b
                              for a, b in row.items()}), flush=True)
    return out


if __name__ == "__main__":
    main()
