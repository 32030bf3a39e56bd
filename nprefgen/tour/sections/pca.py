"""Tour section: PCA of the digits (nprefgen.models.pca, derivations/representation.md)."""
from __future__ import annotations

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen.data import load_digits
from nprefgen.models.pca import PCA, pca_inverse_transform, pca_transform, reconstruction_error
from nprefgen.plots.representation import (
    plot_components, plot_explained_variance, plot_latent_map, plot_reconstructions,
)

ORDER = 21
TITLE = "Representation: PCA"


def build(report) -> None:
    with blas_threads(1):                   # small matrices: threads only cost (nprefgen/_threads.py)
        _build(report)


def _build(report) -> None:
    rng = report.rng("pca")
    X, y = load_digits("train")
    X_test, y_test = load_digits("test")
    n = X.shape[0]
    report.text(
        "PCA by the SVD of the centred training digits (REP.1-REP.2): the right singular "
        "vectors are the eigenvectors of the covariance and s_j^2/(n-1) its eigenvalues. The code "
        "of an image is its projection on the first k directions (REP.3); the reconstruction "
        "projects back (REP.4).")
    full = PCA(64).fit(X)
    ratios = full.explained_variance_ratio_
    report.figure(plot_components(full.mean_, full.components_, ratios, n_show=15), "components",
                  "mean digit and the first 15 principal directions (red +, blue -) with the "
                  "share of variance each explains")
    ks = (1, 2, 5, 10, 20, 30, 40)
    report.figure(plot_explained_variance(ratios, marks=ks), "spectrum",
                  "explained variance ratio per component and cumulative")
    def reconstruct(X_, k):                                    # (REP.3)-(REP.4) with V_k
        V = full.components_[:k]
        return pca_inverse_transform(pca_transform(X_, full.mean_, V), full.mean_, V)

    rows = []
    eig = full.explained_variance_
    for k in ks:
        err_train = reconstruction_error(X, reconstruct(X, k))
        predicted = (n - 1) * eig[k:].sum()                    # (REP.5)
        err_test = reconstruction_error(X_test, reconstruct(X_test, k)) / X_test.size
        rel = abs(err_train - predicted) / predicted
        rows.append([k, float(ratios[:k].sum()), err_train, predicted, rel, err_test,
                     report.check(f"(REP.5) at k = {k}", rel, "relative difference < 1e-12 "
                                  "(round-off)", bool(rel < 1e-12), show=False)])
    report.table(["k", "variance kept", "train sum ||x - x_hat||^2", "(n-1) sum_{j>k} lambda_j",
                  "relative difference", "test MSE per pixel", "REP.5 holds"], rows, status_col=6,
                 caption="reconstruction error equals the discarded eigenvalues times (n - 1) "
                         "(REP.5), to round-off")
    n_show = 8 if report.quick else 12
    pick = np.sort(rng.choice(X_test.shape[0], n_show, replace=False))
    recon = {f"k={k}": reconstruct(X_test[pick], k) for k in (2, 5, 10, 20)}
    report.figure(plot_reconstructions(X_test[pick], recon), "reconstructions",
                  "test digits and their PCA reconstructions from k components")
    Z = pca_transform(X_test, full.mean_, full.components_[:2])
    report.figure(plot_latent_map(Z, y_test, "test digits on the first two principal components"),
                  "map", "2-D PCA codes of the test digits coloured by label: 0, 4, 6 separate, "
                         "the others overlap")
    white = PCA(10, whiten=True).fit(X)                        # the estimator API once more
    C = np.cov(white.transform(X), rowvar=False)
    gap = float(np.abs(C - np.eye(10)).max())
    report.text(f"Whitening divides each score by sqrt(lambda_j): the covariance of the 10 "
                f"whitened training scores differs from the identity by at most {gap:.1e}.")
    report.check("whitened scores: max |cov - I|", gap, "max |cov - I| < 1e-10 (round-off)",
                 bool(gap < 1e-10))
