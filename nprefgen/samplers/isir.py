"""A move that crosses modes: iterated sampling-importance-resampling (derivations/sbi.md,
MCMC.10-MCMC.12).

Local samplers (slice, random-walk Metropolis, HMC) rarely leave a mode that is separated from
the others by a region of low density: the chains of a two-crescent or a mirror-image posterior
stay where they started, and the fraction of draws per mode is the fraction of chains that
started there. Sampling-importance-resampling (SIR) from a proposal q that covers every mode (the
prior, for a posterior) puts mass in each mode in proportion to its weight, but SIR with a finite
number of proposals is only approximately the target. The *iterated* SIR kernel of Andrieu, Lee &
Vihola (2018) is exact for any number of proposals:

(MCMC.10) from the current state theta, draw M - 1 proposals theta_2..theta_M ~ q, set
theta_1 = theta, weight every particle by w_j = p~(theta_j) / q(theta_j) and move to theta_J,
P(J = j) = w_j / sum_i w_i (the current state can be kept).

(MCMC.11) It leaves p = p~ / Z invariant: on the extended space (J, theta_1..M) with density
pi(j, theta_1..M) = (1/M) p(theta_j) prod_{i != j} q(theta_i) = (1/(M Z)) w_j prod_i q(theta_i),
a state theta ~ p placed at a uniform index with the others drawn from q is a draw of pi, and
P(J = j | theta_1..M) = w_j / sum_i w_i, so re-drawing J is a Gibbs step of pi, whose theta_J
marginal is p. (Placing theta at index 1 changes nothing: the selection depends only on the set.)

(MCMC.12) A sampler that alternates local sweeps with this move every ``every`` sweeps is a
cycle of p-invariant kernels, hence p-invariant; the jump lands in a mode in proportion to the
mode's mass whatever the local sampler does, and the chance of leaving the current state is about
(M - 1) E_q[w] / (w(theta) + (M - 1) E_q[w]).

All chains move in one call of the target on the (n_chains * (M - 1), d) proposals; with
``chain_index`` each chain's proposals are evaluated under its own target.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_int, check_rng
from nprefgen.samplers.mcmc import real_output

CHUNK = 16384      # proposal rows per call of the target


def isir_update(lp_fn, x, lp, proposal, n_proposals: int, *, rng=None):
    """(MCMC.10) one iterated-SIR move of every chain; it leaves the target invariant
    (MCMC.11: a Gibbs step on the index of the extended target).

    Parameters
    ----------
    lp_fn : callable (x: (m, d), chains: (m,)) -> (m,), the log target of each row's chain.
    x : (n_chains, d) current states; lp : (n_chains,) their log target.
    proposal : q, with ``sample(n, *, rng) -> (n, d)`` and ``log_prob(x: (n, d)) -> (n,)``; its
        support must cover the target's.
    n_proposals : M - 1, fresh proposals per chain.
    rng : None, an int seed or a Generator (SPEC 7).

    Returns
    -------
    (x_new (n_chains, d), lp_new (n_chains,), moved (n_chains,) bool).
    """
    rng = check_rng(rng)
    m, d = x.shape
    k = n_proposals
    props = np.asarray(proposal.sample(m * k, rng=rng), dtype=np.float64)   # (m k, d)
    if props.shape != (m * k, d):
        raise ValueError(f"proposal: expected sample({m * k}) of shape ({m * k}, {d}), got "
                         f"{props.shape}")
    owner = np.repeat(np.arange(m), k)                                       # chain of each row
    # in blocks of at most CHUNK rows: a network's activations for (m k) rows stay bounded
    lp_props = np.concatenate([lp_fn(props[i:i + CHUNK], owner[i:i + CHUNK])
                               for i in range(0, m * k, CHUNK)])
    lq_props = real_output(proposal.log_prob(props), "proposal.log_prob")
    lq_x = real_output(proposal.log_prob(x), "proposal.log_prob")
    if np.any(~np.isfinite(lq_x)):
        bad = np.flatnonzero(~np.isfinite(lq_x))
        raise ValueError(f"proposal: expected a density positive wherever the target is, got "
                         f"log q = {lq_x[bad[0]]} at the state of chains {bad[:10].tolist()}; "
                         f"iterated SIR needs a proposal that covers the target's support")
    with np.errstate(invalid="ignore"):
        lw = np.concatenate([(lp - lq_x)[:, None], (lp_props - lq_props).reshape(m, k)], axis=1)
    lw = np.where(np.isnan(lw), -np.inf, lw)       # a proposal outside the target: weight 0
    # (MCMC.10) J ~ w_j / sum w by the Gumbel-max trick: argmax_j (log w_j + G_j), G_j ~ Gumbel
    j = np.argmax(lw + rng.gumbel(size=lw.shape), axis=1)
    moved = j > 0
    x_new, lp_new = x.copy(), lp.copy()
    rows = np.flatnonzero(moved)
    pick = rows * k + (j[rows] - 1)
    x_new[rows] = props[pick]
    lp_new[rows] = lp_props[pick]
    return x_new, lp_new, moved


class ISIRMove:
    """(MCMC.12) the iterated-SIR move as the samplers take it (``jump=ISIRMove(prior)``).

    Parameters
    ----------
    proposal : q, with ``sample(n, *, rng)`` and ``log_prob`` (the prior, for a posterior).
    n_proposals : M - 1, fresh proposals per chain and move (default 100).
    every : one move after every ``every`` sweeps of the local sampler (default 1).
    start : the first sweep (0-based, warm-up sweeps counted) after which moves may happen
        (default 0); e.g. half-way through warm-up, so that the moves' cost is spent where the
        chains are near the target.
    """

    def __init__(self, proposal, n_proposals: int = 100, every: int = 1, start: int = 0) -> None:
        for name in ("sample", "log_prob"):
            if not callable(getattr(proposal, name, None)):
                raise ValueError(f"proposal: expected an object with sample(n, *, rng) and "
                                 f"log_prob(x) methods, got {type(proposal).__name__} without "
                                 f"{name}")
        self.proposal = proposal
        self.n_proposals = check_int(n_proposals, "n_proposals", low=1)
        self.every = check_int(every, "every", low=1)
        self.start = check_int(start, "start", low=0)

    def due(self, t: int) -> bool:
        """Whether a move follows sweep ``t`` (0-based, warm-up sweeps counted)."""
        return t >= self.start and (t + 1 - self.start) % self.every == 0

    def __call__(self, lp_fn, x, lp, *, rng=None):
        """(MCMC.10) -> (x_new, lp_new, moved); see :func:`isir_update`."""
        return isir_update(lp_fn, x, lp, self.proposal, self.n_proposals, rng=rng)

    def __repr__(self) -> str:
        return (f"ISIRMove(proposal={self.proposal!r}, n_proposals={self.n_proposals}, "
                f"every={self.every}, start={self.start})")


def check_jump(jump):
    """None or a mode-crossing move (an :class:`ISIRMove`, or any object with ``due(t)`` and a
    call ``(lp_fn, x, lp, *, rng) -> (x, lp, moved)``)."""
    if jump is None:
        return None
    if not (callable(jump) and callable(getattr(jump, "due", None))):
        raise ValueError(f"jump: expected None or an ISIRMove, got {type(jump).__name__}")
    return jump


class JumpCounter:
    """Counts, per chain, the kept-phase moves of a jump and how many changed the state."""

    def __init__(self, jump, n_chains: int, n_warmup: int) -> None:
        self.jump, self.n_warmup = jump, n_warmup
        self.moves = 0
        self.moved = np.zeros(n_chains, dtype=np.int64)

    def after_sweep(self, t: int, lp_fn, x, lp, *, rng=None):
        """Apply the move if one is due after sweep t -> (x, lp, moved or None)."""
        if self.jump is None or not self.jump.due(t):
            return x, lp, None
        x, lp, moved = self.jump(lp_fn, x, lp, rng=rng)
        if t >= self.n_warmup:
            self.moves += 1
            self.moved += moved
        return x, lp, moved

    def record(self, result) -> None:
        """``result.extra["jump_rate"]``: per chain, the fraction of kept-phase moves that
        changed the state (nan without moves); ``extra["jump_moves"]``: their number."""
        if self.jump is None:
            return
        result.extra["jump_moves"] = self.moves
        result.extra["jump_rate"] = (self.moved / self.moves if self.moves
                                     else np.full(self.moved.shape, np.nan))
