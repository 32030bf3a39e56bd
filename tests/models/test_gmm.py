"""Gaussian mixtures fitted by EM (derivations/gmm.md, labels GMM.*).

Statistical tolerances are derived from the sample size (5 standard errors, fixed seeds); the
scikit-learn comparison runs when scikit-learn is installed and is skipped cleanly otherwise.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import nprefgen.models.gmm_em as gmm_em
from nprefgen.models.gmm import (
    GaussianMixture, NotFittedError, e_step, m_step, n_parameters, precision_cholesky,
    precision_cholesky_from_precisions,
)
from nprefgen.models.kmeans import kmeans_plusplus, lloyd
from nprefgen.testing.strategies import seeds, spd_matrices

TYPES = ("full", "diag", "spherical")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _random_params(rng, K, d, covariance_type):
    """Random weights (K,), means (K, d) and covariances of the given type."""
    w = rng.dirichlet(2.0 * np.ones(K))
    mu = 2.0 * rng.standard_normal((K, d))
    if covariance_type == "full":
        A = rng.standard_normal((K, d, d))
        cov = A @ np.swapaxes(A, 1, 2) / d + 0.3 * np.eye(d)
    elif covariance_type == "diag":
        cov = rng.uniform(0.3, 2.0, size=(K, d))
    else:
        cov = rng.uniform(0.3, 2.0, size=K)
    return w, mu, cov


def _dense_cov(cov, covariance_type, d):
    if covariance_type == "full":
        return cov
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(d) for c in cov])


def _blobs(rng, n, truth):
    """n draws from a mixture given as (weights, means, full covariances)."""
    w, mu, cov = truth
    z = rng.choice(len(w), size=n, p=w)
    L = np.linalg.cholesky(cov)
    eps = rng.standard_normal((n, mu.shape[1]))
    return mu[z] + np.einsum("nij,nj->ni", L[z], eps), z


WELL_SEPARATED = (
    np.array([0.5, 0.3, 0.2]),
    np.array([[0.0, 0.0], [8.0, 1.0], [1.0, 9.0]]),
    np.array([[[1.0, 0.4], [0.4, 0.6]], [[0.5, -0.2], [-0.2, 1.2]], [[2.0, 0.0], [0.0, 0.3]]]),
)


def _assert_recovered(model, truth, n, n_se=5.0):
    """Fitted (weights, means, full covariances) within n_se standard errors of the truth.

    Components are matched by means (Hungarian assignment). Standard errors for n_k = n pi_k
    points: weight sqrt(pi (1 - pi) / n); mean sqrt(Sigma_jj / n_k); covariance entry
    sqrt((Sigma_ii Sigma_jj + Sigma_ij^2) / n_k) (Wishart variance).
    """
    w, mu, cov = truth
    d = mu.shape[1]
    cost = ((model.means_[:, None, :] - mu[None]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    order = rows[np.argsort(cols)]                      # fitted component for each true one
    fw, fmu = model.weights_[order], model.means_[order]
    fcov = _dense_cov(model.covariances_, model.covariance_type, d)[order]
    nk = n * w
    np.testing.assert_array_less(np.abs(fw - w), n_se * np.sqrt(w * (1 - w) / n))
    se_mu = np.sqrt(np.diagonal(cov, axis1=1, axis2=2) / nk[:, None])
    np.testing.assert_array_less(np.abs(fmu - mu), n_se * se_mu)
    var = np.diagonal(cov, axis1=1, axis2=2)
    se_cov = np.sqrt((var[:, :, None] * var[:, None, :] + cov ** 2) / nk[:, None, None])
    np.testing.assert_array_less(np.abs(fcov - cov), n_se * se_cov + 1e-9)


def _fit_quiet(est, X):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X)


# --------------------------------------------------------------------------------------------
# densities, responsibilities, M-step
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", TYPES)
def test_log_prob_and_responsibilities_match_direct_formula(covariance_type, rng):
    """(GMM.1) log p(x) = log sum_k pi_k N(x | mu_k, Sigma_k) against scipy's densities, (GMM.3)
    through the precision's Cholesky factor, and (GMM.4) the posterior r_ik by Bayes' rule."""
    K, d = 3, 4
    w, mu, cov = _random_params(rng, K, d, covariance_type)
    X = 2.5 * rng.standard_normal((50, d))
    dense = _dense_cov(cov, covariance_type, d)
    logpdf = np.stack([multivariate_normal(mu[k], dense[k]).logpdf(X) for k in range(K)], 1)
    joint = logpdf + np.log(w)
    expect = logsumexp(joint, axis=1)
    log_norm, log_resp = e_step(X, w, mu, precision_cholesky(cov, covariance_type),
                                covariance_type)
    np.testing.assert_allclose(log_norm, expect, rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_resp), np.exp(joint - expect[:, None]), rtol=1e-10,
                               atol=1e-300)
    # the estimator's methods are the same functions of the fitted parameters
    model = GaussianMixture(K, covariance_type=covariance_type, weights_init=w, means_init=mu,
                            precisions_init=1.0 / cov if covariance_type != "full"
                            else np.linalg.inv(cov), max_iter=1).fit(X, rng=rng)
    log_norm, log_resp = e_step(X, model.weights_, model.means_, model.precisions_cholesky_,
                                covariance_type)
    np.testing.assert_allclose(model.score_samples(X), log_norm, rtol=1e-14)
    np.testing.assert_allclose(model.log_prob(X), log_norm, rtol=1e-14)
    assert model.score(X) == pytest.approx(np.mean(log_norm), rel=1e-14)    # (GMM.2)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(log_resp), rtol=1e-14)
    np.testing.assert_array_equal(model.predict(X), np.argmax(log_resp, axis=1))


@given(sigma=spd_matrices(max_dim=5))
def test_precision_cholesky_round_trips(sigma):
    """(GMM.3a) U = chol(Sigma)^{-T} is upper-triangular with U U^T Sigma = I; (GMM.3b) the
    exchange-matrix route from the precision gives the same U."""
    d = sigma.shape[0]
    U = precision_cholesky(sigma[None], "full")[0]
    np.testing.assert_allclose(np.tril(U, -1), 0.0, atol=0)
    assert np.all(np.diag(U) > 0)
    np.testing.assert_allclose(U @ U.T @ sigma, np.eye(d), atol=1e-10)
    U2 = precision_cholesky_from_precisions(np.linalg.inv(sigma)[None], "full")[0]
    np.testing.assert_allclose(np.tril(U2, -1), 0.0, atol=0)
    np.testing.assert_allclose(U2, U, rtol=1e-8, atol=1e-10)


@given(seed=seeds(), K=st.integers(1, 6), d=st.integers(1, 8), scale=st.sampled_from([1.0, 30.0]),
       covariance_type=st.sampled_from(TYPES))
def test_responsibilities_sum_to_one(seed, K, d, scale, covariance_type):
    """(GMM.4) rows of the responsibilities sum to 1 and stay finite even when the densities
    underflow (points 30 sigma from every component)."""
    rng = np.random.default_rng(seed)
    w, mu, cov = _random_params(rng, K, d, covariance_type)
    X = scale * rng.standard_normal((20, d))
    log_norm, log_resp = e_step(X, w, mu, precision_cholesky(cov, covariance_type),
                                covariance_type)
    assert np.all(np.isfinite(log_norm)) and np.all(np.isfinite(log_resp))
    assert np.all(log_resp <= 1e-12)
    tol = 1e-13 * max(1.0, np.max(np.abs(log_norm)))   # log r = a - log p: |a| eps absolute
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=tol * K)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_m_step_matches_weighted_moments(covariance_type, rng):
    """(GMM.5) (GMM.6) (GMM.7) (GMM.8) (GMM.9a) (GMM.9b): weights N_k / n, weighted means and
    weighted (biased) covariances plus the floor, against np.average / np.cov(aweights=...)."""
    n, d, K, reg = 200, 3, 4, 1e-3
    X = rng.standard_normal((n, d)) * [1.0, 3.0, 0.2] + [5.0, -2.0, 40.0]
    resp = rng.dirichlet(np.ones(K), size=n)
    w, mu, cov = m_step(X, resp, covariance_type, reg)
    np.testing.assert_allclose(w, resp.sum(0) / n, rtol=1e-12)
    for k in range(K):
        np.testing.assert_allclose(mu[k], np.average(X, axis=0, weights=resp[:, k]), rtol=1e-12)
        c = np.cov(X.T, aweights=resp[:, k], bias=True) + reg * np.eye(d)
        expect = {"full": c, "diag": np.diag(c), "spherical": np.mean(np.diag(c))}
        np.testing.assert_allclose(cov[k], expect[covariance_type], rtol=1e-10)


def _elbo(X, w, mu, cov, covariance_type, q):
    """(GMM.10) L(q, theta) = mean_i sum_k q_ik [log pi_k + log N(x_i | mu_k, Sigma_k) - log q_ik]."""
    log_norm, log_resp = e_step(X, w, mu, precision_cholesky(cov, covariance_type),
                                covariance_type)
    a = log_resp + log_norm[:, None]                  # log pi_k + log N(x_i | .)
    return np.mean(np.sum(q * (a - np.log(q)), axis=1)), log_norm, log_resp


@pytest.mark.parametrize("covariance_type", TYPES)
def test_elbo_decomposition(covariance_type, rng):
    """(GMM.10) log p(x) = L(q, theta) + KL(q || posterior) for any q, with KL >= 0 and equality
    at q = r; (GMM.11) the M-step maximises L(q, .): random perturbations of its output lower L."""
    n, d, K = 60, 2, 3
    X = 2.0 * rng.standard_normal((n, d))
    w, mu, cov = _random_params(rng, K, d, covariance_type)
    q = rng.dirichlet(np.ones(K), size=n)
    L, log_norm, log_resp = _elbo(X, w, mu, cov, covariance_type, q)
    kl = np.mean(np.sum(q * (np.log(q) - log_resp), axis=1))
    assert kl > 0
    assert L + kl == pytest.approx(np.mean(log_norm), rel=1e-12)
    L_r, _, _ = _elbo(X, w, mu, cov, covariance_type, np.exp(log_resp))
    assert L_r == pytest.approx(np.mean(log_norm), rel=1e-12)
    # the M-step (reg_covar = 0) is the argmax of L(q, .) for fixed q
    w1, mu1, cov1 = m_step(X, q, covariance_type, 0.0)
    best, _, _ = _elbo(X, w1, mu1, cov1, covariance_type, q)
    for _ in range(10):
        wp = w1 * np.exp(0.05 * rng.standard_normal(K))
        covp = cov1 * np.exp(0.05 * rng.standard_normal(cov1.shape))
        if covariance_type == "full":
            covp = 0.5 * (covp + np.swapaxes(covp, 1, 2)) + 0.0 * cov1
            covp = covp if np.all(np.linalg.eigvalsh(covp) > 0) else cov1
        Lp, _, _ = _elbo(X, wp / wp.sum(), mu1 + 0.05 * rng.standard_normal(mu1.shape), covp,
                         covariance_type, q)
        assert Lp < best


# --------------------------------------------------------------------------------------------
# EM as a whole
# --------------------------------------------------------------------------------------------
def _assert_monotone(history):
    """The mean log-likelihood never decreases by more than rounding (a few ulps of |l|)."""
    history = np.asarray(history)
    drops = np.diff(history)
    slack = 1e-13 * np.maximum(1.0, np.abs(history[1:]))
    assert np.all(drops >= -slack), f"log-likelihood decreased: min diff {drops.min():.3g}"


@given(seed=seeds(), K=st.integers(1, 4), d=st.integers(1, 3),
       covariance_type=st.sampled_from(TYPES), init=st.sampled_from(["random", "kmeans"]))
def test_log_likelihood_never_decreases(seed, K, d, covariance_type, init):
    """(GMM.11) EM with reg_covar = 0 (the exact M-step): l(theta_t) is non-decreasing along the
    history (GMM.2) and the final parameters score at least the last bound, for drawn data and K."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30 * K, 60 * K + 1))
    centres = 3.0 * rng.standard_normal((K + 1, d))                  # K need not match the data
    X = centres[rng.integers(K + 1, size=n)] + rng.gamma(2.0, 0.5, size=(n, d)) * rng.choice(
        [-1.0, 1.0], size=(n, d))
    model = GaussianMixture(K, covariance_type=covariance_type, reg_covar=0.0, tol=0.0,
                            max_iter=15, init_params=init).fit(X, rng=rng)
    assert len(model.lower_bounds_) == model.n_iter_ == 15
    _assert_monotone(model.lower_bounds_)
    assert model.score(X) >= model.lower_bound_ - 1e-13 * abs(model.lower_bound_)


