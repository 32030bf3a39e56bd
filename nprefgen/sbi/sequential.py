"""Sequential inference for one observation: TSNPE and SNLE (derivations/sbi.md, SBI.26-SBI.28).

Both split a simulation budget into rounds. Round 1 simulates from the prior; each later round
simulates where the current estimate puts the posterior of ``x_o``, and the estimator is
retrained (from scratch) on all pairs so far.

* :class:`TSNPE` (Deistler, Goncalves & Macke 2022): the proposal of round r is the prior
  truncated to the highest-probability region of the current NPE estimate, {theta : log q(theta |
  x_o) >= tau_r} with tau_r the epsilon-quantile of log q over draws of q (SBI.26), sampled by
  rejection from the prior (the acceptance rate is the prior mass of the region). The plain NPE
  loss stays valid (SBI.27): on the region that holds the posterior the mixture of truncated
  priors is the prior times a constant.
* :class:`SNLE` (Papamakarios, Sterratt & Murray 2019): the proposal of round r is the current
  MCMC posterior; NLE's maximum-likelihood loss is minimised by the likelihood whatever the
  proposal (SBI.28).

Every round is recorded in ``history_["rounds"]`` (a list of dicts: the proposal, the numbers of
simulations requested, kept and in total, the truncation's acceptance rate and threshold or the
chains' R-hat and ESS, the proposal's spread, the training epochs and the seconds spent).
"""
from __future__ import annotations

import time

import numpy as np

from nprefgen._validation import check_array, check_int, check_rng, check_scalar
from nprefgen.sbi.nle import NLE
from nprefgen.sbi.npe import NPE
from nprefgen.sbi.simulate import simulate

MIN_PER_ROUND = 10          # simulations a round needs at least (a validation split and a batch)


def split_budget(num_simulations: int, rounds: int) -> list[int]:
    """Equal rounds, the remainder to the first: ``split_budget(1003, 4) == [253, 250, 250, 250]``.

    ``rounds`` >= 1; each round gets at least MIN_PER_ROUND simulations, else ValueError naming
    ``num_simulations``."""
    rounds = check_int(rounds, "rounds", low=1)
    num_simulations = check_int(num_simulations, "num_simulations", low=1)
    per = num_simulations // rounds
    if per < MIN_PER_ROUND:
        raise ValueError(f"num_simulations: expected at least {MIN_PER_ROUND} per round "
                         f"({MIN_PER_ROUND * rounds} for rounds={rounds}), got {num_simulations}")
    return [per + num_simulations - per * rounds] + [per] * (rounds - 1)


def hpd_threshold(log_q, epsilon: float) -> float:
    """(SBI.26) tau: the epsilon-quantile of log q(theta_i | x_o) over draws theta_i of q, so that
    the super-level set {log q >= tau} holds 1 - epsilon of q's mass. log_q: (n,) -> float."""
    log_q = check_array(log_q, "log_q", ndim=1)
    epsilon = check_scalar(epsilon, "epsilon", low=0.0, high=1.0, low_inclusive=False,
                           high_inclusive=False)
    return float(np.quantile(log_q, epsilon, method="lower"))


def truncated_prior_sample(prior, log_q, threshold: float, n: int, *, rng=None,
                           max_draws: int = 10_000_000, chunk: int = 100_000):
    """(SBI.26) n draws of the prior restricted to {theta : log_q(theta) >= threshold}, by
    rejection from the prior.

    log_q : callable theta (m, p) -> (m,). Returns ``(theta (n, p), acceptance, n_drawn)``, the
    acceptance rate being an unbiased estimate of the region's prior mass. More than
    ``max_draws`` prior draws raise RuntimeError (the region has almost no prior mass).
    """
    n = check_int(n, "n", low=1)
    rng = check_rng(rng)
    kept, n_kept, drawn = [], 0, 0
    while n_kept < n:
        if drawn >= max_draws:
            raise RuntimeError(f"truncated_prior_sample: only {n_kept} of {n} prior draws fell in "
                               f"the region after {drawn} draws (prior mass "
                               f"{n_kept / max(drawn, 1):.2e}); the estimate is far narrower "
                               f"than the prior: use fewer rounds or raise max_draws")
        rate = max(n_kept / drawn, 1e-4) if drawn else 1.0
        m = int(min(chunk, max(1000, 1.2 * (n - n_kept) / rate)))
        theta = prior.sample(m, rng=rng)
        ok = np.asarray(log_q(theta)) >= threshold
        kept.append(theta[ok])
        n_kept += int(ok.sum())
        drawn += m
    # acceptance from every draw made (the last chunk may overshoot n; the extra are dropped)
    return np.concatenate(kept)[:n], n_kept / drawn, drawn


