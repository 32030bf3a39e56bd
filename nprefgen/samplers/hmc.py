"""Hamiltonian Monte Carlo, vectorised over chains (derivations/sbi.md, MCMC.5-MCMC.7).

Neal (2011), "MCMC using Hamiltonian dynamics". With momentum p ~ N(0, M) and a diagonal mass M,

(MCMC.5) H(x, p) = -log p(x) + 1/2 p^T M^{-1} p,

(MCMC.6) leapfrog, step eps: p <- p + eps/2 grad log p(x); x <- x + eps M^{-1} p;
         p <- p + eps/2 grad log p(x), repeated L times,

(MCMC.7) accept (x', p') with probability min(1, exp(H(x, p) - H(x', p'))).

The leapfrog map is volume preserving and reversible, so (MCMC.7) makes the chain exact for any
eps; warm-up tunes eps per chain to an acceptance probability of 0.8 (MCMC.2) and, when
``adapt_mass``, sets M^{-1} half-way through warm-up to the variance of the states of its second
quarter (the step size is then tuned on for the remaining half). Each step
uses eps jittered by +-20 % so that no trajectory length is periodic.

A trajectory whose position, gradient or energy becomes non-finite is *divergent* and rejected;
divergences are counted per chain (``result.extra["n_divergent"]``). A non-finite gradient at
the starting states is a ValueError, and chains that never move during the kept steps trigger a
RuntimeWarning saying how many of their proposals diverged, instead of a silently frozen chain.
"""
from __future__ import annotations

import warnings

import numpy as np

from nprefgen._validation import check_array, check_int, check_scalar
from nprefgen.samplers.isir import JumpCounter, check_jump
from nprefgen.samplers.mcmc import (
    CountingLogProb, MCMCResult, adapt_log_step, check_run_args, check_start, real_output,
)


def hamiltonian(lp: np.ndarray, p: np.ndarray, inv_mass: np.ndarray) -> np.ndarray:
    """(MCMC.5) H = -log p(x) + 1/2 sum_i p_i^2 / M_ii. lp: (m,), p: (m, d), inv_mass: (d,)."""
    return -lp + 0.5 * np.sum(p * p * inv_mass, axis=1)


def leapfrog(grad_fn, x, p, grad, eps, n_leapfrog, inv_mass):
    """(MCMC.6) ``n_leapfrog`` leapfrog steps for every chain.

    x, p, grad: (m, d); eps: (m,) -> (x', p', grad at x'). ``grad_fn`` is x -> grad log p(x).
    """
    e = eps[:, None]
    p = p + 0.5 * e * grad
    for i in range(n_leapfrog):
        x = x + e * inv_mass * p
        grad = grad_fn(x)
        if i < n_leapfrog - 1:
            p = p + e * grad
    p = p + 0.5 * e * grad
    return x, p, grad