def test_broken_m_step_is_caught(monkeypatch, rng):
    """The checks can fail. Started at a converged fit (a local maximum of the likelihood), a
    correct EM step stays put (GMM.11) but an M-step with an un-centred covariance (the
    N_k mu mu^T term of (GMM.6) forgotten) moves away and the likelihood drops; an M-step whose
    weights never update (the numpy-ml bug) misses the true weights (GMM.7)."""
    n = 3000
    X, _ = _blobs(rng, n, WELL_SEPARATED)
    good = GaussianMixture(3, n_init=2, tol=1e-10, max_iter=500).fit(X, rng=np.random.default_rng(0))
    _assert_monotone(good.lower_bounds_)
    _assert_recovered(good, WELL_SEPARATED, n)
    start = dict(weights_init=good.weights_, means_init=good.means_,
                 precisions_init=good.precisions_, tol=0.0, max_iter=4)
    _assert_monotone(GaussianMixture(3, **start).fit(X, rng=rng).lower_bounds_)
    real_m_step = gmm_em.m_step       # patched where EM looks it up: initialisation and loop

    def uncentred(X, resp, covariance_type, reg_covar):
        w, mu, cov = real_m_step(X, resp, covariance_type, reg_covar)
        return w, mu, cov + np.einsum("ki,kj->kij", mu, mu)

    monkeypatch.setattr(gmm_em, "m_step", uncentred)
    bad = GaussianMixture(3, **start).fit(X, rng=rng)
    with pytest.raises(AssertionError, match="decreased"):
        _assert_monotone(bad.lower_bounds_)

    def frozen_weights(X, resp, covariance_type, reg_covar):
        _, mu, cov = real_m_step(X, resp, covariance_type, reg_covar)
        return np.full(resp.shape[1], 1.0 / resp.shape[1]), mu, cov

    monkeypatch.setattr(gmm_em, "m_step", frozen_weights)
    bad = GaussianMixture(3, n_init=2, tol=1e-8).fit(X, rng=np.random.default_rng(0))
    with pytest.raises(AssertionError):
        _assert_recovered(bad, WELL_SEPARATED, n)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_recovers_well_separated_mixture(covariance_type, rng):
    """(GMM.7) (GMM.8) (GMM.9a) parameters of a known, well-separated mixture are recovered within
    5 standard errors for n = 4000 draws (diag: a truth with diagonal covariances)."""
    w, mu, cov = WELL_SEPARATED
    if covariance_type == "diag":
        cov = np.stack([np.diag(np.diag(c)) for c in cov])
    n = 4000
    X, _ = _blobs(rng, n, (w, mu, cov))
    model = GaussianMixture(3, covariance_type=covariance_type, n_init=2, tol=1e-8).fit(X, rng=rng)
    assert model.converged_
    _assert_recovered(model, (w, mu, cov), n)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_samples_match_fitted_mixture(covariance_type, rng):
    """(GMM.14) m = 20000 draws: label frequencies match the weights, each component's draws
    have its mean and covariance, within 5 standard errors; sampling is reproducible from the
    generator and never from estimator-owned state."""
    X, _ = _blobs(rng, 1000, WELL_SEPARATED)
    model = GaussianMixture(3, covariance_type=covariance_type).fit(X, rng=rng)
    m, d = 20000, 2
    x, z = model.sample(m, rng=np.random.default_rng(1), return_labels=True)
    assert x.shape == (m, d) and z.shape == (m,)
    w = model.weights_
    freq = np.bincount(z, minlength=3) / m
    np.testing.assert_array_less(np.abs(freq - w), 5 * np.sqrt(w * (1 - w) / m))
    dense = _dense_cov(model.covariances_, covariance_type, d)
    for k in range(3):
        xk = x[z == k]
        mk = len(xk)
        var = np.diag(dense[k])
        np.testing.assert_array_less(np.abs(xk.mean(0) - model.means_[k]), 5 * np.sqrt(var / mk))
        se = np.sqrt((var[:, None] * var[None, :] + dense[k] ** 2) / mk)
        np.testing.assert_array_less(np.abs(np.cov(xk.T) - dense[k]), 5 * se)
    np.testing.assert_array_equal(model.sample(5, rng=np.random.default_rng(3)),
                                  model.sample(5, rng=np.random.default_rng(3)))
    g = np.random.default_rng(4)
    assert not np.array_equal(model.sample(5, rng=g), model.sample(5, rng=g))


