"""Tour section: generative adversarial networks (nprefgen.models.gan, derivations/gan.md): the
8-Gaussians ring over training with the mode-coverage metric over seeds, digits samples, and
the Frechet distance (nprefgen.metrics.frechet, GAN.13) of GAN, VAE and mixture samples on one
scale.
"""
from __future__ import annotations

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen.data import load_digits
from nprefgen.data.toys import eight_gaussians_means, sample_8gaussians
from nprefgen.models.gan import GAN, mlp_gan, mode_coverage
from nprefgen.models.gmm import GaussianMixture
from nprefgen.models.vae import dense_vae
from nprefgen.nn import MLP
from nprefgen.plots.gan import plot_sample_snapshots
from nprefgen.plots.gmm import plot_image_mosaic
from nprefgen.tour.frechet import N_SAMPLES, frechet_table

ORDER = 36
TITLE = "Generative adversarial networks: mode coverage and digits"

SIGMA = 0.05


def build(report) -> None:
    with blas_threads(1):                   # small matrices: threads only cost (nprefgen/_threads.py)
        _build(report)


def _build(report) -> None:
    rng = report.rng("gan")
    quick = report.quick
    steps = 300 if quick else 3000
    seeds = [0] if quick else [0, 1, 2, 3, 4]
    means = eight_gaussians_means()
    report.text(
        "A generator G(z) and a discriminator D(x) = sigmoid(a(x)) play the game (GAN.1): D "
        "minimises the binary cross-entropy between real and generated batches from logits "
        "(GAN.3), G the non-saturating loss -log D(G(z)) (GAN.5), whose gradient reaches G through "
        "D's input gradient (GAN.6). Both are MLPs 64-64 with LeakyReLU, trained by Adam (lr 1e-3, "
        f"beta1 0.5, batches of 256) on a ring of 8 Gaussians (radius 2, sigma {SIGMA}), "
        f"{steps} generator steps. A sample is high quality within 3 sigma of a mode; a mode is "
        "captured when it gets a high-quality sample (GAN.14).")
    marks = sorted({max(1, steps // 10), steps // 4, steps // 2, steps})
    rows, snapshots = [], {}
    for seed in seeds:
        X = sample_8gaussians(20_000, rng=100 + seed, sigma=SIGMA)
        gan = mlp_gan(2, 2, hidden=(64, 64), rng=seed)

        def record(step, g, seed=seed, X=X):
            if seed == seeds[0] and step + 1 in marks:
                snapshots[f"step {step + 1}"] = g.sample(1000, rng=0)

        gan.fit(X, rng=seed, steps=steps, batch_size=256, lr=1e-3, callback=record)
        captured, quality, _ = mode_coverage(gan.sample(2500, rng=rng), means, SIGMA)
        rows.append([seed, captured, quality])
        if seed == seeds[0]:
            report.figure(plot_sample_snapshots(snapshots, X[:2000], means), "ring",
                          f"generated samples (red) over the data (grey) during training, seed "
                          f"{seed}")
    report.table(["seed", "modes captured (of 8)", "high-quality share"], rows,
                 caption=f"2500 samples after {steps} steps; the issue's bar: >= 7 modes on at "
                         "least 4 of 5 seeds")
    if not quick:
        good = sum(r[1] >= 7 for r in rows)
        report.check("seeds with >= 7 of 8 modes captured", f"{good} of {len(rows)}",
                     ">= 4 of 5 seeds (issue 9)", bool(good >= 4))

    d_steps = 200 if quick else 4000
    X, _ = load_digits("train")
    G = MLP(16, [128, 256], 64, rng=rng, activation="leaky_relu", out_activation="sigmoid")
    D = MLP(64, [256, 128], 1, rng=rng, activation="leaky_relu")
    gan = GAN(G, D, latent_dim=16, data_dim=64)
    gan.fit(X, rng=rng, steps=d_steps, batch_size=128, lr=2e-4, r1_gamma=10.0)
    report.text(
        "On the 8x8 digits: G 16-128-256-64 with a sigmoid output, D 64-256-128-1, DCGAN's Adam "
        f"(lr 2e-4, beta1 0.5), batches of 128, {d_steps} steps, with the R1 gradient penalty "
        "(GAN.9) of weight gamma = 10 on the real digits, differentiated twice by hand (GAN.10-"
        "GAN.12). Without a regulariser this pair collapsed onto a few blotchy shapes; instance "
        "noise (GAN.7) alone left blotches too (Frechet distance 18-71 in our runs, uniform "
        "noise images: ~58), while R1 brings it to a few times the floor (table below).")
    report.figure(plot_image_mosaic(gan.sample(50, rng=rng), n_cols=10,
                                    title=f"MLP GAN samples after {d_steps} steps"),
                  "digits", "generator samples on the bundled digits")
    _frechet_table(report, X, gan, rng, quick)


def _frechet_table(report, X, gan, rng, quick) -> None:
    """(GAN.13) GAN, VAE (prior and GMM-in-latent) and a pixel-space GMM on one scale, every set
    of 360 samples (the test split's size) against the train split."""
    n = N_SAMPLES
    epochs = 4 if quick else 100
    vae = dense_vae(64, 8, hidden=(128, 64), rng=rng)
    vae.fit(X, rng=rng, epochs=epochs, batch_size=64, lr=2e-3, progress=False)
    mu, log_var = vae.encode(X)
    z_agg = (mu + np.exp(0.5 * log_var) * rng.standard_normal((3,) + mu.shape)).reshape(-1, 8)
    latent_gmm = GaussianMixture(10, reg_covar=1e-4).fit(z_agg, rng=rng)
    pixel_gmm = GaussianMixture(10, reg_covar=1e-3).fit(X, rng=rng)
    sets = [("GAN (MLP, R1 gamma 10, this section)", gan.sample(n, rng=rng)),
            ("VAE, z ~ N(0, I) (decoder mean)", vae.sample(n, rng=rng)),
            ("VAE, z ~ GMM(10) in its latent space", vae.decode(latent_gmm.sample(n, rng=rng))),
            ("GMM(10), full covariance, in pixel space", pixel_gmm.sample(n, rng=rng)),
            ("uniform noise images", rng.uniform(size=(n, 64)))]
    report.text(
        "One scale for every image model (GAN.13): samples are mapped to the 64 tanh features of "
        "a small digits classifier (MLP 64-128-64-10, test accuracy 0.96, weights shipped with "
        "the package) and the Gaussians fitted to the two feature sets are compared by the "
        "squared Frechet distance. The test split's own distance to the train split is the floor "
        f"(finite samples of one distribution are not at distance 0). The VAE: dense, latent 8, "
        f"Bernoulli decoder, {epochs} epochs; every set has {n} samples.")
    frechet_table(report, sets, "the GAN, VAE and mixture samples of this section (flows: "
                  "section flows_digits; score model: section score_toys)")
