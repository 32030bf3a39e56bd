"""Two more sbibm tasks with reference posteriors made here (derivations/sbi.md, TASK.1-TASK.3).

* ``slcp`` (Papamakarios, Sterratt & Murray 2019; sbibm): theta ~ U(-3, 3)^5, four iid 2-D
  Gaussian points with mean (theta1, theta2), standard deviations theta3^2 and theta4^2 and
  correlation tanh(theta5) (TASK.1); x: (n, 8), the points flattened. The likelihood is simple,
  the posterior is not: theta3 and theta4 enter only through their squares, so it has four
  mirror-image copies of equal mass, and the covariance parameters are poorly constrained by
  four points. sbibm's strongest rows on it are sequential methods. Reference posterior: exact
  rejection sampling after integrating the mean out analytically (TASK.2).
* ``gaussian_linear_uniform`` (sbibm): theta ~ U(-1, 1)^10, x ~ N(theta, 0.1 I). The
  posterior is the gaussian_linear Gaussian truncated to the box (TASK.3): a 10-D task whose
  posterior mass sits against the prior's walls, where a flow's leakage outside the prior
  (SBI.12) shows. Reference: per-coordinate rejection (the truncated isotropic Gaussian factorises).

Why these two: SLCP is the multimodal task whose MCMC and ABC difficulties the other sbibm
tasks here lack (four exactly symmetric modes, known weights 1/4 each), and
gaussian_linear_uniform is the bounded-prior counterpart of gaussian_linear in the same 10
dimensions. Both references are exact samplers, validated in tests/sbi/test_tasks_more.py
against an independent second sampler (plain rejection from the prior) by C2ST.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_int, check_rng, check_scalar
from nprefgen.sbi.priors import BoxUniform

SLCP_N_POINTS, SLCP_JITTER = 4, 1e-6


def slcp_covariance(theta: np.ndarray):
    """(TASK.1) the entries (a, b, c) of Sigma = [[a, b], [b, c]]: a = theta3^4 + 1e-6,
    c = theta4^4 + 1e-6, b = tanh(theta5) theta3^2 theta4^2 (sbibm adds the 1e-6 jitter).
    theta: (n, 5) -> three (n,) arrays."""
    s1, s2, rho = theta[:, 2] ** 2, theta[:, 3] ** 2, np.tanh(theta[:, 4])
    return s1 * s1 + SLCP_JITTER, rho * s1 * s2, s2 * s2 + SLCP_JITTER


class SLCPSimulator:
    """(TASK.1) x_k = m + L z_k, z_k ~ N(0, I), k = 1..4, m = (theta1, theta2), L L^T = Sigma;
    theta: (n, 5) -> x: (n, 8) = (x_11, x_12, x_21, x_22, ...)."""

    def __call__(self, theta, rng):
        theta = check_array(theta, "theta", ndim=2)
        if theta.shape[1] != 5:
            raise ValueError(f"theta: expected shape (n, 5), got {theta.shape}")
        a, b, c = slcp_covariance(theta)
        l00 = np.sqrt(a)
        l10 = b / l00
        l11 = np.sqrt(np.maximum(c - l10 * l10, 0.0))
        z = rng.standard_normal((theta.shape[0], SLCP_N_POINTS, 2))
        x0 = theta[:, None, 0] + l00[:, None] * z[..., 0]
        x1 = theta[:, None, 1] + l10[:, None] * z[..., 0] + l11[:, None] * z[..., 1]
        return np.stack([x0, x1], axis=2).reshape(theta.shape[0], 2 * SLCP_N_POINTS)


def slcp_log_likelihood(theta, x_obs) -> np.ndarray:
    """(TASK.1) log p(x_obs | theta) = sum_k log N(x_k; m, Sigma). theta: (n, 5), x_obs: (8,)
    -> (n,)."""
    theta = check_array(theta, "theta", ndim=2)
    pts = check_array(x_obs, "x_obs", shape=(2 * SLCP_N_POINTS,)).reshape(SLCP_N_POINTS, 2)
    a, b, c = slcp_covariance(theta)
    det = a * c - b * b
    d0 = pts[None, :, 0] - theta[:, None, 0]
    d1 = pts[None, :, 1] - theta[:, None, 1]
    quad = (c[:, None] * d0 * d0 - 2.0 * b[:, None] * d0 * d1 + a[:, None] * d1 * d1) / det[:, None]
    return -0.5 * quad.sum(axis=1) - 0.5 * SLCP_N_POINTS * np.log(det) \
        - SLCP_N_POINTS * np.log(2.0 * np.pi)


def _log_g(a, b, c, scatter, k: int) -> np.ndarray:
    """(TASK.2) log g(Sigma) + const = -(K-1)/2 log|Sigma| - tr(Sigma^{-1} Psi) / 2 for
    Sigma = [[a, b], [b, c]] (arrays (n,)) and the scatter matrix Psi (2, 2)."""
    det = a * c - b * b
    tr = (c * scatter[0, 0] - 2.0 * b * scatter[0, 1] + a * scatter[1, 1]) / det
    return -0.5 * (k - 1) * np.log(det) - 0.5 * tr


def slcp_reference(x, n: int, prior: BoxUniform, *, rng=None, batch: int = 200_000,
                   max_rounds: int = 2000) -> np.ndarray:
    """(TASK.2) exact posterior draws for one SLCP observation. x: (1, 8) -> (n, 5).

    With xbar the mean of the K = 4 points and Psi = sum_k (x_k - xbar)(x_k - xbar)^T,
    p(x | m, Sigma) = N(m; xbar, Sigma / K) g(Sigma) with
    g(Sigma) = (2 pi)^{-(K-1)} K^{-1} |Sigma|^{-(K-1)/2} exp(-tr(Sigma^{-1} Psi) / 2), which is at
    most its value at Sigma = Psi / (K - 1). Propose u = (theta3, theta4, theta5) from the prior
    and m from N(xbar, Sigma(u) / K); accept with probability
    1[m in the box] g(Sigma(u)) / g(Psi / (K - 1)): the accepted (m, u) follow
    prior x likelihood exactly."""
    if x.shape[0] != 1:
        raise ValueError(f"x_obs: slcp's reference posterior takes one observation, got {x.shape[0]}")
    rng = check_rng(rng)
    k = SLCP_N_POINTS
    pts = x[0].reshape(k, 2)
    xbar = pts.mean(axis=0)
    dev = pts - xbar
    s = dev.T @ dev                                                        # (2, 2) scatter
    sign, logdet_s = np.linalg.slogdet(s / (k - 1))
    if sign <= 0:
        raise ValueError("x_obs: the four SLCP points are collinear; the posterior is degenerate")
    log_g_max = -0.5 * (k - 1) * logdet_s - (k - 1)                        # tr = 2 (K - 1) / 2
    low, high = prior.low, prior.high
    out, have = [], 0
    for _ in range(max_rounds):
        u = rng.uniform(low[2:], high[2:], size=(batch, 3))
        full = np.concatenate([np.zeros((batch, 2)), u], axis=1)
        a, b, c = slcp_covariance(full)
        log_g = _log_g(a, b, c, s, k)
        # m ~ N(xbar, Sigma / K) via the Cholesky factor of Sigma
        l00 = np.sqrt(a)
        l10 = b / l00
        l11 = np.sqrt(np.maximum(c - l10 * l10, 0.0))
        z = rng.standard_normal((batch, 2)) / np.sqrt(k)
        m = np.stack([xbar[0] + l00 * z[:, 0], xbar[1] + l10 * z[:, 0] + l11 * z[:, 1]], axis=1)
        inside = np.all((m >= low[:2]) & (m <= high[:2]), axis=1)
        keep = inside & (np.log(rng.uniform(size=batch)) < log_g - log_g_max)
        out.append(np.concatenate([m[keep], u[keep]], axis=1))
        have += int(keep.sum())
        if have >= n:
            return np.concatenate(out)[:n]
    raise ValueError(f"x_obs: slcp's reference accepted only {have} of {n} draws in "
                     f"{max_rounds * batch} proposals (a very spiky posterior)")


def slcp() -> "Task":
    """sbibm's SLCP: 5 parameters, 8-D data (four 2-D points)."""
    from nprefgen.sbi.tasks import Task

    prior = BoxUniform(np.full(5, -3.0), np.full(5, 3.0))
    return Task("slcp", prior, SLCPSimulator(), 2 * SLCP_N_POINTS,
                lambda x, n, rng: slcp_reference(x, n, prior, rng=rng))