def test_bic_aic_formulas(rng):
    """(GMM.12) parameter counts; (GMM.13a) BIC = -2 m l + p log m; (GMM.13b) AIC = -2 m l + 2p;
    and BIC picks the true K = 3 among 1..5 on well-separated data."""
    assert n_parameters(3, 2, "full") == 2 + 6 + 9
    assert n_parameters(3, 2, "diag") == 2 + 6 + 6
    assert n_parameters(3, 2, "spherical") == 2 + 6 + 3
    assert n_parameters(10, 64, "full") == 9 + 640 + 10 * 64 * 65 // 2
    n = 600
    X, _ = _blobs(rng, n, WELL_SEPARATED)
    bics = []
    for K in range(1, 6):
        model = GaussianMixture(K).fit(X, rng=rng)
        total = np.sum(model.score_samples(X))
        p = model.n_parameters()
        assert model.bic(X) == pytest.approx(-2 * total + p * np.log(n), rel=1e-12)
        assert model.aic(X) == pytest.approx(-2 * total + 2 * p, rel=1e-12)
        bics.append(model.bic(X))
    assert int(np.argmin(bics)) + 1 == 3


def test_kmeans_plusplus_and_lloyd(rng):
    """(GMM.15) k-means++ picks distinct data rows, one per far-apart cluster (D^2 sampling);
    (GMM.16) Lloyd's within-cluster sum of squares never increases and reaches the cluster means."""
    X, z = _blobs(rng, 900, WELL_SEPARATED)
    centers, idx = kmeans_plusplus(X, 3, rng=rng)
    np.testing.assert_array_equal(centers, X[idx])
    assert len(set(z[idx])) == 3
    inertias = [lloyd(X, centers, max_iter=t)[2] for t in range(6)]
    assert np.all(np.diff(inertias) <= 1e-9 * inertias[0])
    final, labels, _, _ = lloyd(X, centers, max_iter=50)
    for k in range(3):
        np.testing.assert_allclose(final[k], X[labels == k].mean(0), rtol=1e-12)


