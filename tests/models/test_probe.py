"""Linear probe and k-NN (derivations/representation.md, REP.17-REP.18)."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.models.probe import (
    KNNClassifier, LinearProbe, knn_vote, pairwise_sq_distances, probe_accuracies,
    probe_loss_and_grad,
)
from nprefgen.nn import Linear
from nprefgen.testing import gradcheck


def _blobs(rng, n_per=40, d=5, k=3, spread=0.3):
    centres = 3.0 * rng.standard_normal((k, d))
    X = np.concatenate([c + spread * rng.standard_normal((n_per, d)) for c in centres])
    y = np.repeat(np.arange(k), n_per)
    return X, y


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_probe_gradient_dot_product(weight_decay, rng):
    """(REP.17) the weight and bias gradients of cross-entropy + (lambda/2)||W||^2."""
    F = rng.standard_normal((12, 4))
    y = rng.integers(0, 3, size=12)
    layer = Linear(4, 3, rng=rng)
    for name in ("weight", "bias"):
        p, g = layer.params[name], layer.grads[name]
        original = p.copy()

        def loss(p_, p=p, original=original):
            p[...] = p_
            try:
                layer.zero_grad()
                return probe_loss_and_grad(layer, F, y, weight_decay)
            finally:
                p[...] = original
                layer.zero_grad()

        def grad(_, g=g):
            layer.zero_grad()
            probe_loss_and_grad(layer, F, y, weight_decay)
            return g.copy()

        gradcheck(loss, grad, original, rng=rng)
    # the penalty is on the weight only: the bias gradient does not depend on lambda
    layer.zero_grad()
    probe_loss_and_grad(layer, F, y, 0.0)
    gb0 = layer.grads["bias"].copy()
    layer.zero_grad()
    probe_loss_and_grad(layer, F, y, 5.0)
    np.testing.assert_allclose(layer.grads["bias"], gb0, rtol=1e-14)


def test_linear_probe_separates_blobs(rng):
    X, y = _blobs(rng)
    probe = LinearProbe().fit(X, y, rng=rng, epochs=200)
    assert probe.score(X, y) == 1.0
    P = probe.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    loss = probe.history_["train_loss"]
    assert probe.history_["epochs"] == len(loss) == 200 and loss[-1] < 0.5 * loss[0]


def test_linear_probe_against_sklearn_logistic_regression(rng):
    """Same objective as sklearn's multinomial LogisticRegression with C = 1/(n lambda) on the
    same standardised features: the predicted probabilities agree closely after training."""
    lm = pytest.importorskip("sklearn.linear_model")
    X, y = _blobs(rng, n_per=30, spread=2.0)
    lam = 0.05
    probe = LinearProbe(weight_decay=lam).fit(X, y, rng=rng, epochs=2000, lr=0.05)
    Xs = (X - probe.mean_) / probe.scale_
    ref = lm.LogisticRegression(C=1.0 / (len(y) * lam), tol=1e-12, max_iter=10000).fit(Xs, y)
    np.testing.assert_allclose(probe.predict_proba(X), ref.predict_proba(Xs), atol=2e-3)


def test_knn_against_brute_force(rng):
    """(REP.18) majority vote of the k nearest training points, by an explicit loop."""
    F = rng.standard_normal((60, 3))
    y = rng.integers(0, 4, size=60)
    Q = rng.standard_normal((25, 3))
    for k in (1, 3, 6):
        knn = KNNClassifier(k=k).fit(F, y)
        pred = knn.predict(Q)
        for i, q in enumerate(Q):
            d = np.sum((F - q) ** 2, axis=1)
            order = np.argsort(d, kind="stable")[:k]
            counts = np.bincount(y[order], minlength=4)
            best = np.flatnonzero(counts == counts.max())
            # tie: the class of the nearest neighbour among the tied classes
            want = next(y[j] for j in order if y[j] in best)
            assert pred[i] == want
    sk = pytest.importorskip("sklearn.neighbors")
    y2 = y % 2                                   # two classes, k odd: no ties, so the rules agree
    ref = sk.KNeighborsClassifier(n_neighbors=5).fit(F, y2).predict(Q)
    np.testing.assert_array_equal(KNNClassifier(k=5).fit(F, y2).predict(Q), ref)


def test_knn_vote_ties_and_cosine():
    """(REP.18) ties go to the class of the nearest member; cosine ignores lengths."""
    labels = np.array([[2, 1, 1, 2], [0, 3, 3, 0], [1, 1, 0, 2]])
    np.testing.assert_array_equal(knn_vote(labels, 4), [2, 0, 1])
    F = np.array([[1.0, 0.0], [0.0, 1.0]])
    knn = KNNClassifier(k=1, metric="cosine").fit(F, np.array([0, 1]))
    np.testing.assert_array_equal(knn.predict(np.array([[10.0, 1.0], [0.1, 5.0]])), [0, 1])
    np.testing.assert_allclose(pairwise_sq_distances(F, F), [[0, 2], [2, 0]])


def test_probe_accuracies_helper(rng):
    X, y = _blobs(rng)
    acc = probe_accuracies(X, y, X, y, rng=rng, epochs=100)
    assert acc == {"linear_probe": 1.0, "knn": 1.0}


def test_probe_bad_inputs(rng):
    F = rng.standard_normal((6, 2))
    y = np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="y: expected integer labels"):
        LinearProbe().fit(F, y.astype(float), rng=rng)
    with pytest.raises(ValueError, match="y: expected integer labels"):
        LinearProbe().fit(F, y[:4], rng=rng)
    with pytest.raises(ValueError, match="y: expected non-negative"):
        KNNClassifier().fit(F, y - 1)
    with pytest.raises(ValueError, match="k: expected at most"):
        KNNClassifier(k=10).fit(F, y)
    with pytest.raises(ValueError, match="metric"):
        KNNClassifier(metric="manhattan")
    with pytest.raises(ValueError, match="not fitted"):
        LinearProbe().predict(F)
    with pytest.raises(ValueError, match="not fitted"):
        KNNClassifier().predict(F)
    with pytest.raises(ValueError, match="F"):
        KNNClassifier(k=1).fit(F, y).predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="weight_decay"):
        LinearProbe(weight_decay=-1.0)
