"""NT-Xent loss and gradient: kernel vs NumPy twin, direct formula, dot-product test
(derivations/representation.md, REP.12-REP.15); torch and JAX: tests/oracle/test_oracle_losses.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nprefgen.kernels.ntxent import ntxent, ntxent_numpy
from nprefgen.testing import gradcheck
from nprefgen.testing.strategies import seeds, strided_arrays

TAUS = st.sampled_from([0.05, 0.1, 0.5, 1.0, 0.002])   # 0.002 < 1/350: the per-row-max path


def direct_loss(h: np.ndarray, tau: float) -> float:
    """(REP.12) normalise, (REP.13) the loss, written with explicit loops: -log(exp(s_ip) / sum_{k != i} exp(s_ik))."""
    n2 = h.shape[0]
    z = [row / np.sqrt(np.sum(row * row)) for row in h]
    total = 0.0
    for i in range(n2):
        p = (i + n2 // 2) % n2
        num = np.exp(z[i] @ z[p] / tau)
        den = sum(np.exp(z[i] @ z[k] / tau) for k in range(n2) if k != i)
        total += -np.log(num / den)
    return total / n2


@given(seed=seeds(), n=st.integers(2, 6), d=st.integers(1, 5), tau=st.sampled_from([0.1, 0.5, 2.0]))
def test_ntxent_value_direct_formula(seed, n, d, tau):
    """(REP.13) both implementations equal the textbook formula."""
    h = np.random.default_rng(seed).standard_normal((2 * n, d))
    ref = direct_loss(h, tau)
    assert ntxent_numpy(h, tau)[0] == pytest.approx(ref, rel=1e-12)
    assert ntxent(h, tau)[0] == pytest.approx(ref, rel=1e-12)


def test_ntxent_known_values():
    """Identical views, orthogonal images: each row's positive has s = 1/tau, and the 2N-2
    negatives s = 0, so l_i = log(e^{1/tau} + 2N - 2) - 1/tau. Scaling h changes nothing."""
    n, tau = 3, 0.5
    e = np.eye(n)
    h = np.concatenate([e, 2.0 * e])
    want = np.log(np.exp(1 / tau) + 2 * n - 2) - 1 / tau
    for f in (ntxent_numpy, ntxent):
        loss, d_h = f(h, tau)
        assert loss == pytest.approx(want, rel=1e-14)


@given(seed=seeds(), n=st.integers(2, 5), d=st.integers(1, 5), tau=TAUS)
def test_ntxent_gradient_dot_product(seed, n, d, tau):
    """(REP.14, REP.15) the dot-product test of dL/dh against central differences."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((2 * n, d)) + 0.5
    for f in (ntxent_numpy, ntxent):
        step = 1e-3 * min(1.0, 20 * tau)       # the loss varies on the scale tau
        gradcheck(lambda x: f(x, tau)[0], lambda x: f(x, tau)[1], h, rng=rng, step=step)


def test_gradient_is_orthogonal_to_h(rng):
    """(REP.15) the loss is invariant to the length of each h_i, so d_h_i . h_i = 0."""
    h = rng.standard_normal((10, 4))
    _, d_h = ntxent(h, 0.3)
    np.testing.assert_allclose(np.sum(d_h * h, axis=1), 0.0, atol=1e-15)
    loss2, d_h2 = ntxent(h * rng.uniform(0.5, 2.0, size=(10, 1)), 0.3)
    assert loss2 == pytest.approx(ntxent(h, 0.3)[0], rel=1e-13)


def _ntxent_without_transpose(h, tau):
    """A deliberately broken gradient: dL/dZ = G Z / tau (the G^T Z term of (REP.14) dropped)."""
    n2 = h.shape[0]
    norms = np.linalg.norm(h, axis=1)
    Z = h / norms[:, None]
    S = Z @ Z.T / tau
    np.fill_diagonal(S, -np.inf)
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    Y = np.roll(np.eye(n2), n2 // 2, axis=1)
    d_Z = ((P - Y) / n2) @ Z / tau
    return (d_Z - np.sum(d_Z * Z, axis=1, keepdims=True) * Z) / norms[:, None]


def test_dropping_the_transpose_term_is_caught(rng):
    """(REP.14) the check can fail: G Z alone is not the gradient."""
    h = rng.standard_normal((8, 3))
    with pytest.raises(AssertionError, match="dot-product test failed"):
        gradcheck(lambda x: ntxent_numpy(x, 0.5)[0], lambda x: _ntxent_without_transpose(x, 0.5),
                  h, rng=rng)


@pytest.mark.kernels
@given(h=st.integers(2, 9).flatmap(lambda n: st.integers(1, 6).flatmap(
    lambda d: strided_arrays((2 * n, d)))), tau=TAUS)
def test_ntxent_parity(h, tau):
    """Kernel and NumPy twin agree at rtol 1e-12 on contiguous and strided inputs, on both the
    symmetric (tau >= 1/350) and the per-row-maximum paths."""
    l_np, g_np = ntxent_numpy(h, tau)
    l_nb, g_nb = ntxent(h, tau)
    assert l_nb == pytest.approx(l_np, rel=1e-12)
    np.testing.assert_allclose(g_nb, g_np, rtol=1e-12, atol=1e-12 * np.abs(g_np).max())


@pytest.mark.kernels
def test_ntxent_parity_large_batch(rng):
    """A realistic size (N = 64 pairs, d = 16) through the BLAS syrk/symm path, on both the
    symmetric-shift and the per-row-maximum (tau < 1/350) kernels."""
    h = rng.standard_normal((128, 16))
    for tau in (0.1, 0.5, 0.002):
        l_np, g_np = ntxent_numpy(h, tau)
        l_nb, g_nb = ntxent(h, tau)
        assert l_nb == pytest.approx(l_np, rel=1e-12)
        np.testing.assert_allclose(g_nb, g_np, rtol=1e-12, atol=1e-12 * np.abs(g_np).max())


def test_ntxent_bad_inputs():
    h = np.ones((6, 3)) + np.arange(18).reshape(6, 3)
    for f in (ntxent_numpy, ntxent):
        with pytest.raises(ValueError, match="h: expected an even number"):
            f(h[:5], 0.5)
        with pytest.raises(ValueError, match="h: expected an even number"):
            f(h[:2], 0.5)
        with pytest.raises(ValueError, match="tau"):
            f(h, 0.0)
        with pytest.raises(ValueError, match="tau"):
            f(h, -1.0)
        zero = h.copy()
        zero[2] = 0.0
        with pytest.raises(ValueError, match="h: expected non-zero rows"):
            f(zero, 0.5)
        nan = h.copy()
        nan[0, 0] = np.nan
        with pytest.raises(ValueError, match="h: expected finite"):
            f(nan, 0.5)
        with pytest.raises(ValueError, match="h"):
            f(h[:, 0], 0.5)
