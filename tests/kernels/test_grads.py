"""The one-call gradient norm and zeroing (NN.17; nprefgen/kernels/grads.py): the kernel's sum of
squares equals the NumPy twin bit for bit over sizes 1-300,000 in float64 and float32 (NumPy's
pairwise order reproduced), a sum in another order is caught by the same comparison, non-finite
gradients give a non-finite norm, zeroing and scaling write through to the arrays (scaling in the
arrays' dtype, as NumPy does), and a training run that zeroes and clips through Adam's kernel path ends with the same weights, bit for bit, as one that
uses the model's zero_grad and the NumPy norm."""
from __future__ import annotations

import numpy as np
import pytest

import nprefgen.nn.train as train
from nprefgen.flows import maf
from nprefgen.kernels.adam import flat_views
from nprefgen.kernels.grads import (
    scale_all, scale_all_numpy, sum_squares_all, sum_squares_all_numpy, zero_all, zero_all_numpy,
)
from nprefgen.nn.optim import SGD, Adam

pytestmark = pytest.mark.kernels

SIZES = list(range(1, 260)) + [511, 1000, 1024, 2500, 8191, 8192, 8193, 20_000, 65_537, 300_000]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bit_identical_to_numpy_over_sizes(dtype):
    rng = np.random.default_rng(0)
    for n in SIZES:
        g = (rng.standard_normal(n) * rng.uniform(0.1, 10)).astype(dtype)
        assert sum_squares_all(flat_views([g])) == sum_squares_all_numpy([g]), n


def test_lists_of_shapes_and_order():
    rng = np.random.default_rng(1)
    gs = [rng.standard_normal(s) for s in [(50, 4), (50,), (50, 50), (3,), (4, 50), (7, 9, 11)]]
    assert sum_squares_all(flat_views(gs)) == sum_squares_all_numpy(gs)


def test_another_summation_order_is_caught():
    # the comparison above can fail: a plain left-to-right sum (what a naive kernel would do)
    # differs from NumPy's pairwise sum in the last bits for most large arrays
    rng = np.random.default_rng(2)
    misses = 0
    for n in (1000, 2500, 8192, 20_000):
        g = rng.standard_normal(n)
        sequential = 0.0
        for v in g:
            sequential += v * v
        misses += sequential != sum_squares_all_numpy([g])
    assert misses >= 2


def test_non_finite_gradient_gives_non_finite_norm():
    g = np.ones(300)
    g[17] = np.inf
    assert sum_squares_all(flat_views([g])) == np.inf
    g[5] = np.nan
    assert np.isnan(sum_squares_all(flat_views([g])))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_zero_all_writes_through(dtype):
    rng = np.random.default_rng(3)
    gs = [rng.standard_normal(s).astype(dtype) for s in [(5, 4), (4,), (2, 3, 2)]]
    twins = [g.copy() for g in gs]
    zero_all(flat_views(gs))
    zero_all_numpy(twins)
    for g, t in zip(gs, twins):
        assert g.dtype == dtype and not g.any() and not t.any()


def test_optimizer_norm_and_zero_grad_paths_agree():
    flow = maf(2, 3, [16, 16], rng=0, context_dim=2)
    params = flow.parameters()
    rng = np.random.default_rng(4)
    for _, g in params:
        g[...] = rng.standard_normal(g.shape)
    adam, sgd = Adam(params), SGD(params)
    assert adam.grad_norm() == sgd.grad_norm() == train.grad_norm(params)
    adam.zero_grad()
    assert all(not g.any() for _, g in params)


def _fit(monkeypatch, fast: bool):
    if not fast:
        monkeypatch.setattr(train, "_covers", lambda opt, params: False)
    rng = np.random.default_rng(5)
    theta = rng.uniform(-1, 1, (300, 2))
    x = np.c_[theta.sum(axis=1), theta[:, 0] * theta[:, 1]] + 0.05 * rng.standard_normal((300, 2))
    flow = maf(2, 3, [16, 16], rng=1, context_dim=2, activation="tanh")
    # clip 0.5 is active on most steps, so the norm's last bit reaches the weights
    flow.fit(theta, context=x, rng=2, epochs=3, batch_size=50, lr=1e-2, clip=0.5, progress=False)
    return flow.state_dict()


def test_training_bit_identical_through_the_kernel_path(monkeypatch):
    fast = _fit(monkeypatch, True)
    with monkeypatch.context() as m:
        slow = _fit(m, False)
    for name in fast:
        assert np.array_equal(fast[name], slow[name]), name


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scale_all_matches_numpy_in_the_arrays_dtype(dtype):
    rng = np.random.default_rng(6)
    gs = [rng.standard_normal(s).astype(dtype) for s in [(50, 50), (50,), (3, 7)]]
    twins = [g.copy() for g in gs]
    coef = 0.123456789012345
    scale_all(flat_views(gs), np.dtype(dtype).type(coef))
    scale_all_numpy(twins, coef)                  # NumPy: float32 arrays times a float32 coef
    for g, t in zip(gs, twins):
        assert g.dtype == dtype and np.array_equal(g, t)


def test_unrounded_coefficient_on_float32_is_caught():
    # the cast matters: float32 arrays scaled by the float64 coefficient (a kernel that forgot
    # the cast) differ from NumPy's float32 product in some elements
    rng = np.random.default_rng(7)
    g = rng.standard_normal(2500).astype(np.float32)
    coef = 0.123456789012345
    wrong = (g.astype(np.float64) * coef).astype(np.float32)
    assert not np.array_equal(wrong, g * coef)
