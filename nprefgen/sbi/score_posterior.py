"""Score-based posterior estimation (NPSE): a conditional NCSN s(theta, x, sigma) trained by
denoising score matching on simulated pairs, sampled by annealed Langevin dynamics for a given x
(derivations/score.md, SCORE.15-SCORE.18).

    (SCORE.15)  L = E_{(theta, x)} E_i E_z 1/2 || sigma_i s(theta + sigma_i z, x, sigma_i) + z ||^2,
    (SCORE.16)  grad_theta log p(theta | x) = grad_theta log p(theta, x)   (p(x) is constant),
    (SCORE.17)  for one x the context is a constant input: W_x x folds into the first bias,
    (SCORE.18)  theta = m + s * theta_z: the z-scoring is undone after sampling; draws outside the
                prior's support are rejected and redrawn (the acceptance rate is reported).

The network is :class:`nprefgen.models.ncsn.NCSN` with ``context_dim = dx`` (input [theta_z, x_z,
log sigma], "concat" conditioning), trained on :func:`nprefgen.nn.train.fit_loop` by
``NCSN.fit``; the sampler is the numba loop of :mod:`nprefgen.kernels.langevin`, run once per
observation with the context folded into the weights (SCORE.17). theta and x are z-scored with the
statistics of the training split (as NPE, SBI.11); the noise schedule is geometric (SCORE.8) from
NCSNv2's sigma_1 (SCORE.9) on the z-scored training theta down to ``sigma_min``.

Unlike NPE's flow, the estimate has no tractable density: the posterior object has ``sample`` and
``sample_batched``, no ``log_prob``.
"""
from __future__ import annotations

import copy

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar
from nprefgen.kernels.langevin import ACTIVATION_CODES, annealed_langevin_mlp
from nprefgen.models.ncsn import NCSN
from nprefgen.nn.train import validation_split
from nprefgen.sbi.npe import check_training_pairs
from nprefgen.sbi.posterior import _one_x
from nprefgen.sbi.priors import check_prior


