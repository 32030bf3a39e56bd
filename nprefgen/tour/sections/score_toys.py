"""Tour section: NCSNs on the 2-D toys and a convolutional NCSN on the 8x8 digits
(derivations/score.md).

Each network is trained by denoising score matching (SCORE.5) on a schedule whose sigma_1 follows
NCSNv2's rule (SCORE.9), and sampled by annealed Langevin dynamics (SCORE.12) with the final
denoising step (SCORE.13); samples are judged by MMD against fresh data.
"""
from __future__ import annotations

import time

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen.data.digits import load_digits
from nprefgen.tour.frechet import N_SAMPLES, frechet_table
from nprefgen.data.toys import TOYS
from nprefgen.metrics.mmd import mmd2
from nprefgen.models.ncsn import NCSN, geometric_sigmas, sigma_max_from_data
from nprefgen.models.ncsn_conv import ConvNCSN
from nprefgen.plots.score import plot_langevin_panels

ORDER = 62
TITLE = "Score-based models: NCSN on 2-D toys and on the 8x8 digits"


def _digit_grid(images: np.ndarray, title: str):
    import matplotlib.pyplot as plt

    k = int(np.ceil(np.sqrt(len(images))))
    fig, axes = plt.subplots(k, k, figsize=(0.8 * k, 0.8 * k))
    for ax, img in zip(axes.ravel(), list(images) + [None] * (k * k - len(images))):
        ax.axis("off")
        if img is not None:
            ax.imshow(img.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    fig.suptitle(title, fontsize=8)
    return fig


def build(report) -> None:
    rng = report.rng("score_toys")
    quick = report.quick
    n_train, n_eval = (2000, 500) if quick else (10_000, 2000)
    epochs = (10, 3) if quick else (60, 30)
    report.text(
        "The same recipe on three 2-D toys: an NCSN (concat form (SCORE.7), 2 x 128 softplus, "
        "10 levels from sigma_1 = the data's diameter (SCORE.9) to 0.01) trained by DSM (SCORE.5), "
        "sampled by annealed Langevin (SCORE.12) with eps = 2e-5 (NCSN's setting), T = 100 steps "
        "per level and the final denoising step (SCORE.13), in the numba loop. MMD^2 "
        "(median-heuristic Gaussian kernel) compares the samples with fresh data; the next column "
        "is the same statistic between two fresh data sets, the floor a perfect sampler reaches. "
        "(On two moons, eps = 1e-5, 1e-4, 1e-3 gave MMD^2 0.0015, 0.014, 0.092: larger steps "
        "blur the samples, the bias of (SCORE.11).)")
    panels, rows = {}, []
    for name in ("two_moons", "8gaussians", "checkerboard"):
        toy = TOYS[name]
        x = toy.sample(n_train, rng=rng)
        model = NCSN(2, hidden=(64, 64) if quick else (128, 128),
                     sigmas=geometric_sigmas(sigma_max_from_data(x, rng=rng), 0.01, 10), rng=rng)
        t0 = time.perf_counter()
        with blas_threads(1):
            model.fit(x, rng=rng, epochs=epochs[0], batch_size=256, lr=1e-3, progress=False)
            model.fit(x, rng=rng, epochs=epochs[1], batch_size=256, lr=1e-4, progress=False)
        t_fit = time.perf_counter() - t0
        (lo_x, hi_x), (lo_y, hi_y) = toy.bounds
        x0 = np.column_stack([rng.uniform(lo_x, hi_x, n_eval), rng.uniform(lo_y, hi_y, n_eval)])
        t0 = time.perf_counter()
        samples = model.sample(n_eval, x0=x0, eps=2e-5, n_steps_each=100, denoise=True, rng=rng)
        t_sample = time.perf_counter() - t0
        fresh, fresh2 = toy.sample(n_eval, rng=rng), toy.sample(n_eval, rng=rng)
        panels[name] = (samples, None)
        rows.append([name, model.sigmas[0], mmd2(samples, fresh),
                     mmd2(fresh2, fresh), t_fit, t_sample])
    report.figure(plot_langevin_panels(panels, bounds=((-4.0, 4.0), (-4.0, 4.0))), "toys",
                  f"{n_eval} samples of each learned NCSN (annealed Langevin, denoised)")
    report.table(["toy", "sigma_1 (SCORE.9)", "MMD^2 samples vs data", "MMD^2 data vs data",
                  "fit s", "sampling s"], rows,
                 caption=f"trained on {n_train} samples; {n_eval} samples compared with "
                         f"{n_eval} fresh draws")

    # the digits with the convolutional NCSN (Python-level Langevin loop)
    x = load_digits("train")[0]                                     # (1078, 64) in [0, 1]
    model = ConvNCSN((1, 8, 8), channels=16 if quick else 32,
                     sigmas=geometric_sigmas(sigma_max_from_data(x), 0.01, 10), rng=rng)
    t0 = time.perf_counter()
    with blas_threads(1):
        model.fit(x, rng=rng, epochs=3 if quick else 100, batch_size=128, lr=1e-3, progress=False)
    t_fit = time.perf_counter() - t0
    n_img = 16 if quick else 64
    t0 = time.perf_counter()
    with blas_threads(1):
        samples = model.sample(n_img, eps=2e-5, n_steps_each=10 if quick else 100, denoise=True,
                               rng=rng, init_low=0.0, init_high=1.0)
    t_sample = time.perf_counter() - t0
    report.figure(_digit_grid(np.clip(samples, 0, 1), "ConvNCSN samples"), "digits",
                  f"annealed Langevin samples of a ConvNCSN (3 convolutions, {model.channels} "
                  f"channels, log sigma as an input channel) trained on the 1,078 training digits "
                  f"(fit {t_fit:.0f} s, sampling {t_sample:.0f} s); sigma from "
                  f"{model.sigmas[0]:.3g} to 0.01, eps 2e-5 as in NCSN's image setting")
    report.figure(_digit_grid(x[:n_img], "training digits"), "digits-data",
                  "training digits for comparison")
    # (GAN.13) the ConvNCSN on the GAN section's scale (N_SAMPLES fresh draws, clipped to [0, 1])
    with blas_threads(1):
        more = model.sample(N_SAMPLES, eps=2e-5, n_steps_each=10 if quick else 100, denoise=True,
                            rng=rng, init_low=0.0, init_high=1.0)
    frechet_table(report, [("ConvNCSN, annealed Langevin, denoised", np.clip(more, 0.0, 1.0))],
                  "the ConvNCSN's samples")
