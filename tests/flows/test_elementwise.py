"""Permutations (FLOW.17), elementwise affine / ActNorm / Standardize (FLOW.18-FLOW.19) and the
logit transform with dequantization and bits/dim (FLOW.21-FLOW.22)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.flows import (
    ActNorm, ElementwiseAffine, LogitTransform, Permutation, Standardize, bits_per_dim,
    data_log_prob_from_logit, dequantize, log_prob_from_bits_per_dim,
)
from nprefgen.flows.logit import logit_forward
from nprefgen.testing.bijector_checks import check_bijector, randomize_parameters
from nprefgen.testing.strategies import seeds

cases = st.tuples(st.integers(1, 6), st.integers(1, 5), seeds())


@given(cases)
def test_permutations_pass_the_battery(case):
    """(FLOW.17) reverse and random permutations: log_det = 0, inverse, transpose backward."""
    d, n, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    for b in (Permutation.reverse(d), Permutation.random(d, rng=rng)):
        check_bijector(b, x, rng=rng)
        np.testing.assert_array_equal(b.forward(x)[0], x[:, b.perm])


@given(cases, st.sampled_from([0.1, 1.0, 3.0]))
def test_elementwise_affine_family_passes_the_battery(case, scale):
    """(FLOW.18) ElementwiseAffine with random parameters, ActNorm after initialize (FLOW.19),
    Standardize from data: round trip, log-det, backward for x and log_scale/shift."""
    d, n, seed = case
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal((n, d)) + 1.0
    b = ElementwiseAffine(d)
    randomize_parameters(b, rng=rng, scale=0.7)
    check_bijector(b, x, rng=rng)
    data = scale * rng.standard_normal((max(n, 2) + 3, d)) - 2.0
    check_bijector(ActNorm(d).initialize(data), x, rng=rng)
    check_bijector(Standardize.from_data(data), x, rng=rng)


def test_actnorm_initialize(rng):
    """(FLOW.19) after initialize(x) the batch leaves with mean 0 and unit variance; forward alone
    never changes the parameters; an uninitialised ActNorm is the identity."""
    x = rng.standard_normal((50, 3)) * [0.1, 2.0, 30.0] + [5.0, -1.0, 0.0]
    b = ActNorm(3)
    z0, ld0 = b.forward(x)
    assert np.array_equal(z0, x) and np.all(ld0 == 0) and not b.initialized
    b.initialize(x)
    assert b.initialized and b.buffers["initialized"][0] == 1.0
    z, log_det = b.forward(x)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-4)          # eps = 1e-6 vs std 0.1
    np.testing.assert_allclose(log_det, -np.log(x.std(axis=0)).sum(), rtol=1e-4)
    before = {k: v.copy() for k, v in b.params.items()}
    b.forward(3.0 * x)
    assert all(np.array_equal(before[k], b.params[k]) for k in before)


def test_standardize_is_fixed(rng):
    """(FLOW.18) Standardize has no parameters (optimizers cannot move it) and z-scores its data."""
    x = rng.standard_normal((40, 2)) * [3.0, 0.5] + [1.0, 2.0]
    b = Standardize.from_data(x)
    assert b.parameters() == [] and set(b.buffers) == {"mean", "std", "initialized"}
    z, log_det = b.forward(x)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(log_det, -np.log(x.std(axis=0)).sum(), rtol=1e-12)


@given(st.integers(1, 5), st.integers(1, 4), st.sampled_from([1e-6, 0.05]),
       st.sampled_from([1.0, 256.0]), seeds())
def test_logit_transform_passes_the_battery(d, n, lam, data_scale, seed):
    """(FLOW.21) logit(lambda + (1 - 2 lambda) x / a) with its log-det and backward."""
    rng = np.random.default_rng(seed)
    x = data_scale * rng.uniform(0.05, 0.95, size=(n, d))
    check_bijector(LogitTransform(d, lam=lam, data_scale=data_scale), x, rng=rng)


def test_logit_log_det_matches_the_maf_paper_conversion(rng):
    """(FLOW.21) the MAF paper's pixel-space conversion D log(1-2 lambda) - sum[log s + log(1-s)],
    s = sigmoid(y), equals the transform's log-det; data_log_prob_from_logit applies it."""
    lam = 1e-6
    x = rng.uniform(0.0, 1.0, size=(6, 5))
    y, log_det = logit_forward(x, lam)
    s = 1.0 / (1.0 + np.exp(-y))
    paper = 5 * np.log(1 - 2 * lam) - np.sum(np.log(s) + np.log(1 - s), axis=1)
    np.testing.assert_allclose(log_det, paper, rtol=1e-9)
    lp_logit = rng.standard_normal(6)
    np.testing.assert_allclose(data_log_prob_from_logit(lp_logit, y, lam), lp_logit + log_det, rtol=1e-9)
    # data_scale: a density on [0, 256) is the one on [0, 1) minus D log 256
    _, ld256 = logit_forward(256.0 * x, lam, 256.0)
    np.testing.assert_allclose(ld256, log_det - 5 * np.log(256.0), rtol=1e-12)


