"""End-to-end NPE time on two_moons: nprefgen vs the ``sbi`` package, same simulations.

One process, one set of ``--sims`` simulations (10^4 by default) from nprefgen's two_moons
simulator. Each library trains its NPE on them and draws ``--draws`` (10^4) posterior samples
for one observation; the clock covers training + sampling (not simulating, shared). Then both
sample sets are compared with the reference posterior by C2ST (nprefgen.metrics.c2st, sbibm's
recipe) for ``--n-obs`` observations (amortised: no retraining), 2000 draws each.

nprefgen: ``NPE(prior)`` defaults (neural spline flow, 5 transforms, 50 hidden, batch 200,
lr 5e-4, 10 % validation, early stopping after 20 epochs); ``--flow maf`` for the sbi-like MAF.
sbi: ``sbi.inference.NPE(prior)`` with its defaults (MAF, 5 transforms, 50 hidden, the same
training settings), ``posterior.sample``. Torch gets as many threads as numpy's BLAS.

    python benchmarks/bench_npe_time.py                    # 10^4 simulations
    python benchmarks/bench_npe_time.py --threads 1           # both single-threaded
    python benchmarks/bench_npe_time.py --sims 3000 --skip-sbi

If ``sbi`` is not importable (it needs ``pip install sbi --no-deps`` plus nflows, zuko, skorch,
tensorboard, protobuf, absl-py, all with --no-deps so that torch is not replaced) its half is
reported as missing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nprefgen.metrics.c2st import c2st  # noqa: E402
from nprefgen.sbi import NPE, simulate_from_prior, two_moons  # noqa: E402


def blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.cpu_count() or 1
    counts = [d["num_threads"] for d in threadpool_info() if d.get("user_api") == "blas"]
    return max(counts) if counts else 1


def run_nprefgen(task, theta, x, x_o, args, rng):
    t0 = time.perf_counter()
    npe = NPE(task.prior, flow=args.flow, n_transforms=args.transforms, hidden=args.hidden)
    post = npe.train(theta, x, rng=rng, lr=args.lr, max_epochs=args.max_epochs)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    post.sample(args.draws, x_o, rng=rng)
    t_sample = time.perf_counter() - t0
    info = f"{npe.history_['epochs']} epochs, acceptance {post.acceptance_rate:.3f}"
    return post, t_train, t_sample, info, lambda n, xo: post.sample(n, xo, rng=rng)


def run_sbi(theta, x, x_o, args, threads):
    import torch
    from sbi.inference import NPE as SbiNPE
    from sbi.utils import BoxUniform

    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    prior = BoxUniform(low=-torch.ones(2), high=torch.ones(2))
    th = torch.as_tensor(theta, dtype=torch.float32)
    xx = torch.as_tensor(x, dtype=torch.float32)
    import tempfile

    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:     # sbi writes tensorboard logs to ./sbi-logs
        os.chdir(tmp)
        try:
            t0 = time.perf_counter()
            inference = SbiNPE(prior=prior, show_progress_bars=False)
            estimator = inference.append_simulations(th, xx).train(max_num_epochs=args.max_epochs)
            posterior = inference.build_posterior(estimator)
            t_train = time.perf_counter() - t0
        finally:
            os.chdir(cwd)
    t0 = time.perf_counter()
    posterior.sample((args.draws,), x=torch.as_tensor(x_o, dtype=torch.float32),
                     show_progress_bars=False)
    t_sample = time.perf_counter() - t0
    epochs = inference._summary.get("epochs_trained", ["?"])[-1]

    def sample(n, xo):
        return posterior.sample((n,), x=torch.as_tensor(xo, dtype=torch.float32),
                                show_progress_bars=False).numpy().astype(np.float64)

    return t_train, t_sample, f"{epochs} epochs", sample


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sims", type=int, default=10000)
    ap.add_argument("--draws", type=int, default=10000)
    ap.add_argument("--n-obs", type=int, default=3)
    ap.add_argument("--c2st-samples", type=int, default=2000)
    ap.add_argument("--flow", default="nsf")
    ap.add_argument("--transforms", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=50)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--max-epochs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-sbi", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="pin numpy's BLAS and torch to this many threads (default: BLAS's own)")
    args = ap.parse_args(argv)

    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    threads = blas_threads() if args.threads is None else args.threads
    task = two_moons()
    rng = np.random.default_rng(args.seed)
    sims = simulate_from_prior(task.prior, task.simulator, args.sims, rng=rng)
    theta_obs, x_obs = task.observations(args.n_obs, rng=np.random.default_rng(12345))

    post, tr, ts, info, ours = run_nprefgen(task, sims.theta, sims.x, x_obs[0], args, rng)
    print(f"nprefgen NPE ({args.flow}): train {tr:.1f} s + sample {ts:.1f} s = {tr + ts:.1f} s; "
          f"{info}", flush=True)
    rows = {"nprefgen": (tr + ts, ours)}
    if not args.skip_sbi:
        try:
            str_, sts, sinfo, theirs = run_sbi(sims.theta, sims.x, x_obs[0], args, threads)
            print(f"sbi NPE (MAF): train {str_:.1f} s + sample {sts:.1f} s = {str_ + sts:.1f} s; "
                  f"{sinfo}", flush=True)
            rows["sbi"] = (str_ + sts, theirs)
        except ImportError as exc:
            print(f"sbi: not available ({exc})")
    scores = {k: [] for k in rows}
    for i in range(args.n_obs):
        ref = task.reference_posterior(x_obs[i], args.c2st_samples, rng=rng)
        for k, (_, sampler) in rows.items():
            scores[k].append(c2st(ref, sampler(args.c2st_samples, x_obs[i]), rng=rng))
    for k in rows:
        print(f"{k}: end-to-end {rows[k][0]:.1f} s, C2ST {np.mean(scores[k]):.3f} "
              f"({', '.join(f'{s:.3f}' for s in scores[k])})")
    if "sbi" in rows:
        print(f"time ratio sbi / nprefgen = {rows['sbi'][0] / rows['nprefgen'][0]:.2f} "
              f"(> 1: nprefgen faster); threads {threads}; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
