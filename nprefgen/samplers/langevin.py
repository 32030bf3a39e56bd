"""Langevin and annealed Langevin dynamics driven by any score function
(derivations/score.md, SCORE.10, SCORE.12, SCORE.13).

    (SCORE.10)  x <- x + (eps/2) s(x) + sqrt(eps) z                          (``langevin``)
    (SCORE.12)  alpha_i = eps sigma_i^2 / sigma_L^2,
                x <- x + (alpha_i/2) s(x, sigma_i) + sqrt(alpha_i) z, T steps per level
    (SCORE.13)  optional final step x <- x + sigma_L^2 s(x, sigma_L)          (``annealed_langevin``)

The score is any vectorised callable: ``score(x: (n, D)) -> (n, D)`` for plain Langevin,
``score(x, sigma) -> (n, D)`` for the annealed sampler; an exact one
(:class:`nprefgen.models.score.GaussianMixtureScore`) or a learned one
(:class:`nprefgen.models.ncsn.NCSN`). Here the loop runs in Python, one score call per step for
all particles (:func:`nprefgen.kernels.langevin.langevin_loop`). For an NCSN, ``method="numba"`` (the default ``"auto"`` picks it) runs the whole
loop in :mod:`nprefgen.kernels.langevin` with the network inside; both draw their noise through
the same :func:`nprefgen.kernels.langevin.noise_blocks`, so the two paths give the same chains.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from nprefgen._validation import check_callable, check_choice, check_int, check_rng, check_scalar
from nprefgen.kernels.langevin import (
    annealed_langevin_mlp, call_score, check_particles, check_sigmas, langevin_loop,
)

METHODS = ("auto", "python", "numba")


@dataclass
class LangevinResult:
    """Final particles of a Langevin run, and the recorded path.

    Attributes
    ----------
    samples : (n, D) final particles.
    path : (1 + L T // k, n, D) the start and every k-th state ((0, n, D) if not recorded).
    sigmas : (L,) the noise levels ((1,) with NaN for plain Langevin).
    step_sizes : (L,) alpha_i of each level.
    n_steps_each : int, T.
    method : "python" or "numba".
    """

    samples: np.ndarray
    path: np.ndarray
    sigmas: np.ndarray
    step_sizes: np.ndarray
    n_steps_each: int
    method: str


def langevin(score: Callable, x0, *, eps: float, n_steps: int, record_every: int = 0,
             rng=None) -> LangevinResult:
    """Plain (unadjusted) Langevin dynamics (SCORE.10).

    score : ``score(x: (n, D)) -> (n, D)``, the gradient of the target's log-density.
    x0 : (n, D) starting particles (not modified); eps > 0 the step size; n_steps >= 1;
    record_every : k > 0 records the start and every k-th state; rng : SPEC 7.

    Without a Metropolis correction the chain is biased at finite eps (SCORE.11). Raises
    RuntimeError naming the step when a particle becomes non-finite.
    """
    check_callable(score, "score")
    x = check_particles(x0)
    eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
    n_steps = check_int(n_steps, "n_steps", low=1)
    record_every = check_int(record_every, "record_every", low=0)
    rng = check_rng(rng)
    sigmas = np.array([np.nan])
    x, path = langevin_loop(score, x, sigmas, np.array([eps]), n_steps, record_every,
                            conditional=False, rng=rng)
    return LangevinResult(x, path, sigmas, np.array([eps]), n_steps, "python")


def annealed_langevin(score: Callable, x0, sigmas, *, eps: float, n_steps_each: int,
                      denoise: bool = False, record_every: int = 0, method: str = "auto",
                      rng=None) -> LangevinResult:
    """Annealed Langevin dynamics, Song & Ermon (2019) Algorithm 1 (SCORE.12), with NCSNv2's
    optional final denoising step (SCORE.13).

    Parameters
    ----------
    score : ``score(x: (n, D), sigma: float) -> (n, D)``, the score of the data perturbed by
        N(0, sigma^2 I); an exact one or an NCSN.
    x0 : (n, D) starting particles (not modified).
    sigmas : (L,) strictly decreasing noise levels sigma_1 > ... > sigma_L > 0.
    eps : step size at the last level (alpha_L = eps).
    n_steps_each : T >= 1 steps per level.
    denoise : finish with x + sigma_L^2 s(x, sigma_L).
    record_every : k > 0 records the start and every k-th state in ``path``.
    method : "python" (a Python loop over steps, any callable), "numba" (the whole loop in
        numba; needs an NCSN, i.e. an object with ``mlp_arrays()``), "auto" (numba when possible).
    rng : SPEC 7 seed or Generator for the noise.

    Raises RuntimeError naming the level and step when a particle becomes non-finite.
    """
    check_callable(score, "score")
    method = check_choice(method, "method", METHODS)
    x = check_particles(x0)
    sigmas = check_sigmas(sigmas)
    eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
    n_steps_each = check_int(n_steps_each, "n_steps_each", low=1)
    record_every = check_int(record_every, "record_every", low=0)
    if not isinstance(denoise, (bool, np.bool_)):
        raise ValueError(f"denoise: expected a bool, got {denoise!r}")
    rng = check_rng(rng)
    step_sizes = eps * sigmas**2 / sigmas[-1] ** 2                  # (SCORE.12)
    fast = getattr(score, "supports_numba", False) is True and callable(getattr(score, "mlp_arrays", None))
    if method == "numba" and not fast:
        raise ValueError(f"method: 'numba' needs an MLP score network (an NCSN), got "
                         f"{type(score).__name__}; use method='python'")
    if method != "python" and fast:
        w, b = score.mlp_arrays()
        x, path = annealed_langevin_mlp(x, sigmas, w, b, activation=score.activation,
                                        conditioning=score.conditioning, eps=eps,
                                        n_steps_each=n_steps_each, denoise=denoise,
                                        record_every=record_every, rng=rng)
        return LangevinResult(x, path, sigmas, step_sizes, n_steps_each, "numba")
    x, path = langevin_loop(score, x, sigmas, step_sizes, n_steps_each, record_every, rng=rng)
    if denoise:                                                     # (SCORE.13) Tweedie
        with np.errstate(over="ignore", invalid="ignore"):
            x = x + sigmas[-1] ** 2 * call_score(score, x, sigmas[-1], x.shape)
        if not np.all(np.isfinite(x)):
            raise RuntimeError("Langevin dynamics: the final denoising step gave non-finite "
                               "particles; check the score at sigma_L")
    return LangevinResult(x, path, sigmas, step_sizes, n_steps_each, "python")
