"""Simulation-based calibration (derivations/sbi.md, SBI.17).

Talts, Betancourt, Simpson, Vehtari & Gelman (2018), "Validating Bayesian inference algorithms
with simulation-based calibration", arXiv:1804.06788.

(SBI.17) For theta~_i ~ p(theta), x~_i ~ p(x | theta~_i) and L draws theta_il ~ q(theta | x~_i),

    r_ik = #{l : f_k(theta_il) < f_k(theta~_i)}  in {0, ..., L},

is uniform on {0, ..., L} for every test function f_k when q is the posterior (theta~_i is then
one more draw from the same posterior, so all L + 1 orderings are equally likely). Here f_k is
the k-th coordinate. A U-shaped rank histogram means over-confidence, a hump under-confidence,
a slope bias.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from nprefgen._validation import check_array, check_int, check_rng
from nprefgen.sbi.diagnostics._checks import check_draws
from nprefgen.sbi.priors import check_prior


def sbc_ranks(samples, theta_true) -> np.ndarray:
    """(SBI.17) ranks (N, p) of theta_true among the L draws of each observation."""
    s, t = check_draws(samples, theta_true)
    return np.sum(s < t[:, None, :], axis=1)


def sbc_uniformity(ranks, n_draws: int, *, rng=None, n_bins: int = 20) -> dict:
    """Tests that the ranks (N, p) are uniform on {0..L}, L = ``n_draws``.

    * KS: (r + U)/(L + 1), U ~ U(0,1) from ``rng`` (None, an int seed or a Generator, SPEC 7),
      is exactly U(0, 1) under the null; KS p-value per column.
    * chi^2 on ``n_bins`` equal-width bins of the ranks (Talts et al.'s histogram test).
    Returns {"ks_pvalues": (p,), "chi2_pvalues": (p,)}.
    """
    r = check_array(ranks, "ranks", ndim=(1, 2))
    r = r[:, None] if r.ndim == 1 else r
    L = check_int(n_draws, "n_draws", low=1)
    rng = check_rng(rng)
    if np.any(r < 0) or np.any(r > L):
        raise ValueError(f"ranks: expected values in [0, {L}], got [{r.min()}, {r.max()}]")
    n_bins = check_int(n_bins, "n_bins", low=2, high=L + 1)
    u = (r + rng.uniform(size=r.shape)) / (L + 1.0)
    ks = np.array([stats.kstest(u[:, k], "uniform").pvalue for k in range(r.shape[1])])
    # bins of (nearly) equal numbers of rank values; expected counts proportional to their sizes
    edges = np.floor(np.linspace(0, L + 1, n_bins + 1)).astype(int)
    sizes = np.diff(edges)
    chi = []
    for k in range(r.shape[1]):
        counts = np.histogram(r[:, k], bins=edges - 0.5)[0]
        expected = r.shape[0] * sizes / (L + 1.0)
        chi.append(stats.chisquare(counts, expected).pvalue)
    return {"ks_pvalues": ks, "chi2_pvalues": np.array(chi)}


def run_sbc(sample_posterior, prior, simulator, n_sims: int, n_draws: int, *, rng=None):
    """Draw theta~ ~ prior, x~ ~ simulator, and L posterior draws for each x~.

    sample_posterior : callable (L, x: (N, dx), *, rng) -> (N, L, p), the signature of
        ``posterior.sample_batched(n, xs, *, rng)``.
    simulator : callable (theta: (N, p), rng) -> x: (N, dx), called with a Generator.
    rng : None, an int seed or a Generator (SPEC 7); one stream for prior, simulator and posterior.
    Returns (theta_true (N, p), x (N, dx), samples (N, L, p)).
    """
    n_sims = check_int(n_sims, "n_sims", low=1)
    n_draws = check_int(n_draws, "n_draws", low=1)
    rng = check_rng(rng)
    theta = check_prior(prior).sample(n_sims, rng=rng)
    x = np.asarray(simulator(theta, rng), dtype=np.float64)
    samples = np.asarray(sample_posterior(n_draws, x, rng=rng), dtype=np.float64)
    if samples.shape != (n_sims, n_draws, theta.shape[1]):
        raise ValueError(f"sample_posterior: expected draws of shape {(n_sims, n_draws, theta.shape[1])}, "
                         f"got {samples.shape}")
    return theta, x, samples
