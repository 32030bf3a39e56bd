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


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_npe_time import parser, run_all, runners  # noqa: E402
from nprefgen.sbi import NLE  # noqa: E402


run_nprefgen, run_sbi = runners(NLE, "NLE", "likelihood_nn")


def main(argv=None):
    ap = parser(__doc__)
    ap.set_defaults(flow="maf", n_obs=1)
    ap.epilog = ('options as in bench_npe_time.py: "--sims", "--draws", "--flow", "--repeats", '
                 '"--threads", "--n-obs", "--skip-sbi", "--dtype"; defaults --flow maf, --n-obs 1')
    args = ap.parse_args(argv)
    run_all(args, run_nprefgen, run_sbi, "NLE two_moons")


if __name__ == "__main__":
    main()