def hmc(log_prob, grad_log_prob, x0, n_steps: int, *, rng=None, n_warmup: int = 200,
        step_size: float = 0.1, n_leapfrog: int = 10, target_accept: float = 0.8,
        inv_mass=None, adapt_mass: bool = True, thin: int = 1, chain_index: bool = False,
        jump=None) -> MCMCResult:
    """Run HMC chains in lock step.

    Parameters
    ----------
    log_prob : callable x: (m, d) -> (m,).
    grad_log_prob : callable x: (m, d) -> (m, d), the gradient of ``log_prob``.
    x0 : (n_chains, d) starting states with finite log_prob.
    n_steps, n_warmup, thin : kept steps, warm-up steps, thinning.
    rng : None, an int seed or a Generator (SPEC 7).
    step_size : initial leapfrog step eps.
    n_leapfrog : L, leapfrog steps per proposal.
    target_accept : mean acceptance probability aimed at during warm-up.
    inv_mass : (d,) diagonal inverse mass M^{-1}; ones by default.
    adapt_mass : estimate M^{-1} from warm-up (needs n_warmup >= 20).
    chain_index : call ``log_prob(x, chains)`` and ``grad_log_prob(x, chains)`` with the chain of
        each row (one target per chain).
    jump : None or an :class:`nprefgen.samplers.ISIRMove`, a mode-crossing move applied after
        every ``jump.every`` steps (MCMC.10-MCMC.12).
    """
    x, n_steps, n_warmup, thin, rng = check_run_args(x0, n_steps, n_warmup, thin, rng=rng)
    n_chains, d = x.shape
    eps0 = check_scalar(step_size, "step_size", low=0.0, low_inclusive=False)
    n_leapfrog = check_int(n_leapfrog, "n_leapfrog", low=1)
    target_accept = check_scalar(target_accept, "target_accept", low=0.0, high=1.0,
                                 low_inclusive=False, high_inclusive=False)
    if not callable(grad_log_prob):
        raise ValueError(f"grad_log_prob: expected a callable x: (m, d) -> (m, d), "
                         f"got {type(grad_log_prob).__name__}")
    inv_m = np.ones(d) if inv_mass is None else check_array(inv_mass, "inv_mass", shape=(d,), copy=True)
    if np.any(inv_m <= 0):
        raise ValueError("inv_mass: expected positive entries, got a non-positive one")
    jumps = JumpCounter(check_jump(jump), n_chains, n_warmup)
    lp_fn = CountingLogProb(log_prob, d, chain_index=chain_index)

    def grad_fn(z):
        g = grad_log_prob(z, np.arange(z.shape[0])) if chain_index else grad_log_prob(z)
        g = real_output(g, "grad_log_prob")
        if g.shape != z.shape:
            raise ValueError(f"grad_log_prob: expected output shape {z.shape}, got {g.shape}")
        return g

    lp = lp_fn(x)
    check_start(lp)
    grad = grad_fn(x)
    bad = ~np.all(np.isfinite(grad), axis=1)
    if np.any(bad):
        raise ValueError(f"grad_log_prob: expected finite gradients at the starting states, got "
                         f"NaN/inf for chains {np.flatnonzero(bad)[:10].tolist()} (where "
                         f"log_prob is finite); HMC cannot move from there")
    log_eps = np.full(n_chains, np.log(eps0))
    n_keep = n_steps // thin
    samples = np.empty((n_chains, n_keep, d))
    lps = np.empty((n_chains, n_keep))
    n_accept = np.zeros(n_chains)
    n_divergent = np.zeros(n_chains, dtype=np.int64)
    warm_states = []
    for t in range(n_warmup + n_steps):
        eps = np.exp(log_eps) * rng.uniform(0.8, 1.2, size=n_chains)
        p0 = rng.standard_normal((n_chains, d)) / np.sqrt(inv_m)      # p ~ N(0, M)
        h0 = hamiltonian(lp, p0, inv_m)                                # (MCMC.5)
        with np.errstate(over="ignore", invalid="ignore"):
            x1, p1, grad1 = leapfrog(grad_fn, x, p0, grad, eps, n_leapfrog, inv_m)   # (MCMC.6)
            ok = np.all(np.isfinite(x1), axis=1) & np.all(np.isfinite(grad1), axis=1)
            lp1 = np.full(n_chains, -np.inf)
            if np.any(ok):
                lp1[ok] = lp_fn(x1[ok], np.flatnonzero(ok))
            h1 = hamiltonian(lp1, p1, inv_m)
            log_ratio = np.where(ok & np.isfinite(h1), h0 - h1, -np.inf)
            n_divergent += ~(ok & np.isfinite(h1) | np.isneginf(lp1) & ok)
        accept = np.log(rng.uniform(size=n_chains)) < log_ratio         # (MCMC.7)
        x = np.where(accept[:, None], x1, x)
        lp = np.where(accept, lp1, lp)
        grad = np.where(accept[:, None], grad1, grad)
        x, lp, jumped = jumps.after_sweep(t, lp_fn, x, lp, rng=rng)       # (MCMC.12)
        if jumped is not None and np.any(jumped):
            grad = grad_fn(x)
        if t < n_warmup:
            a_prob = np.exp(np.minimum(log_ratio, 0.0))
            log_eps = adapt_log_step(log_eps, a_prob, target_accept, t)            # (MCMC.2)
            if adapt_mass and n_warmup >= 20:
                if n_warmup // 4 <= t < n_warmup // 2:
                    warm_states.append(x.copy())
                if t == n_warmup // 2 - 1:
                    var = np.var(np.concatenate(warm_states), axis=0)
                    if np.all(var > 0) and np.all(np.isfinite(var)):
                        scale_change = np.sqrt(var / inv_m)
                        inv_m = var
                        # keep eps * sqrt(M^{-1}) roughly fixed in the new metric
                        log_eps = log_eps - np.log(np.mean(scale_change))
        else:
            k = t - n_warmup
            n_accept += accept
            if (k + 1) % thin == 0 and k // thin < n_keep:
                samples[:, k // thin] = x
                lps[:, k // thin] = lp
    result = MCMCResult(samples, lps, n_accept / n_steps, np.exp(log_eps), n_warmup, lp_fn.calls,
                        "HMC")
    result.extra["inv_mass"] = inv_m
    result.extra["n_divergent"] = n_divergent
    jumps.record(result)
    stuck = np.flatnonzero(n_accept == 0)
    if stuck.size:
        share = float(n_divergent[stuck].sum()) / (stuck.size * (n_warmup + n_steps))
        warnings.warn(f"hmc: chains {stuck[:10].tolist()} ({stuck.size} of {n_chains}) never "
                      f"moved in {n_steps} kept steps; {share:.0%} of their proposals diverged "
                      f"(non-finite position, gradient or energy). Lower step_size, or check "
                      f"that grad_log_prob is the finite gradient of log_prob",
                      RuntimeWarning, stacklevel=2)
    return result
