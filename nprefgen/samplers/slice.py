"""Slice sampling, coordinate-wise, vectorised over chains (derivations/sbi.md, MCMC.3-MCMC.4).

Neal (2003), "Slice sampling", Ann. Statist. 31(3): to move coordinate j of x,

(MCMC.3) draw the height log y = log p(x) - E, E ~ Exp(1) (i.e. y ~ U(0, p(x))), then draw
x'_j uniformly from the slice {x_j : log p(x) > log y} with the other coordinates fixed.

(MCMC.4) The slice is found by *stepping out*: place an interval of width w at random around
x_j, L = x_j - w U, R = L + w, and widen it by w on each side while its end is still in the slice
(at most m steps in all, split at random between the sides); then *shrinkage*: propose
x'_j ~ U(L, R), accept if inside the slice, else move the end on the proposal's side to it.
The update leaves p invariant for any w, so a poorly chosen width costs time, never validity.
During warm-up each w_j is tuned to the slice size: the old and the new x_j are two uniform
points of one slice, so 3 E|x'_j - x_j| estimates its width whatever w was (a running mean over
the warm-up sweeps).

Every chain runs its own loops; here they run in lock step, each ``log_prob`` call taking the
rows of the chains that are still stepping out or shrinking.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_int, check_rng
from nprefgen.samplers.isir import JumpCounter, check_jump
from nprefgen.samplers.mcmc import CountingLogProb, MCMCResult, check_run_args, check_start


def _step_out(lp_fn, x, j, log_y, left, right, w, n_left, n_right):
    """(MCMC.4) widen [left, right] by w on each side while that end is still in the slice.

    Both ends of every chain are tested in one ``log_prob`` call per round (rows stacked), so the
    number of calls is the longest walk, not the sum of both sides'."""
    go_left, go_right = n_left > 0, n_right > 0
    while np.any(go_left) or np.any(go_right):
        il, ir = np.flatnonzero(go_left), np.flatnonzero(go_right)
        trial = np.concatenate([x[il], x[ir]])
        trial[:, j] = np.concatenate([left[il], right[ir]])
        inside = lp_fn(trial, np.concatenate([il, ir])) > np.concatenate([log_y[il], log_y[ir]])
        grow_l, grow_r = il[inside[:il.size]], ir[inside[il.size:]]
        left[grow_l] -= w
        right[grow_r] += w
        n_left[grow_l] -= 1
        n_right[grow_r] -= 1
        go_left[:] = False
        go_right[:] = False
        go_left[grow_l] = n_left[grow_l] > 0
        go_right[grow_r] = n_right[grow_r] > 0
    return left, right


def slice_update(lp_fn, x, lp, j, w, *, rng=None, max_step_out=20, max_shrink=200,
                 counts: dict | None = None):
    """One coordinate-wise slice update of coordinate ``j`` for every chain (MCMC.3-MCMC.4).

    x: (m, d), lp: (m,) its log-density -> (x_new, lp_new, first_try: (m,) bool, width: (m,)),
    ``width`` the stepped-out interval widths (used to tune w). ``rng``: None, an int seed or a
    Generator (SPEC 7). A chain whose ``max_shrink`` proposals all fall outside the slice keeps
    its x; ``counts["shrink_exhausted"]``, if a dict is given, is incremented by their number.
    """
    rng = check_rng(rng)
    m = x.shape[0]
    log_y = lp - rng.exponential(size=m)                    # (MCMC.3) slice height
    xj = x[:, j].copy()
    left = xj - w * rng.uniform(size=m)                     # (MCMC.4) random placement
    right = left + w
    n_left = np.floor(max_step_out * rng.uniform(size=m)).astype(int)
    n_right = (max_step_out - 1) - n_left
    left, right = _step_out(lp_fn, x, j, log_y, left, right, w, n_left, n_right)
    width = right - left
    x_new, lp_new = x.copy(), lp.copy()
    first_try = np.zeros(m, dtype=bool)
    active = np.ones(m, dtype=bool)
    for it in range(max_shrink):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        prop = left[idx] + (right[idx] - left[idx]) * rng.uniform(size=idx.size)
        trial = x[idx].copy()
        trial[:, j] = prop
        lp_trial = lp_fn(trial, idx)
        ok = lp_trial > log_y[idx]
        acc = idx[ok]
        x_new[acc] = trial[ok]
        lp_new[acc] = lp_trial[ok]
        if it == 0:
            first_try[acc] = True
        active[acc] = False
        rej, prop_rej = idx[~ok], prop[~ok]
        below = prop_rej < xj[rej]                           # (MCMC.4) shrink towards x_j
        left[rej[below]] = prop_rej[below]
        right[rej[~below]] = prop_rej[~below]
    # chains still active after max_shrink keep x (the interval has collapsed onto it)
    if counts is not None:
        counts["shrink_exhausted"] = counts.get("shrink_exhausted", 0) + int(np.count_nonzero(active))
    return x_new, lp_new, first_try, width


