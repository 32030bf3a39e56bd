"""Parity of the Gaussian-mixture kernels with their NumPy twins (derivations/gmm.md):
log-densities through the precision's Cholesky factor (GMM.3), log-responsibilities (GMM.4),
weighted sums (GMM.5) and centred scatters (GMM.6). Contiguous and strided inputs, rtol 1e-12."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.kernels import gmm as kg
from nprefgen.testing.strategies import seeds, strided_arrays

pytestmark = pytest.mark.kernels

PAIRS = {
    "log_gaussian_prob_full": (kg.log_gaussian_prob_full, kg.log_gaussian_prob_full_numpy),
    "log_gaussian_prob_diag": (kg.log_gaussian_prob_diag, kg.log_gaussian_prob_diag_numpy),
    "log_responsibilities": (kg.log_responsibilities, kg.log_responsibilities_numpy),
    "weighted_sums": (kg.weighted_sums, kg.weighted_sums_numpy),
    "weighted_scatter_full": (kg.weighted_scatter_full, kg.weighted_scatter_full_numpy),
    "weighted_scatter_diag": (kg.weighted_scatter_diag, kg.weighted_scatter_diag_numpy),
}


def _strided(a: np.ndarray) -> np.ndarray:
    """The same values as a non-contiguous view (every second element along the last axis)."""
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],))
    big[..., ::2] = a
    return big[..., ::2]


def _inputs(name, X, K, seed):
    """Arguments for kernel ``name`` built around data X: (n, d)."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    means = rng.standard_normal((K, d))
    if name == "log_gaussian_prob_full":
        U = np.triu(0.3 * rng.standard_normal((K, d, d)), 1)
        U[:, np.arange(d), np.arange(d)] = rng.uniform(0.3, 3.0, size=(K, d))
        return X, means, U
    if name == "log_gaussian_prob_diag":
        return X, means, rng.uniform(0.3, 3.0, size=(K, d))
    if name == "log_responsibilities":
        return (30.0 * X[:, :1] + 50.0 * rng.standard_normal((n, K)),)   # wide range of a_ik
    resp = rng.dirichlet(np.ones(K), size=n)
    if name == "weighted_sums":
        return X, resp
    return X, resp, means


def _assert_parity(name, args):
    fast, slow = PAIRS[name]
    ref = slow(*args)
    got = fast(*args)
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = got if isinstance(got, tuple) else (got,)
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.dtype == np.float64
        # rtol 1e-12 of the entry, with an absolute floor of 1e-12 of the largest entry for
        # entries that are sums of cancelling terms (off-diagonal scatters, near-zero log-densities)
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12 * np.max(np.abs(r)))


@pytest.mark.parametrize("name", sorted(PAIRS))
@given(n=st.integers(1, 12), d=st.integers(1, 5), K=st.integers(1, 4), seed=seeds(),
       data=st.data())
def test_kernel_parity(name, n, d, K, seed, data):
    """(GMM.3) (GMM.4) (GMM.5) (GMM.6) numba == NumPy on contiguous and strided inputs."""
    X = data.draw(strided_arrays((n, d), scale=2.0))
    args = _inputs(name, X, K, seed)
    _assert_parity(name, args)                                          # as drawn (maybe strided)
    _assert_parity(name, tuple(np.ascontiguousarray(a) for a in args))  # contiguous
    _assert_parity(name, tuple(_strided(a) for a in args))              # strided, every argument


@pytest.mark.parametrize("name", ["log_gaussian_prob_full", "weighted_scatter_full"])
def test_full_kernels_across_row_blocks(name):
    """(GMM.3) (GMM.6) the BLAS kernels work in row blocks of _BLOCK: n = 2 blocks + 37 rows,
    d = 17, a strided X."""
    rng = np.random.default_rng(5)
    X = _strided(rng.standard_normal((2 * kg._BLOCK + 37, 17)))
    _assert_parity(name, _inputs(name, X, 3, 11))


def test_kernel_values_against_scipy():
    """(GMM.3) the log-density agrees with scipy.stats.multivariate_normal, and (GMM.4)
    responsibilities are normalised even when every density underflows (a_ik ~ -1e4)."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(2)
    d = 4
    X = rng.standard_normal((7, d))
    A = rng.standard_normal((d, d))
    cov = A @ A.T + 0.5 * np.eye(d)
    mu = rng.standard_normal(d)
    U = np.linalg.inv(np.linalg.cholesky(cov)).T                  # (GMM.3a) C^{-T}
    for f in (kg.log_gaussian_prob_full, kg.log_gaussian_prob_full_numpy):
        np.testing.assert_allclose(f(X, mu[None], U[None])[:, 0],
                                   multivariate_normal(mu, cov).logpdf(X), rtol=1e-12)
    a = -1e4 + rng.standard_normal((5, 3))
    for f in (kg.log_responsibilities, kg.log_responsibilities_numpy):
        log_norm, log_resp = f(a)
        assert np.all(np.isfinite(log_norm))
        # log r = a - log p loses |a| eps absolutely: the sum is 1 to ~ 1e4 * 2.2e-16 * K
        np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=1e-11)
