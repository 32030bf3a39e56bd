"""The MCMC posterior (SBI.13): the prior times a likelihood term, sampled by MCMC.

:class:`MCMCPosterior` serves the Gaussian-likelihood baseline, NLE, and any learned term (e.g.
NRE's log-ratio). Its target is the potential (SBI.13) log p(theta) + sum_i log L(x_i | theta),
with the gradient (SBI.13a) for HMC. Chains start by sampling-importance-resampling from the prior
(as sbi does), run slice sampling (or HMC / random-walk Metropolis) interleaved with iterated-SIR
jumps between modes (MCMC.10-MCMC.12), and check their own split R-hat and ESS after every run
(MCMC.13): the numbers are kept in ``diagnostics_`` and a
:class:`nprefgen.samplers.MCMCConvergenceWarning` says when they fail.

The likelihood term is any callable

    log_likelihood(theta: (m, p), x: (m, n_iid, dx)) -> (m,)

equal to sum_i log p(x_i | theta) up to a constant in theta: a flow's log q(x | theta) (NLE,
:class:`nprefgen.sbi.nle.FlowLikelihood`), a classifier's log-ratio log r(x, theta) = log p(x |
theta) - log p(x) (NRE), or a closed form. ``grad_log_likelihood`` (same arguments -> (m, p)) is
needed only for HMC. For ``save``/``load`` the term must be an instance of a class registered with
:func:`nprefgen.sbi.posterior_files.register_likelihood` (the file format is
:mod:`nprefgen.sbi.posterior_files`).

Observations: ``x`` is one observation (dx,) or a set of iid observations (n_iid, dx);
``sample_batched`` takes many observations (N, dx) or (N, n_iid, dx) and returns draws (N, n, p).
"""
from __future__ import annotations

import warnings

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen._validation import check_alloc, check_array, check_choice, check_int, check_rng
from nprefgen.samplers import (
    ISIRMove, MCMCConvergenceWarning, convergence_check, hmc, random_walk_metropolis, rhat_bar,
    slice_sampling,
)
from nprefgen.sbi.posterior_files import load_mcmc_posterior, save_mcmc_posterior
from nprefgen.sbi.priors import check_prior, check_theta, prior_scale


