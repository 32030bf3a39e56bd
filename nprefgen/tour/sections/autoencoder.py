"""Tour section: autoencoders, and the linear autoencoder that finds PCA's subspace
(nprefgen.models.autoencoder, derivations/representation.md)."""
from __future__ import annotations

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen.data import load_digits
from nprefgen.models.autoencoder import (
    conv_autoencoder, dense_autoencoder, linear_autoencoder,
)
from nprefgen.models.pca import PCA, principal_angles
from nprefgen.plots.representation import (
    plot_latent_maps, plot_reconstructions, plot_subspace_angles,
)
from nprefgen.plots.training import plot_training_history

ORDER = 22
TITLE = "Representation: autoencoders"


def _linear_ae_angles(Xc, Vk, steps, every, rng):
    """Train a linear AE full-batch and record the largest principal angle between its decoder's
    columns and span(Vk), Vk: (D, k) the top-k principal directions."""
    ae = linear_autoencoder(Xc.shape[1], Vk.shape[1], rng=rng, bias=False)
    marks, angles = [], []
    for s in range(every, steps + 1, every):
        ae.fit(Xc, rng=rng, epochs=every, batch_size=None, lr=1e-2, progress=False)
        marks.append(s)
        angles.append(principal_angles(ae.decoder.params["weight"], Vk).max())
    return ae, np.array(marks), np.array(angles)


def build(report) -> None:
    with blas_threads(1):                   # small matrices: threads only cost (nprefgen/_threads.py)
        _build(report)


def _build(report) -> None:
    rng = report.rng("autoencoder")
    quick = report.quick
    X, y = load_digits("train")
    X_val, _ = load_digits("val")
    X_test, y_test = load_digits("test")
    epochs = 4 if quick else 60
    if quick:                                # a few seconds: a subset and a few epochs
        X, X_val = X[:300], X_val[:100]

    report.text(
        "An encoder f maps a digit to a code z, a decoder g maps it back, and both are trained "
        "with Adam to reconstruct the input (REP.9; binary cross-entropy on [0, 1] pixels). With "
        "a 2-D code the latent space can be drawn.")
    ae2 = dense_autoencoder(64, 2, hidden=(128, 64), rng=rng, loss="bce")
    h2 = ae2.fit(X, rng=rng, epochs=epochs, batch_size=64, lr=2e-3, X_val=X_val, progress=False).history_
    k = 8
    pca8 = PCA(k).fit(X)
    Z_pca = pca8.transform(X_test)[:, :2]                   # the first 2 of 8 components = PCA(2)
    report.figure(plot_latent_maps({"dense autoencoder, 2-D code": (ae2.encode(X_test), y_test),
                                    "PCA, 2 components": (Z_pca, y_test)}), "latent-map",
                  "test digits in the 2-D code of the autoencoder (left) and of PCA (right), "
                  "coloured by label; the labels were never used in training")

    report.text(f"With a {k}-D code: a dense autoencoder 64-128-64-{k}, a convolutional one "
                f"(two stride-2 3x3 convolutions 8x8 -> 4x4 -> 2x2, and transposed convolutions "
                f"back), and PCA with {k} components.")
    ae8 = dense_autoencoder(64, k, hidden=(128, 64), rng=rng, loss="bce")
    h8 = ae8.fit(X, rng=rng, epochs=epochs, batch_size=64, lr=2e-3, X_val=X_val, progress=False).history_
    cae = conv_autoencoder((1, 8, 8), k, channels=(16, 32), rng=rng, loss="bce")
    hc = cae.fit(X, rng=rng, epochs=epochs, batch_size=64, lr=2e-3, X_val=X_val, progress=False).history_
    rows = []
    for name, model_rec, n_par in (
            ("dense AE, 2-D code", ae2.reconstruct, ae2.num_parameters()),
            (f"dense AE, {k}-D code", ae8.reconstruct, ae8.num_parameters()),
            (f"conv AE, {k}-D code", cae.reconstruct, cae.num_parameters()),
            (f"PCA, {k} components", pca8.reconstruct, pca8.components_.size + 64)):
        rows.append([name, n_par, float(np.mean((model_rec(X_test) - X_test) ** 2))])
    report.table(["model", "parameters", "test MSE per pixel"], rows,
                 caption=f"test reconstruction error ({epochs} epochs of Adam for the autoencoders)")
    pick = np.sort(rng.choice(X_test.shape[0], 10, replace=False))
    report.figure(plot_reconstructions(X_test[pick], {
        "AE 2-D": ae2.reconstruct(X_test[pick]), f"AE {k}-D": ae8.reconstruct(X_test[pick]),
        f"conv {k}-D": cae.reconstruct(X_test[pick]), f"PCA {k}": pca8.reconstruct(X_test[pick])}),
        "reconstructions", "test digits and their reconstructions")
    report.figure(plot_training_history(
        {"dense, 2-D code": {"train": h2["train_loss"], "val": h2["val_loss"]},
         f"dense, {k}-D code": {"train": h8["train_loss"], "val": h8["val_loss"]},
         f"conv, {k}-D code": {"train": hc["train_loss"], "val": hc["val_loss"]}},
        ylabel="binary cross-entropy per pixel"), "loss",
        "training (dashed) and validation (solid) loss per epoch, one colour per autoencoder")

    report.text(
        "What if the autoencoder has no activation functions? Then x_hat = W_d W_e x and the "
        "squared error is minimised exactly when the columns of W_d span the top-k principal "
        "subspace (REP.7-REP.8, Baldi & Hornik 1989); the weights themselves are any basis of it. "
        "Below, linear autoencoders are trained full-batch on the centred digits, and the largest "
        "principal angle between the decoder's column space and the PCA subspace is tracked.")
    Xc = X - X.mean(axis=0)
    steps, every = (100, 50) if quick else (1000, 25)
    full = PCA(6).fit(Xc)                                   # nested: V_k = first k rows
    lam = full.explained_variance_
    curves, rows = {}, []
    for kk in ((2, 3) if quick else (1, 2, 3, 5)):
        Vk = full.components_[:kk].T
        ae_lin, marks, angles = _linear_ae_angles(Xc, Vk, steps, every, rng)
        curves[f"k = {kk}"] = angles
        err_ae = float(np.sum((ae_lin.reconstruct(Xc) - Xc) ** 2))
        err_pca = float(np.sum((Xc - Xc @ Vk @ Vk.T) ** 2))    # (REP.4)-(REP.5)
        rows.append([kk, float(lam[kk - 1] / lam[kk]), angles[-1], err_ae, err_pca,
                     report.check(f"linear AE, k = {kk}: largest angle to the PCA subspace",
                                  float(angles[-1]), "angle < 1e-2 rad after training",
                                  bool(angles[-1] < 1e-2), show=False),
                     report.check(f"linear AE, k = {kk}: error not below PCA's (Eckart-Young)",
                                  err_ae / err_pca, "AE error / PCA error >= 1 - 1e-10",
                                  bool(err_ae >= err_pca * (1 - 1e-10)), show=False)])
    report.figure(plot_subspace_angles(marks, curves), "angles",
                  "largest principal angle between the linear decoder's columns and the top-k "
                  "PCA subspace during training (log scale)")
    report.table(["k", "lambda_k / lambda_{k+1}", "largest angle (rad)", "AE sum ||x - x_hat||^2",
                  "PCA sum ||x - x_hat||^2", "angle < 1e-2", "AE error >= PCA error"], rows,
                 caption=f"linear autoencoder vs PCA after {steps} full-batch Adam steps "
                         f"(lr 1e-2): the smaller the eigen-gap, the slower the convergence",
                 status_col=[5, 6])
