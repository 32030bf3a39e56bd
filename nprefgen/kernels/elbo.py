"""The VAE's per-sample terms and their gradients (derivations/vae.md, VAE.3-VAE.10).

Each function has a NumPy twin ``<fn>_numpy`` (the readable oracle) and a numba fast path
``<fn>`` with the same contract. Every output is per sample (a sum over the feature axis), and
every gradient is that of the per-sample value with respect to its own row, so the gradient of
``sum_i value_i`` is the returned array as it is.

- ``kl_standard_normal``  (VAE.3), (VAE.4)  KL(N(mu, diag exp(log_var)) || N(0, I)) and its
  gradients w.r.t. mu and log_var; ``mu, log_var: (n, d) -> (n,), (n, d), (n, d)``.
- ``bernoulli_log_lik``   (VAE.7), (VAE.8)  log p(x | logits) in the softplus form, finite for any
  logit, and its gradient w.r.t. the logits; ``x, logits: (n, D) -> (n,), (n, D)``.
- ``gaussian_log_lik``    (VAE.9), (VAE.10) log N(x | mean, diag exp(log_var)) and its gradients
  w.r.t. mean and log_var; ``x, mean, log_var: (n, D) -> (n,), (n, D), (n, D)``.
- ``elbo``                (VAE.2), (VAE.3), (VAE.4) ELBO_i = log_lik_i - beta KL_i and its gradients
  w.r.t. mu and log_var (the KL path; the reconstruction path runs through the decoder).

Inputs may be float32 or float64, contiguous or strided; they are read as float64 and every
result is float64 (the VAE's gradient checks run in float64 and a float32 caller loses nothing).
``exp(log_var) - 1 - log_var`` is evaluated as ``expm1(log_var) - log_var``, exact near
log_var = 0 where the three-term form cancels.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_scalar
from nprefgen.kernels.jit import kernel

_LOG_2PI = float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------------------------
# Input checks shared by each twin and its kernel (numba does not check bounds)
# --------------------------------------------------------------------------------------------
def _rows(a, name: str, like: np.ndarray | None = None) -> np.ndarray:
    """A finite (n, d) array read as float64; the shape of ``like`` when given."""
    shape = None if like is None else like.shape
    return check_array(a, name, ndim=2, shape=shape, dtype=np.float64)


def _check_kl(mu, log_var):
    mu = _rows(mu, "mu")
    return mu, _rows(log_var, "log_var", mu)


def _check_bernoulli(x, logits):
    x = _rows(x, "x")
    if np.any((x < 0.0) | (x > 1.0)):
        raise ValueError(f"x: expected values in [0, 1] for a Bernoulli likelihood, got range "
                         f"[{x.min():.4g}, {x.max():.4g}]")
    return x, _rows(logits, "logits", x)


def _check_gaussian(x, mean, log_var):
    x = _rows(x, "x")
    return x, _rows(mean, "mean", x), _rows(log_var, "log_var", x)


def _check_elbo(log_lik, mu, log_var, beta):
    mu, log_var = _check_kl(mu, log_var)
    log_lik = check_array(log_lik, "log_lik", shape=(mu.shape[0],), dtype=np.float64)
    return log_lik, mu, log_var, check_scalar(beta, "beta", low=0.0)


# --------------------------------------------------------------------------------------------
# (VAE.3), (VAE.4) the analytic KL to the standard normal prior
# --------------------------------------------------------------------------------------------
def kl_standard_normal_numpy(mu, log_var):
    """(VAE.3) KL_i = 1/2 sum_j [mu_ij^2 + expm1(l_ij) - l_ij], l = log_var, and (VAE.4) its
    gradients dKL_i/dmu_ij = mu_ij, dKL_i/dl_ij = expm1(l_ij) / 2.

    mu, log_var: (n, d) -> (kl: (n,), d_mu: (n, d), d_log_var: (n, d))
    """
    mu, log_var = _check_kl(mu, log_var)
    em1 = np.expm1(log_var)                                   # sigma^2 - 1, exact near 0
    kl = 0.5 * np.sum(mu * mu + em1 - log_var, axis=1)       # (VAE.3)
    return kl, mu.copy(), 0.5 * em1                           # (VAE.4)


@kernel
def _kl_standard_normal(mu, log_var, kl, d_mu, d_log_var):
    n, d = mu.shape
    for i in range(n):
        s = 0.0
        for j in range(d):
            m = mu[i, j]
            lv = log_var[i, j]
            em1 = np.expm1(lv)
            s += m * m + em1 - lv                             # (VAE.3)
            d_mu[i, j] = m                                    # (VAE.4)
            d_log_var[i, j] = 0.5 * em1
        kl[i] = 0.5 * s


def kl_standard_normal(mu, log_var):
    """(VAE.3), (VAE.4) Numba kernel; same contract as :func:`kl_standard_normal_numpy`."""
    mu, log_var = _check_kl(mu, log_var)
    n, d = mu.shape
    kl, d_mu, d_log_var = np.empty(n), np.empty((n, d)), np.empty((n, d))
    _kl_standard_normal(mu, log_var, kl, d_mu, d_log_var)
    return kl, d_mu, d_log_var


# --------------------------------------------------------------------------------------------
# (VAE.7), (VAE.8) the Bernoulli decoder from logits
# --------------------------------------------------------------------------------------------
def bernoulli_log_lik_numpy(x, logits):
    """(VAE.7) log p(x_i | a_i) = sum_j [x_ij a_ij - softplus(a_ij)]
    = -sum_j [log1p(e^{-|a_ij|}) + x_ij max(-a_ij, 0) + (1 - x_ij) max(a_ij, 0)], a sum of
    non-negative terms (no cancellation, finite for every logit: |a| ~ 50 and far beyond), and
    (VAE.8) its gradient d/da_ij = x_ij - sigmoid(a_ij), evaluated as
    x_ij sigmoid(-a_ij) - (1 - x_ij) sigmoid(a_ij) (exact to relative round-off at 0/1 targets).

    x: (n, D) in [0, 1], logits: (n, D) -> (log_lik: (n,), d_logits: (n, D))
    """
    x, a = _check_bernoulli(x, logits)
    e = np.exp(-np.abs(a))
    terms = np.log1p(e) + x * np.maximum(-a, 0.0) + (1.0 - x) * np.maximum(a, 0.0)
    log_lik = -np.sum(terms, axis=1)                          # (VAE.7)
    big, small = 1.0 / (1.0 + e), e / (1.0 + e)              # sigmoid(|a|), sigmoid(-|a|)
    sig = np.where(a >= 0, big, small)                        # sigmoid(a)   (NN.7)
    sig_neg = np.where(a >= 0, small, big)                    # sigmoid(-a) = 1 - sigmoid(a)
    return log_lik, x * sig_neg - (1.0 - x) * sig             # (VAE.8) = x - sigmoid(a)


@kernel
def _bernoulli_log_lik(x, a, log_lik, d_a):
    n, D = x.shape
    for i in range(n):
        s = 0.0
        for j in range(D):
            v = a[i, j]
            e = np.exp(-abs(v))
            s += np.log1p(e) + x[i, j] * max(-v, 0.0) + (1.0 - x[i, j]) * max(v, 0.0)  # (VAE.7)
            big = 1.0 / (1.0 + e)
            small = e / (1.0 + e)
            if v >= 0:
                d_a[i, j] = x[i, j] * small - (1.0 - x[i, j]) * big   # (VAE.8)
            else:
                d_a[i, j] = x[i, j] * big - (1.0 - x[i, j]) * small
        log_lik[i] = -s


def bernoulli_log_lik(x, logits):
    """(VAE.7), (VAE.8) Numba kernel; same contract as :func:`bernoulli_log_lik_numpy`."""
    x, a = _check_bernoulli(x, logits)
    log_lik, d_a = np.empty(x.shape[0]), np.empty(x.shape)
    _bernoulli_log_lik(x, a, log_lik, d_a)
    return log_lik, d_a


# --------------------------------------------------------------------------------------------
# (VAE.9), (VAE.10) the Gaussian decoder
# --------------------------------------------------------------------------------------------
def gaussian_log_lik_numpy(x, mean, log_var):
    """(VAE.9) log N(x_i | m_i, diag exp(l_i)) = -1/2 sum_j [log 2 pi + l_ij + r_ij^2 e^{-l_ij}],
    r = x - m, and (VAE.10) d/dm_ij = r_ij e^{-l_ij}, d/dl_ij = (r_ij^2 e^{-l_ij} - 1) / 2.

    x, mean, log_var: (n, D) -> (log_lik: (n,), d_mean: (n, D), d_log_var: (n, D)).
    A fixed variance is a constant ``log_var``; a learned one sums ``d_log_var`` over the
    entries that share it.
    """
    x, m, lv = _check_gaussian(x, mean, log_var)
    r = x - m
    q = r * r * np.exp(-lv)                                   # r^2 / sigma^2
    log_lik = -0.5 * np.sum(_LOG_2PI + lv + q, axis=1)       # (VAE.9)
    return log_lik, r * np.exp(-lv), 0.5 * (q - 1.0)          # (VAE.10)


@kernel
def _gaussian_log_lik(x, m, lv, log_lik, d_m, d_lv):
    n, D = x.shape
    for i in range(n):
        s = 0.0
        for j in range(D):
            r = x[i, j] - m[i, j]
            inv = np.exp(-lv[i, j])
            q = r * r * inv
            s += _LOG_2PI + lv[i, j] + q                      # (VAE.9)
            d_m[i, j] = r * inv                               # (VAE.10)
            d_lv[i, j] = 0.5 * (q - 1.0)
        log_lik[i] = -0.5 * s


def gaussian_log_lik(x, mean, log_var):
    """(VAE.9), (VAE.10) Numba kernel; same contract as :func:`gaussian_log_lik_numpy`."""
    x, m, lv = _check_gaussian(x, mean, log_var)
    log_lik, d_m, d_lv = np.empty(x.shape[0]), np.empty(x.shape), np.empty(x.shape)
    _gaussian_log_lik(x, m, lv, log_lik, d_m, d_lv)
    return log_lik, d_m, d_lv


# --------------------------------------------------------------------------------------------
# (VAE.2) the beta-weighted ELBO per sample
# --------------------------------------------------------------------------------------------
def elbo_numpy(log_lik, mu, log_var, beta: float = 1.0):
    """(VAE.2) ELBO_i = log_lik_i - beta KL_i with the analytic KL (VAE.3), and the gradients of
    ELBO_i w.r.t. mu_i and log_var_i through the KL term (VAE.4): -beta mu, -beta expm1(l) / 2.

    log_lik: (n,) a one-sample estimate of E_q log p(x_i | z); mu, log_var: (n, d); beta >= 0
    -> (elbo: (n,), d_mu: (n, d), d_log_var: (n, d))
    """
    log_lik, mu, log_var, beta = _check_elbo(log_lik, mu, log_var, beta)
    kl, d_mu, d_lv = kl_standard_normal_numpy(mu, log_var)
    return log_lik - beta * kl, -beta * d_mu, -beta * d_lv


@kernel
def _elbo(log_lik, mu, log_var, beta, out, d_mu, d_lv):
    n, d = mu.shape
    for i in range(n):
        s = 0.0
        for j in range(d):
            m = mu[i, j]
            lv = log_var[i, j]
            em1 = np.expm1(lv)
            s += m * m + em1 - lv                             # (VAE.3)
            d_mu[i, j] = -beta * m                            # (VAE.4)
            d_lv[i, j] = -beta * (0.5 * em1)
        out[i] = log_lik[i] - beta * (0.5 * s)                # (VAE.2)


def elbo(log_lik, mu, log_var, beta: float = 1.0):
    """(VAE.2)-(VAE.4) Numba kernel; same contract as :func:`elbo_numpy`."""
    log_lik, mu, log_var, beta = _check_elbo(log_lik, mu, log_var, beta)
    n, d = mu.shape
    out, d_mu, d_lv = np.empty(n), np.empty((n, d)), np.empty((n, d))
    _elbo(log_lik, mu, log_var, beta, out, d_mu, d_lv)
    return out, d_mu, d_lv
