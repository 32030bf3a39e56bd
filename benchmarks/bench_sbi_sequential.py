"""C2ST of sequential (TSNPE, SNLE) and ratio (NRE, BNRE) methods next to NPE and NLE, as sbibm.

For a task, a method and a simulation budget, on the first ``--n-obs`` of the fixed observations
of ``bench_sbi_c2st.py`` (seed 12345, so the same (theta*, x_o) pairs): amortised methods (npe,
nle, nre, bnre) simulate the budget from the prior and train once; sequential methods (tsnpe,
snle) spend the budget in ``--rounds`` rounds *per observation* (sbibm's protocol: 10 rounds).
Each observation's ``--n-samples`` posterior draws are compared with as many reference draws by
C2ST (nprefgen.metrics.c2st, SBI.20). The mean is printed beside sbibm's published value
(Lueckmann et al. 2021, /work/shared/REFERENCES.md). BLAS runs on one thread (the networks are
small; threads cost up to 10x on a loaded 2-core machine).

    python benchmarks/bench_sbi_sequential.py --method tsnpe --sims 10000 --rounds 10 --n-obs 3
    python benchmarks/bench_sbi_sequential.py --method npe --sims 10000 --n-obs 3
    python benchmarks/bench_sbi_sequential.py --method nre --sims 1000

``--retrain`` (sequential methods): ``warm`` (SBI.28a: the flow continues across rounds with a
fresh Adam; SNLE's default), ``scratch`` (a new estimator every round; TSNPE's default) or
``warm-adam`` (Adam's moments continue too). ``--json PATH`` appends one line of results (for RESULTS.md), with every round's
record (epochs, starting and best validation loss, MCMC R-hat/ESS/jump rate of the proposal, CPU
seconds of proposing and training). ``--sampler grid`` (2-D tasks,
MCMC methods) replaces the final MCMC run by exact sampling of the learned potential on a
1000 x 1000 grid over the prior box (cells drawn with probability proportional to
exp(potential), a uniform jitter inside the cell): it separates the learned likelihood or ratio
from the sampler's mixing (R-hat ~ 9 on two_moons, chains stuck in one crescent each).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nprefgen.metrics.c2st import c2st  # noqa: E402
from nprefgen.sbi import NLE, NPE, NRE, SNLE, TSNPE, get_task, simulate_from_prior  # noqa: E402

PUBLISHED = {  # sbibm main_paper.csv, mean C2ST over 10 observations (REFERENCES.md)
    ("two_moons", "npe"): {1000: 0.725, 10000: 0.606, 100000: 0.542},
    ("two_moons", "nle"): {1000: 0.773, 10000: 0.713, 100000: 0.668},
    ("two_moons", "nre"): {1000: 0.822, 10000: 0.761, 100000: 0.629},
    ("two_moons", "tsnpe"): {1000: 0.643, 10000: 0.554, 100000: 0.530},   # sbibm's SNPE (APT)
    ("two_moons", "snle"): {1000: 0.657, 10000: 0.571, 100000: 0.582},
    ("gaussian_linear", "npe"): {1000: 0.694, 10000: 0.552, 100000: 0.506},
    ("gaussian_linear", "nle"): {1000: 0.650, 10000: 0.555, 100000: 0.515},
    ("gaussian_linear", "nre"): {1000: 0.672, 10000: 0.560, 100000: 0.536},
    ("gaussian_linear", "tsnpe"): {1000: 0.652, 10000: 0.544, 100000: 0.507},
    ("gaussian_linear", "snle"): {1000: 0.628, 10000: 0.548, 100000: 0.519},
}
METHODS = ("npe", "nle", "nre", "bnre", "tsnpe", "snle")


def _mcmc(args) -> dict:
    return dict(n_chains=args.chains, n_warmup=args.warmup, thin=args.thin)


def amortised(args, task, x_obs, rng, log):
    """Train once on the budget from the prior; one posterior for every observation."""
    sims = simulate_from_prior(task.prior, task.simulator, args.sims, rng=rng)
    fit = dict(max_epochs=args.max_epochs, lr=args.lr)
    t0 = time.process_time()
    if args.method == "npe":
        est = NPE(task.prior)
    elif args.method == "nle":
        est = NLE(task.prior, **_mcmc(args))
    else:
        est = NRE(task.prior, balance=100.0 if args.method == "bnre" else 0.0, **_mcmc(args))
    post = est.train(sims.theta, sims.x, rng=rng, **fit)
    train_cpu = time.process_time() - t0
    log["epochs"] = est.history_["epochs"]
    for i, xo in enumerate(x_obs):
        yield i, post, train_cpu if i == 0 else 0.0, None


def sequential(args, task, x_obs, rng, log):
    """Spend the budget in rounds for each observation."""
    fit = dict(max_epochs=args.max_epochs, lr=args.lr)
    for i, xo in enumerate(x_obs):
        t0 = time.process_time()
        warm = ({} if args.retrain is None else        # None: the class's measured default
                dict(warm_start=args.retrain != "scratch",
                     keep_optimizer=args.retrain == "warm-adam"))
        if args.method == "tsnpe":
            seq = TSNPE(task.prior, task.simulator, epsilon=args.epsilon, **warm)
        else:
            seq = SNLE(task.prior, task.simulator, **warm, **_mcmc(args))
        post = seq.run(xo, num_simulations=args.sims, rounds=args.rounds, rng=rng, **fit)
        yield i, post, time.process_time() - t0, seq.history_["rounds"]


def grid_sample(post, x_o, n, rng, cells: int = 1000) -> np.ndarray:
    """n draws of the unnormalised posterior ``post.log_prob(theta, x_o)`` on a cells x cells
    grid over the prior box (2-D BoxUniform priors only)."""
    lo, hi = post.prior.low, post.prior.high
    if lo.shape != (2,):
        raise ValueError("sampler: 'grid' needs a 2-D box prior")
    h = (hi - lo) / cells
    g = [lo[k] + h[k] * (np.arange(cells) + 0.5) for k in range(2)]
    pts = np.stack(np.meshgrid(*g, indexing="ij"), axis=-1).reshape(-1, 2)
    lp = np.concatenate([post.log_prob(pts[i:i + 100_000], x_o)
                         for i in range(0, pts.shape[0], 100_000)])
    w = np.exp(lp - lp.max())
    idx = rng.choice(pts.shape[0], n, p=w / w.sum())
    return pts[idx] + h * (rng.uniform(size=(n, 2)) - 0.5)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=["two_moons", "gaussian_linear"], default="two_moons")
    ap.add_argument("--method", choices=METHODS, default="tsnpe")
    ap.add_argument("--sims", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=10, help="sequential rounds (sbibm: 10)")
    ap.add_argument("--epsilon", type=float, default=1e-4, help="TSNPE's excluded mass")
    ap.add_argument("--retrain", choices=["warm", "scratch", "warm-adam"], default=None,
                    help="sequential rounds: continue the flow with a fresh Adam, retrain from "
                         "scratch, or continue the flow and Adam's moments (default: the "
                         "class's, scratch for TSNPE, warm for SNLE)")
    ap.add_argument("--n-obs", type=int, default=3)
    ap.add_argument("--n-samples", type=int, default=2000,
                    help="posterior and reference draws per observation (sbibm: 10000)")
    ap.add_argument("--c2st-epochs", type=int, default=200)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--max-epochs", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--thin", type=int, default=1)
    ap.add_argument("--sampler", choices=["mcmc", "grid"], default="mcmc",
                    help="final draws of NLE/NRE/SNLE: their MCMC (default) or a 2-D grid")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="append the result as one JSON line here")
    args = ap.parse_args(argv)

    task = get_task(args.task)
    obs_rng = np.random.default_rng(12345)                 # bench_sbi_c2st.py's observations
    _, x_obs = task.observations(10, rng=obs_rng)
    x_obs = x_obs[:args.n_obs]
    rng = np.random.default_rng(args.seed)
    log: dict = {}
    run = sequential if args.method in ("tsnpe", "snle") else amortised
    scores, rounds_log, cpu_train, cpu_sample = [], [], 0.0, 0.0
    t_wall = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        for i, post, t_train, rounds in run(args, task, x_obs, rng, log):
            cpu_train += t_train
            t0 = time.process_time()
            if args.sampler == "grid" and args.method not in ("npe", "tsnpe"):
                draws = grid_sample(post, x_obs[i], args.n_samples, rng)
            else:
                draws = post.sample(args.n_samples, x_obs[i], rng=rng)
            cpu_sample += time.process_time() - t0
            reference = task.reference_posterior(x_obs[i], args.n_samples, rng=rng)
            scores.append(c2st(reference, draws, rng=rng, max_epochs=args.c2st_epochs))
            extra = ""
            if rounds is not None:
                rounds_log.append([{k: r.get(k) for k in (
                    "round", "acceptance", "n_total", "epochs", "best_epoch", "start_val_loss",
                    "best_val_loss", "rhat", "ess", "mcmc_ok", "jump_rate", "cpu_propose",
                    "cpu_train", "seconds")} for r in rounds])
                acc = [round(r["acceptance"], 4) for r in rounds]
                extra = f" (acceptance per round {acc}, epochs {[r['epochs'] for r in rounds]})"
            print(f"  observation {i + 1}: C2ST {scores[-1]:.3f}{extra}", flush=True)
    published = PUBLISHED.get((args.task, "nre" if args.method == "bnre" else args.method),
                              {}).get(args.sims)
    mean = float(np.mean(scores))
    out = dict(task=args.task, method=args.method, sims=args.sims, sampler=args.sampler,
               rounds=args.rounds if run is sequential else None,
               retrain=args.retrain if run is sequential else None, n_obs=args.n_obs,
               n_samples=args.n_samples, c2st=scores, mean=mean, published=published,
               cpu_train=cpu_train, cpu_sample=cpu_sample,
               wall=time.perf_counter() - t_wall, load=os.getloadavg()[0], **log,
               rounds_log=rounds_log)
    retrain = args.retrain or "class default"
    print(f"{args.task} {args.method} ({args.sampler}) sims={args.sims}"
          f"{f' rounds={args.rounds} ({retrain})' if run is sequential else ''}: "
          f"C2ST mean {mean:.3f} "
          f"(sd {np.std(scores):.3f}, {args.n_obs} obs, {args.n_samples} draws), sbibm "
          f"{published if published is not None else 'n/a'}; CPU train {cpu_train:.1f} s, "
          f"sample {cpu_sample:.1f} s; wall {out['wall']:.0f} s; load {out['load']:.1f}")
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            f.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
