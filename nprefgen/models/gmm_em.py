"""Fitting a Gaussian mixture by expectation-maximisation (derivations/gmm.md).

* :func:`m_step` (GMM.5-GMM.9b): the weighted moments that maximise the lower bound (GMM.10) for
  fixed responsibilities (the E-step is :func:`nprefgen.models.gmm_density.e_step`);
* :func:`em` (GMM.2, GMM.10, GMM.11, GMM.17): one EM run from given parameters, with the
  scikit-learn bookkeeping of the per-iteration mean log-likelihood, into an :class:`EMResult`;
* :func:`initial_responsibilities`: k-means++ seeding (GMM.15) and Lloyd steps (GMM.16), or
  random responsibilities;
* :func:`em_restarts` (GMM.17): ``n_init`` initialisations, each run to convergence, the best
  final lower bound kept -- the loop of :meth:`nprefgen.models.GaussianMixture.fit`.

Hot loops run in ``nprefgen/kernels/gmm.py`` (numba, each beside its NumPy twin).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar
from nprefgen.kernels.gmm import weighted_scatter_diag, weighted_scatter_full, weighted_sums
from nprefgen.models.gmm_density import e_step
from nprefgen.models.gmm_params import _check_type, precision_cholesky
from nprefgen.models.kmeans import kmeans_plusplus, lloyd, squared_distances

INIT_PARAMS = ("kmeans", "k-means++", "random")
_NK_EPS = 10.0 * np.finfo(np.float64).eps   # keeps N_k > 0 for an empty component (as sklearn)


def m_step(X: np.ndarray, resp: np.ndarray, covariance_type: str,
           reg_covar: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(GMM.5)-(GMM.9b) Maximise the lower bound (GMM.10) over the parameters for fixed r.

    X: (n, d), resp: (n, K) -> weights (K,), means (K, d), covariances (K, d, d) | (K, d) | (K,).
    N_k gets 10 eps added (as scikit-learn) so that an empty component divides by a positive
    number; the floor ``reg_covar`` is added to every variance.
    """
    covariance_type = _check_type(covariance_type)
    reg_covar = check_scalar(reg_covar, "reg_covar", low=0.0)
    nk, sx = weighted_sums(X, resp)                    # (GMM.5)
    nk = nk + _NK_EPS
    means = sx / nk[:, None]                           # (GMM.7)
    weights = nk / nk.sum()                            # (GMM.7)
    if covariance_type == "full":
        S = weighted_scatter_full(X, resp, means)      # (GMM.6) centred scatter
        cov = S / nk[:, None, None]                    # (GMM.8)
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))     # exactly symmetric despite BLAS rounding
        d = X.shape[1]
        cov[:, np.arange(d), np.arange(d)] += reg_covar
    else:
        S = weighted_scatter_diag(X, resp, means)      # (GMM.6) its diagonal
        cov = S / nk[:, None] + reg_covar              # (GMM.9a)
        if covariance_type == "spherical":
            cov = cov.mean(axis=1)                     # (GMM.9b)
    return weights, means, cov


