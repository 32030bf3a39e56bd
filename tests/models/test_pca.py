"""PCA (derivations/representation.md, REP.1-REP.6, REP.8)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import subspace_angles

from nprefgen.models.pca import PCA, pca_fit, principal_angles, reconstruction_error
from nprefgen.testing.strategies import seeds


def _data(seed: int, n: int, d: int) -> np.ndarray:
    """Correlated Gaussian data with a spread-out spectrum (distinct eigenvalues a.s.)."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) * np.geomspace(3.0, 0.3, d)
    return rng.standard_normal((n, d)) @ mix.T + rng.standard_normal(d)


@given(seed=seeds(), n=st.integers(3, 40), d=st.integers(1, 8))
def test_pca_matches_covariance_eigendecomposition(seed, n, d):
    """(REP.1) mean and 1/(n-1) covariance; (REP.2) SVD = eigendecomposition of that covariance."""
    X = _data(seed, n, d)
    k = min(n, d)
    f = pca_fit(X, k)
    np.testing.assert_allclose(f.mean, X.mean(axis=0), rtol=1e-12, atol=1e-12)
    C = np.cov(X, rowvar=False, ddof=1).reshape(d, d)
    eig_all, vec = np.linalg.eigh(C)
    eig_all, vec = eig_all[::-1], vec[:, ::-1]
    eig = eig_all[:k]
    scale = max(eig[0], 1e-300)
    np.testing.assert_allclose(f.explained_variance, eig, rtol=1e-9, atol=1e-10 * scale)
    assert f.total_variance == pytest.approx(np.trace(C), rel=1e-10)
    # eigenvectors agree up to sign wherever the eigenvalue is separated from its neighbours
    gaps = np.abs(np.diff(np.concatenate([[np.inf], eig_all, [-np.inf]])))
    for j in range(k):
        if min(gaps[j], gaps[j + 1]) > 1e-6 * scale:
            assert abs(abs(f.components[j] @ vec[:, j]) - 1.0) < 1e-8
    # the components are orthonormal and C v_j = lambda_j v_j
    np.testing.assert_allclose(f.components @ f.components.T, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(f.components @ C, f.explained_variance[:, None] * f.components,
                               atol=1e-9 * scale)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_reconstruction_error_is_sum_of_discarded_eigenvalues(k):
    """(REP.5) sum_i ||x_i - x_hat_i||^2 = (n - 1) sum_{j>k} lambda_j; the per-sample mean is
    (n-1)/n times the discarded eigenvalues, and the factor matters (n = 15)."""
    X = _data(1, 15, 8)
    n = X.shape[0]
    pca = PCA(k).fit(X)
    all_eig = PCA(8).fit(X).explained_variance_
    discarded = all_eig[k:].sum()
    err = reconstruction_error(X, pca.reconstruct(X))
    assert err == pytest.approx((n - 1) * discarded, rel=1e-10)
    assert err / n == pytest.approx((n - 1) / n * discarded, rel=1e-10)
    # the wrong factor (the biased 1/n covariance's identity) is off by n/(n-1) = 7%
    assert abs(err - n * discarded) > 0.05 * err


def test_transform_inverse_and_whitening(rng):
    """(REP.3) scores and whitened scores; (REP.4) reconstruction; full rank is exact."""
    X = _data(2, 200, 5)
    full = PCA(5).fit(X)
    Z = full.transform(X)
    np.testing.assert_allclose(full.inverse_transform(Z), X, atol=1e-11)
    # scores are uncorrelated with variances lambda_j
    np.testing.assert_allclose(np.cov(Z, rowvar=False), np.diag(full.explained_variance_), atol=1e-10)
    white = PCA(3, whiten=True).fit(X)
    Zw = white.transform(X)
    np.testing.assert_allclose(np.cov(Zw, rowvar=False), np.eye(3), atol=1e-10)
    np.testing.assert_allclose(white.inverse_transform(Zw), PCA(3).fit(X).reconstruct(X), atol=1e-10)
    # (REP.4) the reconstruction is the orthogonal projection: residual orthogonal to V_k
    pca3 = PCA(3).fit(X)
    R = X - pca3.reconstruct(X)
    np.testing.assert_allclose(R @ pca3.components_.T, 0.0, atol=1e-10)


def test_explained_variance_ratio():
    """(REP.6) ratios are lambda_j / trace(C); they sum to 1 when all components are kept."""
    X = _data(3, 50, 6)
    pca = PCA(6).fit(X)
    assert pca.explained_variance_ratio_.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(pca.explained_variance_ratio_) <= 0)
    two = PCA(2).fit(X)
    np.testing.assert_allclose(two.explained_variance_ratio_, pca.explained_variance_ratio_[:2], rtol=1e-12)


def test_pca_against_sklearn_when_available():
    sklearn = pytest.importorskip("sklearn.decomposition")
    X = _data(4, 80, 7)
    ours = PCA(4).fit(X)
    ref = sklearn.PCA(4, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(np.abs(ours.components_ @ ref.components_.T), np.eye(4), atol=1e-8)


@given(seed=seeds(), k=st.integers(1, 4), l=st.integers(1, 4))
def test_principal_angles_against_scipy(seed, k, l):
    """(REP.8) principal angles agree with scipy.linalg.subspace_angles, including tiny ones."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((7, k))
    B = rng.standard_normal((7, l))
    ang = principal_angles(A, B)
    # atol 1e-7: when k + l > 7 the subspaces intersect and the last angle is exactly 0, which
    # scipy's sine branch returns only to ~1e-8
    np.testing.assert_allclose(ang, subspace_angles(A, B), atol=1e-7)
    if k + l > 7:
        assert ang[-1] < 1e-7
    # a slightly perturbed re-parametrisation of the same subspace: angles ~ the perturbation
    B2 = A @ rng.standard_normal((k, k)) + 1e-9 * rng.standard_normal((7, k))
    ang = principal_angles(A, B2)
    np.testing.assert_allclose(ang, subspace_angles(A, B2), rtol=1e-5, atol=1e-15)
    assert ang.max() < 1e-6


def test_pca_bad_inputs():
    X = _data(5, 10, 4)
    with pytest.raises(ValueError, match="n_components"):
        PCA(5).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        PCA(0)
    with pytest.raises(ValueError, match="X"):
        PCA(2).fit(X[:1])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        PCA(2).fit(bad)
    with pytest.raises(ValueError, match="whiten"):
        PCA(2, whiten="yes")
    pca = PCA(2)
    with pytest.raises(ValueError, match="not fitted"):
        pca.transform(X)
    pca.fit(X)
    with pytest.raises(ValueError, match="X"):
        pca.transform(X[:, :3])
    with pytest.raises(ValueError, match="Z"):
        pca.inverse_transform(np.zeros((3, 3)))


def test_pca_tour_section_quick(tmp_path):
    from nprefgen.tour import run_tour

    path = run_tour(tmp_path, quick=True, only=["pca"], progress=False, strict=True)
    text = open(path, encoding="utf-8").read()
    assert "pca-" in text and "<table>" in text