class _Sequential:
    """The round loop shared by TSNPE and SNLE; subclasses give ``_estimator()``,
    ``_propose(n, x_o, rng) -> (theta, record)`` and ``_label``."""

    def __init__(self, prior, simulator) -> None:
        if not callable(simulator):
            raise ValueError(f"simulator: expected a callable (theta, rng) -> x, got "
                             f"{type(simulator).__name__}")
        self.prior = prior
        self.simulator = simulator
        self.history_: dict | None = None
        self.posterior_ = None
        self.estimator_ = None

    def run(self, x_o, *, num_simulations: int, rounds: int = 10, rng=None,
            **train_kwargs):
        """Spend ``num_simulations`` in ``rounds`` equal rounds for the observation x_o (dx,);
        returns the posterior of the last round (also ``self.posterior_``).

        rng : SPEC 7 seed or Generator (proposals, simulations, training, MCMC).
        train_kwargs : passed to the estimator's ``train`` (lr, max_epochs, patience, ...).
        ``history_["rounds"]`` lists one dict per round; ``theta_``, ``x_`` hold every pair.
        """
        x_o = check_array(x_o, "x_o", ndim=(1, 2), dtype=np.float64)
        if x_o.ndim == 2:
            if x_o.shape[0] != 1:
                raise ValueError(f"x_o: expected one observation (dx,), got shape {x_o.shape}")
            x_o = x_o[0]
        budget = split_budget(num_simulations, rounds)
        rng = check_rng(rng)
        self.history_ = {"rounds": [], "num_simulations": 0, "method": self._label}
        thetas, xs, posterior = [], [], None
        for r, n_r in enumerate(budget, start=1):
            t0 = time.perf_counter()
            if posterior is None:
                theta, record = self.prior.sample(n_r, rng=rng), {"proposal": "prior",
                                                                   "acceptance": 1.0}
            else:
                theta, record = self._propose(posterior, n_r, x_o, rng)
            sims = simulate(self.simulator, theta, rng=rng)
            if r == 1 and (sims.x.ndim != 2 or sims.x.shape[1:] != x_o.shape):
                raise ValueError(f"x_o: expected shape {sims.x.shape[1:]} like the simulations "
                                 f"(shape {sims.x.shape}), got {x_o.shape}")
            thetas.append(sims.theta)
            xs.append(sims.x)
            self.theta_, self.x_ = np.concatenate(thetas), np.concatenate(xs)
            estimator = self._estimator()
            posterior = estimator.train(self.theta_, self.x_, rng=rng, **train_kwargs)
            self.history_["num_simulations"] += n_r
            hist = estimator.history_ or {}
            record.update(round=r, n_simulations=n_r, n_valid=int(sims.theta.shape[0]),
                          n_dropped=int(sims.n_dropped), n_total=int(self.theta_.shape[0]),
                          proposal_std=sims.theta.std(axis=0).tolist(),
                          epochs=hist.get("epochs"),
                          best_val_loss=float(np.min(hist["val_loss"]))
                          if hist.get("val_loss") else None,
                          seconds=time.perf_counter() - t0)
            self.history_["rounds"].append(record)
            self.estimator_, self.posterior_ = estimator, posterior
        return posterior


class TSNPE(_Sequential):
    """Truncated sequential NPE (SBI.26, SBI.27): ``TSNPE(prior, simulator).run(x_o,
    num_simulations=n, rounds=R, rng=rng)`` -> DirectPosterior.

    Parameters
    ----------
    prior, simulator : the prior and ``simulator(theta (m, p), rng) -> x (m, dx)``.
    epsilon : mass of the current estimate left outside the truncation region (1e-4, as
        Deistler et al. and sbi).
    n_support : draws of the estimate used to set the threshold (10,000 as sbi).
    npe_kwargs : the NPE's settings (flow, n_transforms, hidden, activation, ...).
    """

    _label = "TSNPE"

    def __init__(self, prior, simulator, *, epsilon: float = 1e-4, n_support: int = 10_000,
                 **npe_kwargs) -> None:
        super().__init__(prior, simulator)
        self.epsilon = check_scalar(epsilon, "epsilon", low=0.0, high=1.0, low_inclusive=False,
                                    high_inclusive=False)
        self.n_support = check_int(n_support, "n_support", low=2)
        self.npe_kwargs = npe_kwargs
        self._estimator()                     # bad NPE settings fail here, before simulating

    def _estimator(self) -> NPE:
        return NPE(self.prior, **self.npe_kwargs)

    def _propose(self, posterior, n, x_o, rng):
        draws = posterior.sample(self.n_support, x_o, rng=rng)
        tau = hpd_threshold(posterior.log_prob(draws, x_o), self.epsilon)       # (SBI.26)
        theta, acc, drawn = truncated_prior_sample(
            self.prior, lambda t: posterior.log_prob(t, x_o), tau, n, rng=rng)
        return theta, {"proposal": f"prior truncated to the {1 - self.epsilon:g} HPD region",
                       "acceptance": float(acc), "prior_draws": int(drawn), "threshold": tau,
                       "flow_acceptance": posterior.acceptance_rate}


class SNLE(_Sequential):
    """Sequential NLE (SBI.28): rounds draw theta from the current MCMC posterior at x_o;
    ``SNLE(prior, simulator).run(x_o, num_simulations=n, rounds=R, rng=rng)`` -> MCMCPosterior.

    nle_kwargs : the NLE's settings (flow, n_transforms, hidden, method, n_chains, n_warmup,
    thin); the proposal draws use the same MCMC settings.
    """

    _label = "SNLE"

    def __init__(self, prior, simulator, **nle_kwargs) -> None:
        super().__init__(prior, simulator)
        self.nle_kwargs = nle_kwargs
        self._estimator()

    def _estimator(self) -> NLE:
        return NLE(self.prior, **self.nle_kwargs)

    def _propose(self, posterior, n, x_o, rng):
        theta = posterior.sample(n, x_o, rng=rng)
        record = {"proposal": "MCMC posterior of the last round", "acceptance": 1.0}
        res = getattr(posterior, "mcmc_result", None)
        if res is not None and hasattr(res, "rhat"):
            record.update(rhat=float(np.max(res.rhat())), ess=float(np.min(res.ess())))
        return theta, record