class MCMCPosterior:
    """(SBI.13) p(theta | x_1..N) proportional to p(theta) prod_i L(x_i | theta), sampled by MCMC.

    Parameters
    ----------
    prior : the prior (the prior protocol, nprefgen.sbi.priors).
    log_likelihood : callable (theta: (m, p), x: (m, n_iid, dx)) -> log L: (m,) summed over the
        iid observations, up to a constant in theta (see the module docstring).
    dim_x : int, dx.
    grad_log_likelihood : callable, same arguments -> d log L / d theta: (m, p) (for "hmc").
    method : "slice" (default), "hmc" or "rwm".
    n_chains, n_warmup, thin : per observation; warm-up states are discarded. 20 chains (sbi's
        default) with the jumps estimate mode weights to a few percent from 1000 draws; R-hat
        needs a few hundred draws per chain to settle below its bar when chains jump between
        modes (benchmarks/RESULTS.md).
    init : "resample" (draw ``n_init`` prior points, start the chains at a resample of them
        weighted by the likelihood exp(potential - log prior), as sbi does) or "prior".
    jump_every : an iterated-SIR jump from the prior (MCMC.10-MCMC.12) after every
        ``jump_every`` sweeps of the local sampler, in the kept phase and the last
        min(n_warmup / 2, 50) warm-up sweeps, so chains cross between modes (default 1; 0 turns
        the jumps off).
    n_jump_proposals : fresh prior draws per chain and jump (K - 1 of MCMC.10, default 100; all
        chains' proposals go through the likelihood in one call, so a network's per-call cost is
        paid once per sweep).
    rhat_max, ess_min : the convergence bars (MCMC.13); None: :func:`nprefgen.samplers.rhat_bar`
        (1.05, or the 99 % fluctuation of independent draws for short runs, Bonferroni-corrected
        over observations and parameters) and :func:`nprefgen.samplers.ess_bar` (min(100, a
        tenth of the kept draws)).

    Attributes
    ----------
    mcmc_result : the :class:`nprefgen.samplers.MCMCResult` of the last run.
    diagnostics_ : after every run, per observation: {"rhat": (N, p), "ess": (N, p),
        "rhat_max": (N,), "ess_min": (N,), "ok": (N,) bool, "rhat_bar", "ess_bar",
        "jump_rate": (N,) the fraction of jumps that moved a chain, "n_chains", "kept_per_chain",
        "failed": indices of the observations that fail}; an
        :class:`nprefgen.samplers.MCMCConvergenceWarning` names the failing observations.
    """

    def __init__(self, prior, log_likelihood, dim_x: int, *, grad_log_likelihood=None,
                 method: str = "slice", n_chains: int = 20, n_warmup: int = 200, thin: int = 1,
                 init: str = "resample", n_init: int = 1000, jump_every: int = 1,
                 n_jump_proposals: int = 100, rhat_max: float | None = None,
                 ess_min: float | None = None) -> None:
        if not callable(log_likelihood):
            raise ValueError("log_likelihood: expected a callable (theta, x) -> log L")
        self.method = check_choice(method, "method", ("slice", "hmc", "rwm"))
        self.prior = check_prior(prior, needs=("grad_log_prob",) if self.method == "hmc" else ())
        self.log_likelihood = log_likelihood
        self.dim_theta = int(prior.dim)
        self.dim_x = check_int(dim_x, "dim_x", low=1)
        self.grad_log_likelihood = grad_log_likelihood
        if self.method == "hmc" and grad_log_likelihood is None:
            raise ValueError("method: 'hmc' needs grad_log_likelihood")
        self.n_chains = check_int(n_chains, "n_chains", low=1)
        self.n_warmup = check_int(n_warmup, "n_warmup", low=0)
        self.thin = check_int(thin, "thin", low=1)
        self.init = check_choice(init, "init", ("resample", "prior"))
        self.n_init = check_int(n_init, "n_init", low=1)
        self.jump_every = check_int(jump_every, "jump_every", low=0)
        self.n_jump_proposals = check_int(n_jump_proposals, "n_jump_proposals", low=1)
        for name, v in (("rhat_max", rhat_max), ("ess_min", ess_min)):
            if v is not None and not (np.isscalar(v) and np.isfinite(v) and v >= 0):
                raise ValueError(f"{name}: expected None or a finite number >= 0, got {v!r}")
        self.rhat_max, self.ess_min = rhat_max, ess_min
        self.default_x = None
        self.mcmc_result = None          # the MCMCResult of the last run
        self.diagnostics_: dict | None = None

    def settings(self) -> dict:
        """The sampler settings (what :meth:`save` stores beside the likelihood)."""
        return {"method": self.method, "n_chains": self.n_chains, "n_warmup": self.n_warmup,
                "thin": self.thin, "init": self.init, "n_init": self.n_init,
                "jump_every": self.jump_every, "n_jump_proposals": self.n_jump_proposals,
                "rhat_max": self.rhat_max, "ess_min": self.ess_min}

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
        """(SBI.13) log p(theta) + sum_i log L(x_i | theta), -inf outside the prior.

        theta: (m, p), x_rows: (m, n_iid, dx) -> (m,)."""
        lp = np.array(self.prior.log_prob(theta), dtype=np.float64)
        ok = np.isfinite(lp)
        if np.any(ok):
            lp[ok] += np.asarray(self.log_likelihood(theta[ok], x_rows[ok]), dtype=np.float64)
        return lp

    def grad_potential(self, theta, x_rows) -> np.ndarray:
        """(SBI.13a) grad_theta of the potential: prior gradient + likelihood gradient. (m, p)."""
        return self.prior.grad_log_prob(theta) + np.asarray(
            self.grad_log_likelihood(theta, x_rows), dtype=np.float64)

    def log_prob(self, theta, x=None) -> np.ndarray:
        """The *unnormalised* log posterior (SBI.13) at theta (m, p) for one observation set."""
        theta = check_theta(theta, self.dim_theta)
        xs = self._x_set(x)
        rows = np.broadcast_to(xs, (theta.shape[0],) + xs.shape)
        return self.potential(theta, rows)

    # -- sampling -------------------------------------------------------------------------------
    def _initial(self, x_sets, rng):
        """Chain starts: n_chains per observation set, (N * n_chains, p), by SIR from the prior:
        weights exp(potential - log prior) = the likelihood (the sbi package's "resample")."""
        n_obs = x_sets.shape[0]
        starts = np.empty((n_obs, self.n_chains, self.dim_theta))
        for i in range(n_obs):
            cand = self.prior.sample(self.n_init if self.init == "resample" else self.n_chains,
                                     rng=rng)
            if self.init == "prior":
                starts[i] = cand
                continue
            rows = np.broadcast_to(x_sets[i], (cand.shape[0],) + x_sets[i].shape)
            with np.errstate(invalid="ignore"):
                lw = self.potential(cand, rows) - self.prior.log_prob(cand)
            ok = np.isfinite(lw)
            if not np.any(ok):
                raise RuntimeError(
                    f"MCMCPosterior.sample: no starting point for observation {i}: the "
                    f"log-posterior is -inf or NaN at all {cand.shape[0]} prior draws (the "
                    f"likelihood vanishes or is not finite there); check that x resembles the "
                    f"simulations and that the likelihood is finite on the prior's support")
            w = np.where(ok, np.exp(np.where(ok, lw, 0.0) - np.max(lw[ok])), 0.0)
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
        of observation c // n_chains (``chain_index``); then each observation's chains are
        checked (MCMC.13, ``diagnostics_``)."""
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
        scale = prior_scale(self.prior)
        # jumps in the kept phase and the last min(n_warmup / 2, 50) warm-up sweeps (MCMC.12)
        start = self.n_warmup - min(self.n_warmup // 2, 50)
        jump = (ISIRMove(self.prior, self.n_jump_proposals, self.jump_every, start=start)
                if self.jump_every else None)
        common = dict(rng=rng, n_warmup=self.n_warmup, thin=self.thin, chain_index=True,
                      jump=jump)
        with blas_threads(1):        # many small products: BLAS threads only spin (_threads)
            if self.method == "slice":
                res = slice_sampling(lp, x0, steps, width=scale, **common)
            elif self.method == "hmc":
                res = hmc(lp, grad, x0, steps, step_size=0.1 * float(np.min(scale)), **common)
            else:
                res = random_walk_metropolis(lp, x0, steps, scale=scale, **common)
        self.mcmc_result = res
        self._n_obs = n_obs
        self._check_convergence(res, n_obs)
        draws = res.samples.reshape(n_obs, k, per_chain, self.dim_theta)
        # interleave chains so that the first n draws come from every chain
        draws = draws.transpose(0, 2, 1, 3).reshape(n_obs, k * per_chain, self.dim_theta)
        return draws[:, :n]

    def _check_convergence(self, res, n_obs: int) -> None:
        """(MCMC.13) split R-hat and ESS of each observation's chains -> ``diagnostics_``; an
        MCMCConvergenceWarning names the observations that fail (or that cannot be checked)."""
        s = res.samples
        k, kept, p = self.n_chains, s.shape[1], self.dim_theta
        groups = s.reshape(n_obs, k, kept, p)
        jr = res.extra.get("jump_rate")
        jump_rate = (np.full(n_obs, np.nan) if jr is None
                     else np.asarray(jr).reshape(n_obs, k).mean(axis=1))
        d = {"n_chains": k, "kept_per_chain": kept, "jump_rate": jump_rate,
             "rhat": np.full((n_obs, p), np.nan), "ess": np.full((n_obs, p), np.nan),
             "rhat_max": np.full(n_obs, np.nan), "ess_min": np.full(n_obs, np.nan),
             "ok": np.zeros(n_obs, dtype=bool), "rhat_bar": np.nan, "ess_bar": np.nan,
             "checked": kept >= 4}
        self.diagnostics_ = d
        if kept < 4:
            d["failed"] = np.arange(n_obs)
            warnings.warn(f"MCMCPosterior: convergence not checked: {kept} draws per chain "
                          f"({k} chains per observation), split R-hat needs at least 4; ask for "
                          f"n >= {4 * k} draws (or fewer chains) to check the chains",
                          MCMCConvergenceWarning, stacklevel=3)
            return
        # Bonferroni over the N p R-hat values, so that mixed chains pass at the 1 % level
        r_bar = (rhat_bar(k, kept, level=1.0 - 0.01 / (n_obs * p)) if self.rhat_max is None
                 else self.rhat_max)
        for i in range(n_obs):
            c = convergence_check(groups[i], rhat_max=r_bar, ess_min=self.ess_min)
            d["rhat"][i], d["ess"][i] = c["rhat"], c["ess"]
            d["rhat_max"][i], d["ess_min"][i], d["ok"][i] = c["rhat_max"], c["ess_min"], c["ok"]
            d["rhat_bar"], d["ess_bar"] = c["rhat_bar"], c["ess_bar"]
        failed = np.flatnonzero(~d["ok"])
        d["failed"] = failed
        if failed.size:
            worst = int(failed[np.argmax(d["rhat_max"][failed])])
            warnings.warn(
                f"MCMCPosterior: the chains of {failed.size} of {n_obs} observations did not "
                f"converge (indices {failed[:10].tolist()}{' ...' if failed.size > 10 else ''}): "
                f"split R-hat up to {d['rhat_max'][worst]:.3g} (bar {d['rhat_bar']:.3g}), ESS "
                f"down to {np.min(d['ess_min'][failed]):.0f} (bar {d['ess_bar']:.0f}) from {k} "
                f"chains x {kept} draws (MCMC.13). Chains stuck in different modes or too short "
                f"misrepresent the posterior: ask for more draws (n) or warm-up (n_warmup), "
                f"jump between modes more often (jump_every, n_jump_proposals), or use more "
                f"chains (n_chains); per-observation numbers in posterior.diagnostics_",
                MCMCConvergenceWarning, stacklevel=3)

    def convergence(self) -> dict:
        """Split R-hat (MCMC.8) and ESS (MCMC.9) of the last run, per observation: each
        observation's chains are a group of their own (chains of different observations target
        different posteriors). -> {"rhat": (N, p), "ess": (N, p)} (all of it in
        ``diagnostics_``)."""
        if self.mcmc_result is None or self.diagnostics_ is None:
            raise ValueError("mcmc_result: sample first")
        return {"rhat": self.diagnostics_["rhat"], "ess": self.diagnostics_["ess"]}

    # -- files (nprefgen.sbi.posterior_files) ---------------------------------------------------
    def save(self, path) -> None:
        """Save the likelihood term and the sampler settings to one ``.npz``, atomically (a failed
        save leaves an existing file byte-identical); needs a registered term (NLE's
        FlowLikelihood: the flow's weights, buffers and configuration)."""
        save_mcmc_posterior(self, path)

    @classmethod
    def load(cls, path, prior) -> "MCMCPosterior":
        """Rebuild a posterior saved by :meth:`save`; the prior is passed again (it is code).

        All or nothing: the settings, the term's file (e.g. the flow's weights, buffers and
        configuration) and the dimensions against ``prior`` are validated before the posterior
        is built; a bad file raises ValueError naming ``path``. Never unpickles."""
        return load_mcmc_posterior(cls, path, check_prior(prior))