def test_restarts_keep_the_best_bound():
    """(GMM.17) n_init restarts keep the run with the highest final bound: it equals the best of
    the same runs made one at a time from the same generator stream; convergence bookkeeping."""
    X, _ = _blobs(np.random.default_rng(0), 400, WELL_SEPARATED)
    kw = dict(n_components=6, init_params="random", max_iter=30, tol=1e-4)
    multi = GaussianMixture(**kw, n_init=4).fit(X, rng=np.random.default_rng(7))
    g = np.random.default_rng(7)
    singles = [GaussianMixture(**kw).fit(X, rng=g) for _ in range(4)]
    bounds = [s.lower_bound_ for s in singles]
    assert len(set(np.round(bounds, 8))) > 1, "restarts should differ"
    best = singles[int(np.argmax(bounds))]
    assert multi.lower_bound_ == max(bounds)
    np.testing.assert_array_equal(multi.means_, best.means_)
    for s in singles + [multi]:
        assert s.n_iter_ == len(s.lower_bounds_)
        assert s.lower_bound_ == s.lower_bounds_[-1]
        if s.converged_:
            assert abs(s.lower_bounds_[-1] - s.lower_bounds_[-2]) < 1e-4
        else:
            assert s.n_iter_ == 30
    no_tol = GaussianMixture(2, tol=0.0, max_iter=7).fit(X, rng=np.random.default_rng(1))
    assert not no_tol.converged_ and no_tol.n_iter_ == 7


