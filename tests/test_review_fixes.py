"""Regression tests for the bugs the review of the finished parts found (each failed before its
fix): a default that differed from the PyTorch it claims parity with, a "smooth" strategy that
drew a non-smooth activation, k-means relocation that double-counted a point, and the kernel
contract of log_responsibilities, and a save path that load could not read back."""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from nprefgen.kernels.gmm import log_responsibilities, log_responsibilities_numpy
from nprefgen.models.kmeans import lloyd
from nprefgen.nn import MLP, SGD, load_npz, save_npz
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.testing.strategies import mlp_configs


@pytest.mark.torch
def test_sgd_default_learning_rate_is_torchs():
    """(NN.15) SGD claims torch.optim.SGD's update; its default lr must be torch's 1e-3 too."""
    lr = inspect.signature(SGD).parameters["lr"].default
    assert lr == 1e-3
    torch = pytest.importorskip("torch")
    assert lr == inspect.signature(torch.optim.SGD).parameters["lr"].default


def test_mlp_configs_default_activations_are_twice_differentiable():
    """The fourth-order stencil (NN.19) of the dot-product test needs smooth activations; the
    defaults of ``mlp_configs`` ("smooth activations") must have a continuous second derivative
    at 0, where an MLP's pre-activations cross. ELU's jumps from 1 to 0."""
    activations = inspect.signature(mlp_configs).parameters["activations"].default
    h = 1e-3
    for name in activations:
        layer = ACTIVATIONS[name]()
        f = lambda x: layer(np.array([x]))[0]                               # noqa: E731
        second = [(f(x + h) - 2 * f(x) + f(x - h)) / h**2 for x in (-2 * h, 2 * h)]
        assert abs(second[1] - second[0]) < 0.1, (name, second)        # ELU: a jump of ~1


def test_lloyd_relocated_point_leaves_its_old_cluster():
    """(GMM.16) An empty cluster takes the point farthest from its centre, which must leave its
    old cluster: after one update the centres are the means of the partition returned, and the
    inertia is that partition's."""
    X = np.array([[0.0], [1.0], [10.0]])
    centers, labels, inertia, n_iter = lloyd(X, np.array([[0.5], [100.0]]), max_iter=1)
    np.testing.assert_array_equal(labels, [0, 0, 1])
    np.testing.assert_allclose(centers, [[0.5], [10.0]], rtol=1e-15)       # was [3.67, 10]
    assert inertia == pytest.approx(0.5, rel=1e-15)
    assert n_iter == 1


def test_lloyd_relocation_matches_scikit_learn():
    """The same one-step update as sklearn's KMeans from the same centres (skipped without it)."""
    cluster = pytest.importorskip("sklearn.cluster")
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0.0, 1.0, (40, 2)), rng.normal(8.0, 1.0, (3, 2))])
    init = np.array([[0.0, 0.0], [0.5, 0.5], [50.0, 50.0]])           # the third starts empty
    centers, labels, _, _ = lloyd(X, init, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = cluster.KMeans(3, init=init, n_init=1, max_iter=1, algorithm="lloyd", tol=0.0).fit(X)
    np.testing.assert_allclose(np.sort(centers, axis=0), np.sort(km.cluster_centers_, axis=0),
                               rtol=1e-12)


@pytest.mark.parametrize("fn", [log_responsibilities, log_responsibilities_numpy])
def test_log_responsibilities_of_an_empty_row_raise_instead_of_nan(fn):
    """(GMM.4) A row that is -inf in every component has no responsibilities: before the fix the
    kernel returned NaN rows silently; a -inf entry beside finite ones stays valid."""
    a = np.array([[np.log(0.5), np.log(0.5)], [0.0, -np.inf]])         # a zero weight: -inf
    log_norm, log_resp = fn(a)
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=1e-15)
    with pytest.raises(ValueError, match="^weighted_log_prob: row 1"):
        fn(np.array([[0.0, 0.0], [-np.inf, -np.inf]]))


def test_save_npz_writes_the_path_load_npz_reads(tmp_path):
    """save_npz(path) then load_npz(path) round-trips for a path without ".npz": numpy.savez
    appended the suffix, so the file landed at path + ".npz" and load_npz(path) failed."""
    src = MLP(2, [3], 1, rng=np.random.default_rng(0))
    dst = MLP(2, [3], 1, rng=np.random.default_rng(1))
    save_npz(tmp_path / "model", src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    load_npz(tmp_path / "model", dst)
    for name, p in src.state_dict().items():
        np.testing.assert_array_equal(dst.state_dict()[name], p)