def slice_sampling(log_prob, x0, n_steps: int, *, rng=None, n_warmup: int = 200, width=1.0,
                   max_step_out: int = 20, thin: int = 1, chain_index: bool = False,
                   jump=None) -> MCMCResult:
    """Coordinate-wise slice sampling of ``n_chains`` chains in lock step.

    Parameters
    ----------
    log_prob : callable x: (m, d) -> (m,), the unnormalised log target (-inf outside support).
    x0 : (n_chains, d) starting states with finite log_prob.
    n_steps : kept sweeps per chain (one sweep updates every coordinate once).
    rng : None, an int seed or a Generator (SPEC 7).
    n_warmup : warm-up sweeps (width tuning), discarded.
    width : float or (d,) initial interval widths w.
    max_step_out : m, the stepping-out budget per update.
    thin : keep every ``thin``-th sweep.
    chain_index : call ``log_prob(x, chains)`` with the chain of each row (one target per chain).
    jump : None or an :class:`nprefgen.samplers.ISIRMove`, a mode-crossing move applied after
        every ``jump.every`` sweeps (MCMC.10-MCMC.12).

    Returns
    -------
    MCMCResult; ``acceptance`` is the fraction of updates whose first proposal was in the slice;
    ``extra["shrink_exhausted"]`` counts the updates (warm-up included) that kept x after 200
    rejected shrinks (0 for any target whose slice has positive width at x);
    ``extra["jump_rate"]``, with a jump, the per-chain fraction of kept-phase jumps that moved.
    """
    x, n_steps, n_warmup, thin, rng = check_run_args(x0, n_steps, n_warmup, thin, rng=rng)
    n_chains, d = x.shape
    max_step_out = check_int(max_step_out, "max_step_out", low=1)
    w = check_array(width, "width", ndim=(0, 1), dtype=np.float64, copy=True)
    w = np.broadcast_to(w, (d,)).copy() if w.ndim == 0 or w.shape == (1,) else w
    if w.shape != (d,) or np.any(w <= 0):
        raise ValueError(f"width: expected a positive number or shape ({d},), got {np.ravel(w)[:5]}")
    jumps = JumpCounter(check_jump(jump), n_chains, n_warmup)
    lp_fn = CountingLogProb(log_prob, d, chain_index=chain_index)
    lp = lp_fn(x)
    check_start(lp)
    n_keep = n_steps // thin
    samples = np.empty((n_chains, n_keep, d))
    lps = np.empty((n_chains, n_keep))
    n_first = np.zeros(n_chains)
    w_sum, w_count = np.zeros(d), np.zeros(d)
    counts = {"shrink_exhausted": 0}
    for t in range(n_warmup + n_steps):
        for j in range(d):
            x_old = x[:, j].copy()
            x, lp, first, _ = slice_update(lp_fn, x, lp, j, w[j], rng=rng,
                                              max_step_out=max_step_out, counts=counts)
            if t < n_warmup:
                # x_old and x_new are two uniform points of one slice: E|dx| = width / 3
                estimate = 3.0 * np.mean(np.abs(x[:, j] - x_old))
                if estimate > 0:
                    w_sum[j] += estimate
                    w_count[j] += 1
                    w[j] = w_sum[j] / w_count[j]
            else:
                n_first += first
        x, lp, _ = jumps.after_sweep(t, lp_fn, x, lp, rng=rng)            # (MCMC.12)
        if t >= n_warmup:
            k = t - n_warmup
            if (k + 1) % thin == 0 and k // thin < n_keep:
                samples[:, k // thin] = x
                lps[:, k // thin] = lp
    result = MCMCResult(samples, lps, n_first / (n_steps * d), w.copy(), n_warmup, lp_fn.calls,
                        "slice sampling")
    result.extra["shrink_exhausted"] = counts["shrink_exhausted"]
    jumps.record(result)
    return result
