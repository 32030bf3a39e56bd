"""Principal component analysis by the SVD of the centred data (derivations/representation.md,
REP.1-REP.6).

The maths lives in pure functions (:func:`pca_fit`, :func:`pca_transform`,
:func:`pca_inverse_transform`); :class:`PCA` is a thin holder with scikit-learn's attribute names
(``components_``, ``explained_variance_``, ``explained_variance_ratio_``, ``mean_``), so the two
can be compared one to one. Variances use the unbiased 1/(n-1) convention, as scikit-learn's.

Finite data so large that its mean, its centred values or its variances overflow float64
(|x| ~ 1e154 and above) raise a ValueError about the data's scale before the SVD is called (an SVD
of an overflowed matrix returns NaN or does not return at all).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nprefgen._validation import check_array, check_finite_result, check_int
from nprefgen.models._files import field, load_fitted, where_save, write_model

_TINY = np.finfo(np.float64).tiny


@dataclass
class PCAFit:
    """What :func:`pca_fit` returns. k = number of kept components, d = data dimension.

    mean : (d,)              (REP.1) the sample mean mu
    components : (k, d)      rows are the top-k right singular vectors v_j (unit norm)
    singular_values : (k,)   s_1 >= ... >= s_k of the centred data
    explained_variance : (k,)  (REP.2) lambda_j = s_j^2 / (n - 1), eigenvalues of the covariance
    explained_variance_ratio : (k,)  (REP.6) lambda_j / sum of all d eigenvalues
    total_variance : float   trace of the covariance (sum of all eigenvalues)
    n_samples : int
    """

    mean: np.ndarray
    components: np.ndarray
    singular_values: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    total_variance: float
    n_samples: int


def _flip_signs(Vt: np.ndarray) -> np.ndarray:
    """Make each component's largest-magnitude entry positive (the SVD fixes a sign only up to
    +-1 per component); a deterministic choice so that fits are reproducible."""
    idx = np.argmax(np.abs(Vt), axis=1)
    signs = np.sign(Vt[np.arange(Vt.shape[0]), idx])
    signs[signs == 0] = 1.0
    return Vt * signs[:, None]


def pca_fit(X: np.ndarray, n_components: int) -> PCAFit:
    """Fit PCA by the thin SVD of the centred data.

    (REP.1) mu = mean of the rows, X_c = X - mu, C = X_c^T X_c / (n - 1).
    (REP.2) X_c = U diag(s) V^T  =>  C = V diag(s^2 / (n - 1)) V^T: the right singular vectors
    are the eigenvectors of C and lambda_j = s_j^2 / (n - 1) its eigenvalues.

    X: (n, d) with n >= 2; 1 <= n_components <= min(n, d).
    """
    X = check_array(X, "X", ndim=2, dtype=np.float64)
    n, d = X.shape
    if n < 2:
        raise ValueError(f"X: expected at least 2 samples to estimate a covariance, got {n}")
    k = check_int(n_components, "n_components", low=1, high=min(n, d))
    with np.errstate(over="ignore", invalid="ignore"):
        mean = X.mean(axis=0)                              # (REP.1)
        Xc = X - mean
        # the SVD never sees a non-finite matrix (it can spin on one); s^2 must fit too
        check_finite_result(Xc, "X", "centred values X - mean", X)
        check_finite_result(np.sum(Xc * Xc), "X", "sum of squares", X)
    _, s, Vt = np.linalg.svd(Xc, full_matrices=False)      # (REP.2) s: (min(n, d),)
    Vt = _flip_signs(Vt)
    eig = s * s / (n - 1)                                  # (REP.2) all eigenvalues of C
    total = float(eig.sum())
    ratio = eig[:k] / max(total, _TINY)                    # (REP.6)
    return PCAFit(mean, Vt[:k].copy(), s[:k].copy(), eig[:k].copy(), ratio, total, n)


def pca_transform(X: np.ndarray, mean: np.ndarray, components: np.ndarray,
                  explained_variance: np.ndarray | None = None) -> np.ndarray:
    """(REP.3) z = (x - mu) V_k, and with whitening z_j / sqrt(lambda_j).

    X: (n, d), mean: (d,), components: (k, d), explained_variance: (k,) or None -> Z: (n, k)
    """
    with np.errstate(over="ignore", invalid="ignore"):
        Z = (X - mean) @ components.T
        if explained_variance is not None:
            Z = Z / np.sqrt(np.maximum(explained_variance, _TINY))
    return check_finite_result(Z, "X", "projection (x - mu) V_k", X)


def pca_inverse_transform(Z: np.ndarray, mean: np.ndarray, components: np.ndarray,
                          explained_variance: np.ndarray | None = None) -> np.ndarray:
    """(REP.4) x_hat = mu + z V_k^T (after undoing the whitening if it was applied).

    Z: (n, k) -> X_hat: (n, d). With k = d this is the exact inverse of :func:`pca_transform`.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if explained_variance is not None:
            Z = Z * np.sqrt(np.maximum(explained_variance, _TINY))
        X_hat = Z @ components + mean
    return check_finite_result(X_hat, "Z", "reconstruction mu + z V_k^T", Z)


