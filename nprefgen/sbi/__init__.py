"""nprefgen.sbi: simulation-based inference (derivations/sbi.md).

Given a prior p(theta) and a simulator x ~ p(x | theta), infer p(theta | x_obs) and check whether
the answer can be trusted.

* tasks and priors: :mod:`.tasks` (gaussian_linear, two_moons, gaussian_mixture), :mod:`.cosmology`
  (a Gaussian random field with P(k) = A k^-n), :mod:`.priors` (the prior protocol: any object
  with ``dim``, ``sample``, ``log_prob`` and ``in_support`` is a prior; :func:`check_prior`); any
  ``simulator(theta, rng)`` works
* simulation: :func:`simulate` (in-process or any ``concurrent.futures`` executor, reproducible,
  NaN/inf dropped and counted); :func:`simulate_shards` (to disk in shards,
  resumable, e.g. on a dask cluster)
* inference: :func:`rejection_abc`, :func:`smc_abc` (population Monte Carlo ABC), :class:`NPE`
  (with an embedding network for sets and maps, :mod:`.embeddings`), :class:`NLE`,
  :class:`NRE` (classifier-based ratio, optionally balanced), :class:`TSNPE` and :class:`SNLE`
  (sequential rounds for one observation), :class:`MCMCPosterior` (explicit
  likelihoods, e.g. the Gaussian-likelihood baseline); posteriors ``sample``, ``sample_batched``,
  ``log_prob``
* validation: :mod:`.diagnostics` (held-out log-likelihood, PIT / P-P, coverage, SBC, TARP), and
  :mod:`nprefgen.metrics.c2st` / :mod:`nprefgen.metrics.mmd` against reference draws

>>> import numpy as np
>>> from nprefgen.sbi import NPE, simulate_from_prior, two_moons
>>> rng = np.random.default_rng(0)
>>> task = two_moons()
>>> sims = simulate_from_prior(task.prior, task.simulator, 1000, rng=rng)
>>> posterior = NPE(task.prior, n_transforms=2, hidden=16).train(sims.theta, sims.x, rng=rng,
...                                                             max_epochs=2)
>>> posterior.sample(5, x=np.zeros(2), rng=rng).shape
(5, 2)

Randomness is a keyword-only ``rng`` (None, an int seed or a Generator, SPEC 7); simulators keep
the positional protocol ``simulator(theta, rng)`` and always receive a Generator.
"""
from nprefgen.sbi.abc import ABCPosterior, ABCResult, cv_bandwidth, rejection_abc, scott_bandwidth
from nprefgen.sbi.cosmology import (
    CosmologyGRFSimulator, GaussianSummaryLikelihood, cosmology_grf, estimate_covariance,
)
from nprefgen.sbi.embedded import EmbeddedPosterior
from nprefgen.sbi.embeddings import CNNEmbedding, DeepSetEmbedding, Embedding, MLPEmbedding
from nprefgen.sbi.nle import NLE, FlowLikelihood
from nprefgen.sbi.npe import NPE
from nprefgen.sbi.nre import NRE, LogRatio, RatioPosterior
from nprefgen.sbi.mcmc_posterior import MCMCPosterior
from nprefgen.sbi.posterior import DirectPosterior, LeakageWarning
from nprefgen.sbi.priors import BoxUniform, Gaussian, Prior, PriorProtocol, check_prior
from nprefgen.sbi.score_posterior import NPSE, ScorePosterior
from nprefgen.sbi.sequential import SNLE, TSNPE
from nprefgen.sbi.shards import ShardedDataset, simulate_shards
from nprefgen.sbi.simulate import Simulations, simulate, simulate_from_prior
from nprefgen.sbi.smc_abc import SMCABCResult, smc_abc
from nprefgen.sbi.tasks import (
    TASKS, GaussianLinearSimulator, GaussianMixtureSimulator, Task, TwoMoonsSimulator,
    gaussian_linear, gaussian_linear_posterior, gaussian_mixture, get_task, two_moons,
)

__all__ = [
    "ABCPosterior", "ABCResult", "rejection_abc", "smc_abc", "SMCABCResult", "simulate_shards",
    "ShardedDataset", "NPE", "NLE", "NRE", "LogRatio", "RatioPosterior", "TSNPE", "SNLE", "NPSE",
    "ScorePosterior", "FlowLikelihood",
    "DirectPosterior", "MCMCPosterior", "LeakageWarning", "BoxUniform", "Gaussian", "Prior",
    "PriorProtocol", "check_prior", "Simulations",
    "simulate", "simulate_from_prior", "Task", "gaussian_linear", "gaussian_linear_posterior",
    "gaussian_mixture", "get_task", "two_moons", "TASKS", "GaussianLinearSimulator",
    "TwoMoonsSimulator", "GaussianMixtureSimulator", "scott_bandwidth", "cv_bandwidth",
    "cosmology_grf", "CosmologyGRFSimulator", "GaussianSummaryLikelihood", "estimate_covariance",
    "Embedding", "MLPEmbedding", "CNNEmbedding", "DeepSetEmbedding", "EmbeddedPosterior",
]
