"""A field-level cosmology toy: a Gaussian random field with P(k) = A k^-n (derivations/sbi.md,
SBI.20-SBI.21).

(SBI.20) theta = (A, n); a 2-D Gaussian random field delta on an N x N periodic grid of side
L = 2 pi (so the fundamental wavenumber is k_f = 1 and k runs over 1 .. N/2) with power spectrum
P(k) = A k^-n, observed with white pixel noise of standard deviation sigma_n, whose power is
flat, P_noise = sigma_n^2 L^2 / N^2. The summary is the log of the binned power spectrum of
the noisy field, s_b = log P_hat_b, b = 1..B (linear bins). Fields come from
:func:`nprefgen.data.grf.gaussian_random_field`, spectra from
:func:`nprefgen.metrics.field_stats.power_spectrum`.

(SBI.21) The "standard" analysis: a Gaussian likelihood for s with mean
mu_b(theta) = log Pbar_b(theta) - 1/n_b, Pbar_b the bin average of A k^-n + P_noise over the
n_b modes of bin b (the -1/n_b is the delta-method bias of the log of a mean of n_b / 2 free
chi^2_2 modes), and a covariance C fixed in advance (estimated from simulations at a fiducial
theta, as a survey analysis would):

    log L(theta) = -1/2 (s - mu(theta))^T C^{-1} (s - mu(theta)) - 1/2 log det(2 pi C),

sampled with MCMC. Its approximations (Gaussian, fixed C) are what NPE does without.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import (
    check_alloc, check_array, check_int, check_rng, check_scalar, check_spd,
)
from nprefgen.sbi.priors import BoxUniform, check_theta
from nprefgen.sbi.tasks import Task

BOX_SIZE = 2.0 * np.pi


def _power_law(amplitude: float, slope: float):
    def p(k):
        return amplitude * np.asarray(k, dtype=np.float64) ** (-slope)
    return p


class CosmologyGRFSimulator:
    """(SBI.20) theta (m, 2) = (A, n) -> log binned power spectra (m, n_bins) of noisy fields.

    ``fields(theta, rng=...)`` gives the noisy fields (m, N, N) themselves; ``summarize(fields)``
    their summaries; the simulator is their composition.
    """

    def __init__(self, n_side: int = 32, noise_sd: float = 0.1, n_bins: int = 8) -> None:
        self.n_side = check_int(n_side, "n_side", low=4)
        check_alloc((self.n_side, self.n_side), "n_side")
        self.noise_sd = check_scalar(noise_sd, "noise_sd", low=0.0)
        self.n_bins = check_int(n_bins, "n_bins", low=1, high=self.n_side // 2)
        self.noise_power = self.noise_sd ** 2 * BOX_SIZE ** 2 / self.n_side ** 2

    def fields(self, theta, *, rng=None) -> np.ndarray:
        from nprefgen.data.grf import gaussian_random_field

        theta = check_theta(theta, 2)
        rng = check_rng(rng)
        check_alloc((theta.shape[0], self.n_side, self.n_side), "theta")
        out = np.empty((theta.shape[0], self.n_side, self.n_side))
        for i, (a, n) in enumerate(theta):
            out[i] = gaussian_random_field(self.n_side, _power_law(a, n), rng=rng,
                                           box_size=BOX_SIZE)[0]
        return out + self.noise_sd * rng.standard_normal(out.shape)

    def summarize(self, fields) -> np.ndarray:
        from nprefgen.metrics.field_stats import power_spectrum

        f = check_array(fields, "fields", ndim=3)
        return np.stack([np.log(power_spectrum(fi, box_size=BOX_SIZE, n_bins=self.n_bins,
                                               spacing="linear").power) for fi in f])

    def __call__(self, theta, rng):
        return self.summarize(self.fields(theta, rng=rng))

    # --- the Gaussian-likelihood model (SBI.21) ----------------------------------------------
    def _bin_weights(self):
        """The distinct |k| of the binned modes, (U,), and weights (U, B) that average a
        function of |k| over each bin's modes (multiplicity / modes in the bin); cached."""
        if getattr(self, "_weights", None) is None:
            from nprefgen.metrics.field_stats import power_spectrum_bins

            idx, kmag, _ = power_spectrum_bins(self.n_side, BOX_SIZE, self.n_bins, "linear")
            ok = idx >= 0
            idx, kmag = idx[ok], kmag[ok]
            counts = np.bincount(idx, minlength=self.n_bins).astype(np.float64)
            # modes with equal integer |m|^2 share |k|: group them (rounding guards float noise)
            k_unique, inverse = np.unique(np.round(kmag, 10), return_inverse=True)
            weights = np.zeros((k_unique.size, self.n_bins))
            np.add.at(weights, (inverse, idx), 1.0)
            self._weights = (k_unique, weights / counts, counts)
        return self._weights

    def mean_summary(self, theta, jacobian: bool = True):
        """(SBI.21) mu(theta): (m, B) and, if ``jacobian``, d mu / d theta: (m, B, 2)."""
        theta = check_theta(theta, 2)
        k, average, counts = self._bin_weights()
        a, n = theta[:, :1], theta[:, 1:]
        logk = np.log(k)[None, :]
        signal = a * np.exp(-n * logk)                                         # (m, U)
        pbar = (signal + self.noise_power) @ average                           # (m, B)
        mu = np.log(pbar) - 1.0 / counts
        if not jacobian:
            return mu
        d_a = (signal / a) @ average / pbar
        d_n = (-signal * logk) @ average / pbar
        return mu, np.stack([d_a, d_n], axis=2)


