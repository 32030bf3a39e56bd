"""C2ST as in sbibm (derivations/sbi.md, SBI.20).

Tolerances: the held-out accuracy over n + m test predictions has sd <= 0.5 / sqrt(n + m); we
allow 4 sd plus a small overfitting margin.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nprefgen.metrics.c2st import c2st


def test_same_distribution_gives_one_half(rng):
    """(SBI.20) two samples of one distribution: accuracy ~ 0.5."""
    x, y = rng.standard_normal((400, 2)), rng.standard_normal((400, 2))
    acc = c2st(x, y, rng=rng, max_epochs=60)
    assert abs(acc - 0.5) < 4 * 0.5 / np.sqrt(800) + 0.02


def test_separable_distributions_give_one(rng):
    """(SBI.20) far-apart samples: accuracy ~ 1."""
    x = rng.standard_normal((300, 2))
    y = rng.standard_normal((300, 2)) + np.array([8.0, 0.0])
    assert c2st(x, y, rng=rng, max_epochs=60) > 0.98


def test_overlapping_gaussians_reach_the_bayes_accuracy(rng):
    """N(0, 1) vs N(1, 1) in 1-D: the best classifier has accuracy Phi(1/2) = 0.691."""
    x = rng.standard_normal((600, 1))
    y = rng.standard_normal((600, 1)) + 1.0
    acc = c2st(x, y, rng=rng, max_epochs=60)
    assert abs(acc - stats.norm.cdf(0.5)) < 4 * 0.5 / np.sqrt(1200) + 0.02


def test_z_scoring_makes_it_affine_invariant():
    """Both sets are z-scored with the reference's mean and std: a common affine map of the data
    changes nothing (same seed -> same folds, initialisation and batches)."""
    r = np.random.default_rng(5)
    x, y = r.standard_normal((200, 2)), r.standard_normal((200, 2)) * 1.5
    a = c2st(x, y, rng=np.random.default_rng(1), max_epochs=20, return_folds=True)
    b = c2st(100.0 + 1e-3 * x, 100.0 + 1e-3 * y, rng=np.random.default_rng(1), max_epochs=20,
             return_folds=True)
    np.testing.assert_allclose(a[1], b[1], atol=1e-12)
    assert len(a[1]) == 5


def test_agrees_with_scikit_learn_classifier():
    """Optional cross-check: sbibm's recipe with scikit-learn's MLPClassifier gives an accuracy
    within sampling error of ours on the same data."""
    sk = pytest.importorskip("sklearn.neural_network")
    from sklearn.model_selection import KFold, cross_val_score

    r = np.random.default_rng(7)
    x = r.standard_normal((500, 2))
    y = r.standard_normal((500, 2)) * np.array([1.0, 1.8])
    ours = c2st(x, y, rng=np.random.default_rng(2), max_epochs=100)
    m, s = x.mean(0), x.std(0, ddof=1)
    data = np.concatenate([(x - m) / s, (y - m) / s])
    labels = np.r_[np.zeros(500), np.ones(500)]
    clf = sk.MLPClassifier(activation="relu", hidden_layer_sizes=(20, 20), max_iter=100,
                           solver="adam", random_state=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = cross_val_score(clf, data, labels, cv=KFold(5, shuffle=True, random_state=0),
                                 scoring="accuracy").mean()
    assert abs(ours - theirs) < 4 * 0.5 / np.sqrt(1000) + 0.02, (ours, theirs)


def test_bad_inputs_raise(rng):
    x = rng.standard_normal((50, 2))
    with pytest.raises(ValueError, match="y"):
        c2st(x, rng.standard_normal((50, 3)), rng=rng)
    with pytest.raises(ValueError, match="x"):
        c2st(x[:3], x[:3], rng=rng)
    with pytest.raises(ValueError, match="rng"):
        c2st(x, x, rng="0")
    with pytest.raises(ValueError, match="x"):
        c2st(np.full((10, 2), np.nan), x, rng=rng)
