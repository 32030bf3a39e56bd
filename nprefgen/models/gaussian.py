"""A full-covariance Gaussian density model, optionally conditional (derivations/splines.md,
SPL.17-SPL.18): the baseline every flow on the digits is compared with.

    log N(y; mu, Sigma) = -1/2 |L^{-1}(y - mu)|^2 - sum_i log L_ii - (D/2) log 2 pi,
    Sigma = L L^T = cov + ridge I  (maximum likelihood, SPL.17)

Fitted jointly to ``[y, c]``, the conditional ``p(y | c)`` is again Gaussian (SPL.18):

    y | c ~ N(mu_y + S_yc S_cc^{-1} (c - mu_c),  S_yy - S_yc S_cc^{-1} S_cy)

Closed-form fit, so ``history_`` holds one entry: the mean negative log-likelihood of the
training data, ``{"train_loss": [-mean log p]}`` (the loss every model's history_ records).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import (
    check_alloc, check_array, check_finite_result, check_int, check_rng, check_scalar,
)
from nprefgen.models._files import field, load_fitted, where_save, write_model

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
    history_ : {"train_loss": [-mean log p of the training data]}

    ``save(path)`` / ``GaussianDensity(ridge).load(path)`` (returns the model): guarantees in
    :mod:`nprefgen.models._files`.
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
        with np.errstate(over="ignore", invalid="ignore"):                 # checked next
            mu = joint.mean(axis=0)
            diff = joint - mu
            cov = diff.T @ diff / joint.shape[0] + self.ridge * np.eye(joint.shape[1])
        if not np.all(np.isfinite(cov)):               # |y| or |context| beyond ~1e154
            big_y = context is None or np.max(np.abs(y)) >= np.max(np.abs(joint[:, y.shape[1]:]))
            check_finite_result(cov, "y" if big_y else "context", "covariance",
                                y if big_y else joint[:, y.shape[1]:])
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
        self.history_ = {"train_loss": [-float(np.mean(self.log_prob(y, context)))]}
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
        with np.errstate(over="ignore", invalid="ignore"):                 # checked next
            r = np.linalg.solve(self.chol_, (y - self._mean(y.shape[0], context)).T)  # L^-1(y-mu)
        if not np.all(np.isfinite(r)):     # |r|^2 overflowing alone is a correct -inf; NaN is not
            big_y = context is None or np.max(np.abs(y)) >= np.max(np.abs(context))
            check_finite_result(r, "y" if big_y else "context", "whitened residual L^-1 (y - mu)",
                                y if big_y else context)
        with np.errstate(over="ignore"):                                   # -inf: see above
            quad = np.sum(r * r, axis=0)
        return (-0.5 * quad - np.sum(np.log(np.diag(self.chol_)))
                - 0.5 * self.dim * LOG_2PI)

    def sample(self, n: int, context=None, *, rng=None) -> np.ndarray:
        """n draws y = mu(c) + L e, e ~ N(0, I). context: (n, C) or (C,); rng: None, int or
        Generator (SPEC 7) -> (n, D)."""
        self._check_fitted("sample")
        n = check_int(n, "n", low=1)
        check_alloc((n, self.dim), "n")
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
    def _fitted_state(self, arrays: dict, where: str) -> dict:
        """mu_ (D,), cov_ (D, D) symmetric positive definite (its Cholesky factor is recomputed,
        as fit does), and for a conditional model gain_ (D, C) with mu_c_ (C,)."""
        mu = field(arrays, "mu_", where, shape=(None,))
        d = mu.size
        if d < 1:
            raise ValueError(f"{where}: mu_: expected shape (D,) with D >= 1, got {mu.shape}")
        cov = field(arrays, "cov_", where, shape=(d, d))
        asym = float(np.max(np.abs(cov - cov.T)))
        if not asym <= 1e-10 * float(np.max(np.abs(cov))):     # check_spd's tolerance: a
            raise ValueError(f"{where}: cov_: expected a symmetric matrix, got an asymmetry "
                             f"of {asym:.3g}")         # Schur complement differs in last bits
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError(f"{where}: cov_: expected a positive-definite matrix") from None
        out = dict(mu_=mu, cov_=cov, chol_=chol, gain_=None, mu_c_=None, dim=d, context_dim=0)
        if ("gain_" in arrays) != ("mu_c_" in arrays):
            raise ValueError(f"{where}: gain_, mu_c_: expected both (a conditional model) or "
                             f"neither, got only {'gain_' if 'gain_' in arrays else 'mu_c_'}")
        if "gain_" in arrays:
            mu_c = field(arrays, "mu_c_", where, shape=(None,))
            if mu_c.size < 1:
                raise ValueError(f"{where}: mu_c_: expected shape (C,) with C >= 1, got "
                                 f"{mu_c.shape}")
            out.update(mu_c_=mu_c, gain_=field(arrays, "gain_", where, shape=(d, mu_c.size)),
                       context_dim=mu_c.size)
        return out

    def save(self, path) -> None:
        """Write the fitted model to ``.npz`` at ``path``, atomically (a failed save leaves an
        existing file byte-identical)."""
        self._check_fitted("save")
        arrays = dict(mu_=self.mu_, cov_=self.cov_)
        if self.gain_ is not None:
            arrays.update(gain_=self.gain_, mu_c_=self.mu_c_)
        self._fitted_state(arrays, where_save("GaussianDensity"))
        write_model(path, "GaussianDensity", arrays, {"ridge": self.ridge}, self.history_)

    def load(self, path) -> "GaussianDensity":
        """Load a model saved by :meth:`save` into this one (built with the same ``ridge``);
        returns self. All or nothing: a bad file raises ValueError naming ``path`` and the field
        and leaves the model unchanged."""
        return load_fitted(self, path, "GaussianDensity", {"ridge": self.ridge}, ("mu_", "cov_"),
                           optional=("gain_", "mu_c_"))

    def __repr__(self) -> str:
        state = "unfitted" if self.mu_ is None else f"dim={self.dim}, context_dim={self.context_dim}"
        return f"GaussianDensity({state})"
