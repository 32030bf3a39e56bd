"""A full-covariance Gaussian density model, optionally conditional (derivations/splines.md,
SPL.17-SPL.18): the baseline every flow on the digits is compared with.

    log N(y; mu, Sigma) = -1/2 |L^{-1}(y - mu)|^2 - sum_i log L_ii - (D/2) log 2 pi,
    Sigma = L L^T = cov + ridge I  (maximum likelihood, SPL.17)

Fitted jointly to ``[y, c]``, the conditional ``p(y | c)`` is again Gaussian (SPL.18):

    y | c ~ N(mu_y + S_yc S_cc^{-1} (c - mu_c),  S_yy - S_yc S_cc^{-1} S_cy)

Closed-form fit, so ``history_`` holds the training log-likelihood only.
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from nprefgen._validation import check_array, check_int, check_rng, check_scalar

LOG_2PI = float(np.log(2.0 * np.pi))


class GaussianDensity:
    """Maximum-likelihood full-covariance Gaussian (SPL.17), optionally conditional (SPL.18).

    Parameters
    ----------
    ridge : float >= 0, added to the covariance's diagonal (keeps Sigma positive definite).

    Attributes (after ``fit``)
    --------------------------
    mu_ : (D,) the mean of y (of y given c = mu_c for a conditional model)
    cov_ : (D, D) Sigma (the conditional covariance for a conditional model)
    chol_ : (D, D) its lower Cholesky factor L
    gain_ : (D, C) S_yc S_cc^{-1} or None; mu_c_ : (C,) or None
    dim, context_dim : D and C
    history_ : {"train_log_prob": [mean log p of the training data]}
    """

    def __init__(self, ridge: float = 1e-6) -> None:
        self.ridge = check_scalar(ridge, "ridge", low=0.0)
        self.mu_ = None

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, y, context=None) -> "GaussianDensity":
        """(SPL.17) y: (n, D) [, context: (n, C) for p(y | c), SPL.18] -> self."""
        y = check_array(y, "y", ndim=2, dtype=np.float64)
        if y.shape[0] < 2:
            raise ValueError(f"y: expected at least 2 samples, got {y.shape[0]}")
        joint = y if context is None else np.concatenate(
            [y, check_array(context, "context", shape=(y.shape[0], None), dtype=np.float64)], axis=1)
        d = y.shape[1]
        mu = joint.mean(axis=0)
        diff = joint - mu
        cov = diff.T @ diff / joint.shape[0] + self.ridge * np.eye(joint.shape[1])
        self.dim, self.context_dim = d, joint.shape[1] - d
        if self.context_dim == 0:
            self.mu_, self.cov_, self.gain_, self.mu_c_ = mu, cov, None, None
        else:
            # (SPL.18) y | c ~ N(mu_y + S_yc S_cc^{-1} (c - mu_c), S_yy - S_yc S_cc^{-1} S_cy)
            gain = np.linalg.solve(cov[d:, d:], cov[d:, :d]).T              # (D, C)
            self.mu_, self.mu_c_, self.gain_ = mu[:d], mu[d:], gain
            self.cov_ = cov[:d, :d] - gain @ cov[d:, :d]
        try:
            self.chol_ = np.linalg.cholesky(self.cov_)
        except np.linalg.LinAlgError:
            self.mu_ = None
            raise ValueError("y: the covariance is not positive definite (constant or collinear "
                             "coordinates); use ridge > 0") from None
        self.history_ = {"train_log_prob": [float(np.mean(self.log_prob(y, context)))]}
        return self

    def _check_fitted(self, what: str) -> None:
        if self.mu_ is None:
            raise ValueError(f"self: call fit before {what}")

    def _mean(self, n: int, context) -> np.ndarray:
        if self.gain_ is None:
            if context is not None:
                raise ValueError("context: this Gaussian was fitted without a context, got one")
            return np.broadcast_to(self.mu_, (n, self.dim))
        if context is None:
            raise ValueError(f"context: expected shape ({n}, {self.context_dim}) or "
                             f"({self.context_dim},), got None")
        context = check_array(context, "context", ndim=(1, 2), dtype=np.float64)
        if context.ndim == 1:
            context = np.broadcast_to(check_array(context, "context", shape=(self.context_dim,)),
                                      (n, self.context_dim))
        context = check_array(context, "context", shape=(n, self.context_dim))
        return self.mu_ + (context - self.mu_c_) @ self.gain_.T

    # -- density and sampling -------------------------------------------------------------------
    def log_prob(self, y, context=None) -> np.ndarray:
        """(SPL.17) y: (n, D) [, context: (n, C) or (C,)] -> (n,) log N(y; mu(c), Sigma)."""
        self._check_fitted("log_prob")
        y = check_array(y, "y", shape=(None, self.dim), dtype=np.float64)
        r = np.linalg.solve(self.chol_, (y - self._mean(y.shape[0], context)).T)   # L^{-1}(y - mu)
        return (-0.5 * np.sum(r * r, axis=0) - np.sum(np.log(np.diag(self.chol_)))
                - 0.5 * self.dim * LOG_2PI)

    def sample(self, n: int, context=None, *, rng=None) -> np.ndarray:
        """n draws y = mu(c) + L e, e ~ N(0, I). context: (n, C) or (C,); rng: None, int or
        Generator (SPEC 7) -> (n, D)."""
        self._check_fitted("sample")
        n = check_int(n, "n", low=1)
        rng = check_rng(rng)
        mean = self._mean(n, context)
        e = rng.standard_normal((n, self.dim))
        return mean + e @ self.chol_.T

    def num_parameters(self) -> int:
        """Free parameters of the joint Gaussian: D' means and D'(D'+1)/2 covariances, D' = D + C."""
        self._check_fitted("num_parameters")
        d = self.dim + self.context_dim
        return d + d * (d + 1) // 2

    # -- files ----------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the fitted model to ``.npz`` (a temporary file renamed over ``path``)."""
        self._check_fitted("save")
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"path: expected a file path, got {type(path).__name__}")
        arrays = dict(mu=self.mu_, cov=self.cov_, ridge=np.array(self.ridge),
                      history=np.array(json.dumps(self.history_)))
        if self.gain_ is not None:
            arrays.update(gain=self.gain_, mu_c=self.mu_c_)
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".gaussian-", suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    @classmethod
    def load(cls, path) -> "GaussianDensity":
        """A model saved by :meth:`save`; the whole file is validated before anything is built."""
        from nprefgen.nn.io import read_npz

        arrays = read_npz(path)
        where = f"path: {os.fspath(path)!r}"
        need = {"mu", "cov", "ridge", "history"}
        if not need <= set(arrays) or ("gain" in arrays) != ("mu_c" in arrays):
            raise ValueError(f"{where} is not a GaussianDensity file (entries {sorted(arrays)})")
        try:
            mu = check_array(arrays["mu"], "mu", ndim=1, dtype=np.float64)
            d = mu.size
            cov = check_array(arrays["cov"], "cov", shape=(d, d), dtype=np.float64)
            ridge = check_scalar(float(arrays["ridge"]), "ridge", low=0.0)
            gain = mu_c = None
            if "gain" in arrays:
                mu_c = check_array(arrays["mu_c"], "mu_c", ndim=1, dtype=np.float64)
                gain = check_array(arrays["gain"], "gain", shape=(d, mu_c.size), dtype=np.float64)
            if not np.allclose(cov, cov.T, rtol=1e-12, atol=0.0):
                raise ValueError("cov: expected a symmetric matrix")
            chol = np.linalg.cholesky(cov)
            history = json.loads(str(arrays["history"]))
        except (ValueError, np.linalg.LinAlgError, TypeError) as exc:
            raise ValueError(f"{where}: invalid GaussianDensity file ({exc})") from None
        model = cls(ridge)
        model.mu_, model.cov_, model.chol_, model.gain_, model.mu_c_ = mu, cov, chol, gain, mu_c
        model.dim, model.context_dim = d, 0 if mu_c is None else mu_c.size
        model.history_ = history
        return model

    def __repr__(self) -> str:
        state = "unfitted" if self.mu_ is None else f"dim={self.dim}, context_dim={self.context_dim}"
        return f"GaussianDensity({state})"
