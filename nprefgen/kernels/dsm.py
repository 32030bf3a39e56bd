"""The denoising score matching loss and its gradient w.r.t. the network output
(derivations/score.md, SCORE.4-SCORE.6).

For a batch of perturbed samples x~_j = x_j + sigma_j z_j and the score network's output
s_j = s_theta(x~_j, sigma_j), with the NCSN weighting lambda(sigma) = sigma^2,

    (SCORE.5)  L = 1/n sum_j lambda(sigma_j)/2 ||s_j + z_j / sigma_j||^2 = 1/n sum_j 1/2 ||sigma_j s_j + z_j||^2,
    (SCORE.6)  dL/ds_j = sigma_j (sigma_j s_j + z_j) / n,

the target -z/sigma being the score of the perturbation kernel (SCORE.4). The noise z and the
levels are inputs, so L is a deterministic function of the arrays passed in.

``dsm_loss_numpy`` is the oracle, ``dsm_loss`` one fused numba pass over the batch. Both accept
float32 or float64 and compute in float64 (the loss is a reduction over the batch); strided
inputs are accepted as they are.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array
from nprefgen.kernels.jit import kernel


def _check(s, z, sigma):
    s = check_array(s, "s", ndim=2, dtype=np.float64)
    z = check_array(z, "z", shape=s.shape, dtype=np.float64)
    sigma = check_array(sigma, "sigma", ndim=(0, 1), dtype=np.float64)
    if sigma.ndim == 0:
        sigma = np.full(s.shape[0], float(sigma))
    if sigma.shape != (s.shape[0],):
        raise ValueError(f"sigma: expected a scalar or shape ({s.shape[0]},) (one noise level "
                         f"per row of s), got shape {sigma.shape}")
    if np.any(sigma <= 0):
        raise ValueError(f"sigma: expected noise levels > 0, got minimum {sigma.min()}")
    return s, z, sigma


def dsm_loss_numpy(s, z, sigma) -> tuple[float, np.ndarray]:
    """DSM loss (SCORE.5) and its gradient (SCORE.6), the NumPy oracle; -z/sigma is the score of
    the perturbation kernel (SCORE.4).

    s: (n, D) network output at x~ = x + sigma z; z: (n, D) the noise; sigma: scalar or (n,)
    the noise level of each row, > 0 -> (loss: float, d_s: (n, D) float64)
    """
    s, z, sigma = _check(s, z, sigma)
    n = s.shape[0]
    r = sigma[:, None] * s + z                                    # sigma s + z, (n, D)
    loss = 0.5 * float(np.sum(r * r)) / n                         # (SCORE.5)
    d_s = sigma[:, None] * r / n                                  # (SCORE.6)
    return loss, d_s


@kernel
def _dsm_kernel(s, z, sigma, d_s):
    """(SCORE.5), (SCORE.6) in one pass; writes d_s, returns the loss."""
    n, d = s.shape
    inv_n = 1.0 / n
    total = 0.0
    for j in range(n):
        sj = sigma[j]
        row = 0.0
        for k in range(d):
            r = sj * s[j, k] + z[j, k]
            row += r * r
            d_s[j, k] = sj * r * inv_n
        total += row
    return 0.5 * total * inv_n


def dsm_loss(s, z, sigma) -> tuple[float, np.ndarray]:
    """DSM loss (SCORE.5) and gradient (SCORE.6), numba fast path; same contract as
    :func:`dsm_loss_numpy`: s, z: (n, D); sigma: scalar or (n,) -> (loss, d_s: (n, D))."""
    s, z, sigma = _check(s, z, sigma)
    d_s = np.empty(s.shape)
    loss = _dsm_kernel(s, z, sigma, d_s)
    return float(loss), d_s
