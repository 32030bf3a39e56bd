"""Maximum mean discrepancy with a Gaussian kernel (derivations/sbi.md, SBI.21).

Gretton, Borgwardt, Rasch, Schoelkopf & Smola (2012), "A kernel two-sample test", JMLR 13.

(SBI.21) The unbiased estimate of MMD^2 between x_1..n ~ P and y_1..m ~ Q,

    MMD^2_u = 1/(n(n-1)) sum_{i!=j} k(x_i, x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i, y_j)
              - 2/(n m) sum_{i,j} k(x_i, y_j),     k(a, b) = exp(-|a - b|^2 / (2 h^2)),

has expectation MMD^2(P, Q) >= 0 with equality iff P = Q (the Gaussian kernel is
characteristic); the estimate itself can dip below zero when P = Q. The bandwidth h defaults to
the median pairwise distance of the pooled samples (the median heuristic), over an evenly spaced
subset of at most ``max_points`` rows: no randomness, so :func:`mmd2` is a deterministic function
of x and y (only :func:`mmd_permutation_test` draws random numbers, from its ``rng``).

The kernel sums never hold an n x m matrix: :func:`kernel_sum` (numba) loops over pairs and
:func:`kernel_sum_numpy` (its NumPy twin and oracle) works in row blocks.

Samples so large that squared distances overflow float64 (|x| ~ 1e154 and above), and bandwidths
whose square over- or underflows, raise a ValueError about the scale instead of returning NaN.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import (
    check_alloc, check_array, check_finite_result, check_int, check_rng, check_scalar,
)
from nprefgen.kernels.jit import kernel


def kernel_sum_numpy(a: np.ndarray, b: np.ndarray, bandwidth: float, same: bool) -> float:
    """sum_{i,j} exp(-|a_i - b_j|^2 / (2 h^2)), the diagonal i == j left out when ``same``
    (then ``b`` must be ``a``). a: (n, d), b: (m, d). NumPy oracle, in blocks of rows."""
    scale = -0.5 / (bandwidth * bandwidth)
    total = 0.0
    for s in range(0, a.shape[0], 512):
        blk = a[s:s + 512]
        d2 = np.sum((blk[:, None, :] - b[None, :, :]) ** 2, axis=2)
        k = np.exp(scale * d2)
        if same:
            rows = np.arange(blk.shape[0])
            k[rows, s + rows] = 0.0
        total += float(np.sum(k))
    return total


@kernel
def _kernel_sum(a, b, scale, same):
    n, d = a.shape
    m = b.shape[0]
    total = 0.0
    for i in range(n):
        row = 0.0
        for j in range(m):
            if same and i == j:
                continue
            d2 = 0.0
            for k in range(d):
                diff = a[i, k] - b[j, k]
                d2 += diff * diff
            row += np.exp(scale * d2)
        total += row
    return total


def kernel_sum(a: np.ndarray, b: np.ndarray, bandwidth: float, same: bool) -> float:
    """Numba kernel; same contract as :func:`kernel_sum_numpy`."""
    return float(_kernel_sum(a, b, -0.5 / (bandwidth * bandwidth), bool(same)))


def median_bandwidth(x: np.ndarray, y: np.ndarray, max_points: int = 1000) -> float:
    """The median pairwise distance of the pooled samples x: (n, d), y: (m, d).

    With more than ``max_points`` pooled rows, the rows (i N) // max_points, i < max_points, of
    the pooled (N, d) array are used: evenly spaced through both samples, deterministic (a
    random subset would make the bandwidth, and so mmd2, depend on a seed)."""
    x = check_array(x, "x", ndim=2)
    y = check_array(y, "y", shape=(None, x.shape[1]))
    max_points = check_int(max_points, "max_points", low=2)
    check_alloc((min(max_points, x.shape[0] + y.shape[0]),) * 2 + (x.shape[1],), "max_points")
    z = np.concatenate([x, y])
    if z.shape[0] > max_points:
        z = z[np.arange(max_points) * z.shape[0] // max_points]
    with np.errstate(over="ignore", invalid="ignore"):
        d2 = np.sum((z[:, None, :] - z[None, :, :]) ** 2, axis=2)
    check_finite_result(d2, "x", "squared pairwise distances (with y)", z)
    iu = np.triu_indices(z.shape[0], 1)
    h = float(np.sqrt(np.median(d2[iu])))
    return h if h > 0 else 1.0


def mmd2(x, y, bandwidth: float | None = None, *, use_kernel: bool = True) -> float:
    """(SBI.21) unbiased MMD^2 between x: (n, d) and y: (m, d) (n, m >= 2).

    ``bandwidth`` h, or None for the median heuristic (:func:`median_bandwidth`, on an evenly
    spaced subset when there are more than 1000 points). Deterministic: no ``rng``.
    """
    x = check_array(x, "x", ndim=2, dtype=np.float64)
    y = check_array(y, "y", ndim=2, dtype=np.float64)
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"y: expected {x.shape[1]} columns to match x, got shape {y.shape}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"x: expected at least 2 samples in each set, got {x.shape[0]} and {y.shape[0]}")
    h = median_bandwidth(x, y) if bandwidth is None else check_scalar(
        bandwidth, "bandwidth", low=0.0, low_inclusive=False)
    if not 0.0 < h * h < np.inf:
        raise ValueError(f"bandwidth: expected h with h^2 representable in float64 "
                         f"(about 1e-154 < h < 1e154), got {h:.3g}; rescale x and y")
    ksum = kernel_sum if use_kernel else kernel_sum_numpy
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    n, m = x.shape[0], y.shape[0]
    kxx = ksum(x, x, h, True) / (n * (n - 1.0))
    kyy = ksum(y, y, h, True) / (m * (m - 1.0))
    kxy = ksum(x, y, h, False) / (n * m)
    return kxx + kyy - 2.0 * kxy


def mmd_permutation_test(x, y, *, rng=None, n_permutations: int = 200,
                         bandwidth: float | None = None) -> tuple[float, float]:
    """MMD^2_u and its permutation p-value (the pooled samples relabelled at random).

    x: (n, d), y: (m, d); ``rng`` None, an int seed or a Generator (SPEC 7) draws the
    permutations; ``bandwidth`` None uses :func:`median_bandwidth`."""
    x = check_array(x, "x", ndim=2, dtype=np.float64)
    y = check_array(y, "y", ndim=2, dtype=np.float64)
    rng = check_rng(rng)
    n_permutations = check_int(n_permutations, "n_permutations", low=1)
    h = median_bandwidth(x, y) if bandwidth is None else bandwidth
    observed = mmd2(x, y, bandwidth=h)
    z = np.concatenate([x, y])
    n = x.shape[0]
    count = 0
    for _ in range(n_permutations):
        p = rng.permutation(z.shape[0])
        count += mmd2(z[p[:n]], z[p[n:]], bandwidth=h) >= observed
    return observed, (count + 1.0) / (n_permutations + 1.0)


__all__ = ["mmd2", "mmd_permutation_test", "median_bandwidth", "kernel_sum", "kernel_sum_numpy"]
