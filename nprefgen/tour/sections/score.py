"""Tour section: score-based models on Song & Ermon's toy (derivations/score.md).

Plain vs annealed Langevin with the exact score (SCORE.10), (SCORE.12); the noise schedule (SCORE.8),
(SCORE.9); an NCSN trained by denoising score matching (SCORE.5) sampled by the numba loop; and the
learned score's error against the data density.
"""
from __future__ import annotations

import time

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen.models.ncsn import NCSN, geometric_sigmas, sigma_max_from_data
from nprefgen.models.score import mode_weights, song_ermon_mixture
from nprefgen.plots.score import (
    plot_langevin_panels, plot_loss_history, plot_score_error_vs_density, plot_sigma_schedule,
)
from nprefgen.samplers.langevin import annealed_langevin, langevin

ORDER = 61
TITLE = "Score-based models: Langevin, annealing and NCSN on Song & Ermon's toy"

_BOX = 8.0            # particles start uniform on [-8, 8]^2
_EPS = 0.1            # Langevin step at the last level (Song & Ermon's toy setting)


def _fraction_row(name, x, means, note=""):
    frac, sd = mode_weights(x, means)
    return [name, frac[1], sd[1], abs(frac[1] - 0.8) / sd[1], note]


def _error_vs_density(model, toy, sigmas, rng, n=20_000, n_bins=10):
    """Binned sigma^2 ||s_theta(x, sigma) - grad log p_sigma(x)||^2 against log p(x), on points
    uniform in the box (where data are scarce as well as where they are dense)."""
    x = rng.uniform(-_BOX, _BOX, size=(n, 2))
    log_p = toy.log_prob(x)
    edges = np.quantile(log_p, np.linspace(0, 1, n_bins + 1))
    which = np.clip(np.searchsorted(edges, log_p, side="right") - 1, 0, n_bins - 1)
    curves = {}
    for sigma in sigmas:
        err = sigma**2 * np.sum((model.score(x, sigma) - toy(x, sigma)) ** 2, axis=1)
        centres = np.array([log_p[which == b].mean() for b in range(n_bins)])
        means = np.array([err[which == b].mean() for b in range(n_bins)])
        curves[f"sigma = {sigma:.3g}"] = (centres, means)
    return curves


def build(report) -> None:
    rng = report.rng("score")
    quick = report.quick
    toy = song_ermon_mixture()
    n = 1280
    report.text(
        "Song & Ermon's toy p = 0.2 N((-5,-5), I) + 0.8 N((5,5), I). Its score (SCORE.2) is that "
        "of one component alone away from the boundary between the modes, so the weights 0.2 and "
        "0.8 are invisible to Langevin dynamics (SCORE.10): started uniform on a box, each "
        "particle falls into the nearest mode and stays. Annealed Langevin (SCORE.12) starts on "
        "the density perturbed by sigma_1 = 20, a single broad bump, and walks down 10 levels; "
        "the particles then split in proportion to the modes' mass. Both below use the exact "
        "perturbed score (SCORE.3).")
    x0 = rng.uniform(-_BOX, _BOX, size=(n, 2))
    sigmas = geometric_sigmas(20.0, 1.0, 10)
    t_each = 100
    with blas_threads(1):
        plain = langevin(toy, x0, eps=_EPS, n_steps=10 * t_each, record_every=10, rng=rng)
        annealed = annealed_langevin(toy, x0, sigmas, eps=_EPS, n_steps_each=t_each,
                                     record_every=10, rng=rng)
    rows = [_fraction_row("initial (uniform box)", x0, toy.means),
            _fraction_row("plain Langevin, exact score", plain.samples, toy.means,
                          f"{10 * t_each} steps, eps {_EPS}"),
            _fraction_row("annealed Langevin, exact score", annealed.samples, toy.means,
                          f"L = 10, T = {t_each}, eps {_EPS}")]
    report.figure(plot_langevin_panels(
        {"start": (x0, None), "plain Langevin": (plain.samples, plain.path),
         "annealed Langevin": (annealed.samples, annealed.path)},
        log_prob=toy.log_prob, bounds=((-_BOX - 2, _BOX + 2),) * 2, n_paths=6), "exact",
        "final particles (red) and the paths of 6 of them (every 10th step), over log p; the same "
        "start and the same exact score for both samplers; annealed paths make long jumps at the "
        "large noise levels")
    report.figure(plot_sigma_schedule(sigmas, annealed.step_sizes), "schedule",
                  "the geometric schedule (SCORE.8) from sigma_1 = 20 to sigma_L = 1 and the step "
                  "sizes (SCORE.12); NCSNv2's rule (SCORE.9) puts sigma_1 at the largest pairwise "
                  "distance of the data")

    # a learned score: NCSN (scale form) trained by DSM on samples of the toy
    n_train = 2000 if quick else 10_000
    x_train = toy.sample(n_train, rng=rng)
    sigma_1 = sigma_max_from_data(x_train, rng=rng)
    model = NCSN(2, hidden=(64, 64) if quick else (128, 128), conditioning="concat",
                 sigmas=geometric_sigmas(sigma_1, 1.0, 10), rng=rng)
    t0 = time.perf_counter()
    with blas_threads(1):
        model.fit(x_train, rng=rng, epochs=15 if quick else 60, batch_size=256, lr=1e-3,
                  progress=False)
        model.fit(x_train, rng=rng, epochs=5 if quick else 30, batch_size=256, lr=1e-4,
                  progress=False)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    learned, path = model.sample(n, x0=x0, eps=_EPS, n_steps_each=t_each, denoise=False, rng=rng,
                                 record_every=10, return_path=True)
    t_sample = time.perf_counter() - t0
    rows.append(_fraction_row("annealed Langevin, learned NCSN", learned, toy.means,
                              f"sigma_1 = {sigma_1:.3g} (SCORE.9), fit {t_fit:.0f} s, "
                              f"numba loop {t_sample:.1f} s"))
    report.table(["sampler", "fraction in the (5,5) mode", "binomial sd (SCORE.14)",
                  "|fraction - 0.8| / sd", "setting"], rows,
                 caption=f"{n} particles from the same uniform start; the true weight is 0.8")
    report.figure(plot_langevin_panels({"learned NCSN, annealed": (learned, path)},
                                       log_prob=toy.log_prob,
                                       bounds=((-_BOX - 2, _BOX + 2),) * 2), "learned",
                  f"annealed Langevin with the NCSN's score, evaluated inside the numba loop; "
                  f"trained on {n_train} samples")
    report.figure(plot_loss_history(model.history_, "DSM loss (SCORE.5), last fit at lr 1e-4"),
                  "loss", "training and validation DSM loss per epoch (the loss does not go to "
                  "zero: the noise is not predictable)")
    curves = _error_vs_density(model, toy, [model.sigmas[-1], model.sigmas[4], model.sigmas[0]], rng,
                               n=5000 if quick else 20_000)
    report.figure(plot_score_error_vs_density(curves), "error-density",
                  "the learned score's error, sigma^2 ||s_theta - grad log p_sigma||^2, against "
                  "the data log-density: large where data are scarce at small sigma, small "
                  "everywhere at large sigma, which is why the sampler starts there")
