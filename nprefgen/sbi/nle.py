"""Neural likelihood estimation (derivations/sbi.md, SBI.13).

Train a conditional flow q_phi(x | theta) on the same pairs as NPE (the argument of (SBI.10)
with the roles of theta and x swapped: the minimiser is the likelihood p(x | theta) on the prior's
support), then sample the posterior by MCMC on

(SBI.13)  log p(theta | x_1..N) = sum_i log q_phi(x_i | theta) + log p(theta) + const,

which accepts any number of iid observations without retraining (NPE would need a network that
takes sets). (SBI.13a) HMC needs grad_theta log q(x | theta): the flow's hand-written gradient with
respect to its context, ``Flow.grad_log_prob(x, context)[1]``, summed over the observations.
Slice sampling (the ``sbi`` package's default) needs no gradient.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_choice, check_int, check_rng
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.sbi.npe import FLOWS, check_training_pairs, fit_conditional_flow
from nprefgen.sbi.mcmc_posterior import MCMCPosterior
from nprefgen.sbi.posterior_files import register_likelihood
from nprefgen.sbi.priors import check_prior


def pair_iid_rows(theta, x_rows):
    """Flatten sets of iid observations for a per-row network: theta (m, p), x_rows
    (m, n_iid, dx) -> (x_flat (m n_iid, dx), theta_rep (m n_iid, p), m, n_iid); row
    i * n_iid + j pairs observation j of set i with theta_i (the sums of SBI.13 and SBI.24)."""
    m, n_iid, dx = x_rows.shape
    return x_rows.reshape(m * n_iid, dx), np.repeat(theta, n_iid, axis=0), m, n_iid


@register_likelihood
class FlowLikelihood:
    """(SBI.13) sum_i log q(x_i | theta) from a flow over x with context theta, and its gradient
    in theta (SBI.13a). Both take theta (m, p), x (m, n_iid, dx).

    Saved and loaded as its flow (:meth:`save`, :meth:`load`), which is how an NLE posterior's
    :meth:`MCMCPosterior.save` stores it."""

    def __init__(self, flow) -> None:
        self.flow = flow
        self.dim_x = flow.dim
        self.dim_theta = flow.context_dim

    def save(self, path, meta: dict | None = None) -> None:
        """The flow (weights, buffers, configuration) and ``meta`` to one ``.npz``, atomically."""
        self.flow.save(path, meta=meta)

    @classmethod
    def load(cls, path) -> "FlowLikelihood":
        """Rebuild from a file written by :meth:`save` (all or nothing, never unpickles); the
        flow must be conditional (a likelihood q(x | theta))."""
        from nprefgen.flows import load_flow

        flow = load_flow(path)
        if not flow.context_dim:
            raise ValueError(f"path: {str(path)!r} holds an unconditional flow; a likelihood "
                             f"q(x | theta) needs a context")
        return cls(flow)

    def __call__(self, theta, x_rows) -> np.ndarray:
        """(SBI.13) -> (m,)."""
        x_flat, theta_rep, m, n_iid = pair_iid_rows(theta, x_rows)
        return self.flow.log_prob(x_flat, theta_rep).reshape(m, n_iid).sum(axis=1)

    def grad(self, theta, x_rows) -> np.ndarray:
        """(SBI.13a) sum_i grad_theta log q(x_i | theta) via the flow's context gradient. (m, p)."""
        x_flat, theta_rep, m, n_iid = pair_iid_rows(theta, x_rows)
        _, d_theta = self.flow.grad_log_prob(x_flat, theta_rep)
        return d_theta.reshape(m, n_iid, -1).sum(axis=1)


