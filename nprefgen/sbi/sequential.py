"""Sequential inference for one observation: TSNPE and SNLE (derivations/sbi.md, SBI.26-SBI.28).

Both split a simulation budget into rounds. Round 1 simulates from the prior; each later round
simulates where the current estimate puts the posterior of ``x_o``, and the estimator is trained
on all pairs so far: with ``warm_start=True`` (SBI.28a, as the sbi package's default
``retrain_from_scratch=False``) the same flow continues from the previous round's weights, with
the z-scoring of round 1 and a fresh Adam; ``warm_start=False`` retrains a new estimator from
scratch every round. The defaults are measured (two_moons at 10^4, 5 rounds, 10,000 draws,
benchmarks/RESULTS.md): SNLE warm-starts (34 s vs 66 s CPU per observation, 393 vs 799 epochs,
C2ST within 0.006 of scratch on 3 observations); TSNPE retrains from scratch (C2ST 0.548 vs
warm's 0.564 over 10 observations, lower on 8, paired p 0.015, at 39 s vs 19 s CPU).

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
chains' R-hat, ESS and jump rate, the proposal's spread, the training epochs, the validation
loss of the round's starting weights and its best, and the CPU seconds of proposing and of
training).
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from nprefgen._validation import check_array, check_int, check_rng, check_scalar
from nprefgen.flows.elementwise import Standardize
from nprefgen.nn.optim import Adam
from nprefgen.nn.train import TrainingDivergedError, fit_loop, take, validation_split
from nprefgen.samplers import MCMCConvergenceWarning
from nprefgen.sbi.nle import NLE
from nprefgen.sbi.npe import NPE, build_flow, check_training_pairs
from nprefgen.sbi.posterior import DirectPosterior
from nprefgen.sbi.simulate import simulate

# the estimators' training defaults (NPE.train / NLE.train, sbi's), used by the warm-started loop
TRAIN_DEFAULTS = dict(batch_size=200, lr=5e-4, validation_fraction=0.1, patience=20,
                      max_epochs=1000, clip=5.0, progress=None)

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
    ``_propose(posterior, n, x_o, rng) -> (theta, record)``, ``_roles(estimator, theta, x) ->
    (data, context, z_score_data, z_score_context)``, ``_posterior(estimator)``, ``_label``."""

    def __init__(self, prior, simulator, warm_start: bool = True,
                 keep_optimizer: bool = False) -> None:
        if not callable(simulator):
            raise ValueError(f"simulator: expected a callable (theta, rng) -> x, got "
                             f"{type(simulator).__name__}")
        for name, v in (("warm_start", warm_start), ("keep_optimizer", keep_optimizer)):
            if not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"{name}: expected True or False, got {v!r}")
        if keep_optimizer and not warm_start:
            raise ValueError("keep_optimizer: expected False with warm_start=False (a new "
                             "estimator per round has no optimizer to keep)")
        self.prior = prior
        self.simulator = simulator
        self.warm_start, self.keep_optimizer = bool(warm_start), bool(keep_optimizer)
        self.history_: dict | None = None
        self.posterior_ = None
        self.estimator_ = None

    def run(self, x_o, *, num_simulations: int, rounds: int = 10, rng=None,
            **train_kwargs):
        """Spend ``num_simulations`` in ``rounds`` equal rounds for the observation x_o (dx,);
        returns the posterior of the last round (also ``self.posterior_``).

        rng : SPEC 7 seed or Generator (proposals, simulations, training, MCMC).
        train_kwargs : the estimator's training settings (batch_size, lr, validation_fraction,
            patience, max_epochs, clip, progress; defaults those of ``NPE.train``).
        ``history_["rounds"]`` lists one dict per round; ``theta_``, ``x_`` hold every pair;
        with ``warm_start`` the validation rows (chosen per round among its new pairs, so that a
        pair trained on in one round is never validated on in the next) are ``val_index_``.
        """
        x_o = check_array(x_o, "x_o", ndim=(1, 2), dtype=np.float64)
        if x_o.ndim == 2:
            if x_o.shape[0] != 1:
                raise ValueError(f"x_o: expected one observation (dx,), got shape {x_o.shape}")
            x_o = x_o[0]
        budget = split_budget(num_simulations, rounds)
        unknown = sorted(set(train_kwargs) - set(TRAIN_DEFAULTS))
        if unknown:
            raise ValueError(f"train_kwargs: expected keywords among {sorted(TRAIN_DEFAULTS)}, "
                             f"got {unknown}")
        rng = check_rng(rng)
        self.history_ = {"rounds": [], "num_simulations": 0, "method": self._label,
                         "warm_start": self.warm_start, "keep_optimizer": self.keep_optimizer}
        self._flow = self._opt = self.estimator_ = self.posterior_ = None
        self.val_index_ = np.arange(0)
        self._train_index = np.arange(0)
        thetas, xs, posterior = [], [], None
        for r, n_r in enumerate(budget, start=1):
            t0, c0 = time.perf_counter(), time.process_time()
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
            c1 = time.process_time()
            if self.warm_start:
                estimator = self.estimator_ if self.estimator_ is not None else self._estimator()
                start_loss = self._train_warm(estimator, sims.theta.shape[0], rng, train_kwargs)
                posterior = self._posterior(estimator)
            else:
                estimator, start_loss = self._estimator(), None
                posterior = estimator.train(self.theta_, self.x_, rng=rng, **train_kwargs)
            self.history_["num_simulations"] += n_r
            hist = estimator.history_ or {}
            record.update(round=r, n_simulations=n_r, n_valid=int(sims.theta.shape[0]),
                          n_dropped=int(sims.n_dropped), n_total=int(self.theta_.shape[0]),
                          proposal_std=sims.theta.std(axis=0).tolist(),
                          epochs=hist.get("epochs"), best_epoch=hist.get("best_epoch"),
                          start_val_loss=start_loss,
                          best_val_loss=float(np.min(hist["val_loss"]))
                          if hist.get("val_loss") else None,
                          cpu_propose=c1 - c0, cpu_train=time.process_time() - c1,
                          seconds=time.perf_counter() - t0)
            self.history_["rounds"].append(record)
            self.estimator_, self.posterior_ = estimator, posterior
        return posterior

    def _train_warm(self, estimator, n_new: int, rng, train_kwargs) -> float | None:
        """(SBI.28a) one round's training of the kept flow on every pair so far: round 1 builds
        the flow and its z-scoring from round 1's training rows; later rounds continue from the
        last round's (restored best) weights. Each round's new pairs are split into training and
        validation rows; rows stay on their side. Returns the validation loss of the starting
        weights (None in round 1 or without validation)."""
        kw = {**TRAIN_DEFAULTS, **train_kwargs}
        check_scalar(kw["lr"], "lr", low=0.0, low_inclusive=False)
        check_int(kw["max_epochs"], "max_epochs", low=1)
        theta, x = check_training_pairs(self.theta_, self.x_, self.prior)
        data, context, z_data, z_context = self._roles(estimator, theta, x)
        n_old = data.shape[0] - n_new
        tr, va = validation_split(n_new, kw["validation_fraction"], rng=rng)
        self._train_index = np.concatenate([self._train_index, n_old + tr])
        self.val_index_ = np.concatenate([self.val_index_, n_old + va])
        train = take((data, context), self._train_index)
        val = take((data, context), self.val_index_) if self.val_index_.size else None
        flow, start_loss = self._flow, None
        if flow is None:                    # round 1: a new flow, z-scored as NPE/NLE (SBI.11)
            flow = build_flow(estimator.flow_kind, data.shape[1], context.shape[1],
                              estimator.n_transforms, estimator.hidden,
                              True if z_data else None, True if z_context else None, rng=rng,
                              activation=estimator.activation)
            if z_data:
                z_score = next(b for b in flow.bijectors if isinstance(b, Standardize))
                fitted = Standardize.from_data(train[0])
                z_score.load_buffer_dict({"mean": fitted.mean, "std": fitted.std})
            if z_context:
                flow.standardize_context(train[1])
            self._flow = flow
        elif val is not None:
            start_loss = float(flow.mean_nll(*val))
        if self._opt is None or not self.keep_optimizer:
            self._opt = Adam(flow.parameters(), lr=kw["lr"])
        estimator.flow = None             # as NPE/NLE: no posterior on a diverged flow
        try:
            # (SBI.10) / (SBI.28) the same loss, now over every pair so far
            estimator.history_ = fit_loop(
                flow, flow.nll_and_grad, train, rng=rng, val_data=val, evaluate=flow.mean_nll,
                epochs=kw["max_epochs"], batch_size=kw["batch_size"], optimizer=self._opt,
                clip=kw["clip"], patience=kw["patience"], progress=kw["progress"],
                desc=f"{self._label} round")
        except TrainingDivergedError as err:
            estimator.history_ = err.history
            raise
        estimator.flow = flow
        return start_loss


