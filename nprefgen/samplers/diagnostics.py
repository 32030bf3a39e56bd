"""Convergence diagnostics for multi-chain MCMC (derivations/sbi.md, MCMC.8-MCMC.9).

Gelman et al., Bayesian Data Analysis (3rd ed.), section 11.4 (split R-hat); Vehtari, Gelman,
Simpson, Carpenter & Bürkner (2021), "Rank-normalization, folding, and localization: an improved
R-hat", Bayesian Analysis 16(2) (the multi-chain ESS); Stan reference manual.
Both take ``samples: (n_chains, n, d)`` and return one value per dimension.

Degenerate input says so: a coordinate that is constant over every chain and draw has no
effective sample size (0/0), so :func:`effective_sample_size` raises a ValueError naming it (the
chains never moved), and :func:`split_rhat` returns inf where the within-chain variance is zero.
Both diagnostics are invariant to the scale of each coordinate, so draws are first scaled by a
power of two per coordinate (exact: values for ordinary draws are bit-identical), which keeps
the variances of draws of any magnitude, 1e-300 or 1e300, inside float64.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_finite_result


def _check_chains(samples, min_length: int) -> np.ndarray:
    s = check_array(samples, "samples", ndim=(2, 3), dtype=np.float64)
    if s.ndim == 2:
        s = s[:, :, None]
    if s.shape[1] < min_length:
        raise ValueError(f"samples: expected at least {min_length} states per chain, "
                         f"got shape {s.shape}")
    return s


def _unit_scale(s: np.ndarray) -> np.ndarray:
    """Each coordinate scaled by the power of two that brings its largest |value| into
    [0.5, 1): exact, and R-hat and ESS are scale-invariant. (m, n, d) -> (m, n, d)."""
    top = np.max(np.abs(s), axis=(0, 1))
    _, exponent = np.frexp(np.where(top > 0, top, 1.0))
    return np.ldexp(s, -exponent)


def split_rhat(samples) -> np.ndarray:
    """(MCMC.8) split R-hat: each chain is cut in two halves, then, over the 2M half-chains of
    length N, with W the mean within-chain variance and B/N the variance of the chain means,

        var+ = (N - 1)/N W + B/N,   R-hat = sqrt(var+ / W).

    samples: (n_chains, n) or (n_chains, n, d) -> (d,). Near 1 (< 1.01-1.05) for mixed chains;
    a chain stuck elsewhere, or a trend inside a chain, pushes it up.
    """
    s = _unit_scale(_check_chains(samples, 4))
    n_half = s.shape[1] // 2
    halves = np.concatenate([s[:, :n_half], s[:, -n_half:]], axis=0)   # (2M, N, d)
    n = halves.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):
        means = halves.mean(axis=1)
        w = halves.var(axis=1, ddof=1).mean(axis=0)
        b_over_n = means.var(axis=0, ddof=1)
        var_plus = (n - 1) / n * w + b_over_n
    check_finite_result(var_plus, "samples", "variance", s)
    # exactly constant within every half-chain: W = 0 (not the ~1e-31 that rounding leaves)
    stuck = np.all(halves == halves[:, :1], axis=(0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.sqrt(var_plus / w)
    return np.where((w > 0) & ~stuck, r, np.inf)


def autocovariance(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance of each column along axis 1 via the FFT. x: (m, n, d) -> (m, n, d)."""
    x = check_array(x, "x", ndim=3)
    m, n, d = x.shape
    xc = x - x.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(xc, n=size, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n
    return acov


def effective_sample_size(samples) -> np.ndarray:
    """(MCMC.9) ESS = M N / tau,  tau = 1 + 2 sum_{t>=1} rho_t.

    rho_t = 1 - (W - mean_chains acov_t) / var+ combines the chains (Vehtari et al. 2021,
    without rank normalisation; not BDA3's variogram form); the sum is truncated by Geyer's
    initial monotone sequence: pair sums P_k = rho_2k + rho_2k+1 are summed while positive and
    forced non-increasing; tau is floored at 1/log10(M N) (Stan's cap ESS <= M N log10(M N)).
    samples: (n_chains, n[, d]) -> (d,).
    For independent draws ESS ~ M N.
    """
    s = _unit_scale(_check_chains(samples, 4))
    m, n, d = s.shape
    with np.errstate(over="ignore", invalid="ignore"):
        acov = autocovariance(s)                          # (m, n, d)
        chain_var = acov[:, 0] * n / (n - 1.0)            # (m, d)
        w = chain_var.mean(axis=0)
        var_plus = w * (n - 1.0) / n
        if m > 1:
            var_plus = var_plus + s.mean(axis=1).var(axis=0, ddof=1)
    check_finite_result(acov, "samples", "autocovariance", s)
    check_finite_result(var_plus, "samples", "variance", s)
    constant = np.flatnonzero(np.all(s == s[:1, :1], axis=(0, 1)))     # exactly, not ~1e-29
    if constant.size:
        raise ValueError(f"samples: coordinates {constant[:10].tolist()} are constant over all "
                         f"{m} chains and {n} draws, so their effective sample size is undefined "
                         f"(0/0); the chains never moved there")
    ess = np.empty(d)
    for k in range(d):
        rho = 1.0 - (w[k] - acov[:, :, k].mean(axis=0)) / var_plus[k]
        rho[0] = 1.0
        n_pairs = n // 2
        pair = rho[0:2 * n_pairs:2] + rho[1:2 * n_pairs:2]
        total = 0.0
        prev = np.inf
        for p in pair:
            if p <= 0:
                break
            p = min(p, prev)
            total += p
            prev = p
        tau = -1.0 + 2.0 * total
        ess[k] = m * n / max(tau, 1.0 / np.log10(max(m * n, 10)))
    return ess


# -- checking a run (MCMC.13) ---------------------------------------------------------------------
RHAT_MAX = 1.05     # rstan's warning bar; the tour flags at Vehtari et al.'s (2021) 1.01
ESS_MIN = 100.0     # Vehtari et al. (2021): enough for stable means and quantiles
ESS_FRACTION = 0.1  # ... or a tenth of the kept draws, when fewer than 1000 were asked for
LEVEL = 0.99


class MCMCConvergenceWarning(UserWarning):
    """MCMC chains whose split R-hat or effective sample size fails its rule (MCMC.13): the
    draws may not represent the target (chains stuck in different modes, or too short)."""


def rhat_bar(n_chains: int, n: int, level: float = LEVEL) -> float:
    """(MCMC.13) the largest split R-hat that a run of ``n_chains`` chains of ``n`` kept states
    may show: max(1.05, the ``level`` quantile of split R-hat for independent Gaussian draws).

    1.05 is the bar rstan warns at; Vehtari et al.'s (2021) 1.01, which the tour flags at, is
    exceeded by well-mixed chains that jump between modes every few sweeps when they hold a few
    hundred draws each (R-hat ~ 1.01-1.03 from the autocorrelation of the mode indicator).

    With 2M half-chains of length N of independent draws, N (B/N) / W ~ F(2M - 1, 2M (N - 1)),
    so R-hat^2 = (N - 1)/N + F / N; short runs fluctuate above 1.01 without anything wrong."""
    from scipy import stats

    halves, length = 2 * n_chains, n // 2
    if halves < 2 or length < 2:
        return float("inf")
    f = stats.f.ppf(level, halves - 1, halves * (length - 1))
    return float(max(RHAT_MAX, np.sqrt((length - 1) / length + f / length)))


def ess_bar(n_kept: int) -> float:
    """(MCMC.13) the smallest acceptable ESS of ``n_kept`` kept draws: min(100, n_kept / 10)."""
    return float(min(ESS_MIN, ESS_FRACTION * n_kept))


def convergence_check(samples, *, rhat_max=None, ess_min=None) -> dict:
    """(MCMC.13) split R-hat and ESS of one target's chains against their bars.

    samples: (n_chains, n, d). -> {"rhat": (d,), "ess": (d,), "rhat_max": float, "ess_min":
    float, "rhat_bar": float, "ess_bar": float, "ok": bool}; the bars default to
    :func:`rhat_bar` and :func:`ess_bar`. Chains that never moved in some coordinate get ESS 0
    and R-hat inf (not an exception: a stuck run is a finding, not bad input)."""
    s = _check_chains(samples, 4)
    m, n, d = s.shape
    r_bar = rhat_bar(m, n) if rhat_max is None else float(rhat_max)
    e_bar = ess_bar(m * n) if ess_min is None else float(ess_min)
    frozen = np.all(s == s[:1, :1], axis=(0, 1))
    rhat = split_rhat(s)
    ess = np.zeros(d)
    if np.any(~frozen):
        ess[~frozen] = effective_sample_size(s[:, :, ~frozen])
    rhat = np.where(frozen, np.inf, rhat)
    out = {"rhat": rhat, "ess": ess, "rhat_max": float(np.max(rhat)),
           "ess_min": float(np.min(ess)), "rhat_bar": r_bar, "ess_bar": e_bar}
    out["ok"] = bool(out["rhat_max"] < r_bar and out["ess_min"] >= e_bar)
    return out
