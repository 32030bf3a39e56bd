"""End-to-end NPE time on two_moons: nprefgen vs the ``sbi`` package, like for like, one process.

One set of ``--sims`` simulations (10^4 by default) from nprefgen's two_moons simulator is shared
by both libraries. Each trains its NPE on them and draws ``--draws`` (10^4) posterior samples for
one observation; the clock (wall and CPU time of this process) covers training + sampling, not
simulating. Runs are interleaved (nprefgen, sbi, sbi, nprefgen, ...) and repeated ``--repeats``
times, so a shared machine's load hits both alike; ratios are per repeat, then the median. Both
sample sets are scored by C2ST (nprefgen.metrics.c2st, sbibm's recipe) against the reference
posterior at ``--n-obs`` observations (the timed one and fresh amortised draws for the others).

Architectures (``--flow``; "both" runs maf then nsf):

- maf: sbi's default density estimator, ``sbi.inference.NPE(prior)`` (5 MADE transforms, an
  initial masked layer and 2 masked blocks of 50 tanh units, random permutations), against
  ``NPE(prior, flow="maf", hidden=[50, 50, 50])`` (5 MADE transforms, 3 masked tanh layers of 50,
  random permutations).
- nsf: ``NPE(prior)`` (nprefgen's default: 5 spline couplings, 8 bins on [-4, 4], conditioner
  MLP 2 x 50 tanh) against sbi's ``posterior_nn("nsf", num_bins=8, tail_bound=4.0)`` (5 spline
  couplings whose conditioner is nflows' ResidualNet: 2 residual blocks of 50 ReLU units, about
  twice the conditioner's matrix work).

Training settings are both libraries' defaults and equal: batch 200, Adam lr 5e-4, 10 %
validation, stop after 20 epochs without improvement, gradient clip 5. sbi runs in float32,
nprefgen in float64 (``--dtype float32`` trains nprefgen in float32 too, ``--dtype both`` runs
both, interleaved with sbi; the float32-trained flow samples in float64). Threads: numpy's BLAS, numba and torch all pinned to ``--threads`` (1 by
default, the like-for-like setting).

    python benchmarks/bench_npe_time.py                          # maf and nsf, 10^4 simulations
    python benchmarks/bench_npe_time.py --flow maf --repeats 3
    python benchmarks/bench_npe_time.py --sims 3000 --skip-sbi

If ``sbi`` is not importable (it needs ``pip install sbi --no-deps`` plus nflows, zuko, skorch,
tensorboard, protobuf, absl-py, all with --no-deps so that torch is not replaced) its half is
reported as missing.
"""
from __future__ import annotations

import os
import sys

if __name__ == "__main__":           # before numba is imported (through nprefgen)
    _t = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv[:-1] else "1"
    os.environ.setdefault("NUMBA_NUM_THREADS", _t)

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nprefgen.metrics.c2st import c2st  # noqa: E402
from nprefgen.sbi import NPE, simulate_from_prior, two_moons  # noqa: E402

NPREFGEN_HIDDEN = {"maf": [50, 50, 50], "nsf": 50, "realnvp": 50}