class TSNPE(_Sequential):
    """Truncated sequential NPE (SBI.26, SBI.27): ``TSNPE(prior, simulator).run(x_o,
    num_simulations=n, rounds=R, rng=rng)`` -> DirectPosterior.

    Parameters
    ----------
    prior, simulator : the prior and ``simulator(theta (m, p), rng) -> x (m, dx)``.
    epsilon : mass of the current estimate left outside the truncation region (1e-4, as
        Deistler et al. and sbi).
    n_support : draws of the estimate used to set the threshold (10,000 as sbi).
    warm_start : retrain a new NPE from scratch every round (False, the default: on two_moons at
        10^4 it scored C2ST 0.548 against the warm start's 0.564) or continue training the same
        flow across rounds (True, SBI.28a; half the CPU).
    keep_optimizer : with ``warm_start``, continue Adam's moments across rounds too (default
        False: a fresh Adam every round, as sbi).
    npe_kwargs : the NPE's settings (flow, n_transforms, hidden, activation, ...); an
        ``embedding`` needs ``warm_start=False``.
    """

    _label = "TSNPE"

    def __init__(self, prior, simulator, *, epsilon: float = 1e-4, n_support: int = 10_000,
                 warm_start: bool = False, keep_optimizer: bool = False, **npe_kwargs) -> None:
        super().__init__(prior, simulator, warm_start, keep_optimizer)
        if warm_start and npe_kwargs.get("embedding") is not None:
            raise ValueError("warm_start: expected False with an embedding network (the "
                             "warm-started rounds train the flow alone)")
        self.epsilon = check_scalar(epsilon, "epsilon", low=0.0, high=1.0, low_inclusive=False,
                                    high_inclusive=False)
        self.n_support = check_int(n_support, "n_support", low=2)
        self.npe_kwargs = npe_kwargs
        self._estimator()                     # bad NPE settings fail here, before simulating

    def _estimator(self) -> NPE:
        return NPE(self.prior, **self.npe_kwargs)

    @staticmethod
    def _roles(estimator, theta, x):
        return theta, x, estimator.z_score_theta, estimator.z_score_x     # q(theta | x)

    def _posterior(self, estimator) -> DirectPosterior:
        return DirectPosterior(estimator.flow, self.prior)

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

    warm_start : continue training the same flow across rounds (True, the default, SBI.28a: half
        the CPU of retraining, C2ST within noise of it on two_moons at 10^4) or retrain a new NLE
        from scratch every round (False).
    keep_optimizer : as :class:`TSNPE`.
    nle_kwargs : the NLE's settings (flow, n_transforms, hidden, method, n_chains, n_warmup,
    thin); the proposal draws use the same MCMC settings.
    """

    _label = "SNLE"

    def __init__(self, prior, simulator, *, warm_start: bool = True,
                 keep_optimizer: bool = False, **nle_kwargs) -> None:
        super().__init__(prior, simulator, warm_start, keep_optimizer)
        self.nle_kwargs = nle_kwargs
        self._estimator()

    def _estimator(self) -> NLE:
        return NLE(self.prior, **self.nle_kwargs)

    @staticmethod
    def _roles(estimator, theta, x):
        return x, theta, True, True                     # q(x | theta), both z-scored (NLE)

    @staticmethod
    def _posterior(estimator):
        return estimator.posterior()

    def run(self, x_o, *, num_simulations: int, rounds: int = 10, rng=None, **train_kwargs):
        """As :meth:`TSNPE.run`; the proposals' MCMC convergence checks (MCMC.13) go into each
        round's record (``rhat``, ``ess``, ``jump_rate``, ``mcmc_ok``) and, when some failed, into
        one MCMCConvergenceWarning at the end instead of one per round."""
        posterior = super().run(x_o, num_simulations=num_simulations, rounds=rounds, rng=rng,
                                **train_kwargs)
        failed = [r for r in self.history_["rounds"] if r.get("mcmc_ok") is False]
        if failed:
            warnings.warn(
                f"SNLE: the MCMC proposals of rounds {[r['round'] for r in failed]} did not pass "
                f"their convergence check (MCMC.13): R-hat up to "
                f"{max(r['rhat'] for r in failed):.3g}, ESS down to "
                f"{min(r['ess'] for r in failed):.0f}; those rounds simulated from chains that "
                f"may misweight the posterior's modes. Per-round numbers in "
                f"history_['rounds']; more chains or warm-up (n_chains, n_warmup) help",
                MCMCConvergenceWarning, stacklevel=2)
        return posterior

    def _propose(self, posterior, n, x_o, rng):
        with warnings.catch_warnings():          # recorded below and summarised by run()
            warnings.simplefilter("ignore", MCMCConvergenceWarning)
            theta = posterior.sample(n, x_o, rng=rng)
        record = {"proposal": "MCMC posterior of the last round", "acceptance": 1.0}
        diag = posterior.diagnostics_            # (MCMC.13) of this run, one observation
        record.update(rhat=float(np.max(diag["rhat_max"])),
                      ess=float(np.min(diag["ess_min"])), mcmc_ok=bool(np.all(diag["ok"])),
                      jump_rate=float(np.nanmean(diag["jump_rate"])))
        return theta, record
