"""nprefgen.samplers: Markov chain Monte Carlo (derivations/sbi.md, section MCMC).

Every sampler runs many chains in lock step on a vectorised log-density
``log_prob(x: (m, d)) -> (m,)`` and returns an :class:`MCMCResult` with the kept states, the
acceptance rate, split R-hat and effective sample size. Any of them can interleave a move that
crosses between modes, iterated sampling-importance-resampling (:class:`ISIRMove`,
MCMC.10-MCMC.12), and :func:`convergence_check` judges a run against its R-hat and ESS bars
(MCMC.13; :class:`MCMCConvergenceWarning` is what the SBI posteriors warn with). The Langevin samplers (plain and annealed,
derivations/score.md) follow a score function instead of a log-density and return a
:class:`LangevinResult`.
"""
from nprefgen.samplers.diagnostics import (
    MCMCConvergenceWarning, convergence_check, effective_sample_size, ess_bar, rhat_bar, split_rhat,
)
from nprefgen.samplers.hmc import hmc
from nprefgen.samplers.isir import ISIRMove, isir_update
from nprefgen.samplers.langevin import LangevinResult, annealed_langevin, langevin
from nprefgen.samplers.mcmc import MCMCResult
from nprefgen.samplers.metropolis import random_walk_metropolis
from nprefgen.samplers.slice import slice_sampling

__all__ = ["MCMCResult", "random_walk_metropolis", "slice_sampling", "hmc", "split_rhat",
           "effective_sample_size", "langevin", "annealed_langevin", "LangevinResult", "ISIRMove",
           "isir_update", "MCMCConvergenceWarning", "convergence_check", "rhat_bar", "ess_bar"]