@dataclass
class EMResult:
    """One EM run: final parameters, the mean log-likelihood history and convergence."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    prec_chol: np.ndarray
    lower_bound: float
    lower_bounds: np.ndarray
    n_iter: int
    converged: bool


def em(X: np.ndarray, weights: np.ndarray, means: np.ndarray, prec_chol: np.ndarray,
       covariance_type: str, reg_covar: float, max_iter: int, tol: float) -> EMResult:
    """Run EM from the given parameters (the loop of derivations/gmm.md).

    Iteration t computes, from the current parameters theta_{t-1}, the mean log-likelihood
    l(theta_{t-1}) (GMM.2) and the responsibilities (E-step), then theta_t (M-step). The history
    ``lower_bounds[t-1] = l(theta_{t-1})`` never decreases for reg_covar = 0 (GMM.11); the run
    stops when |l_t - l_{t-1}| < tol (GMM.17). This is scikit-learn's bookkeeping exactly, so the
    histories of the two can be compared entry by entry.
    """
    covariance_type = _check_type(covariance_type)
    reg_covar = check_scalar(reg_covar, "reg_covar", low=0.0)
    max_iter = check_int(max_iter, "max_iter", low=1)
    tol = check_scalar(tol, "tol", low=0.0)
    lower_bound = -np.inf
    history = []
    converged = False
    cov = None
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        prev = lower_bound
        log_norm, log_resp = e_step(X, weights, means, prec_chol, covariance_type)
        lower_bound = float(np.mean(log_norm))                         # (GMM.2)
        if not np.isfinite(lower_bound):
            raise ValueError(f"X: the mean log-likelihood became {lower_bound} at iteration "
                             f"{n_iter}; expected finite values (increase reg_covar or rescale X)")
        weights, means, cov = m_step(X, np.exp(log_resp), covariance_type, reg_covar)
        prec_chol = precision_cholesky(cov, covariance_type)            # (GMM.3a)
        history.append(lower_bound)
        if abs(lower_bound - prev) < tol:                                # (GMM.17)
            converged = True
            break
    return EMResult(weights, means, cov, prec_chol, lower_bound, np.asarray(history), n_iter,
                    converged)


def initial_responsibilities(X: np.ndarray, n_components: int, init_params: str, *,
                             rng=None, kmeans_iter: int = 20) -> np.ndarray:
    """Starting responsibilities (n, K), turned into parameters by one M-step.

    - ``"kmeans"``: k-means++ seeds (GMM.15) refined by at most ``kmeans_iter`` Lloyd steps
      (GMM.16), then hard assignments. scikit-learn runs a full KMeans (to convergence, up to
      300 steps) here; the few-steps version is the same idea at a fraction of the cost.
    - ``"k-means++"``: hard assignment of every point to its nearest k-means++ seed (scikit-learn
      instead gives responsibility only to the K seed points themselves).
    - ``"random"``: rows of uniform draws normalised to sum to 1.
    """
    X = check_array(X, "X", ndim=2, dtype=np.float64)
    K = check_int(n_components, "n_components", low=1, high=X.shape[0])
    init_params = check_choice(init_params, "init_params", INIT_PARAMS)
    rng = check_rng(rng)
    kmeans_iter = check_int(kmeans_iter, "kmeans_iter", low=0)
    n = X.shape[0]
    if init_params == "random":
        resp = rng.uniform(size=(n, K))
        return resp / resp.sum(axis=1, keepdims=True)
    centers, _ = kmeans_plusplus(X, K, rng=rng)                        # (GMM.15)
    if init_params == "kmeans":
        _, labels, _, _ = lloyd(X, centers, max_iter=kmeans_iter)       # (GMM.16)
    else:
        labels = np.argmin(squared_distances(X, centers), axis=1)
    resp = np.zeros((n, K))
    resp[np.arange(n), labels] = 1.0
    return resp


def em_restarts(X: np.ndarray, n_components: int, covariance_type: str, reg_covar: float,
                max_iter: int, tol: float, n_init: int, init_params: str, kmeans_iter: int,
                starts=(None, None, None), *, rng=None) -> EMResult:
    """(GMM.17) EM from ``n_init`` initialisations; the run with the highest final lower bound.

    X: (n, d) finite, n >= n_components. Each restart draws starting responsibilities
    (:func:`initial_responsibilities`), turns them into parameters by one M-step and (GMM.3a),
    replaces those given in ``starts`` = (weights (K,), means (K, d), precision Cholesky factors
    of the covariance_type's shape; None: drawn) and runs :func:`em`. Given all three, a single
    run is made (restarts would be identical) and ``rng`` is unused. ``rng``: None, an int seed
    or a Generator (SPEC 7) for the initialisations.
    """
    n_init = check_int(n_init, "n_init", low=1)
    rng = check_rng(rng)
    w0, m0, p0 = starts
    given_all = w0 is not None and m0 is not None and p0 is not None
    best = None
    for _ in range(1 if given_all else n_init):
        if given_all:
            w, m, p = w0, m0, p0
        else:
            resp = initial_responsibilities(X, n_components, init_params, rng=rng,
                                            kmeans_iter=kmeans_iter)
            w, m, cov = m_step(X, resp, covariance_type, reg_covar)
            p = precision_cholesky(cov, covariance_type)
            w = w if w0 is None else w0
            m = m if m0 is None else m0
            p = p if p0 is None else p0
        run = em(X, w, m, p, covariance_type, reg_covar, max_iter, tol)
        if best is None or run.lower_bound > best.lower_bound:       # (GMM.17) best restart
            best = run
    return best
