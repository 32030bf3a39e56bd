"""Downstream evaluation of a frozen representation: a linear probe (softmax regression trained
with :mod:`nprefgen.nn`) and a k-nearest-neighbour classifier (derivations/representation.md,
REP.17-REP.18).

Both take features F: (n, m) computed once by a frozen encoder (or PCA, or anything else), so
the accuracy measures how linearly separable / locally consistent the classes are in that space.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import (
    check_array, check_choice, check_finite_result, check_int, check_rng, check_scalar,
)
from nprefgen.models._files import (field, load_fitted, read_model, where_load, where_save,
                                     write_model)
from nprefgen.nn import Adam, Linear, softmax, softmax_cross_entropy_loss


def _check_labels(y, n: int, name: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: expected integer labels of shape ({n},), got {y.dtype} array "
                         f"of shape {y.shape}")
    if n and y.min() < 0:
        raise ValueError(f"{name}: expected non-negative class labels, got min {y.min()}")
    return y.astype(np.int64)


def _check_features(F, name: str, m: int | None = None) -> np.ndarray:
    return check_array(F, name, ndim=2, shape=None if m is None else (None, m), dtype=np.float64)


def probe_loss_and_grad(layer: Linear, F: np.ndarray, y: np.ndarray, weight_decay: float) -> float:
    """(REP.17) L = mean_i CE(softmax(W f_i + b), y_i) + (lambda / 2) ||W||_F^2.

    The cross-entropy and its gradient are (NN.14); the penalty adds lambda W to the weight's
    gradient (the bias is not penalised). Accumulates into ``layer.grads``; returns L.
    """
    logits, cache = layer.forward(F)
    loss, d_logits = softmax_cross_entropy_loss(logits, y)
    layer.backward(cache, d_logits)
    W = layer.params["weight"]
    layer.grads["weight"] += weight_decay * W
    return loss + 0.5 * weight_decay * float(np.sum(W * W))


class LinearProbe:
    """Softmax regression on standardised frozen features.

    Parameters
    ----------
    weight_decay : float, lambda in (REP.17)
    standardize : bool, z-score each feature with the training mean and standard deviation

    ``fit(F, y, rng=...)`` trains full-batch with Adam; ``predict``, ``predict_proba``, ``score``.
    ``history_ = {"train_loss": [L per epoch (REP.17)], "epochs": epochs}``.
    ``save(path)`` / ``LinearProbe(same arguments).load(path)``: ``mean_``, ``scale_``, the layer's
    ``layer_.weight`` (C, m) and ``layer_.bias`` (C,) in one ``.npz`` (n_classes_ = C); see
    :mod:`nprefgen.models._files` for the guarantees.
    """

    def __init__(self, weight_decay: float = 1e-3, standardize: bool = True) -> None:
        self.weight_decay = check_scalar(weight_decay, "weight_decay", low=0.0)
        self.standardize = bool(standardize)

    def _transform(self, F) -> np.ndarray:
        return (F - self.mean_) / self.scale_

    def fit(self, F, y, *, rng=None, epochs: int = 300, lr: float = 0.05) -> "LinearProbe":
        """F: (n, m) features, y: (n,) integer labels in [0, n_classes) -> self."""
        F = _check_features(F, "F")
        y = _check_labels(y, F.shape[0])
        rng = check_rng(rng)
        epochs = check_int(epochs, "epochs", low=1)
        lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        self.n_classes_ = int(y.max()) + 1
        self.mean_ = F.mean(axis=0) if self.standardize else np.zeros(F.shape[1])
        std = F.std(axis=0) if self.standardize else np.ones(F.shape[1])
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        Fs = self._transform(F)
        self.layer_ = Linear(F.shape[1], self.n_classes_, rng=rng)
        opt = Adam(self.layer_.parameters(), lr=lr)
        losses = []
        for _ in range(epochs):
            self.layer_.zero_grad()
            losses.append(probe_loss_and_grad(self.layer_, Fs, y, self.weight_decay))
            opt.step()
        self.history_ = {"train_loss": losses, "epochs": epochs}
        return self

    def _check_fitted(self, F) -> np.ndarray:
        if not hasattr(self, "layer_"):
            raise ValueError("self: this LinearProbe is not fitted yet; call fit(F, y, rng=...) first")
        return _check_features(F, "F", self.mean_.shape[0])

    def predict_proba(self, F) -> np.ndarray:
        """F: (n, m) -> class probabilities (n, n_classes)."""
        F = self._check_fitted(F)
        return softmax(self.layer_(self._transform(F)))

    def predict(self, F) -> np.ndarray:
        """F: (n, m) -> labels (n,)."""
        return np.argmax(self.predict_proba(F), axis=1)

    def score(self, F, y) -> float:
        """Accuracy on (F, y)."""
        pred = self.predict(F)
        return float(np.mean(pred == _check_labels(y, pred.shape[0])))

    # -- files -----------------------------------------------------------------------------------
    _ARRAYS = ("mean_", "scale_", "layer_.weight", "layer_.bias")

    def _config(self) -> dict:
        return {"weight_decay": self.weight_decay, "standardize": self.standardize}

    @staticmethod
    def _fitted_state(arrays: dict, where: str) -> dict:
        """weight (C, m) with C >= 1 classes, bias (C,), mean_ (m,), scale_ (m,) positive."""
        W = field(arrays, "layer_.weight", where, shape=(None, None))
        C, m = W.shape
        if C < 1 or m < 1:
            raise ValueError(f"{where}: layer_.weight: expected shape (n_classes, m) with both "
                             f">= 1, got {W.shape}")
        return {"weight": W, "bias": field(arrays, "layer_.bias", where, shape=(C,)),
                **_standardizer_fields(arrays, where, m)}

    def save(self, path) -> None:
        """Write the fitted probe to ``.npz`` at ``path``, atomically."""
        if not hasattr(self, "layer_"):
            raise ValueError("self: this LinearProbe is not fitted yet; call fit(F, y) first")
        arrays = {"mean_": self.mean_, "scale_": self.scale_,
                  **{f"layer_.{k}": v for k, v in self.layer_.state_dict().items()}}
        self._fitted_state(arrays, where_save("LinearProbe"))
        write_model(path, "LinearProbe", arrays, self._config(), self.history_)

    def load(self, path) -> "LinearProbe":
        """Load a probe saved by :meth:`save` into this identically constructed one; returns
        self. All or nothing: a bad file raises ValueError naming ``path`` and the field."""
        arrays, history = read_model(path, "LinearProbe", self._config(), self._ARRAYS)
        s = self._fitted_state(arrays, where_load(path, "LinearProbe"))
        C, m = s["weight"].shape
        layer = Linear(m, C, rng=0)                  # its initial values are overwritten
        layer.load_state_dict({"weight": s["weight"], "bias": s["bias"]})
        self.layer_, self.mean_, self.scale_, self.n_classes_ = layer, s["mean_"], s["scale_"], C
        self.history_ = history
        return self


def _standardizer_fields(arrays: dict, where: str, m: int) -> dict:
    """A saved feature standardisation: mean_ (m,) and scale_ (m,) with every scale positive."""
    out = {"mean_": field(arrays, "mean_", where, shape=(m,)),
           "scale_": field(arrays, "scale_", where, shape=(m,))}
    if np.any(out["scale_"] <= 0):
        raise ValueError(f"{where}: scale_: expected positive scales, got "
                         f"{out['scale_'].min()!r}")
    return out


def pairwise_sq_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """||a_i - b_j||^2 = ||a_i||^2 + ||b_j||^2 - 2 a_i . b_j, clipped at 0. A: (n, m), B: (k, m)
    -> (n, k). Entries beyond ~1e154 overflow the squares: a ValueError blaming their scale."""
    A = check_array(A, "A", ndim=2)
    B = check_array(B, "B", shape=(None, A.shape[1]))
    with np.errstate(over="ignore", invalid="ignore"):                     # checked next
        d2 = np.sum(A * A, axis=1)[:, None] + np.sum(B * B, axis=1)[None, :] - 2.0 * A @ B.T
    if not np.all(np.isfinite(d2)):
        big_a = float(np.max(np.abs(A))) >= float(np.max(np.abs(B)))
        check_finite_result(d2, "A" if big_a else "B", "squared distances", A if big_a else B)
    return np.maximum(d2, 0.0)


def knn_vote(neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(REP.18) y_hat = argmax_c #{j in N_k(x) : y_j = c}; ties go to the class whose member is
    nearest. neighbour_labels: (n, k), ordered nearest first -> (n,) labels."""
    n, k = neighbour_labels.shape
    counts = np.zeros((n, n_classes), dtype=np.int64)
    rows = np.repeat(np.arange(n), k)
    np.add.at(counts, (rows, neighbour_labels.ravel()), 1)
    first = np.full((n, n_classes), k, dtype=np.int64)             # rank of the nearest member
    ranks = np.broadcast_to(np.arange(k), (n, k))
    np.minimum.at(first, (rows, neighbour_labels.ravel()), ranks.ravel())
    return np.argmax(counts * (k + 1) - first, axis=1)             # counts first, then nearness