def test_dequantize(rng):
    """(FLOW.20) (k + u)/L lies in [k/L, (k+1)/L), u ~ U[0,1) with mean 1/2 (8 sigma tolerance)."""
    k = rng.integers(0, 256, size=(400, 10))
    x = dequantize(k, rng=rng)
    assert np.all(x >= k / 256) and np.all(x < (k + 1) / 256)
    u = 256 * x - k
    assert abs(u.mean() - 0.5) < 8 * np.sqrt(1 / 12 / u.size)
    np.testing.assert_array_equal(dequantize(k[:2], rng=rng, noise=np.zeros((2, 10))), k[:2] / 256)
    x17 = dequantize(np.array([[0, 16]]), 17, rng=rng, noise=np.full((1, 2), 0.5))
    np.testing.assert_allclose(x17, [[0.5 / 17, 16.5 / 17]])


def test_bits_per_dim():
    """(FLOW.22) -lp/(D ln 2) + log2 L: the uniform density on [0,1)^D is 8 bits/dim at L = 256,
    and the MAF paper's MNIST numbers convert both ways."""
    assert bits_per_dim(0.0, 784) == pytest.approx(8.0)
    assert bits_per_dim(np.array([0.0]), 10, levels=2) == pytest.approx(1.0)
    lp = log_prob_from_bits_per_dim(1.89, 784)
    assert bits_per_dim(lp, 784) == pytest.approx(1.89, rel=1e-12)


def test_elementwise_bad_inputs(rng):
    """Bad permutations, stds, lambdas, ranges and pixels raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="perm"):
        Permutation([0, 0, 1])
    with pytest.raises(ValueError, match="perm"):
        Permutation([0.0, 1.0])
    with pytest.raises(ValueError, match="rng"):
        Permutation.random(3, rng="0")
    with pytest.raises(ValueError, match="std"):
        Standardize(np.zeros(2), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="std"):
        Standardize(np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="x"):
        ActNorm(2).initialize(np.ones((1, 2)))
    with pytest.raises(ValueError, match="lam"):
        LogitTransform(2, lam=0.5)
    with pytest.raises(ValueError, match="x"):
        LogitTransform(2).forward(np.array([[0.5, 1.5]]))
    with pytest.raises(ValueError, match="pixels"):
        dequantize(np.array([[0.5]]), rng=rng)
    with pytest.raises(ValueError, match="pixels"):
        dequantize(np.array([[256]]), rng=rng)
    with pytest.raises(ValueError, match="levels"):
        bits_per_dim(0.0, 3, levels=1)
    with pytest.raises(ValueError, match="context"):
        Permutation.reverse(2).forward(np.ones((1, 2)), np.ones((1, 1)))