class Clock:
    """Wall and CPU (this process) seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def pin_threads(threads: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)       # every BLAS loaded so far (numpy's and scipy's)


def sbi_workdir():
    """sbi writes tensorboard logs to ./sbi-logs: train inside a temporary directory."""
    class _Dir:
        def __enter__(self):
            self.tmp, self.cwd = tempfile.TemporaryDirectory(), os.getcwd()
            os.chdir(self.tmp.name)

        def __exit__(self, *exc):
            os.chdir(self.cwd)
            self.tmp.cleanup()
    return _Dir()


def sbi_prior(prior, torch):
    from sbi.utils import BoxUniform

    return BoxUniform(low=torch.as_tensor(prior.low, dtype=torch.float32),
                      high=torch.as_tensor(prior.high, dtype=torch.float32))


def runners(estimator_cls, sbi_name: str, sbi_builder: str):
    """(run_nprefgen, run_sbi) for one estimator: nprefgen's ``estimator_cls`` (NPE or NLE) and
    sbi's ``sbi.inference.<sbi_name>`` with ``sbi.neural_nets.<sbi_builder>`` for the spline
    flow, both trained on the same simulations; each returns its clocks, epochs, draws at x_o and
    a sampler for the C2ST observations."""
    def run_nprefgen(task, theta, x, x_o, flow, args, dtype="float64"):
        rng = np.random.default_rng(args.seed)
        with Clock() as train:
            est = estimator_cls(task.prior, flow=flow, hidden=NPREFGEN_HIDDEN[flow])
            post = est.train(theta, x, rng=rng, max_epochs=args.max_epochs, dtype=dtype)
        with Clock() as sample:
            draws = post.sample(args.draws, x_o, rng=rng)
        return dict(train=train, sample=sample, epochs=est.history_["epochs"], draws=draws,
                    sampler=lambda n, xo: post.sample(n, xo, rng=rng))

    def run_sbi(task, theta, x, x_o, flow, args):
        import importlib

        import torch
        sbi_cls = getattr(importlib.import_module("sbi.inference"), sbi_name)
        nn_builder = getattr(importlib.import_module("sbi.neural_nets"), sbi_builder)

        torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        th, xx = (torch.as_tensor(a, dtype=torch.float32) for a in (theta, x))
        estimator = "maf" if flow == "maf" else nn_builder(
            model="nsf", hidden_features=50, num_transforms=5, num_bins=8, tail_bound=4.0)
        with sbi_workdir(), Clock() as train:
            inference = sbi_cls(prior=sbi_prior(task.prior, torch), density_estimator=estimator,
                                show_progress_bars=False)
            net = inference.append_simulations(th, xx).train(max_num_epochs=args.max_epochs)
            posterior = inference.build_posterior(net)

        def sampler(n, xo):
            return posterior.sample((n,), x=torch.as_tensor(xo, dtype=torch.float32),
                                    show_progress_bars=False).numpy().astype(np.float64)

        with Clock() as sample:
            draws = sampler(args.draws, x_o)
        return dict(train=train, sample=sample, epochs=inference._summary["epochs_trained"][-1],
                    draws=draws, sampler=sampler)

    return run_nprefgen, run_sbi


run_nprefgen, run_sbi = runners(NPE, "NPE", "posterior_nn")


def c2st_scores(task, run, x_obs, args):
    """C2ST at each observation: the timed draws (a random subset) for the first, fresh draws for
    the others, each against ``--c2st-samples`` reference draws."""
    rng = np.random.default_rng(args.seed + 1)
    scores = []
    for i, xo in enumerate(x_obs):
        ref = task.reference_posterior(xo, args.c2st_samples, rng=rng)
        if i == 0:
            ours = run["draws"][rng.permutation(len(run["draws"]))[:args.c2st_samples]]
        else:
            ours = run["sampler"](args.c2st_samples, xo)
        scores.append(c2st(ref, ours, rng=rng))
    return scores


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def report(task, runs, x_obs, args, what: str) -> None:
    """Print per-run rows, then per flow the medians and the sbi / nprefgen ratios."""
    print(f"\n{what}: {args.sims} simulations, {args.draws} draws, {args.threads} thread(s), "
          f"{args.repeats} repeat(s); load (1/5/15 min) now {load()}")
    print("| flow | library | train s (CPU) | sample s (CPU) | total s (CPU) | total s (wall) | "
          "epochs | ms/epoch (CPU) | C2ST |")
    print("|---|---|---|---|---|---|---|---|---|")
    for flow in sorted({k[0] for k in runs}):
        med = {}
        for lib in ("nprefgen", "nprefgen-f32", "sbi"):
            rs = runs.get((flow, lib))
            if not rs:
                continue
            scores = c2st_scores(task, rs[0], x_obs, args)
            tot_cpu = [r["train"].cpu + r["sample"].cpu for r in rs]
            tot_wall = [r["train"].wall + r["sample"].wall for r in rs]
            per_epoch = [1000 * r["train"].cpu / r["epochs"] for r in rs]
            med[lib] = (tot_cpu, tot_wall, per_epoch, rs[0]["epochs"], float(np.mean(scores)))
            print(f"| {flow} | {lib} | {np.median([r['train'].cpu for r in rs]):.1f} | "
                  f"{np.median([r['sample'].cpu for r in rs]):.2f} | {np.median(tot_cpu):.1f} | "
                  f"{np.median(tot_wall):.1f} | {rs[0]['epochs']} | {np.median(per_epoch):.0f} | "
                  f"{np.mean(scores):.3f} ({', '.join(f'{s:.3f}' for s in scores)}) |")
        for lib in ("nprefgen", "nprefgen-f32"):
            if lib not in med or "sbi" not in med:
                continue
            ours, theirs = med[lib], med["sbi"]
            ratio_cpu = np.median(np.array(theirs[0]) / np.array(ours[0]))
            ratio_wall = np.median(np.array(theirs[1]) / np.array(ours[1]))
            ratio_epoch = np.median(theirs[2]) / np.median(ours[2])
            print(f"{flow}: sbi / {lib} end to end {ratio_cpu:.2f}x CPU, {ratio_wall:.2f}x wall "
                  f"(median over repeats); per epoch {ratio_epoch:.2f}x; epochs {theirs[3]} / "
                  f"{ours[3]}; C2ST {ours[4]:.3f} ({lib}) vs {theirs[4]:.3f} (sbi)")


def parser(doc: str, flows=("maf", "nsf", "both")):
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--sims", type=int, default=10000)
    ap.add_argument("--draws", type=int, default=10000)
    ap.add_argument("--n-obs", type=int, default=3)
    ap.add_argument("--c2st-samples", type=int, default=2000)
    ap.add_argument("--flow", default="both", choices=flows)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--max-epochs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-sbi", action="store_true")
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32", "both"),
                    help="nprefgen's training arithmetic, 'both' runs each (sbi: float32 always)")
    ap.add_argument("--threads", type=int, default=1,
                    help="numpy's BLAS, numba and torch threads (default 1: like for like)")
    return ap


def run_all(args, nprefgen_fn, sbi_fn, what: str):
    pin_threads(args.threads)
    task = two_moons()
    sims = simulate_from_prior(task.prior, task.simulator, args.sims,
                               rng=np.random.default_rng(args.seed))
    _, x_obs = task.observations(args.n_obs, rng=np.random.default_rng(12345))
    flows = ["maf", "nsf"] if args.flow == "both" else [args.flow]
    dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
    libs = [("nprefgen" if dt == "float64" else "nprefgen-f32",
             lambda *a, dt=dt: nprefgen_fn(*a, dtype=dt)) for dt in dtypes]
    libs += [] if args.skip_sbi else [("sbi", sbi_fn)]
    print(f"{what}: load at start {load()}", flush=True)
    warm = argparse.Namespace(**{**vars(args), "max_epochs": 1, "draws": 100})
    for flow in flows:                 # numba's compilation and torch's first calls, not timed
        for lib, fn in list(libs):
            try:
                fn(task, sims.theta[:400], sims.x[:400], x_obs[0], flow, warm)
            except ImportError as exc:
                print(f"sbi: not available ({exc})")
                libs = [lib for lib in libs if lib[0] != "sbi"]
    runs: dict = {}
    for r in range(args.repeats):
        for flow in flows:
            for lib, fn in (libs if r % 2 == 0 else libs[::-1]):        # interleaved
                out = fn(task, sims.theta, sims.x, x_obs[0], flow, args)
                runs.setdefault((flow, lib), []).append(out)
                print(f"repeat {r} {flow} {lib}: train {out['train'].cpu:.1f} s CPU "
                      f"({out['train'].wall:.1f} s wall, {out['epochs']} epochs) + sample "
                      f"{out['sample'].cpu:.2f} s CPU; load {load()}", flush=True)
    report(task, runs, x_obs, args, what)


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    run_all(args, run_nprefgen, run_sbi, "NPE two_moons")


if __name__ == "__main__":
    main()
