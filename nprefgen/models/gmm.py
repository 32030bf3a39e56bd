"""Gaussian mixture models fitted by expectation-maximisation (derivations/gmm.md): the estimator.

:class:`GaussianMixture` is a thin holder of fitted parameters around the pure functions of
three modules, with the scikit-learn attribute names (``weights_``, ``means_``, ``covariances_``,
``precisions_cholesky_``, ``converged_``, ``n_iter_``, ``lower_bound_``, ``lower_bounds_``) so that
the two can be compared number for number:

- :mod:`nprefgen.models.gmm_params`: the parameterisation by Cholesky factors of the precisions
  (GMM.3, GMM.3a, GMM.3b) and the parameter count (GMM.12);
- :mod:`nprefgen.models.gmm_density`: log-densities and responsibilities (GMM.1, GMM.3, GMM.4)
  and sampling (GMM.14) for given parameters;
- :mod:`nprefgen.models.gmm_em`: the M-step (GMM.5-GMM.9b), one EM run (GMM.10, GMM.11),
  initialisation (GMM.15, GMM.16) and restarts (GMM.17).

This module adds the estimator's argument checks, scoring (GMM.1, GMM.2), BIC/AIC (GMM.13a,
GMM.13b), ``history_`` and save/load, and re-exports the functions above under their old import
path (``from nprefgen.models.gmm import em`` keeps working).
"""
from __future__ import annotations

import math

import numpy as np

from nprefgen._validation import (
    check_alloc, check_array, check_choice, check_int, check_rng, check_scalar, check_spd,
)
from nprefgen.models._files import field, load_fitted, where_save, write_model
from nprefgen.models.gmm_density import (  # noqa: F401  (re-exported: the old import path)
    e_step, log_gaussian_prob, sample_mixture,
)
from nprefgen.models.gmm_em import (  # noqa: F401  (re-exported: the old import path)
    INIT_PARAMS, EMResult, em, em_restarts, initial_responsibilities, m_step,
)
from nprefgen.models.gmm_params import (  # noqa: F401  (re-exported: the old import path)
    COVARIANCE_TYPES, _check_components, covariance_cholesky, n_parameters, precision_cholesky,
    precision_cholesky_from_precisions, precisions_from_cholesky,
)


