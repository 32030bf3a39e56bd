"""k-means++ seeding and Lloyd's iterations: the initialisation of the Gaussian mixture.

(GMM.15) k-means++ (Arthur & Vassilvitskii 2007): the first centre is a uniform draw from the
data; each further centre is drawn with probability proportional to D(x)^2, the squared distance
to the nearest centre chosen so far. As in scikit-learn we use the *greedy* variant: draw
``2 + floor(log K)`` candidates and keep the one that lowers the potential sum_i D(x_i)^2 most.

(GMM.16) Lloyd's algorithm alternates the assignment c_i = argmin_k ||x_i - m_k||^2 and the
update m_k = mean of {x_i : c_i = k}; the within-cluster sum of squares never increases.

References: D. Arthur, S. Vassilvitskii, "k-means++: the advantages of careful seeding", SODA 2007.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_alloc, check_array, check_int, check_rng


def squared_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """||x_i - m_k||^2. X: (n, d), centers: (K, d) -> (n, K), clipped at 0 (BLAS expansion)."""
    X = check_array(X, "X", ndim=2, dtype=np.float64)
    centers = check_array(centers, "centers", shape=(None, X.shape[1]), dtype=np.float64)
    d2 = (np.sum(X * X, axis=1)[:, None] - 2.0 * (X @ centers.T)
          + np.sum(centers * centers, axis=1)[None, :])
    return np.maximum(d2, 0.0)


def kmeans_plusplus(X: np.ndarray, n_clusters: int, *, rng=None,
                    n_local_trials: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(GMM.15) Greedy k-means++ seeding.

    Parameters
    ----------
    X : (n, d) data.
    n_clusters : K <= n.
    rng : None, an int seed or a Generator (SPEC 7).
    n_local_trials : candidates per step; default 2 + floor(log K).

    Returns
    -------
    centers : (K, d) rows of X.
    indices : (K,) their row numbers.
    """
    X = check_array(X, "X", ndim=2, dtype=np.float64)
    n = X.shape[0]
    K = check_int(n_clusters, "n_clusters", low=1, high=n)
    rng = check_rng(rng)
    trials = 2 + int(np.log(K)) if n_local_trials is None else check_int(
        n_local_trials, "n_local_trials", low=1)
    check_alloc((trials, n), "n_local_trials")                    # candidate distances (T, n)
    indices = np.empty(K, dtype=np.int64)
    indices[0] = rng.integers(n)
    closest = squared_distances(X, X[indices[:1]])[:, 0]          # D(x)^2, (n,)
    for c in range(1, K):
        potential = closest.sum()
        if potential <= 0.0:                                      # all points already centres
            candidates = rng.integers(n, size=trials)
        else:
            u = rng.uniform(size=trials) * potential
            candidates = np.searchsorted(np.cumsum(closest), u)
            candidates = np.minimum(candidates, n - 1)
        cand_d2 = np.minimum(closest[None, :], squared_distances(X, X[candidates]).T)  # (T, n)
        best = int(np.argmin(cand_d2.sum(axis=1)))
        indices[c] = candidates[best]
        closest = cand_d2[best]
    return X[indices].copy(), indices


def lloyd(X: np.ndarray, centers: np.ndarray, max_iter: int = 20
          ) -> tuple[np.ndarray, np.ndarray, float, int]:
    """(GMM.16) Lloyd's iterations from ``centers`` until the labels stop changing.

    An emptied cluster is moved to the point farthest from its centre, which leaves its old
    cluster (sums and counts), as scikit-learn does; only clusters of two or more points give
    one up, so no cluster is emptied in turn.

    Parameters
    ----------
    X : (n, d). centers : (K, d) starting centres. max_iter : at most this many updates.

    Returns
    -------
    centers : (K, d); labels : (n,) int; inertia : sum_i ||x_i - m_{c_i}||^2; n_iter : updates done.
    """
    X = check_array(X, "X", ndim=2, dtype=np.float64)
    centers = check_array(centers, "centers", shape=(None, X.shape[1]), dtype=np.float64,
                          copy=True)
    max_iter = check_int(max_iter, "max_iter", low=0)
    K = centers.shape[0]
    if K > X.shape[0]:
        raise ValueError(f"centers: expected at most n_samples = {X.shape[0]} centres, got {K}")
    d2 = squared_distances(X, centers)
    labels = np.argmin(d2, axis=1)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        counts = np.bincount(labels, minlength=K)
        one_hot = np.zeros((X.shape[0], K))
        one_hot[np.arange(X.shape[0]), labels] = 1.0
        sums = one_hot.T @ X                                      # (K, d) cluster sums
        dist = d2[np.arange(X.shape[0]), labels]                 # to the centre, (n,)
        for k in np.flatnonzero(counts == 0):                     # relocate empty clusters
            far = int(np.argmax(np.where(counts[labels] > 1, dist, -1.0)))
            old = labels[far]
            sums[old] -= X[far]                                   # it leaves its old cluster
            counts[old] -= 1
            sums[k], counts[k], labels[far], dist[far] = X[far], 1, k, -1.0
        centers = sums / counts[:, None]
        d2 = squared_distances(X, centers)
        new_labels = np.argmin(d2, axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    inertia = float(d2[np.arange(X.shape[0]), labels].sum())
    return centers, labels, inertia, n_iter