def _z_stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per column (a constant column gets std 1). a: (n, k)"""
    std = a.std(axis=0)
    return a.mean(axis=0), np.where(std > 0, std, 1.0)


class ScorePosterior:
    """Samples of the score-based posterior estimate for one or many observations.

    Parameters
    ----------
    ncsn : a trained :class:`NCSN` over z-scored theta with context_dim = dx.
    prior : the prior (its support truncates the estimate, SCORE.18).
    theta_mean, theta_std : (p,) the z-scoring of theta; x_mean, x_std : (dx,) that of x.
    eps, n_steps_each, denoise : annealed Langevin settings (SCORE.12, SCORE.13).
    max_rounds : rejection rounds before giving up.

    Attributes
    ----------
    acceptance_rate : fraction of Langevin draws inside the prior's support in the last call.
    """

    def __init__(self, ncsn: NCSN, prior, theta_mean, theta_std, x_mean, x_std, *,
                 eps: float = 2e-5, n_steps_each: int = 100, denoise: bool = True,
                 max_rounds: int = 20) -> None:
        self.ncsn = ncsn
        self.prior = prior
        self.dim_theta = ncsn.dim
        self.dim_x = ncsn.context_dim
        self.theta_mean, self.theta_std = np.asarray(theta_mean), np.asarray(theta_std)
        self.x_mean, self.x_std = np.asarray(x_mean), np.asarray(x_std)
        self.eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
        self.n_steps_each = check_int(n_steps_each, "n_steps_each", low=1)
        self.denoise = bool(denoise)
        self.max_rounds = check_int(max_rounds, "max_rounds", low=1)
        self.default_x = None
        self.acceptance_rate: float | None = None

    def set_default_x(self, x) -> "ScorePosterior":
        self.default_x = _one_x(x, self.dim_x, None)
        return self

    def _langevin(self, m: int, x: np.ndarray, rng) -> np.ndarray:
        """m draws of theta (m, p) for one observation x (dx,), before the support check."""
        sigmas = self.ncsn.sigmas
        w, b = self.ncsn.mlp_arrays((x - self.x_mean) / self.x_std)      # (SCORE.17)
        # start from the perturbed marginal at sigma_1: z-scored theta has unit scale, so
        # N(0, (1 + sigma_1^2) I) covers p_{sigma_1}(theta | x)
        x0 = np.sqrt(1.0 + sigmas[0] ** 2) * rng.standard_normal((m, self.dim_theta))
        t, _ = annealed_langevin_mlp(x0, sigmas, w, b, activation=self.ncsn.activation,
                                     conditioning=self.ncsn.conditioning, eps=self.eps,
                                     n_steps_each=self.n_steps_each, denoise=self.denoise,
                                     rng=rng)                           # (SCORE.12), (SCORE.16)
        return self.theta_mean + self.theta_std * t                      # (SCORE.18)

    def sample(self, n: int, x=None, *, rng=None) -> np.ndarray:
        """n draws (n, p) for one observation x (dx,) (None: the default x)."""
        return self.sample_batched(n, _one_x(x, self.dim_x, self.default_x)[None], rng=rng)[0]

    def sample_batched(self, n: int, xs, *, rng=None) -> np.ndarray:
        """n draws for each of N observations xs (N, dx) -> (N, n, p); one annealed Langevin run
        per observation and round, draws outside the prior rejected and redrawn (SCORE.18)."""
        xs = check_array(xs, "xs", ndim=2, dtype=np.float64)
        if xs.shape[1] != self.dim_x:
            raise ValueError(f"xs: expected shape (N, {self.dim_x}), got {xs.shape}")
        n = check_int(n, "n", low=1)
        rng = check_rng(rng)
        out = np.empty((xs.shape[0], n, self.dim_theta))
        drawn = accepted = 0
        for i, x in enumerate(xs):
            have, rate = 0, 1.0
            for _ in range(self.max_rounds):
                m = int(min(np.ceil(1.1 * (n - have) / max(rate, 0.05)) + 2, 20 * n))
                theta = self._langevin(m, x, rng)
                ok = self.prior.in_support(theta)
                drawn += m
                accepted += int(ok.sum())
                rate = max(ok.mean(), 1e-3)
                take = min(int(ok.sum()), n - have)
                out[i, have:have + take] = theta[ok][:take]
                have += take
                if have == n:
                    break
            else:
                self.acceptance_rate = accepted / drawn
                raise RuntimeError(f"ScorePosterior.sample: after {self.max_rounds} rounds only "
                                   f"{have} of n={n} draws for observation {i} fell inside the "
                                   f"prior support (acceptance rate {self.acceptance_rate:.2e}); "
                                   f"train longer, check x, or raise max_rounds")
        self.acceptance_rate = accepted / drawn
        return out

    def __repr__(self) -> str:
        return (f"ScorePosterior(dim_theta={self.dim_theta}, dim_x={self.dim_x}, "
                f"levels={len(self.ncsn.sigmas)}, n_steps_each={self.n_steps_each})")


class NPSE:
    """Neural posterior score estimation: ``NPSE(prior).train(theta, x, rng=rng)`` returns a
    :class:`ScorePosterior`.

    Parameters
    ----------
    prior : the prior the training theta were drawn from.
    hidden, activation : the MLP of the conditional NCSN (an activation the numba sampler knows).
    n_levels, sigma_min : the geometric schedule (SCORE.8) from sigma_1 (SCORE.9) on z-scored
        theta down to sigma_min (z-score units).
    eps, n_steps_each, denoise : the sampler's settings (SCORE.12, SCORE.13).
    z_score_theta, z_score_x : standardise with the training split's statistics (SBI.11).
    """

    def __init__(self, prior, *, hidden=(128, 128), activation: str = "softplus",
                 n_levels: int = 20, sigma_min: float = 0.01, eps: float = 2e-5,
                 n_steps_each: int = 50, denoise: bool = True, z_score_theta: bool = True,
                 z_score_x: bool = True) -> None:
        self.prior = check_prior(prior)
        self.hidden = tuple(hidden)
        self.activation = check_choice(activation, "activation", ACTIVATION_CODES)
        self.n_levels = check_int(n_levels, "n_levels", low=2)
        self.sigma_min = check_scalar(sigma_min, "sigma_min", low=0.0, low_inclusive=False)
        self.eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
        self.n_steps_each = check_int(n_steps_each, "n_steps_each", low=1)
        self.denoise = bool(denoise)
        self.z_score_theta = bool(z_score_theta)
        self.z_score_x = bool(z_score_x)
        self.ncsn: NCSN | None = None
        self.history_: dict | None = None

    def train(self, theta, x, *, rng=None, batch_size: int = 200, lr: float = 1e-3,
              validation_fraction: float = 0.1, patience: int | None = 20,
              max_epochs: int = 300, clip: float | None = 5.0, ema: float | None = None,
              progress: bool | None = None) -> ScorePosterior:
        """(SCORE.15) fit s(theta, x, sigma) by conditional DSM on the pairs; returns the posterior.

        theta : (n, p) inside the prior; x : (n, dx) finite. rng : SPEC 7 seed or Generator (the
        initial weights, the validation split, the shuffles, the noise). The z-score statistics
        and sigma_1 come from the training rows only; ``history_`` is the loop's history.
        """
        theta, x = check_training_pairs(theta, x, self.prior)
        rng = check_rng(rng)
        self.ncsn = self.history_ = None
        ncsn = NCSN(theta.shape[1], self.hidden, conditioning="concat", activation=self.activation,
                    n_levels=self.n_levels, sigma_min=self.sigma_min, rng=rng,
                    context_dim=x.shape[1])
        # NCSN.fit draws its validation split first from rng: the same draw on a copy of the
        # Generator gives the training rows, whose statistics z-score both arrays (SBI.11)
        train_idx, _ = validation_split(theta.shape[0], validation_fraction,
                                        rng=copy.deepcopy(rng))
        t_mean, t_std = _z_stats(theta[train_idx]) if self.z_score_theta else \
            (np.zeros(theta.shape[1]), np.ones(theta.shape[1]))
        x_mean, x_std = _z_stats(x[train_idx]) if self.z_score_x else \
            (np.zeros(x.shape[1]), np.ones(x.shape[1]))
        ncsn.fit((theta - t_mean) / t_std, context=(x - x_mean) / x_std, rng=rng,
                 epochs=max_epochs, batch_size=batch_size, lr=lr,
                 validation_fraction=validation_fraction, patience=patience, clip=clip, ema=ema,
                 progress=progress)                                      # (SCORE.15)
        self.ncsn, self.history_ = ncsn, ncsn.history_
        return ScorePosterior(ncsn, self.prior, t_mean, t_std, x_mean, x_std, eps=self.eps,
                              n_steps_each=self.n_steps_each, denoise=self.denoise)


__all__ = ["NPSE", "ScorePosterior"]
