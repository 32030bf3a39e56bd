"""Tour section: variational autoencoders on the bundled 8x8 digits (nprefgen.models.vae,
derivations/vae.md): a 2-D latent map coloured by digit, the decoded latent grid,
reconstructions, samples, an interpolation, the ELBO and IWAE bounds, and sampling from a
Gaussian mixture fitted in the latent space against sampling from the N(0, I) prior.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

from nprefgen._threads import blas_threads
from nprefgen.data import load_digits
from nprefgen.models.gmm import GaussianMixture
from nprefgen.models.vae import dense_vae
from nprefgen.plots.gmm import plot_image_mosaic
from nprefgen.plots.representation import (
    plot_latent_maps, plot_loss_curves, plot_reconstructions,
)

ORDER = 35
TITLE = "Variational autoencoders: ELBO, IWAE and the latent space"


def _nearest_distance(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row of A (m, D) to its nearest row of B (n, D): (m,)."""
    d2 = (A * A).sum(1)[:, None] - 2.0 * A @ B.T + (B * B).sum(1)[None, :]
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0))


def build(report) -> None:
    with blas_threads(1):                   # small matrices: threads only cost (nprefgen/_threads.py)
        _build(report)


def _build(report) -> None:
    rng = report.rng("vae")
    quick = report.quick
    X, _ = load_digits("train")                       # (1078, 64) in [0, 1]
    X_val, _ = load_digits("val")
    X_test, y_test = load_digits("test")
    epochs = 4 if quick else 150
    k_big = 200 if quick else 5000
    n_eval = 60 if quick else len(X_test)
    report.text(
        "A VAE pairs an encoder q(z | x) = N(mu(x), diag exp(log_var(x))) with a decoder p(x | z) "
        "(VAE.1) and trains both on the ELBO (VAE.2): the expected reconstruction log-likelihood "
        "minus the KL to the N(0, I) prior, here in closed form (VAE.3). Gradients flow through "
        "the sample by the reparameterisation z = mu + exp(log_var / 2) eps (VAE.5); with eps "
        "fixed the whole gradient passes the dot-product test (tests/models/test_vae.py). The "
        "pixels in [0, 1] get a Bernoulli likelihood on logits (VAE.7). Two dense VAEs "
        "64-128-64-d, d = 2 and d = 8, ReLU, Adam (lr 2e-3, batches of 64), "
        f"{epochs} epochs on the {len(X)} training digits.")
    models = {}
    curves = {}
    for d in (2, 8):
        vae = dense_vae(64, d, hidden=(128, 64), rng=rng)
        vae.fit(X, rng=rng, epochs=epochs, batch_size=64, lr=2e-3, x_val=X_val, progress=False)
        models[d] = vae
        curves[f"d = {d}, train"] = vae.history_["train_loss"]
        curves[f"d = {d}, validation"] = vae.history_["val_loss"]
    report.figure(plot_loss_curves(curves, ylabel="negative ELBO (nats per image)"), "loss",
                  "training and validation negative ELBO per epoch")

    vae2, vae8 = models[2], models[8]
    mu2, _ = vae2.encode(X_test)
    report.figure(plot_latent_maps({"VAE, 2-D latent: encoder means": (mu2, y_test)}),
                  "latent-map", "test digits at their encoder means, coloured by label (never "
                                "seen in training); the KL term keeps the codes near N(0, I)")
    q = norm.ppf(np.linspace(0.04, 0.96, 12))         # a grid of prior quantiles
    grid = np.array([[a, b] for b in q[::-1] for a in q])
    report.figure(plot_image_mosaic(vae2.decode(grid), n_cols=12,
                                    title="decoded 12 x 12 grid of prior quantiles (d = 2)"),
                  "manifold", "the 2-D latent space decoded on an evenly spaced grid of prior "
                              "quantiles: neighbouring codes decode to similar digits")

    pick = np.sort(rng.choice(len(X_test), 10, replace=False))
    report.figure(plot_reconstructions(X_test[pick], {
        "VAE d = 2": vae2.reconstruct(X_test[pick]), "VAE d = 8": vae8.reconstruct(X_test[pick])}),
        "reconstructions", "test digits and the decoder means at their encoder means")

    i0 = int(np.flatnonzero(y_test == 0)[0])
    i1 = int(np.flatnonzero(y_test == 6)[0])
    m8, _ = vae8.encode(X_test[[i0, i1]])
    t = np.linspace(0.0, 1.0, 10)[:, None]
    report.figure(plot_image_mosaic(vae8.decode((1 - t) * m8[0] + t * m8[1]), n_cols=10,
                                    title="interpolation in the 8-D latent space"),
                  "interpolation", "decoder means along the straight line between the encoder "
                                   "means of a test 0 and a test 6")

    report.text(
        "How good are the models as densities? The ELBO bounds log p(x) from below; the IWAE "
        "bound L_k (VAE.12) averages k importance weights p(x, z_s) / q(z_s | x) inside the log "
        "and tightens with k, L_1 <= L_k <= L_k' <= log p(x) (VAE.13). L_k is computed in "
        "batches with a running log-sum-exp (VAE.14), so k = 5000 needs no more memory than "
        "k = 100. (With grey values in [0, 1] under a Bernoulli likelihood these are not "
        "normalised densities of continuous data; they compare models on the same data.)")
    rows = []
    Xe = X_test[:n_eval]
    for d, vae in models.items():
        elbo = vae.elbo(Xe, rng=rng, n_samples=10).mean()
        bounds = [vae.log_prob_iwae(Xe, k, rng=rng).mean() for k in (1, 10, 100)]
        big = vae.log_prob_iwae(Xe, k_big, rng=rng, batch=8192).mean()
        rows.append([f"VAE d = {d}", vae.elbo(X, rng=rng).mean(), elbo, *bounds, big])
    report.table(["model", "train ELBO", "test ELBO (analytic KL)", "L_1", "L_10", "L_100",
                  f"L_{k_big}"], rows,
                 caption=f"mean over {len(Xe)} test digits, nats per image; each column a fresh "
                         "Monte-Carlo estimate, so L_1 and the ELBO differ by noise only")

    report.text(
        "The prior is not the aggregate posterior. Decoding z ~ N(0, I) asks the decoder about "
        "codes the encoder may never produce (the 'holes' between the digit clusters in the map "
        "above). Fitting a Gaussian mixture to draws from the aggregate posterior "
        "q(z) = mean over the training digits of q(z | x) and sampling from it, as for the plain "
        "autoencoder (section on Gaussian mixtures), keeps the codes where the data are.")
    mu8, lv8 = vae8.encode(X)
    active = int(np.sum(mu8.var(axis=0) > 1e-2))
    # draws from the aggregate posterior q(z) = mean_x q(z | x): three per training digit
    z_agg = (mu8 + np.exp(0.5 * lv8) * rng.standard_normal((3,) + mu8.shape)).reshape(-1, 8)
    n_show = 30 if quick else 50
    gmm = GaussianMixture(10, n_init=1 if quick else 3, reg_covar=1e-4).fit(z_agg, rng=rng)
    z_gmm = gmm.sample(n_show, rng=rng)
    z_prior = rng.standard_normal((n_show, 8))
    img_gmm, img_prior = vae8.decode(z_gmm), vae8.decode(z_prior)
    report.figure(plot_image_mosaic(img_prior, n_cols=10, title="z ~ N(0, I) (the prior)"),
                  "samples-prior", "decoder means at codes drawn from the prior")
    report.figure(plot_image_mosaic(img_gmm, n_cols=10,
                                    title="z ~ GMM(10) fitted to the encoder means"),
                  "samples-gmm", "decoder means at codes drawn from a 10-component mixture "
                                 "fitted to aggregate-posterior draws of the training digits")
    rows = []
    z_test = vae8.encode(X_test[:n_show])[0]
    for name, z, imgs in (("prior N(0, I)", z_prior, img_prior), ("latent GMM", z_gmm, img_gmm),
                          ("test digits (encoder means)", z_test, vae8.decode(z_test))):
        rows.append([name, float(np.mean(gmm.score_samples(z))),
                     float(np.median(_nearest_distance(imgs, X)))])
    report.table(["codes", "mean log-density under the latent GMM",
                  "median pixel distance of the decoded mean to the nearest training digit"], rows,
                 caption=f"{active} of the 8 latent coordinates are active (variance of the "
                         "encoder mean over the data > 0.01, Burda et al. 2016); the others "
                         "collapse to the prior and the decoder ignores them. Higher "
                         "log-density: codes where the aggregate posterior has mass")