def truncated_gaussian_linear_reference(x, n: int, prior: BoxUniform, noise_var: float, *,
                                        rng=None, max_rounds: int = 10_000) -> np.ndarray:
    """(TASK.3) theta ~ U(low, high), x_i ~ N(theta, v I), i = 1..N: the posterior is
    N(xbar, v / N I) truncated to the box, a product over coordinates, each drawn by rejection
    from its own Gaussian. x: (N, p) -> (n, p)."""
    rng = check_rng(rng)
    noise_var = check_scalar(noise_var, "noise_var", low=0.0, low_inclusive=False)
    mu = x.mean(axis=0)
    sd = np.sqrt(noise_var / x.shape[0])
    p = mu.shape[0]
    out = np.empty((n, p))
    for j in range(p):
        got, have = [], 0
        for _ in range(max_rounds):
            d = mu[j] + sd * rng.standard_normal(2 * (n - have) + 100)
            d = d[(d >= prior.low[j]) & (d <= prior.high[j])]
            got.append(d)
            have += d.shape[0]
            if have >= n:
                break
        else:
            raise ValueError(f"x_obs: coordinate {j} is {abs(mu[j]):.3g} away from the prior box; "
                             f"its truncated posterior accepts too few draws")
        out[:, j] = np.concatenate(got)[:n]
    return out


def gaussian_linear_uniform(dim: int = 10, noise_var: float = 0.1) -> "Task":
    """sbibm's gaussian_linear_uniform: theta ~ U(-1, 1)^dim, x ~ N(theta, 0.1 I)."""
    from nprefgen.sbi.tasks import GaussianLinearSimulator, Task

    dim = check_int(dim, "dim", low=1)
    noise_var = check_scalar(noise_var, "noise_var", low=0.0, low_inclusive=False)
    prior = BoxUniform(np.full(dim, -1.0), np.full(dim, 1.0))
    return Task("gaussian_linear_uniform", prior, GaussianLinearSimulator(noise_var), dim,
                lambda x, n, rng: truncated_gaussian_linear_reference(x, n, prior, noise_var,
                                                                      rng=rng))