class GaussianSummaryLikelihood:
    """(SBI.21) log N(s_obs; mu(theta), C) for one or several iid summaries, and its gradient.

    mean_fn : theta (m, p) -> (mu (m, B), d mu / d theta (m, B, p)), and with
        ``jacobian=False`` -> mu only; cov : (B, B).
    """

    def __init__(self, mean_fn, cov) -> None:
        cov = check_spd(cov, "cov")                 # symmetric (to 1e-10), positive definite
        chol = np.linalg.cholesky(cov)
        self.mean_fn = mean_fn
        self.cov = cov
        self.prec = np.linalg.inv(cov)
        self.log_norm = -0.5 * cov.shape[0] * np.log(2 * np.pi) - float(np.sum(np.log(np.diag(chol))))

    def log_prob_and_grad(self, theta, s_obs) -> tuple[np.ndarray, np.ndarray]:
        """theta: (m, p); s_obs: (B,), (n_iid, B) shared by all rows, or (m, n_iid, B) one set
        per row -> log L: (m,), d log L / d theta: (m, p)."""
        s = check_array(s_obs, "s_obs", ndim=(1, 2, 3))
        s = s[None] if s.ndim == 1 else s
        mu, jac = self.mean_fn(theta)
        s = s[None, :, :] if s.ndim == 2 else s
        r = s - mu[:, None, :]                                   # (m, n_iid, B)
        pr = r @ self.prec                                       # C^{-1} r
        lp = np.sum(self.log_norm - 0.5 * np.sum(r * pr, axis=2), axis=1)
        grad = np.einsum("mib,mbp->mp", pr, jac)                 # sum_i J^T C^{-1} r_i
        return lp, grad

    def __call__(self, theta, x) -> np.ndarray:
        """log L (m,): the :class:`nprefgen.sbi.posterior.MCMCPosterior` likelihood interface,
        theta: (m, p), x: (m, n_iid, B). No Jacobian is computed."""
        s = check_array(x, "x", ndim=3)
        r = s - self.mean_fn(theta, jacobian=False)[:, None, :]
        return np.sum(self.log_norm - 0.5 * np.sum(r * (r @ self.prec), axis=2), axis=1)

    def grad(self, theta, x) -> np.ndarray:
        """d log L / d theta (m, p), same arguments (``grad_log_likelihood`` for HMC)."""
        return self.log_prob_and_grad(theta, x)[1]


def estimate_covariance(simulator, theta_fid, n: int, *, rng=None) -> np.ndarray:
    """Sample covariance of the summaries of ``n`` simulations at ``theta_fid`` (p,): (B, B).

    ``simulator(theta, rng)`` gets a Generator made from ``rng`` (None, an int seed or a
    Generator, SPEC 7).
    """
    n = check_int(n, "n", low=3)
    theta = np.repeat(check_theta(theta_fid, 2), n, axis=0)
    s = simulator(theta, check_rng(rng))
    return np.cov(s, rowvar=False)


def cosmology_grf(n_side: int = 32, noise_sd: float = 0.1, n_bins: int = 8,
                  a_range=(0.5, 2.0), n_range=(1.0, 3.0)) -> Task:
    """The GRF toy as a :class:`Task`: prior U(a_range) x U(n_range); no reference sampler
    (the exact likelihood of the binned spectrum has no closed form)."""
    prior = BoxUniform([a_range[0], n_range[0]], [a_range[1], n_range[1]])
    sim = CosmologyGRFSimulator(n_side, noise_sd, n_bins)
    return Task("cosmology_grf", prior, sim, sim.n_bins, None)
