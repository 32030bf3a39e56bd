"""MMD with a Gaussian kernel (derivations/sbi.md, SBI.21)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nprefgen.metrics.mmd import (
    kernel_sum, kernel_sum_numpy, median_bandwidth, mmd2, mmd_permutation_test,
)


def analytic_mmd2(mu, s, h, d):
    """MMD^2 between N(0, s^2 I) and N(mu, s^2 I) with k = exp(-|a-b|^2/(2h^2)):
    2 c (1 - exp(-|mu|^2 / (2 (h^2 + 2 s^2)))), c = (h^2 / (h^2 + 2 s^2))^(d/2)."""
    v = h * h + 2 * s * s
    c = (h * h / v) ** (d / 2)
    return 2 * c * (1 - np.exp(-np.sum(np.square(mu)) / (2 * v)))


def test_unbiased_estimate_matches_the_gaussian_closed_form():
    """(SBI.21) the mean of MMD^2_u over repeats equals the closed form, within 4 standard errors;
    for P = Q it is 0 (the estimator is unbiased, so it also goes negative)."""
    r = np.random.default_rng(0)
    mu = np.array([0.7, 0.0])
    for shift, expected in ((np.zeros(2), 0.0), (mu, analytic_mmd2(mu, 1.0, 1.0, 2))):
        vals = np.array([mmd2(r.standard_normal((150, 2)), r.standard_normal((150, 2)) + shift,
                              bandwidth=1.0) for _ in range(40)])
        sem = vals.std(ddof=1) / np.sqrt(len(vals))
        assert abs(vals.mean() - expected) < 4 * sem + 1e-12, (vals.mean(), expected, sem)
    same = [mmd2(r.standard_normal((30, 1)), r.standard_normal((30, 1)), bandwidth=1.0)
            for _ in range(20)]
    assert min(same) < 0.0


def test_permutation_test_separates(rng):
    x = rng.standard_normal((80, 2))
    _, p_same = mmd_permutation_test(x, rng.standard_normal((80, 2)), rng=rng, n_permutations=50)
    _, p_diff = mmd_permutation_test(x, rng.standard_normal((80, 2)) + 1.0, rng=rng, n_permutations=50)
    assert p_diff < 0.05 and p_same > 0.01


@pytest.mark.kernels
@given(n=st.integers(1, 12), m=st.integers(1, 12), d=st.integers(1, 4), seed=st.integers(0, 99),
       same=st.booleans(), strided=st.booleans())
def test_kernel_sum_parity(n, m, d, seed, same, strided):
    """The numba kernel equals its NumPy twin at rtol 1e-12, contiguous and strided inputs."""
    r = np.random.default_rng(seed)
    a = r.standard_normal((n, 2 * d))
    a = a[:, ::2] if strided else np.ascontiguousarray(a[:, :d])
    b = a if same else r.standard_normal((m, d))
    h = 0.3 + r.uniform()
    np.testing.assert_allclose(kernel_sum(a, b, h, same), kernel_sum_numpy(a, b, h, same),
                               rtol=1e-12, atol=1e-300)


def test_kernel_and_numpy_paths_agree(rng):
    x, y = rng.standard_normal((700, 3)), rng.standard_normal((600, 3))
    assert mmd2(x, y, bandwidth=0.8) == pytest.approx(mmd2(x, y, bandwidth=0.8, use_kernel=False),
                                                      rel=1e-10, abs=1e-14)


def test_median_bandwidth_subsample_is_deterministic_and_evenly_spaced(rng):
    """Above max_points the heuristic takes the pooled rows (i N) // max_points: no seed, so mmd2
    repeats exactly; on iid draws the subset's median is that of all pairs up to its sampling
    error (the median of ~3e5 pair distances from 800 points: a few per cent)."""
    x, y = rng.standard_normal((900, 2)), rng.standard_normal((700, 2)) + 0.5
    z = np.concatenate([x, y])
    rows = z[np.arange(800) * 1600 // 800]                      # every second row here
    d2 = np.sum((rows[:, None] - rows[None]) ** 2, axis=2)[np.triu_indices(800, 1)]
    assert median_bandwidth(x, y, max_points=800) == np.sqrt(np.median(d2))
    full = np.sqrt(np.sum((z[:, None] - z[None]) ** 2, axis=2))[np.triu_indices(1600, 1)]
    assert median_bandwidth(x, y, max_points=800) == pytest.approx(np.median(full), rel=0.05)
    assert mmd2(x, y) == mmd2(x, y)


def test_bad_inputs_raise(rng):
    x = rng.standard_normal((10, 2))
    with pytest.raises(ValueError, match="y"):
        mmd2(x, rng.standard_normal((10, 3)))
    with pytest.raises(ValueError, match="bandwidth"):
        mmd2(x, x, bandwidth=0.0)
    with pytest.raises(ValueError, match="x"):
        mmd2(x[:1], x)