def reconstruction_error(X: np.ndarray, X_hat: np.ndarray) -> float:
    """(REP.5) sum_i ||x_i - x_hat_i||^2, the squared Frobenius norm of the residual."""
    X = check_array(X, "X", ndim=2)
    X_hat = check_array(X_hat, "X_hat", shape=X.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        R = X - X_hat
        total = np.sum(R * R)
    return float(check_finite_result(total, "X", "squared residual norm", X))


def principal_angles(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(REP.8) Principal angles between the column spaces of A: (d, k) and B: (d, l).

    With Q_A, Q_B orthonormal bases (thin QR), cos(theta_i) = sigma_i(Q_A^T Q_B); returns the
    min(k, l) angles in radians, largest first. Small angles are computed from
    sin(theta) = sigma(Q_B - Q_A Q_A^T Q_B) instead, which keeps angles near 0 accurate (the
    cosine form loses them below ~1e-8), as scipy.linalg.subspace_angles does.
    """
    A = check_array(A, "A", ndim=2, dtype=np.float64)
    B = check_array(B, "B", shape=(A.shape[0], None), dtype=np.float64)
    QA, _ = np.linalg.qr(A)
    QB, _ = np.linalg.qr(B)
    if QA.shape[1] < QB.shape[1]:
        QA, QB = QB, QA
    cos = np.clip(np.linalg.svd(QA.T @ QB, compute_uv=False), -1.0, 1.0)   # descending
    sin = np.clip(np.linalg.svd(QB - QA @ (QA.T @ QB), compute_uv=False), -1.0, 1.0)
    angles = np.where(cos * cos < 0.5, np.arccos(cos), np.arcsin(sin[::-1]))
    return np.sort(angles)[::-1]


class PCA:
    """Principal component analysis (thin estimator over :func:`pca_fit`).

    Parameters
    ----------
    n_components : int
        Number of components k kept.
    whiten : bool
        If True, :meth:`transform` divides each score by sqrt(lambda_j) (unit-variance scores).

    Attributes (after ``fit``)
    --------------------------
    mean_ : (d,); components_ : (k, d); singular_values_ : (k,); explained_variance_ : (k,);
    explained_variance_ratio_ : (k,); n_samples_ : int; total_variance_ : float.
    history_ : the contract's training record of a closed-form fit (one entry each):
        ``{"train_loss": [mean over the n training rows of ||x - x_hat||^2 (REP.5)],
        "explained_variance_ratio": [sum of explained_variance_ratio_ (REP.6)]}``; the residual
        is the sum of the discarded eigenvalues times (n - 1) / n (REP.2), computed without a
        second pass over X.

    ``save(path)`` / ``PCA(same arguments).load(path)``: the fitted arrays and hyper-parameters in
    one ``.npz`` (guarantees in :mod:`nprefgen.models._files`).
    """

    _ARRAYS = ("mean_", "components_", "singular_values_", "explained_variance_",
               "explained_variance_ratio_", "total_variance_", "n_samples_")

    def __init__(self, n_components: int, whiten: bool = False) -> None:
        self.n_components = check_int(n_components, "n_components", low=1)
        if not isinstance(whiten, (bool, np.bool_)):
            raise ValueError(f"whiten: expected a bool, got {type(whiten).__name__} {whiten!r}")
        self.whiten = bool(whiten)

    def fit(self, X) -> "PCA":
        """X: (n, d) -> self."""
        f = pca_fit(X, self.n_components)
        self.mean_ = f.mean
        self.components_ = f.components
        self.singular_values_ = f.singular_values
        self.explained_variance_ = f.explained_variance
        self.explained_variance_ratio_ = f.explained_variance_ratio
        self.total_variance_ = f.total_variance
        self.n_samples_ = f.n_samples
        self.history_ = _history(f)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise ValueError("self: this PCA is not fitted yet; call fit(X) first")

    def transform(self, X) -> np.ndarray:
        """(REP.3) X: (n, d) -> Z: (n, k)."""
        self._check_fitted()
        X = check_array(X, "X", shape=(None, self.mean_.shape[0]), dtype=np.float64)
        return pca_transform(X, self.mean_, self.components_,
                             self.explained_variance_ if self.whiten else None)

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, Z) -> np.ndarray:
        """(REP.4) Z: (n, k) -> X_hat: (n, d)."""
        self._check_fitted()
        Z = check_array(Z, "Z", shape=(None, self.components_.shape[0]), dtype=np.float64)
        return pca_inverse_transform(Z, self.mean_, self.components_,
                                     self.explained_variance_ if self.whiten else None)

    def reconstruct(self, X) -> np.ndarray:
        """Project onto the k-dimensional principal subspace: X: (n, d) -> X_hat: (n, d)."""
        return self.inverse_transform(self.transform(X))

    def __repr__(self) -> str:
        return f"PCA(n_components={self.n_components}, whiten={self.whiten})"

    # -- files -----------------------------------------------------------------------------------
    def _config(self) -> dict:
        return {"n_components": self.n_components, "whiten": self.whiten}

    def _fitted_state(self, arrays: dict, where: str) -> dict:
        """Check fitted arrays (a file's, or this model's before a save) -> the attributes.

        components_ (k, d) with orthonormal rows: |V V^T - I| <= 100 d eps entrywise (the SVD's
        vectors are orthonormal to O(d eps)); singular values non-negative and non-increasing,
        variances non-negative, ratios in [0, 1], n_samples_ >= max(2, k)."""
        k = self.n_components
        V = field(arrays, "components_", where, shape=(k, None))
        d = V.shape[1]
        if d < k:
            raise ValueError(f"{where}: components_: expected shape ({k}, d) with d >= {k}, got "
                             f"{V.shape}")
        err = float(np.max(np.abs(V @ V.T - np.eye(k))))
        if not err <= 100 * d * np.finfo(np.float64).eps:
            raise ValueError(f"{where}: components_: expected orthonormal rows, got |V V^T - I| "
                             f"up to {err:.3g}")
        out = {"components_": V, "mean_": field(arrays, "mean_", where, shape=(d,))}
        for name in ("singular_values_", "explained_variance_", "explained_variance_ratio_"):
            out[name] = field(arrays, name, where, shape=(k,))
            if np.any(out[name] < 0):
                raise ValueError(f"{where}: {name}: expected non-negative values, got "
                                 f"{out[name].min()!r}")
        if np.any(np.diff(out["singular_values_"]) > 0):
            raise ValueError(f"{where}: singular_values_: expected non-increasing values, got "
                             f"{out['singular_values_']}")
        if np.any(out["explained_variance_ratio_"] > 1):
            raise ValueError(f"{where}: explained_variance_ratio_: expected values in [0, 1], "
                             f"got {out['explained_variance_ratio_'].max()!r}")
        total = float(field(arrays, "total_variance_", where, shape=()))
        if total < 0:
            raise ValueError(f"{where}: total_variance_: expected a non-negative value, got "
                             f"{total!r}")
        n = int(field(arrays, "n_samples_", where, shape=(), kind="i"))
        if n < max(2, k):
            raise ValueError(f"{where}: n_samples_: expected at least {max(2, k)}, got {n}")
        out.update(total_variance_=total, n_samples_=n)
        return out

    def save(self, path) -> None:
        """Write the fitted PCA to ``.npz`` at ``path``, atomically (a failed save leaves an
        existing file byte-identical); an invalid fitted state is refused before writing."""
        self._check_fitted()
        arrays = {name: np.asarray(getattr(self, name)) for name in self._ARRAYS}
        arrays["n_samples_"] = np.asarray(self.n_samples_, dtype=np.int64)
        self._fitted_state(arrays, where_save("PCA"))
        write_model(path, "PCA", arrays, self._config(), self.history_)

    def load(self, path) -> "PCA":
        """Load a PCA saved by :meth:`save` into this identically constructed one; returns self.
        All or nothing: a bad file raises ValueError naming ``path`` and the field, and leaves
        this PCA unchanged."""
        return load_fitted(self, path, "PCA", self._config(), self._ARRAYS)


def _history(f: PCAFit) -> dict:
    """(REP.5) mean squared reconstruction error of the training rows = (sum of the discarded
    eigenvalues) (n - 1) / n (REP.2), and the kept fraction of the variance (REP.6)."""
    kept = float(np.sum(f.explained_variance))
    residual = max(f.total_variance - kept, 0.0) * (f.n_samples - 1) / f.n_samples
    return {"train_loss": [residual], "explained_variance_ratio": [float(np.sum(
        f.explained_variance_ratio))]}
