"""Posterior objects: ``sample(n, x=None, *, rng=None)``, ``sample_batched(n, xs, *, rng=None)``,
``log_prob(theta, x=None)``; ``rng`` is None, an int seed or a Generator (SPEC 7).

* :class:`DirectPosterior` (NPE): a conditional flow q(theta | x) restricted to the prior support
  (SBI.10); exact sampling by rejection, with the acceptance rate reported.
* :class:`MCMCPosterior`: any explicit (or learned) likelihood times the prior, sampled by MCMC
  (SBI.11): the Gaussian-likelihood baseline and NLE. Slice sampling by default, HMC when the
  likelihood returns its gradient; many observations are sampled in one batched run.

Observations: ``x`` is one observation (dx,) or a set of iid observations (n_iid, dx) (MCMC
posteriors only: NPE's q(theta | x) is conditioned on one x). ``sample_batched`` takes many
observations (N, dx) (or (N, n_iid, dx)) and returns draws (N, n, p).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_alloc, check_array, check_choice, check_int, check_rng
from nprefgen.samplers import hmc, random_walk_metropolis, slice_sampling
from nprefgen.sbi.priors import check_theta


def _one_x(x, dim_x: int, default, name: str = "x") -> np.ndarray:
    if x is None:
        if default is None:
            raise ValueError(f"{name}: expected an observation of shape ({dim_x},), got None "
                             f"(pass x or call set_default_x)")
        return default
    x = check_array(x, name, ndim=(1, 2), dtype=np.float64)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.shape != (dim_x,):
        raise ValueError(f"{name}: expected one observation of shape ({dim_x},), got {x.shape}")
    return x


class DirectPosterior:
    """(SBI.10) q(theta | x) 1[theta in supp p] / Z(x), Z(x) = P_q(theta in supp | x).

    Parameters
    ----------
    flow : conditional :class:`nprefgen.flows.Flow` over theta with context x.
    prior : the prior (its support truncates q).
    """

    def __init__(self, flow, prior, max_rounds: int = 100) -> None:
        self.flow = flow
        self.prior = prior
        self.dim_theta = flow.dim
        self.dim_x = flow.context_dim
        self.default_x = None
        self.max_rounds = max_rounds
        self.acceptance_rate: float | None = None     # of the last sample() / sample_batched()

    def set_default_x(self, x) -> "DirectPosterior":
        self.default_x = _one_x(x, self.dim_x, None)
        return self

    def save(self, path) -> None:
        """Save the trained flow (weights, z-scoring buffers, configuration) to ``.npz``,
        atomically: a failed save leaves an existing file byte-identical (Flow.save)."""
        self.flow.save(path)

    @classmethod
    def load(cls, path, prior) -> "DirectPosterior":
        """Rebuild a posterior saved by :meth:`save`; the prior is passed again (it is code).

        A file that is not a conditional flow over the prior's parameters raises ValueError
        naming ``path`` (corrupt files too, see :func:`nprefgen.flows.load_flow`)."""
        from nprefgen.flows import load_flow

        flow = load_flow(path)
        dim = getattr(prior, "dim", None)
        if not flow.context_dim or (dim is not None and flow.dim != dim):
            raise ValueError(f"path: {str(path)!r} holds a flow over {flow.dim} parameters with "
                             f"context size {flow.context_dim}; a posterior for this prior needs "
                             f"a conditional flow over {dim} parameters")
        return cls(flow, prior)

    def sample(self, n: int, x=None, *, rng=None) -> np.ndarray:
        """n draws (n, p) for one observation x (dx,) (None: the default x); outside-prior draws
        are rejected."""
        return self.sample_batched(n, _one_x(x, self.dim_x, self.default_x)[None], rng=rng)[0]

    def sample_batched(self, n: int, xs, *, rng=None) -> np.ndarray:
        """n draws for each of N observations xs (N, dx) -> (N, n, p), in vectorised rounds."""
        xs = check_array(xs, "xs", ndim=2, dtype=np.float64)
        if xs.shape[1] != self.dim_x:
            raise ValueError(f"xs: expected shape (N, {self.dim_x}), got {xs.shape}")
        n = check_int(n, "n", low=1)
        check_alloc((xs.shape[0], n, self.dim_theta), "n")
        rng = check_rng(rng)
        n_obs = xs.shape[0]
        out = np.empty((n_obs, n, self.dim_theta))
        have = np.zeros(n_obs, dtype=int)
        drawn = accepted = 0
        rate = np.ones(n_obs)
        for _ in range(self.max_rounds):
            need = n - have
            active = np.flatnonzero(need > 0)
            if active.size == 0:
                break
            per = np.minimum(np.ceil(1.2 * need[active] / np.maximum(rate[active], 1e-3)) + 2,
                             50 * n).astype(int)
            context = np.repeat(xs[active], per, axis=0)
            theta = self.flow.sample(context.shape[0], context, rng=rng)
            ok = self.prior.in_support(theta)                 # (SBI.10) rejection
            drawn += theta.shape[0]
            accepted += int(ok.sum())
            owner = np.repeat(active, per)
            for j, i in enumerate(active):
                rows = theta[(owner == i) & ok]
                rate[i] = max(rows.shape[0] / per[j], 1e-3)
                take = min(rows.shape[0], need[i])
                out[i, have[i]:have[i] + take] = rows[:take]
                have[i] += take
        else:
            self.acceptance_rate = accepted / max(drawn, 1)
            raise RuntimeError(f"DirectPosterior.sample: rejection sampling failed: after "
                               f"{self.max_rounds} rounds only {int(have.min())} of the n={n} "
                               f"requested draws fell inside the prior support (acceptance "
                               f"rate {self.acceptance_rate:.2e}, {drawn} draws); the estimator "
                               f"puts almost all its mass outside the prior for this x (SBI.10). "
                               f"Train longer or on more simulations, check that x resembles "
                               f"the training simulations, or raise max_rounds")
        self.acceptance_rate = accepted / max(drawn, 1)
        return out

    def estimate_acceptance(self, x=None, *, rng=None, n: int = 10000) -> float:
        """(SBI.10) Z(x) by Monte Carlo: the fraction of n draws of q(.|x) inside the prior
        (x: (dx,), None: the default x)."""
        x = _one_x(x, self.dim_x, self.default_x)
        n = check_int(n, "n", low=1)
        check_alloc((n, self.dim_theta), "n")
        theta = self.flow.sample(n, x, rng=check_rng(rng))
        return float(np.mean(self.prior.in_support(theta)))

    def log_prob(self, theta, x=None, log_normalizer: float = 0.0) -> np.ndarray:
        """(SBI.10) log q(theta | x) - log Z, -inf outside the prior. theta: (m, p) -> (m,).

        ``log_normalizer`` = log Z(x) (e.g. ``np.log(post.estimate_acceptance(x, rng=rng))``);
        0 leaves the truncated density unnormalised (exact when no mass leaks).
        """
        theta = check_theta(theta, self.dim_theta)
        x = _one_x(x, self.dim_x, self.default_x)
        out = np.full(theta.shape[0], -np.inf)
        ok = self.prior.in_support(theta)
        if np.any(ok):
            out[ok] = self.flow.log_prob(theta[ok], x) - log_normalizer
        return out

    def log_prob_pairs(self, theta, xs) -> np.ndarray:
        """log q(theta_i | x_i) row by row (the held-out log-likelihood, SBI.12). -> (m,)."""
        theta = check_theta(theta, self.dim_theta)
        xs = check_array(xs, "xs", shape=(theta.shape[0], self.dim_x))
        out = np.full(theta.shape[0], -np.inf)
        ok = self.prior.in_support(theta)
        if np.any(ok):
            out[ok] = self.flow.log_prob(theta[ok], xs[ok])
        return out


class MCMCPosterior:
    """(SBI.11) p(theta | x_1..N) proportional to p(theta) prod_i L(x_i | theta), sampled by MCMC.

    Parameters
    ----------
    prior : the prior.
    log_likelihood : callable (theta: (m, p), x: (m, n_iid, dx)) -> log L: (m,) summed over the
        iid observations.
    dim_x : int, dx.
    grad_log_likelihood : callable, same arguments -> d log L / d theta: (m, p) (for "hmc").
    method : "slice" (default), "hmc" or "rwm".
    n_chains, n_warmup, thin : per observation; warm-up states are discarded.
    init : "resample" (draw ``n_init`` prior points, start the chains at a resample of them
        weighted by the likelihood, as sbi does) or "prior".
    """

    def __init__(self, prior, log_likelihood, dim_x: int, *, grad_log_likelihood=None,
                 method: str = "slice", n_chains: int = 20, n_warmup: int = 200, thin: int = 1,
                 init: str = "resample", n_init: int = 1000) -> None:
        if not callable(log_likelihood):
            raise ValueError("log_likelihood: expected a callable (theta, x) -> log L")
        self.prior = prior
        self.log_likelihood = log_likelihood
        self.dim_theta = prior.dim
        self.dim_x = check_int(dim_x, "dim_x", low=1)
        self.grad_log_likelihood = grad_log_likelihood
        self.method = check_choice(method, "method", ("slice", "hmc", "rwm"))
        if self.method == "hmc" and grad_log_likelihood is None:
            raise ValueError("method: 'hmc' needs grad_log_likelihood")
        self.n_chains = check_int(n_chains, "n_chains", low=1)
        self.n_warmup = check_int(n_warmup, "n_warmup", low=0)
        self.thin = check_int(thin, "thin", low=1)
        self.init = check_choice(init, "init", ("resample", "prior"))
        self.n_init = check_int(n_init, "n_init", low=1)
        self.default_x = None
        self.mcmc_result = None          # the MCMCResult of the last run (R-hat, ESS, ...)

    # -- observations ---------------------------------------------------------------------------
    def _x_set(self, x, name: str = "x") -> np.ndarray:
        """One observation (dx,) or an iid set (n_iid, dx) -> (n_iid, dx)."""
        if x is None:
            if self.default_x is None:
                raise ValueError(f"{name}: expected observations of shape ({self.dim_x},) or "
                                 f"(n_iid, {self.dim_x}), got None (pass x or call set_default_x)")
            return self.default_x
        x = check_array(x, name, ndim=(1, 2), dtype=np.float64)
        x = x[None] if x.ndim == 1 else x
        if x.shape[1] != self.dim_x:
            raise ValueError(f"{name}: expected shape ({self.dim_x},) or (n_iid, {self.dim_x}), "
                             f"got {x.shape}")
        return x

    def set_default_x(self, x) -> "MCMCPosterior":
        self.default_x = self._x_set(x)
        return self

    # -- the target -----------------------------------------------------------------------------
    def potential(self, theta, x_rows) -> np.ndarray:
        """(SBI.11) log p(theta) + sum_i log L(x_i | theta), -inf outside the prior.

        theta: (m, p), x_rows: (m, n_iid, dx) -> (m,)."""
        lp = self.prior.log_prob(theta)
        ok = np.isfinite(lp)
        if np.any(ok):
            lp[ok] += np.asarray(self.log_likelihood(theta[ok], x_rows[ok]), dtype=np.float64)
        return lp

    def grad_potential(self, theta, x_rows) -> np.ndarray:
        """(SBI.11a) grad_theta of the potential: prior gradient + likelihood gradient. (m, p)."""
        return self.prior.grad_log_prob(theta) + np.asarray(
            self.grad_log_likelihood(theta, x_rows), dtype=np.float64)

    def log_prob(self, theta, x=None) -> np.ndarray:
        """The *unnormalised* log posterior (SBI.11) at theta (m, p) for one observation set."""
        theta = check_theta(theta, self.dim_theta)
        xs = self._x_set(x)
        rows = np.broadcast_to(xs, (theta.shape[0],) + xs.shape)
        return self.potential(theta, rows)

    # -- sampling -------------------------------------------------------------------------------
    def _initial(self, x_sets, rng):
        """Chain starts: n_chains per observation set, (N * n_chains, p)."""
        n_obs = x_sets.shape[0]
        starts = np.empty((n_obs, self.n_chains, self.dim_theta))
        for i in range(n_obs):
            cand = self.prior.sample(self.n_init if self.init == "resample" else self.n_chains,
                                     rng=rng)
            if self.init == "prior":
                starts[i] = cand
                continue
            rows = np.broadcast_to(x_sets[i], (cand.shape[0],) + x_sets[i].shape)
            lp = self.potential(cand, rows)
            ok = np.isfinite(lp)
            if not np.any(ok):
                raise RuntimeError(
                    f"MCMCPosterior.sample: no starting point for observation {i}: the "
                    f"log-posterior is -inf or NaN at all {cand.shape[0]} prior draws (the "
                    f"likelihood vanishes or is not finite there); check that x resembles the "
                    f"simulations and that the likelihood is finite on the prior's support")
            w = np.where(ok, np.exp(np.where(ok, lp, 0.0) - np.max(lp[ok])), 0.0)
            w = w / w.sum()
            starts[i] = cand[rng.choice(cand.shape[0], self.n_chains, p=w)]
        return starts.reshape(-1, self.dim_theta)

    def sample(self, n: int, x=None, *, rng=None) -> np.ndarray:
        """n draws (n, p) given one observation (dx,) or an iid set x (n_iid, dx) (None: the
        default x)."""
        return self.sample_batched(n, self._x_set(x)[None], rng=rng)[0]

    def sample_batched(self, n: int, xs, *, rng=None) -> np.ndarray:
        """n draws for each of N observations: xs (N, dx) or (N, n_iid, dx) -> (N, n, p).

        All N * n_chains chains run in one lock-step MCMC run, chain c targeting the posterior
        of observation c // n_chains (``chain_index``)."""
        xs = check_array(xs, "xs", ndim=(2, 3), dtype=np.float64)
        xs = xs[:, None, :] if xs.ndim == 2 else xs
        if xs.shape[2] != self.dim_x:
            raise ValueError(f"xs: expected shape (N, {self.dim_x}) or (N, n_iid, {self.dim_x}), "
                             f"got {xs.shape}")
        n = check_int(n, "n", low=1)
        check_alloc((xs.shape[0], n, self.dim_theta), "n")        # the draws (N, n, p) and the
        check_alloc((xs.shape[0] * self.n_chains, -(-n // self.n_chains), self.dim_theta + 1),
                    "n")                                          # chains' kept states
        rng = check_rng(rng)
        n_obs, k = xs.shape[0], self.n_chains
        per_chain = int(np.ceil(n / k))
        x0 = self._initial(xs, rng)

        def lp(theta, chains):
            return self.potential(theta, xs[chains // k])

        def grad(theta, chains):
            return self.grad_potential(theta, xs[chains // k])

        steps = per_chain * self.thin
        if self.method == "slice":
            res = slice_sampling(lp, x0, steps, rng=rng, n_warmup=self.n_warmup, thin=self.thin,
                                 chain_index=True, width=self.prior.std)
        elif self.method == "hmc":
            res = hmc(lp, grad, x0, steps, rng=rng, n_warmup=self.n_warmup, thin=self.thin,
                      chain_index=True, step_size=0.1 * float(np.min(self.prior.std)))
        else:
            res = random_walk_metropolis(lp, x0, steps, rng=rng, n_warmup=self.n_warmup,
                                         thin=self.thin, chain_index=True, scale=self.prior.std)
        self.mcmc_result = res
        self._n_obs = n_obs
        draws = res.samples.reshape(n_obs, k, per_chain, self.dim_theta)
        # interleave chains so that the first n draws come from every chain
        draws = draws.transpose(0, 2, 1, 3).reshape(n_obs, k * per_chain, self.dim_theta)
        return draws[:, :n]

    def convergence(self) -> dict:
        """Split R-hat (MCMC.8) and ESS (MCMC.9) of the last run, per observation: each
        observation's chains are a group of their own (chains of different observations target
        different posteriors). -> {"rhat": (N, p), "ess": (N, p)}."""
        from nprefgen.samplers import effective_sample_size, split_rhat

        if self.mcmc_result is None:
            raise ValueError("mcmc_result: sample first")
        s = self.mcmc_result.samples
        groups = s.reshape(self._n_obs, self.n_chains, s.shape[1], s.shape[2])
        return {"rhat": np.stack([split_rhat(g) for g in groups]),
                "ess": np.stack([effective_sample_size(g) for g in groups])}
