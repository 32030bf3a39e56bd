"""What every MCMC sampler shares: input checks, step-size adaptation, the result object.

All samplers in :mod:`nprefgen.samplers` run ``n_chains`` chains *in lock step*: the target is a
vectorised log-density ``log_prob(x: (m, d)) -> (m,)`` called on a batch of chain states, so one
call of a neural log-likelihood serves every chain (derivations/sbi.md, section MCMC).

With ``chain_index=True`` the target is called as ``log_prob(x, chains)``, ``chains: (m,)`` the
index of the chain each row belongs to, so that chains may target different densities: one
posterior per observation, sampled in one batched run (NLE over many observations).

A run has ``n_warmup`` warm-up steps (the sampler tunes its step size, then forgets them) and
``n_steps`` kept steps, thinned by ``thin``. The result holds the kept states per chain together
with the split R-hat and the effective sample size (MCMC.8, MCMC.9).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from nprefgen._validation import check_alloc, check_array, check_int, check_rng

LogProb = Callable[[np.ndarray], np.ndarray]


@dataclass
class MCMCResult:
    """Kept states of a multi-chain run.

    Attributes
    ----------
    samples : (n_chains, n_kept, d) the kept states.
    log_prob : (n_chains, n_kept) the target log-density at each kept state.
    acceptance : (n_chains,) acceptance rate over the kept steps (1 for slice sampling, which
        always moves; there it is the fraction of coordinate updates that needed no shrinkage).
    step_size : (n_chains,) or (d,) the tuned step size (or slice width) used after warm-up.
    n_warmup : int, warm-up steps discarded.
    n_log_prob_calls : int, total number of rows passed to ``log_prob`` (a cost measure).
    sampler : str, the algorithm's name.
    """

    samples: np.ndarray
    log_prob: np.ndarray
    acceptance: np.ndarray
    step_size: np.ndarray
    n_warmup: int
    n_log_prob_calls: int
    sampler: str
    extra: dict = field(default_factory=dict)

    @property
    def n_chains(self) -> int:
        return self.samples.shape[0]

    def flat(self) -> np.ndarray:
        """All kept states of all chains, (n_chains * n_kept, d)."""
        return self.samples.reshape(-1, self.samples.shape[-1])

    def rhat(self) -> np.ndarray:
        """(MCMC.8) split R-hat per dimension, (d,)."""
        from nprefgen.samplers.diagnostics import split_rhat

        return split_rhat(self.samples)

    def ess(self) -> np.ndarray:
        """(MCMC.9) effective sample size per dimension, (d,)."""
        from nprefgen.samplers.diagnostics import effective_sample_size

        return effective_sample_size(self.samples)

    def summary(self) -> dict:
        """Mean acceptance, min/max R-hat, min ESS, cost: a row for a report table."""
        rh, es = self.rhat(), self.ess()
        return {"sampler": self.sampler, "chains": self.n_chains, "kept": self.samples.shape[1],
                "acceptance": float(np.mean(self.acceptance)), "rhat_max": float(np.max(rh)),
                "ess_min": float(np.min(es)), "log_prob_calls": int(self.n_log_prob_calls)}


class CountingLogProb:
    """Wraps a vectorised log-density; checks its output and counts the rows evaluated.

    ``+inf`` or NaN from the target is an error (a density cannot be infinite); ``-inf`` means
    "outside the support" and is a valid answer.
    """

    def __init__(self, log_prob: LogProb, dim: int, name: str = "log_prob",
                 chain_index: bool = False) -> None:
        if not callable(log_prob):
            raise ValueError(f"{name}: expected a callable x: (m, d) -> (m,), got {type(log_prob).__name__}")
        self.fn = log_prob
        self.dim = dim
        self.name = name
        self.chain_index = bool(chain_index)
        self.calls = 0

    def __call__(self, x: np.ndarray, chains: np.ndarray | None = None) -> np.ndarray:
        if self.chain_index:
            chains = np.arange(x.shape[0]) if chains is None else chains
            out = real_output(self.fn(x, chains), self.name)
        else:
            out = real_output(self.fn(x), self.name)
        if out.shape != (x.shape[0],):
            raise ValueError(f"{self.name}: expected an output of shape ({x.shape[0]},) for input "
                             f"of shape {x.shape}, got {out.shape}")
        if np.any(np.isnan(out)) or np.any(out == np.inf):
            raise ValueError(f"{self.name}: returned NaN or +inf at {int(np.sum(~(out < np.inf)))} "
                             f"of {x.shape[0]} states")
        self.calls += x.shape[0]
        return out


def real_output(out, name: str) -> np.ndarray:
    """A user callable's output as float64; complex or non-numeric output is a ValueError (a
    cast would silently drop the imaginary part)."""
    out = np.asarray(out)
    if np.iscomplexobj(out):
        raise ValueError(f"{name}: expected real output, got dtype {out.dtype}")
    if out.dtype == object or not (np.issubdtype(out.dtype, np.number) or out.dtype == bool):
        raise ValueError(f"{name}: expected a numeric array, got dtype {out.dtype}")
    return out.astype(np.float64, copy=False)


def check_run_args(x0, n_steps, n_warmup, thin, *, rng=None):
    """Validate the arguments every sampler takes -> (x0 as (n_chains, d) float64, n_steps,
    n_warmup, thin, rng as a Generator (SPEC 7: None, an int seed or a Generator)).

    The kept states, (n_chains, n_steps // thin, d), must fit in memory (refused up front)."""
    x0 = check_array(x0, "x0", ndim=2, dtype=np.float64, copy=True)
    n_steps = check_int(n_steps, "n_steps", low=1)
    n_warmup = check_int(n_warmup, "n_warmup", low=0)
    thin = check_int(thin, "thin", low=1)
    check_alloc((x0.shape[0], n_steps // thin, x0.shape[1] + 1), "n_steps")
    rng = check_rng(rng)
    return x0, n_steps, n_warmup, thin, rng


def check_start(lp0: np.ndarray) -> None:
    """Every chain must start inside the support."""
    bad = ~np.isfinite(lp0)
    if np.any(bad):
        raise ValueError(f"x0: expected every chain to start where log_prob is finite, got -inf "
                         f"for chains {np.flatnonzero(bad)[:10].tolist()}")


def adapt_log_step(log_step: np.ndarray, accept_prob: np.ndarray, target: float, t: int,
                   kappa: float = 0.6) -> np.ndarray:
    """(MCMC.2) Robbins-Monro: log s <- log s + t^-kappa (a - a*), per chain.

    With a decreasing gain the step settles where the mean acceptance probability equals the
    target; used only during warm-up, so the kept chain is a fixed, valid Markov kernel.
    """
    return log_step + (t + 1.0) ** (-kappa) * (accept_prob - target)