class KNNClassifier:
    """k-nearest-neighbour majority vote (REP.18) in Euclidean or cosine distance.

    Parameters
    ----------
    k : int, number of neighbours
    metric : {"euclidean", "cosine"}
    standardize : bool, z-score features with the training statistics first (Euclidean only)

    ``fit`` stores the (prepared) training set; nothing is minimised, so
    ``history_ = {"train_loss": [], "n_train": n, "n_classes": C}`` records only what was stored.
    ``save(path)`` / ``KNNClassifier(same arguments).load(path)``: ``F_``, ``y_``, ``mean_``,
    ``scale_`` in one ``.npz`` (guarantees in :mod:`nprefgen.models._files`).
    """

    _ARRAYS = ("F_", "y_", "mean_", "scale_")

    def __init__(self, k: int = 5, metric: str = "euclidean", standardize: bool = False) -> None:
        self.k = check_int(k, "k", low=1)
        self.metric = check_choice(metric, "metric", ("euclidean", "cosine"))
        self.standardize = bool(standardize)

    def _prep(self, F: np.ndarray) -> np.ndarray:
        prepped = self._prep_with(F, self.mean_, self.scale_)
        if self.metric != "cosine":                 # unit rows cannot overflow
            with np.errstate(over="ignore"):
                norms2 = np.einsum("ij,ij->i", prepped, prepped)
            check_finite_result(norms2, "F", "squared norms", F)
        return prepped

    def _prep_with(self, F: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":                 # scale-free: divide by max |F_ij| first, so
            top = np.max(np.abs(F), axis=1, keepdims=True)     # that |F| ~ 1e200 cannot overflow
            F = F / np.where(top > 0, top, 1.0)
            norms = np.linalg.norm(F, axis=1, keepdims=True)
            return F / np.where(norms > 0, norms, 1.0)
        return (F - mean) / scale

    def fit(self, F, y) -> "KNNClassifier":
        """F: (n, m), y: (n,) integer labels -> self (stores the training set)."""
        F = _check_features(F, "F")
        y = _check_labels(y, F.shape[0])
        if self.k > F.shape[0]:
            raise ValueError(f"k: expected at most the number of training samples {F.shape[0]}, "
                             f"got {self.k}")
        with np.errstate(over="ignore", invalid="ignore"):                 # checked next
            mean = F.mean(axis=0) if self.standardize else np.zeros(F.shape[1])
            std = F.std(axis=0) if self.standardize else np.ones(F.shape[1])
            # an overflowed std would scale every feature to 0 (all neighbours tied)
            check_finite_result(std, "F", "feature standard deviations", F)
            prepped = self._prep_with(F, mean, np.where(std > 1e-12, std, 1.0))
            check_finite_result(np.einsum("ij,ij->i", prepped, prepped), "F", "squared norms", F)
        self.mean_, self.scale_ = mean, np.where(std > 1e-12, std, 1.0)
        self.F_ = prepped
        self.y_ = y
        self.n_classes_ = int(y.max()) + 1
        self.history_ = {"train_loss": [], "n_train": int(F.shape[0]), "n_classes": self.n_classes_}
        return self

    def kneighbors(self, F, chunk: int = 1024) -> np.ndarray:
        """Indices of the k nearest training points, nearest first. F: (n, m) -> (n, k)."""
        if not hasattr(self, "F_"):
            raise ValueError("self: this KNNClassifier is not fitted yet; call fit(F, y) first")
        F = self._prep(_check_features(F, "F", self.F_.shape[1]))
        chunk = check_int(chunk, "chunk", low=1)
        out = np.empty((F.shape[0], self.k), dtype=np.int64)
        for s in range(0, F.shape[0], chunk):
            d2 = pairwise_sq_distances(F[s:s + chunk], self.F_)     # (c, n_train)
            idx = np.argpartition(d2, self.k - 1, axis=1)[:, :self.k]
            order = np.argsort(np.take_along_axis(d2, idx, axis=1), axis=1, kind="stable")
            out[s:s + chunk] = np.take_along_axis(idx, order, axis=1)
        return out

    def predict(self, F) -> np.ndarray:
        """(REP.18) F: (n, m) -> labels (n,)."""
        idx = self.kneighbors(F)
        return knn_vote(self.y_[idx], self.n_classes_)

    def score(self, F, y) -> float:
        """Accuracy on (F, y)."""
        pred = self.predict(F)
        return float(np.mean(pred == _check_labels(y, pred.shape[0])))

    # -- files -----------------------------------------------------------------------------------
    def _config(self) -> dict:
        return {"k": self.k, "metric": self.metric, "standardize": self.standardize}

    def _fitted_state(self, arrays: dict, where: str) -> dict:
        """F_ (n, m) with n >= k (rows of unit or zero norm for the cosine metric), y_ (n,)
        non-negative integer labels, mean_ (m,), scale_ (m,) positive."""
        F = field(arrays, "F_", where, shape=(None, None))
        n, m = F.shape
        if n < self.k or m < 1:
            raise ValueError(f"{where}: F_: expected shape (n, m) with n >= k = {self.k} and "
                             f"m >= 1, got {F.shape}")
        if self.metric == "cosine":       # normalised rows: |norm - 1| of a few ulps, or zero
            norms = np.linalg.norm(F, axis=1)
            bad = (norms != 0) & (np.abs(norms - 1) > 4 * m * np.finfo(np.float64).eps)
            if np.any(bad):
                raise ValueError(f"{where}: F_: expected rows of unit norm (metric='cosine'), "
                                 f"got norm {norms[bad][0]!r}")
        y = field(arrays, "y_", where, shape=(n,), kind="i")
        if y.min() < 0:
            raise ValueError(f"{where}: y_: expected non-negative labels, got {y.min()}")
        return {"F_": F, "y_": y, **_standardizer_fields(arrays, where, m),
                "n_classes_": int(y.max()) + 1}

    def save(self, path) -> None:
        """Write the stored training set to ``.npz`` at ``path``, atomically."""
        if not hasattr(self, "F_"):
            raise ValueError("self: this KNNClassifier is not fitted yet; call fit(F, y) first")
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        self._fitted_state(arrays, where_save("KNNClassifier"))
        write_model(path, "KNNClassifier", arrays, self._config(), self.history_)

    def load(self, path) -> "KNNClassifier":
        """Load a classifier saved by :meth:`save` into this identically constructed one;
        returns self. All or nothing: a bad file raises ValueError naming ``path`` and the
        field, and leaves the classifier unchanged."""
        return load_fitted(self, path, "KNNClassifier", self._config(), self._ARRAYS)


def probe_accuracies(F_train, y_train, F_test, y_test, *, rng=None, k: int = 5,
                     epochs: int = 300) -> dict[str, float]:
    """Test accuracies of a linear probe and a k-NN classifier trained on (F_train, y_train).
    -> {"linear_probe": float, "knn": float}"""
    F_train = check_array(F_train, "F_train", ndim=2)
    F_test = check_array(F_test, "F_test", shape=(None, F_train.shape[1]))
    probe = LinearProbe().fit(F_train, y_train, rng=rng, epochs=epochs)
    knn = KNNClassifier(k=k, standardize=True).fit(F_train, y_train)
    return {"linear_probe": probe.score(F_test, y_test), "knn": knn.score(F_test, y_test)}