class NotFittedError(ValueError, AttributeError):
    """A method that needs fitted parameters was called before ``fit``."""


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------
class GaussianMixture:
    """A mixture of K Gaussians fitted by EM (derivations/gmm.md).

    Parameters
    ----------
    n_components : K >= 1.
    covariance_type : ``"full"`` (default), ``"diag"`` or ``"spherical"``.
    tol : stop when the mean log-likelihood changes by less than ``tol`` (GMM.17); 1e-3.
    reg_covar : floor added to every variance in the M-step (GMM.8); 1e-6. With 0, a singular
        covariance raises ``ValueError``.
    max_iter : EM iterations per restart, >= 1; 100.
    n_init : restarts from independent initialisations; the run with the highest final
        lower bound is kept (GMM.17).
    init_params : ``"kmeans"`` (k-means++ then Lloyd), ``"k-means++"`` or ``"random"``; see
        :func:`initial_responsibilities`.
    weights_init, means_init, precisions_init : optional starting values, (K,), (K, d) and
        (K, d, d) | (K, d) | (K,) precisions. Given all three, no random initialisation happens
        and a single run is made (restarts would be identical).
    kmeans_iter : Lloyd steps of the ``"kmeans"`` initialisation; 20.

    Fitted attributes
    -----------------
    weights_ (K,), means_ (K, d), covariances_, precisions_, precisions_cholesky_,
    converged_ (bool), n_iter_ (int), lower_bound_ (float: the mean log-likelihood of the
    parameters before the last M-step, as scikit-learn), lower_bounds_ (n_iter_,): the
    per-iteration mean log-likelihood history of the kept run.

    history_ : the contract's training record (derivations/README.md, "Models"), read off the
        kept run: ``{"train_loss": [-l_1, ..., -l_T], "epochs": T, "converged": bool}``, the mean
        negative log-likelihood -lower_bounds_ per EM iteration (the loss EM decreases), T =
        n_iter_, converged = converged_.

    ``save(path)`` / ``load(path)``: the fitted arrays ``weights_``, ``means_``, ``covariances_``,
    ``lower_bounds_``, ``converged_`` and the hyper-parameters in one ``.npz``;
    ``GaussianMixture(...same arguments...).load(path)`` returns the model, with
    ``precisions_cholesky_`` and ``precisions_`` recomputed by (GMM.3a) exactly as ``fit`` does
    (see :mod:`nprefgen.models._files` for the guarantees).
    """

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100,
                 n_init: int = 1, init_params: str = "kmeans", weights_init=None,
                 means_init=None, precisions_init=None, kmeans_iter: int = 20) -> None:
        self.n_components = check_int(n_components, "n_components", low=1)
        self.covariance_type = check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
        self.tol = check_scalar(tol, "tol", low=0.0)
        self.reg_covar = check_scalar(reg_covar, "reg_covar", low=0.0)
        self.max_iter = check_int(max_iter, "max_iter", low=1)
        self.n_init = check_int(n_init, "n_init", low=1)
        self.init_params = check_choice(init_params, "init_params", INIT_PARAMS)
        self.kmeans_iter = check_int(kmeans_iter, "kmeans_iter", low=0)
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init

    # -- fitting -------------------------------------------------------------------------------
    def _check_inits(self, d: int):
        K, ct = self.n_components, self.covariance_type
        w = m = p = None
        if self.weights_init is not None:
            w = check_array(self.weights_init, "weights_init", shape=(K,), dtype=np.float64)
            if np.any(w < 0) or abs(w.sum() - 1.0) > 1e-8:
                raise ValueError(f"weights_init: expected non-negative weights summing to 1, "
                                 f"got sum {w.sum()!r} and minimum {w.min()!r}")
        if self.means_init is not None:
            m = check_array(self.means_init, "means_init", shape=(K, d), dtype=np.float64)
        if self.precisions_init is not None:
            p = _check_components(self.precisions_init, "precisions_init", ct, K, d)
            if ct == "full":                        # symmetric positive definite, each of them
                p = np.stack([check_spd(p[k], f"precisions_init[{k}]") for k in range(K)])
            try:                                    # (and positive definite / positive)
                p = precision_cholesky_from_precisions(p, ct)             # (GMM.3b)
            except ValueError as exc:
                raise ValueError(f"precisions_init: {exc}") from exc
        return w, m, p

    def fit(self, X, *, rng=None) -> "GaussianMixture":
        """Fit by EM with ``n_init`` restarts. X: (n, d) finite, n >= n_components; returns self.

        ``rng``: None, an int seed or a Generator (SPEC 7) for the initialisations; unused when
        weights_init, means_init and precisions_init are all given.
        """
        X = check_array(X, "X", ndim=2, dtype=np.float64)
        rng = check_rng(rng)
        n, d = X.shape
        K = self.n_components
        if K > n:
            raise ValueError(f"n_components: expected at most n_samples = {n} components, "
                             f"got {K}")
        check_alloc((K, d, d) if self.covariance_type == "full" else (K, d), "n_components")
        check_alloc((n, K), "n_components")                               # responsibilities
        best = em_restarts(X, K, self.covariance_type, self.reg_covar, self.max_iter, self.tol,
                           self.n_init, self.init_params, self.kmeans_iter,
                           self._check_inits(d), rng=rng)                 # (GMM.17)
        self.weights_, self.means_ = best.weights, best.means
        self.covariances_, self.precisions_cholesky_ = best.covariances, best.prec_chol
        self.precisions_ = precisions_from_cholesky(best.prec_chol, self.covariance_type)
        self.converged_, self.n_iter_ = best.converged, best.n_iter
        self.lower_bound_, self.lower_bounds_ = best.lower_bound, best.lower_bounds
        self.history_ = _history(best.lower_bounds, best.converged)
        return self

    # -- using the fitted model ----------------------------------------------------------------
    def _check_fitted(self, method: str) -> None:
        if not hasattr(self, "weights_"):
            raise NotFittedError(f"GaussianMixture.{method}: this model is not fitted yet; "
                                 f"call fit(X) first")

    def _check_X(self, X, method: str) -> np.ndarray:
        self._check_fitted(method)
        return check_array(X, "X", shape=(None, self.means_.shape[1]), dtype=np.float64)

    def _e_step(self, X):
        try:
            return e_step(X, self.weights_, self.means_, self.precisions_cholesky_,
                          self.covariance_type)
        except ValueError as err:
            if not str(err).startswith("weighted_log_prob:"):
                raise
            # a finite row whose log-density is -inf under every component: its squared
            # Mahalanobis distance overflowed, so the input's scale is the problem (issue 13)
            raise ValueError(f"X: a row's log-density underflows to -inf under every component "
                             f"(max |X| = {float(np.max(np.abs(X))):.3g}, far outside the fitted "
                             f"mixture; rescale the data): {err}") from err

    def score_samples(self, X) -> np.ndarray:
        """(GMM.1) log p(x_i) under the fitted mixture. X: (m, d) -> (m,)."""
        return self._e_step(self._check_X(X, "score_samples"))[0]

    log_prob = score_samples

    def score(self, X) -> float:
        """(GMM.2) Mean log-likelihood of X: (m, d)."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X) -> np.ndarray:
        """(GMM.4) Responsibilities p(z = k | x_i). X: (m, d) -> (m, K), rows sum to 1."""
        return np.exp(self._e_step(self._check_X(X, "predict_proba"))[1])

    def predict(self, X) -> np.ndarray:
        """(GMM.4) The most responsible component. X: (m, d) -> (m,) int."""
        return np.argmax(self._e_step(self._check_X(X, "predict"))[1], axis=1)

    def sample(self, n: int, *, rng=None, return_labels: bool = False):
        """(GMM.14) n draws from the fitted mixture: x (n, d), and labels (n,) if asked.

        ``rng``: None, an int seed or a Generator (SPEC 7); pass the same Generator to successive
        calls to get fresh draws, the same int seed to repeat them.
        """
        self._check_fitted("sample")
        n = check_int(n, "n", low=1)
        check_alloc((n, self.means_.shape[1]), "n")
        x, labels = sample_mixture(n, self.weights_, self.means_, self.covariances_,
                                   self.covariance_type, rng=check_rng(rng))
        return (x, labels) if return_labels else x

    def n_parameters(self) -> int:
        """(GMM.12) Number of free parameters of the fitted model."""
        self._check_fitted("n_parameters")
        return n_parameters(self.n_components, self.means_.shape[1], self.covariance_type)

    def bic(self, X) -> float:
        """(GMM.13a) -2 n l(X) + p log n; lower is better."""
        X = self._check_X(X, "bic")
        return -2.0 * X.shape[0] * self.score(X) + self.n_parameters() * math.log(X.shape[0])

    def aic(self, X) -> float:
        """(GMM.13b) -2 n l(X) + 2 p; lower is better."""
        X = self._check_X(X, "aic")
        return -2.0 * X.shape[0] * self.score(X) + 2.0 * self.n_parameters()

    # -- files -----------------------------------------------------------------------------------
    def _config(self) -> dict:
        return dict(n_components=self.n_components, covariance_type=self.covariance_type,
                    tol=self.tol, reg_covar=self.reg_covar, max_iter=self.max_iter,
                    n_init=self.n_init, init_params=self.init_params, kmeans_iter=self.kmeans_iter)

    def _fitted_state(self, arrays: dict, where: str) -> dict:
        """Check fitted arrays (from a file, or this model's before a save) -> the attributes.

        weights_ positive summing to 1 (to the rounding of nk / sum nk: K eps), means_ (K, d),
        covariances_ symmetric positive definite of the covariance_type's shape (the precision
        Cholesky factors (GMM.3a) are recomputed from them, which refuses a singular one),
        lower_bounds_ (T,) with T >= 1, converged_ a bool."""
        K, ct = self.n_components, self.covariance_type
        w = field(arrays, "weights_", where, shape=(K,))
        if np.any(w <= 0) or abs(w.sum() - 1.0) > 4 * K * np.finfo(np.float64).eps:
            raise ValueError(f"{where}: weights_: expected positive weights summing to 1, got "
                             f"minimum {w.min()!r} and sum {w.sum()!r}")
        means = field(arrays, "means_", where, shape=(K, None))
        d = means.shape[1]
        if d < 1:
            raise ValueError(f"{where}: means_: expected shape ({K}, d) with d >= 1, got "
                             f"{means.shape}")
        shape = {"full": (K, d, d), "diag": (K, d), "spherical": (K,)}[ct]
        cov = field(arrays, "covariances_", where, shape=shape)
        try:
            prec_chol = precision_cholesky(cov, ct)                         # (GMM.3a)
        except ValueError as exc:
            raise ValueError(f"{where}: covariances_: expected symmetric positive-definite "
                             f"covariances ({exc})") from None
        bounds = field(arrays, "lower_bounds_", where, shape=(None,))
        if bounds.size < 1:
            raise ValueError(f"{where}: lower_bounds_: expected at least one EM iteration, got 0")
        converged = bool(field(arrays, "converged_", where, shape=(), kind="b"))
        return dict(weights_=w, means_=means, covariances_=cov, precisions_cholesky_=prec_chol,
                    precisions_=precisions_from_cholesky(prec_chol, ct), converged_=converged,
                    n_iter_=int(bounds.size), lower_bound_=float(bounds[-1]),
                    lower_bounds_=bounds)

    def save(self, path) -> None:
        """Write the fitted mixture to ``.npz`` at ``path``, atomically (a failed save leaves an
        existing file byte-identical); an invalid fitted state is refused before writing."""
        self._check_fitted("save")
        arrays = dict(weights_=self.weights_, means_=self.means_, covariances_=self.covariances_,
                      lower_bounds_=np.asarray(self.lower_bounds_, dtype=np.float64),
                      converged_=np.array(bool(self.converged_)))
        self._fitted_state(arrays, where_save("GaussianMixture"))
        write_model(path, "GaussianMixture", arrays, self._config(), self.history_)

    def load(self, path) -> "GaussianMixture":
        """Load a mixture saved by :meth:`save` into this identically constructed model; returns
        self. All or nothing: a bad file raises ValueError naming ``path`` and the field, and
        leaves the model unchanged."""
        return load_fitted(self, path, "GaussianMixture", self._config(),
                           ("weights_", "means_", "covariances_", "lower_bounds_", "converged_"),
                           default_history=lambda s: _history(s["lower_bounds_"],
                                                              s["converged_"]))


def _history(lower_bounds: np.ndarray, converged: bool) -> dict:
    """history_ of a GMM: the per-iteration mean NLL -l_t (GMM.2), the iteration count and
    whether the run converged (GMM.17)."""
    return {"train_loss": [-float(v) for v in lower_bounds], "epochs": int(len(lower_bounds)),
            "converged": bool(converged)}
