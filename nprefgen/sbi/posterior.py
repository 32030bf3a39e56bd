"""Posterior objects: ``sample(n, x=None, *, rng=None)``, ``sample_batched(n, xs, *, rng=None)``,
``log_prob(theta, x=None)``, ``save(path)`` / ``load(path, prior)``; ``rng`` is None, an int seed
or a Generator (SPEC 7).

* :class:`DirectPosterior` (NPE, this module): a conditional flow q(theta | x) restricted to the
  prior support (SBI.12); exact sampling by rejection. The acceptance rate -- the mass q keeps
  inside the prior -- is kept per observation (``acceptance_rates_``) and a
  :class:`LeakageWarning` names the observations where it falls below ``leakage_threshold``
  (0.9: more than 10 % of q's mass outside the prior).
* :class:`MCMCPosterior` (:mod:`nprefgen.sbi.mcmc_posterior`): the prior times a likelihood term,
  sampled by MCMC (SBI.13, MCMC.10-MCMC.13); re-exported here.
* Files (:mod:`nprefgen.sbi.posterior_files`): the format of both, ``register_likelihood`` and
  ``MCMC_KEY`` (re-exported here).

Observations: ``x`` is one observation (dx,) (NPE's q(theta | x) is conditioned on one x; MCMC
posteriors also take a set of iid observations (n_iid, dx)). ``sample_batched`` takes many
observations (N, dx) and returns draws (N, n, p).
"""
from __future__ import annotations

import warnings

import numpy as np

from nprefgen._validation import check_alloc, check_array, check_int, check_rng
from nprefgen.sbi.mcmc_posterior import MCMCPosterior  # noqa: F401  (re-export: the old path)
from nprefgen.sbi.posterior_files import (  # noqa: F401  (MCMC_KEY, register_likelihood: old path)
    MCMC_KEY, load_posterior_flow, register_likelihood,
)
from nprefgen.sbi.priors import check_prior, check_theta

LEAKAGE_THRESHOLD = 0.9


