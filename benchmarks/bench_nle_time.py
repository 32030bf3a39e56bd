"""End-to-end NLE time on two_moons: nprefgen vs the ``sbi`` package, like for like, one process.

The NLE counterpart of ``bench_npe_time.py`` (same simulations, interleaved repeats, wall and CPU
clocks, threads pinned to ``--threads``, C2ST against the reference posterior): each library
trains a conditional flow q(x | theta) on the shared ``--sims`` simulations and draws ``--draws``
posterior samples for one observation by MCMC on log q(x_o | theta) + log p(theta); the clock
covers training + MCMC.

- sbi: ``sbi.inference.NLE(prior)`` defaults (MAF, 5 transforms, 50 hidden; then
  ``build_posterior()``: vectorised slice sampling, 20 chains, 200 warm-up steps, thinning 1,
  chains started by resampling prior draws by the potential). With ``--flow nsf``:
  ``likelihood_nn("nsf", num_bins=8, tail_bound=4.0)``.
- nprefgen: ``NLE(prior, flow="maf", hidden=[50, 50, 50])`` (``flow="nsf"``, hidden 50, for
  nsf); its posterior's defaults are the same MCMC settings (slice, 20 chains, 200 warm-up,
  thinning 1, resampling start).

The C2ST uses a random subset of the timed draws at the timed observation; ``--n-obs`` above 1
adds observations, each with a fresh MCMC run (which costs as much as the timed one).

    python benchmarks/bench_nle_time.py                  # maf, 10^4 simulations, 10^4 draws
    python benchmarks/bench_nle_time.py --flow both --repeats 2
"""
from __future__ import annotations

import os
import sys

if __name__ == "__main__":           # before numba is imported (through nprefgen)
    _t = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv[:-1] else "1"
    os.environ.setdefault("NUMBA_NUM_THREADS", _t)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_npe_time import NPREFGEN_HIDDEN, Clock, parser, run_all, sbi_prior, sbi_workdir  # noqa: E402
from nprefgen.sbi import NLE  # noqa: E402


def run_nprefgen(task, theta, x, x_o, flow, args):
    rng = np.random.default_rng(args.seed)
    with Clock() as train:
        nle = NLE(task.prior, flow=flow, hidden=NPREFGEN_HIDDEN[flow])
        post = nle.train(theta, x, rng=rng, max_epochs=args.max_epochs)
    with Clock() as sample:
        draws = post.sample(args.draws, x_o, rng=rng)
    return dict(train=train, sample=sample, epochs=nle.history_["epochs"], draws=draws,
                sampler=lambda n, xo: post.sample(n, xo, rng=rng))


def run_sbi(task, theta, x, x_o, flow, args):
    import torch
    from sbi.inference import NLE as SbiNLE
    from sbi.neural_nets import likelihood_nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    th, xx = (torch.as_tensor(a, dtype=torch.float32) for a in (theta, x))
    estimator = "maf" if flow == "maf" else likelihood_nn(
        model="nsf", hidden_features=50, num_transforms=5, num_bins=8, tail_bound=4.0)
    with sbi_workdir(), Clock() as train:
        inference = SbiNLE(prior=sbi_prior(task.prior, torch), density_estimator=estimator,
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


def main(argv=None):
    ap = parser(__doc__)
    ap.set_defaults(flow="maf", n_obs=1)
    ap.epilog = ('options as in bench_npe_time.py: "--sims", "--draws", "--flow", "--repeats", '
                 '"--threads", "--n-obs", "--skip-sbi"; defaults --flow maf, --n-obs 1')
    args = ap.parse_args(argv)
    run_all(args, run_nprefgen, run_sbi, "NLE two_moons")


if __name__ == "__main__":
    main()
