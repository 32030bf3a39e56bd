"""Classifier two-sample test, as in the sbibm benchmark (derivations/sbi.md, SBI.20).

Lopez-Paz & Oquab (2017), "Revisiting classifier two-sample tests"; Lueckmann et al. (2021).

(SBI.20) Train a classifier to tell samples of P (label 0) from samples of Q (label 1); its
held-out accuracy

    C2ST = (1/K) sum_folds (1/|test|) sum_{test} 1[ prediction = label ]

is 0.5 when P = Q (no classifier beats chance) and approaches 1 when they are separable.

As sbibm's ``c2st``: both sets are z-scored with the mean and standard deviation of the first
(reference) set; the classifier is an MLP with two ReLU hidden layers of 10 * dim units and a
logistic output trained with Adam (lr 1e-3, mini-batches of min(200, n), L2 penalty 1e-4, up to
``max_epochs`` epochs, stopping when the training loss has not improved by 1e-4 for 10 epochs,
the defaults of scikit-learn's MLPClassifier that sbibm uses); the score is the mean accuracy over
5 shuffled folds. The classifier is built from :mod:`nprefgen.nn` (Linear, ReLU, the logistic
loss and Adam), so no scikit-learn is needed.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_alloc, check_array, check_int, check_rng
from nprefgen.nn import MLP, Adam, bce_with_logits_loss


def _z_score(x: np.ndarray, y: np.ndarray):
    mean = x.mean(axis=0)
    std = x.std(axis=0, ddof=1) if x.shape[0] > 1 else np.ones(x.shape[1])
    std = np.where(std > 0, std, 1.0)
    return (x - mean) / std, (y - mean) / std


def train_classifier(features: np.ndarray, labels: np.ndarray, *, rng=None, hidden: int,
                     lr: float = 1e-3, batch_size: int = 200, alpha: float = 1e-4,
                     max_epochs: int = 200, tol: float = 1e-4, patience: int = 10):
    """Fit the two-hidden-layer ReLU MLP to binary labels; returns (net, loss history).

    features: (n, d), labels: (n,) in {0, 1}; ``rng``: None, an int seed or a Generator (SPEC 7).
    """
    rng = check_rng(rng)
    n, d = features.shape
    net = MLP(d, [hidden, hidden], 1, rng=rng, activation="relu", init="xavier")
    opt = Adam(net.parameters(), lr=lr)
    linear_layers = [layer for layer in net.layers if "weight" in layer.params]
    batch = min(batch_size, n)
    best, stall, history = np.inf, 0, []
    y_all = labels.astype(np.float64)[:, None]
    for _ in range(max_epochs):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            xb, yb = features[idx], y_all[idx]
            net.zero_grad()
            logits, cache = net.forward(xb)
            loss, d_logits = bce_with_logits_loss(logits, yb)
            net.backward(cache, d_logits)
            # L2 penalty alpha/2 ||W||^2 / m on the weights (scikit-learn's convention)
            for layer in linear_layers:
                layer.grads["weight"] += (alpha / xb.shape[0]) * layer.params["weight"]
                loss += 0.5 * alpha * float(np.sum(layer.params["weight"] ** 2)) / xb.shape[0]
            opt.step()
            total += loss * xb.shape[0]
        epoch_loss = total / n
        history.append(epoch_loss)
        if epoch_loss > best - tol:
            stall += 1
        else:
            stall = 0
        best = min(best, epoch_loss)
        if stall > patience:
            break
    return net, np.array(history)


def c2st(x, y, *, rng=None, n_folds: int = 5, z_score: bool = True,
         max_epochs: int = 200, return_folds: bool = False):
    """(SBI.20) C2ST accuracy between samples ``x`` (n, d) (the reference) and ``y`` (m, d).

    Parameters
    ----------
    x, y : the two sample sets; z-scoring uses x's mean and standard deviation.
    rng : None, an int seed or a Generator (SPEC 7): fold assignment, initialisation,
        mini-batches.
    n_folds : cross-validation folds (5 in sbibm).
    max_epochs : epoch cap (scikit-learn's is 1000; training usually stops far earlier).
    return_folds : also return the per-fold accuracies.

    Returns
    -------
    float, the mean held-out accuracy (0.5 = indistinguishable, 1 = separable).
    """
    x = check_array(x, "x", ndim=2)
    y = check_array(y, "y", ndim=2)
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"y: expected {x.shape[1]} columns to match x, got shape {y.shape}")
    check_alloc((10 * x.shape[1], 10 * x.shape[1]), "x")   # the classifier's hidden layer: 10 d wide
    rng = check_rng(rng)
    n_folds = check_int(n_folds, "n_folds", low=2)
    max_epochs = check_int(max_epochs, "max_epochs", low=1)
    if min(x.shape[0], y.shape[0]) < n_folds:
        raise ValueError(f"x: expected at least n_folds={n_folds} samples in each set, "
                         f"got {x.shape[0]} and {y.shape[0]}")
    if z_score:
        x, y = _z_score(x, y)
    data = np.concatenate([x, y])
    labels = np.concatenate([np.zeros(x.shape[0]), np.ones(y.shape[0])])
    n, dim = data.shape
    folds = np.array_split(rng.permutation(n), n_folds)       # shuffled K-fold
    scores = []
    for k in range(n_folds):
        test = folds[k]
        train = np.concatenate([folds[j] for j in range(n_folds) if j != k])
        net, _ = train_classifier(data[train], labels[train], rng=rng, hidden=10 * dim,
                                  max_epochs=max_epochs)
        logits = net(data[test])[:, 0]
        scores.append(np.mean((logits > 0) == (labels[test] == 1)))   # (SBI.20)
    score = float(np.mean(scores))
    return (score, np.array(scores)) if return_folds else score


__all__ = ["c2st", "train_classifier"]