class NLE:
    """Neural likelihood estimation: ``NLE(prior).train(theta, x, rng=rng)`` -> MCMCPosterior.

    Parameters as :class:`nprefgen.sbi.npe.NPE` (a spline flow over x by default); ``method`` ("slice", "hmc", "rwm") and the
    MCMC settings are those of the returned posterior (sbi's defaults: slice, 20 chains, 200
    warm-up steps, start by likelihood-weighted resampling of prior draws), plus iterated-SIR jumps
    between modes (MCMC.10-MCMC.12) and the convergence check of every run (MCMC.13); the
    posterior saves and loads (:meth:`MCMCPosterior.save`, :meth:`MCMCPosterior.load`).

    No ``embedding=``: the flow models the density of x itself (a jointly learned summary would
    let the likelihood grow without bound by collapsing the summary; an embedding of theta is just
    the conditioner). Structured x (sets (n, k, d), maps (n, c, h, w)) is refused: flatten it, pass
    an iid set's members as iid observations (train on single draws), or train on a fixed summary
    s(x) (derivations/sbi.md, section 4).
    """

    def __init__(self, prior, *, flow: str = "nsf", n_transforms: int = 5, hidden=50,
                 activation: str = "tanh", method: str = "slice", n_chains: int = 20,
                 n_warmup: int = 200, thin: int = 1) -> None:
        self.prior = check_prior(prior)
        self.flow_kind = check_choice(flow, "flow", FLOWS)
        self.n_transforms = check_int(n_transforms, "n_transforms", low=1)
        self.hidden = hidden
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.method = check_choice(method, "method", ("slice", "hmc", "rwm"))
        self.mcmc = dict(n_chains=check_int(n_chains, "n_chains", low=1),
                         n_warmup=check_int(n_warmup, "n_warmup", low=0),
                         thin=check_int(thin, "thin", low=1))
        self.flow = None
        self.history_: dict | None = None

    def train(self, theta, x, *, rng=None, batch_size: int = 200, lr: float = 5e-4,
              validation_fraction: float = 0.1, patience: int = 20, max_epochs: int = 1000,
              clip: float | None = 5.0, progress: bool | None = None,
              dtype=np.float64) -> MCMCPosterior:
        """Fit q(x | theta) by maximum likelihood as ``flow.fit(x, context=theta)``; returns the
        MCMC posterior (SBI.13). Arguments as :meth:`nprefgen.sbi.npe.NPE.train` (z-scores from
        the training split, ``self.history_``, TrainingDivergedError on divergence, ``dtype``)."""
        if np.ndim(x) > 2:                # NLE's flow models x itself: no embedding (class doc)
            raise ValueError(f"x: expected shape (n, dx), got {np.shape(x)}; NLE models the "
                             f"density of x itself and takes no embedding network: flatten with "
                             f"x.reshape(len(x), -1), pass the members of an iid set as iid "
                             f"observations (train on single draws), or train on a fixed summary "
                             f"s(x) (handcrafted, or an embedding trained with NPE/NRE)")
        theta, x = check_training_pairs(theta, x, self.prior)
        rng = check_rng(rng)
        fit_conditional_flow(self, x, theta, rng=rng, z_score_data=True, z_score_context=True,
                             batch_size=batch_size, lr=lr,
                             validation_fraction=validation_fraction, patience=patience,
                             max_epochs=max_epochs, clip=clip, progress=progress, dtype=dtype)
        return self.posterior()

    def posterior(self, method: str | None = None, **mcmc) -> MCMCPosterior:
        """The MCMC posterior of the trained likelihood; ``method`` and ``mcmc`` (any keyword of
        :class:`MCMCPosterior`: n_chains, n_warmup, thin, jump_every, ...) override the defaults, e.g. fewer chains per observation for a batched
        calibration run."""
        if self.flow is None:
            raise ValueError("flow: expected a trained likelihood; call train() first (a "
                             "diverged training run leaves none)")
        method = self.method if method is None else method
        like = FlowLikelihood(self.flow)
        return MCMCPosterior(self.prior, like, self.flow.dim, grad_log_likelihood=like.grad,
                             method=method, **{**self.mcmc, **mcmc})