class LeakageWarning(UserWarning):
    """A DirectPosterior keeps less than ``leakage_threshold`` of its mass inside the prior for
    some observations (SBI.12): the estimator leaks mass there, so its truncated density is less
    trustworthy (more training, more simulations, or x unlike the training simulations)."""


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
    """(SBI.12) q(theta | x) 1[theta in supp p] / Z(x), Z(x) = P_q(theta in supp | x).

    Parameters
    ----------
    flow : conditional :class:`nprefgen.flows.Flow` over theta with context x.
    prior : the prior (its support truncates q; the prior protocol, nprefgen.sbi.priors).
    max_rounds : rejection rounds before giving up.
    leakage_threshold : warn (:class:`LeakageWarning`) for observations whose acceptance rate
        falls below it (default 0.9; 0 never warns).

    Attributes
    ----------
    acceptance_rate : float, the acceptance pooled over the observations of the last sample() /
        sample_batched().
    acceptance_rates_ : (N,) the acceptance rate per observation of the last run (estimates of
        Z(x_i), SBI.12), each from at least 1.2 n + 2 draws of q.
    diagnostics_ : {"acceptance": (N,), "leaking": indices below the threshold, "threshold"}.
    """

    def __init__(self, flow, prior, max_rounds: int = 100, *,
                 leakage_threshold: float = LEAKAGE_THRESHOLD) -> None:
        self.flow = flow
        self.prior = check_prior(prior)
        self.dim_theta = flow.dim
        self.dim_x = flow.context_dim
        self.default_x = None
        self.max_rounds = max_rounds
        self.leakage_threshold = float(leakage_threshold)
        if not 0.0 <= self.leakage_threshold <= 1.0:
            raise ValueError(f"leakage_threshold: expected a number in [0, 1], got "
                             f"{leakage_threshold!r}")
        self.acceptance_rate: float | None = None     # of the last sample() / sample_batched()
        self.acceptance_rates_: np.ndarray | None = None
        self.diagnostics_: dict | None = None

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

        A file that is not a conditional flow over the prior's parameters (e.g. an NLE
        posterior's likelihood, saved by :meth:`MCMCPosterior.save`) raises ValueError naming
        ``path`` (corrupt files too, see :func:`nprefgen.flows.load_flow`); the file format is
        :mod:`nprefgen.sbi.posterior_files`."""
        prior = check_prior(prior)
        return cls(load_posterior_flow(path, prior), prior)

    def sample(self, n: int, x=None, *, rng=None) -> np.ndarray:
        """n draws (n, p) for one observation x (dx,) (None: the default x); outside-prior draws
        are rejected."""
        return self.sample_batched(n, _one_x(x, self.dim_x, self.default_x)[None], rng=rng)[0]

    def sample_batched(self, n: int, xs, *, rng=None) -> np.ndarray:
        """n draws for each of N observations xs (N, dx) -> (N, n, p), in vectorised rounds.

        Keeps the acceptance rate per observation in ``acceptance_rates_`` (N,) and warns
        (:class:`LeakageWarning`) naming the observations below ``leakage_threshold``."""
        xs = check_array(xs, "xs", ndim=2, dtype=np.float64)
        if xs.shape[1] != self.dim_x:
            raise ValueError(f"xs: expected shape (N, {self.dim_x}), got {xs.shape}")
        n = check_int(n, "n", low=1)
        check_alloc((xs.shape[0], n, self.dim_theta), "n")
        rng = check_rng(rng)
        n_obs = xs.shape[0]
        out = np.empty((n_obs, n, self.dim_theta))
        have = np.zeros(n_obs, dtype=int)
        drawn_i = np.zeros(n_obs, dtype=np.int64)         # per observation (SBI.12)
        accepted_i = np.zeros(n_obs, dtype=np.int64)
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
            ok = np.asarray(self.prior.in_support(theta), dtype=bool)   # (SBI.12) rejection
            owner = np.repeat(active, per)
            drawn_i += np.bincount(owner, minlength=n_obs)
            accepted_i += np.bincount(owner[ok], minlength=n_obs)
            for j, i in enumerate(active):
                rows = theta[(owner == i) & ok]
                rate[i] = max(rows.shape[0] / per[j], 1e-3)
                take = min(rows.shape[0], need[i])
                out[i, have[i]:have[i] + take] = rows[:take]
                have[i] += take
        else:
            self._record_acceptance(drawn_i, accepted_i, warn=False)
            raise RuntimeError(f"DirectPosterior.sample: rejection sampling failed: after "
                               f"{self.max_rounds} rounds only {int(have.min())} of the n={n} "
                               f"requested draws fell inside the prior support (acceptance "
                               f"rate {self.acceptance_rate:.2e}, {int(drawn_i.sum())} draws); "
                               f"the estimator puts almost all its mass outside the prior for "
                               f"this x (SBI.12). Train longer or on more simulations, check "
                               f"that x resembles the training simulations, or raise max_rounds")
        self._record_acceptance(drawn_i, accepted_i, warn=True)
        return out

    def _record_acceptance(self, drawn_i, accepted_i, *, warn: bool) -> None:
        """acceptance_rate (pooled), acceptance_rates_ (N,), diagnostics_; warn past the bar."""
        self.acceptance_rate = float(accepted_i.sum() / max(drawn_i.sum(), 1))
        rates = accepted_i / np.maximum(drawn_i, 1)
        self.acceptance_rates_ = rates
        leaking = np.flatnonzero(rates < self.leakage_threshold)
        self.diagnostics_ = {"acceptance": rates, "leaking": leaking,
                             "threshold": self.leakage_threshold}
        if warn and leaking.size:
            worst = int(leaking[np.argmin(rates[leaking])])
            warnings.warn(
                f"DirectPosterior: the estimator leaks mass outside the prior for "
                f"{leaking.size} of {rates.size} observations (indices "
                f"{leaking[:10].tolist()}{' ...' if leaking.size > 10 else ''}): acceptance "
                f"below {self.leakage_threshold:g}, lowest {rates[worst]:.3f} at observation "
                f"{worst} (SBI.12). The draws are exact for the truncated q, but q misplaces "
                f"{1 - rates[worst]:.0%} of its mass there: train longer or on more simulations, "
                f"or check that x resembles the training simulations. Per-observation rates: "
                f"posterior.acceptance_rates_", LeakageWarning, stacklevel=3)

    def estimate_acceptance(self, x=None, *, rng=None, n: int = 10000) -> float:
        """(SBI.12) Z(x) by Monte Carlo: the fraction of n draws of q(.|x) inside the prior
        (x: (dx,), None: the default x)."""
        x = _one_x(x, self.dim_x, self.default_x)
        n = check_int(n, "n", low=1)
        check_alloc((n, self.dim_theta), "n")
        theta = self.flow.sample(n, x, rng=check_rng(rng))
        return float(np.mean(self.prior.in_support(theta)))

    def log_prob(self, theta, x=None, log_normalizer: float = 0.0) -> np.ndarray:
        """(SBI.12) log q(theta | x) - log Z, -inf outside the prior. theta: (m, p) -> (m,).

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
        """log q(theta_i | x_i) row by row (the held-out log-likelihood, SBI.14). -> (m,)."""
        theta = check_theta(theta, self.dim_theta)
        xs = check_array(xs, "xs", shape=(theta.shape[0], self.dim_x))
        out = np.full(theta.shape[0], -np.inf)
        ok = self.prior.in_support(theta)
        if np.any(ok):
            out[ok] = self.flow.log_prob(theta[ok], xs[ok])
        return out