# --------------------------------------------------------------------------------------------
# scikit-learn cross-check
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", TYPES)
def test_matches_sklearn_per_iteration(covariance_type):
    """(GMM.2)-(GMM.9b) from the same initial weights, means and precisions (GMM.3b), every
    per-iteration mean log-likelihood (GMM.17 bookkeeping) matches
    sklearn.mixture.GaussianMixture to 1e-8, and so do the final parameters, BIC and AIC."""
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    rng = np.random.default_rng(3)
    X, _ = _blobs(rng, 500, (np.array([0.4, 0.35, 0.25]), np.array([[0., 0.], [3., 1.], [0., 3.]]),
                             WELL_SEPARATED[2]))
    X = np.column_stack([X, 0.5 * X[:, 0] + rng.standard_normal(500)])     # d = 3, correlated
    K, d = 3, 3
    w0 = np.array([0.2, 0.3, 0.5])
    mu0 = X[[0, 1, 2]]
    if covariance_type == "full":
        A = rng.standard_normal((K, d, d))
        prec0 = A @ np.swapaxes(A, 1, 2) + np.eye(d)
    else:
        prec0 = rng.uniform(0.5, 2.0, size=(K, d) if covariance_type == "diag" else K)
    kw = dict(covariance_type=covariance_type, tol=0.0, max_iter=40, reg_covar=1e-6,
              weights_init=w0, means_init=mu0, precisions_init=prec0)
    ours = GaussianMixture(K, **kw).fit(X, rng=rng)
    theirs = _fit_quiet(sklearn_mixture.GaussianMixture(K, **kw), X)
    assert len(theirs.lower_bounds_) == len(ours.lower_bounds_) == 40
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=0, atol=1e-8)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, abs=1e-8)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, atol=1e-8)
    np.testing.assert_allclose(ours.means_, theirs.means_, atol=1e-8)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, atol=1e-8)
    np.testing.assert_allclose(ours.precisions_cholesky_, theirs.precisions_cholesky_, atol=1e-7)
    assert ours.n_parameters() == theirs._n_parameters()
    assert ours.bic(X) == pytest.approx(theirs.bic(X), rel=1e-10)
    assert ours.aic(X) == pytest.approx(theirs.aic(X), rel=1e-10)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), atol=1e-8)


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------
def test_bad_inputs_name_the_argument(rng):
    """K > n, non-finite data, singular covariances without a floor, bad hyper-parameters and
    initial values raise ValueError naming the argument; use before fit raises NotFittedError."""
    X = rng.standard_normal((10, 2))
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixture(11).fit(X, rng=rng)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        GaussianMixture(2).fit(bad, rng=rng)
    t = rng.standard_normal(50)
    collinear = np.column_stack([t, 2.0 * t - 1.0])
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(2, reg_covar=0.0).fit(collinear, rng=rng)
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(2, covariance_type="diag", reg_covar=0.0).fit(
            np.column_stack([t, np.zeros(50)]), rng=rng)
    GaussianMixture(2).fit(collinear, rng=rng)                  # the default floor makes it fine
    for kwargs, name in [({"covariance_type": "tied"}, "covariance_type"),
                         ({"reg_covar": -1.0}, "reg_covar"), ({"max_iter": 0}, "max_iter"),
                         ({"n_init": 0}, "n_init"), ({"init_params": "kmeans++"}, "init_params"),
                         ({"tol": -1.0}, "tol")]:
        with pytest.raises(ValueError, match=name):
            GaussianMixture(2, **kwargs)
    with pytest.raises(ValueError, match="weights_init"):
        GaussianMixture(2, weights_init=[0.7, 0.7]).fit(X, rng=rng)
    with pytest.raises(ValueError, match="means_init"):
        GaussianMixture(2, means_init=np.zeros((2, 3))).fit(X, rng=rng)
    with pytest.raises(ValueError, match="precisions_init"):
        GaussianMixture(2, precisions_init=np.stack([np.eye(2), -np.eye(2)])).fit(X, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        GaussianMixture(2).fit(X, rng="0")
    model = GaussianMixture(2)
    for call in (lambda: model.sample(3, rng=rng), lambda: model.predict(X),
                 lambda: model.score_samples(X), lambda: model.bic(X)):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    assert issubclass(NotFittedError, ValueError)
    model.fit(X, rng=rng)
    with pytest.raises(ValueError, match="X"):
        model.predict(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="n"):
        model.sample(0, rng=rng)


# --------------------------------------------------------------------------------------------
# plots and tour sections
# --------------------------------------------------------------------------------------------
def test_ellipse_points_lie_on_the_contour(rng):
    """The drawn n-sigma ellipse of N(mu, Sigma) is the set (x - mu)^T Sigma^{-1} (x - mu) = n^2."""
    from nprefgen.plots.gmm import ellipse_points

    A = rng.standard_normal((2, 2))
    cov = A @ A.T + 0.1 * np.eye(2)
    mu = rng.standard_normal(2)
    e = ellipse_points(mu, cov, n_std=2.0, n_points=50) - mu
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", e, np.linalg.inv(cov), e), 4.0,
                               rtol=1e-10)


@pytest.mark.parametrize("section", ["gmm_toys", "gmm_latent"])
def test_tour_section_quick(section, tmp_path):
    """The tour sections build in quick mode and write their figures."""
    from nprefgen.tour import run_tour

    index = run_tour(tmp_path, quick=True, only=[section], progress=False, strict=True)
    pngs = sorted(p.name for p in tmp_path.glob(f"{section}-*.png"))
    assert len(pngs) >= 3, pngs
    assert "FAIL" not in open(index, encoding="utf-8").read()


def test_a_row_far_outside_the_mixture_blames_x_not_an_internal_name():
    """Finite X whose squared Mahalanobis distance overflows (issue 13, class 4): the ValueError
    names ``X`` and says the scale is the problem, not an internal array."""
    X = np.random.default_rng(0).standard_normal((50, 2))
    gmm = GaussianMixture(2).fit(X, rng=0)
    for method in (gmm.score_samples, gmm.predict_proba, gmm.predict):
        with pytest.raises(ValueError, match=r"^X: .*underflows to -inf.*rescale"):
            method(np.full((3, 2), 1e154))
    assert np.all(np.isfinite(gmm.score_samples(X)))
