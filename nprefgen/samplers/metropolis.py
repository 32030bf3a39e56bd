"""Random-walk Metropolis, vectorised over chains (derivations/sbi.md, MCMC.1-MCMC.2).

(MCMC.1) propose x' = x + s * L e, e ~ N(0, I), accept with probability
min(1, p(x') / p(x)): the Gaussian proposal is symmetric, so the Hastings ratio cancels.
During warm-up the per-chain scale s is tuned towards an acceptance rate of 0.234, the optimum
for high-dimensional Gaussian targets (Roberts, Gelman & Gilks 1997); ``scale`` (d,) or (d, d)
shapes the proposal (e.g. the prior's standard deviations or a covariance Cholesky factor).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_scalar
from nprefgen.samplers.isir import JumpCounter, check_jump
from nprefgen.samplers.mcmc import (
    CountingLogProb, MCMCResult, adapt_log_step, check_run_args, check_start,
)


def metropolis_accept(lp_current: np.ndarray, lp_proposed: np.ndarray, log_u: np.ndarray) -> np.ndarray:
    """(MCMC.1) accept where log u < log p(x') - log p(x); u ~ U(0, 1). Shapes (m,) -> bool (m,)."""
    with np.errstate(invalid="ignore"):
        return log_u < (lp_proposed - lp_current)


def random_walk_metropolis(log_prob, x0, n_steps: int, *, rng=None, n_warmup: int = 500,
                           step_size: float = 1.0, scale=None, target_accept: float = 0.234,
                           thin: int = 1, chain_index: bool = False, jump=None) -> MCMCResult:
    """Run random-walk Metropolis chains in lock step.

    Parameters
    ----------
    log_prob : callable x: (m, d) -> (m,), the unnormalised log target (-inf outside support).
    x0 : (n_chains, d) starting states, each with finite log_prob.
    n_steps : kept steps per chain (after thinning: n_steps // thin states are kept).
    rng : None, an int seed or a Generator (SPEC 7).
    n_warmup : steps of warm-up (step-size adaptation, MCMC.2), discarded.
    step_size : initial proposal scale s.
    scale : None, (d,) or (d, d) proposal shape L (identity by default).
    target_accept : acceptance rate aimed at during warm-up.
    thin : keep every ``thin``-th state.
    chain_index : call ``log_prob(x, chains)`` with the chain of each row (one target per chain).
    jump : None or an :class:`nprefgen.samplers.ISIRMove`, a mode-crossing move applied after
        every ``jump.every`` steps (MCMC.10-MCMC.12).

    Returns
    -------
    MCMCResult with samples (n_chains, n_steps // thin, d).
    """
    x, n_steps, n_warmup, thin, rng = check_run_args(x0, n_steps, n_warmup, thin, rng=rng)
    n_chains, d = x.shape
    s0 = check_scalar(step_size, "step_size", low=0.0, low_inclusive=False)
    target_accept = check_scalar(target_accept, "target_accept", low=0.0, high=1.0,
                                 low_inclusive=False, high_inclusive=False)
    if scale is None:
        L = np.eye(d)
    else:
        L = check_array(scale, "scale", ndim=(1, 2))
        if L.shape not in ((d,), (d, d)):
            raise ValueError(f"scale: expected shape ({d},) or ({d}, {d}), got {L.shape}")
        L = np.diag(L) if L.ndim == 1 else L
        # a singular L proposes only inside a subspace: the chain could never leave it
        if not np.linalg.matrix_rank(L) == d:
            raise ValueError(f"scale: expected a non-singular proposal shape (rank {d}), got rank "
                             f"{np.linalg.matrix_rank(L)}; the chains could not explore every "
                             f"direction")
    jumps = JumpCounter(check_jump(jump), n_chains, n_warmup)
    lp_fn = CountingLogProb(log_prob, d, chain_index=chain_index)
    lp = lp_fn(x)
    check_start(lp)
    log_step = np.full(n_chains, np.log(s0))
    n_keep = n_steps // thin
    samples = np.empty((n_chains, n_keep, d))
    lps = np.empty((n_chains, n_keep))
    n_accept = np.zeros(n_chains)
    for t in range(n_warmup + n_steps):
        step = np.exp(log_step)[:, None]
        proposal = x + step * (rng.standard_normal((n_chains, d)) @ L.T)
        lp_prop = lp_fn(proposal)
        log_u = np.log(rng.uniform(size=n_chains))
        accept = metropolis_accept(lp, lp_prop, log_u)       # (MCMC.1)
        if t < n_warmup:
            with np.errstate(over="ignore", invalid="ignore"):
                a_prob = np.exp(np.minimum(lp_prop - lp, 0.0))
            a_prob = np.where(np.isfinite(a_prob), a_prob, 0.0)
            log_step = adapt_log_step(log_step, a_prob, target_accept, t)   # (MCMC.2)
        x[accept] = proposal[accept]
        lp[accept] = lp_prop[accept]
        x, lp, _ = jumps.after_sweep(t, lp_fn, x, lp, rng=rng)            # (MCMC.12)
        if t >= n_warmup:
            k = t - n_warmup
            n_accept += accept
            if (k + 1) % thin == 0 and k // thin < n_keep:
                samples[:, k // thin] = x
                lps[:, k // thin] = lp
    result = MCMCResult(samples, lps, n_accept / n_steps, np.exp(log_step), n_warmup,
                        lp_fn.calls, "random-walk Metropolis")
    jumps.record(result)
    return result
