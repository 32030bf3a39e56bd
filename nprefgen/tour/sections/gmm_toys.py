"""Tour section: Gaussian mixtures fitted by EM on the 2-D toy densities (derivations/gmm.md)."""
from __future__ import annotations

import numpy as np

from nprefgen.data.toys import TOYS
from nprefgen.models.gmm import GaussianMixture
from nprefgen.plots.gmm import plot_em_histories, plot_gmm_panels, plot_information_criteria

ORDER = 31
TITLE = "Gaussian mixtures: EM on 2-D toys"

# toy -> number of components used for its panel
_K = {"8gaussians": 8, "two_moons": 8, "rings": 16, "pinwheel": 10}


def build(report) -> None:
    rng = report.rng("gmm_toys")
    quick = report.quick
    n_train, n_test = (800, 800) if quick else (3000, 3000)
    n_init = 1 if quick else 3
    report.text(
        "A Gaussian mixture (GMM.1) fitted by expectation-maximisation: the E-step computes each "
        "point's responsibilities in log space (GMM.4), the M-step refits every component to its "
        "weighted share (GMM.7, GMM.8), and the log-likelihood cannot decrease (GMM.10, GMM.11). "
        "Initialisation by k-means++ and Lloyd steps (GMM.15, GMM.16), best of several restarts "
        "(GMM.17). Ellipses mark 1 and 2 standard deviations of each component (thicker = larger "
        "weight); shading is the fitted log-density.")

    panels, bounds, rows = {}, {}, []
    for name, K in _K.items():
        toy = TOYS[name]
        X, X_test = toy.sample(n_train, rng=rng), toy.sample(n_test, rng=rng)
        model = GaussianMixture(K, n_init=n_init).fit(X, rng=rng)
        title = f"{name}, K = {K}"
        panels[title] = (model, X)
        bounds[title] = toy.bounds
        test = model.score(X_test)
        true = float(np.mean(toy.log_prob(X_test))) if toy.has_log_prob else None
        conv = report.check(f"{name}: EM converged", model.n_iter_,
                            f"converged (tol {model.tol:g}) within max_iter = {model.max_iter}",
                            bool(model.converged_), show=False)
        gap = None
        if name == "8gaussians":
            # the toy is a mixture of 8, so the model is right: the expected KL of the maximum-
            # likelihood fit is p / (2 n) for p free parameters (asymptotically), and the test
            # average adds sampling noise of standard error se
            diff = toy.log_prob(X_test) - model.score_samples(X_test)
            se = float(diff.std(ddof=1) / np.sqrt(n_test))
            bias = model.n_parameters() / (2.0 * n_train)
            gap = report.check("8gaussians: gap is fitting error plus noise", float(diff.mean()),
                               f"|gap - p/(2n)| < 2.58 standard errors, p/(2n) = {bias:.3g}, "
                               f"2.58 se = {2.58 * se:.3g}",
                               bool(abs(diff.mean() - bias) < 2.58 * se), show=False)
        rows.append([name, K, model.n_iter_, conv, model.score(X), test,
                     "-" if true is None else true, "-" if true is None else true - test, gap])
    report.figure(plot_gmm_panels(panels, bounds=bounds), "contours",
                  f"full-covariance GMMs fitted to {n_train} samples of each toy")
    report.table(["toy", "K", "EM iterations", "converged", "train mean log p",
                  "test mean log p", "true mean log p", "gap (KL estimate)", "gap is noise"],
                 rows, status_col=[3, 8],
                 caption=f"held-out log-likelihood on {n_test} fresh samples; where the toy has a "
                         "closed-form density, true minus fitted mean log p estimates "
                         "KL(p || p_GMM) >= 0. The 8-Gaussians toy is itself a mixture of 8, so "
                         "the gap there is only the fitting error of the maximum-likelihood "
                         "estimate, p / (2 n) on average for p parameters and n training points, "
                         "plus sampling noise.")

    # EM histories: restarts climb to different local optima
    X = TOYS["pinwheel"].sample(n_train, rng=rng)
    histories = {}
    for r in range(3 if quick else 6):
        m = GaussianMixture(10, init_params="k-means++", tol=1e-6, max_iter=60 if quick else 300)
        m.fit(X, rng=rng)
        histories[f"restart {r + 1}: final {m.lower_bound_:.3f}"] = m.lower_bounds_
        lb = np.asarray(m.lower_bounds_, dtype=float)
        drop = float(np.max(lb[:-1] - lb[1:], initial=0.0))      # largest decrease
        report.check(f"EM restart {r + 1}: log-likelihood never decreases (GMM.11)", drop,
                     "largest decrease per iteration <= 1e-10 (round-off)", bool(drop <= 1e-10))
    report.figure(plot_em_histories(histories, "pinwheel, K = 10, k-means++ seeds"),
                  "em-history", "mean log-likelihood per EM iteration (GMM.11): every curve "
                  "is non-decreasing; restarts end at different local maxima, which is why "
                  "n_init keeps the best (GMM.17)")

    # model selection on the 8-Gaussians toy, where the true K is 8
    toy = TOYS["8gaussians"]
    X = toy.sample(n_train, rng=rng)
    ks = list(range(2, 13, 2 if quick else 1))
    bic, aic = [], []
    for K in ks:
        m = GaussianMixture(K, n_init=n_init).fit(X, rng=rng)
        bic.append(m.bic(X))
        aic.append(m.aic(X))
    k_bic = ks[int(np.argmin(bic))]
    report.check("8 Gaussians: BIC recovers the true K", k_bic, "BIC picks K = 8", k_bic == 8)
    report.figure(plot_information_criteria(ks, {"BIC (GMM.13a)": bic, "AIC (GMM.13b)": aic},
                                            "8 Gaussians: choosing K"), "bic",
                  f"information criteria on {n_train} samples; the star marks each minimum "
                  f"(BIC picks K = {ks[int(np.argmin(bic))]}, AIC K = {ks[int(np.argmin(aic))]}; "
                  "the truth is 8)")

    # covariance types on one toy
    toy = TOYS["two_moons"]
    X, X_test = toy.sample(n_train, rng=rng), toy.sample(n_test, rng=rng)
    rows = []
    for ct in ("full", "diag", "spherical"):
        m = GaussianMixture(8, covariance_type=ct, n_init=n_init).fit(X, rng=rng)
        rows.append([ct, m.n_parameters(), m.score(X), m.score(X_test), m.bic(X)])
    margin = rows[0][3] - max(r[3] for r in rows[1:])
    report.check("two moons, K = 8: full covariances fit best on held-out data", float(margin),
                 "test mean log p (full) - max(diag, spherical) > 0", bool(margin > 0))
    report.table(["covariance_type", "parameters (GMM.12)", "train mean log p", "test mean log p",
                  "BIC"], rows, caption="two moons, K = 8: full covariances follow the curved "
                                        "arms with fewer components; diagonal and spherical "
                                        "ones need more")
