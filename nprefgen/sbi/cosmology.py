"""A field-level cosmology toy: a Gaussian random field with P(k) = A k^-n (derivations/sbi.md,
SBI.6-SBI.7).

(SBI.6) theta = (A, n); a 2-D Gaussian random field delta on an N x N periodic grid of side
L = 2 pi (so the fundamental wavenumber is k_f = 1 and k runs over 1 .. N/2) with power spectrum
P(k) = A k^-n, observed with white pixel noise of standard deviation sigma_n, whose power is
flat, P_noise = sigma_n^2 L^2 / N^2. The summary is the log of the binned power spectrum of
the noisy field, s_b = log P_hat_b, b = 1..B (linear bins). Fields come from
:func:`nprefgen.data.grf.gaussian_random_field`, spectra from
:func:`nprefgen.metrics.field_stats.power_spectrum`.

(SBI.7) The "standard" analysis: a Gaussian likelihood for s with mean
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
    check_alloc, check_array, check_choice, check_int, check_rng, check_scalar, check_spd,
)
from nprefgen.sbi.priors import BoxUniform, check_theta
from nprefgen.sbi.tasks import Task

BOX_SIZE = 2.0 * np.pi


def _power_law(amplitude: float, slope: float):
    def p(k):
        return amplitude * np.asarray(k, dtype=np.float64) ** (-slope)
    return p


class CosmologyGRFSimulator:
    """(SBI.6) theta (m, 2) = (A, n) -> log binned power spectra (m, n_bins) of noisy fields.

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

    # --- the Gaussian-likelihood model (SBI.7) ----------------------------------------------
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
        """(SBI.7) mu(theta): (m, B) and, if ``jacobian``, d mu / d theta: (m, B, 2)."""
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
    """(SBI.7) log N(s_obs; mu(theta), C) for one or several iid summaries, and its gradient.

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
        """log L (m,): the :class:`nprefgen.sbi.MCMCPosterior` likelihood interface,
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


# --- field-level inference (derivations/fields.md, FIELD.4-FIELD.7) ----------------------------
FIELD_KINDS = ("gaussian", "lognormal")


class FieldSimulator:
    """theta (m, 2) = (A, n) -> noisy maps (m, N, N) on the periodic box of side 2 pi.

    kind "gaussian": the field of (SBI.6), a Gaussian random field with P(k) = A k^-n (DATA.10);
    "lognormal": (FIELD.7) delta = exp(g - sigma_g^2 / 2) - 1 of such a field g. Both get white
    pixel noise of standard deviation ``noise_sd``. ``summarize`` gives the log binned power
    spectrum of (SBI.6) in ``n_bins`` linear bins (default min(8, N/2)), so that NPE on the
    spectrum and on the map see the same simulations.
    """

    def __init__(self, n_side: int = 16, noise_sd: float = 0.1, kind: str = "gaussian",
                 n_bins: int | None = None) -> None:
        self.kind = check_choice(kind, "kind", FIELD_KINDS)
        n_side = check_int(n_side, "n_side", low=4)
        n_bins = min(8, n_side // 2) if n_bins is None else n_bins
        self.spectra = CosmologyGRFSimulator(n_side, noise_sd, n_bins)
        self.n_side, self.noise_sd, self.n_bins = n_side, self.spectra.noise_sd, n_bins

    def __call__(self, theta, rng) -> np.ndarray:
        """theta: (m, 2) -> maps: (m, N, N); ``rng``: a Generator (the simulator protocol)."""
        from nprefgen.data.grf import lognormal_field

        if self.kind == "gaussian":
            return self.spectra.fields(theta, rng=rng)
        theta = check_theta(theta, 2)
        rng = check_rng(rng)
        check_alloc((theta.shape[0], self.n_side, self.n_side), "theta")
        out = np.empty((theta.shape[0], self.n_side, self.n_side))
        for i, (a, n) in enumerate(theta):
            out[i] = lognormal_field(self.n_side, _power_law(a, n), rng=rng, box_size=BOX_SIZE)[0]
        return out + self.noise_sd * rng.standard_normal(out.shape)

    def summarize(self, maps) -> np.ndarray:
        """(SBI.6) log binned power spectra: maps (m, N, N) -> (m, n_bins)."""
        return self.spectra.summarize(maps)


class GaussianFieldLikelihood:
    """(FIELD.4)-(FIELD.6) the exact log-likelihood of a noisy Gaussian-field map and its gradient.

    The map d = delta + sigma_n eta is Gaussian with a circulant covariance whose eigenvalues are
    (FIELD.4) lambda_k = N^2 P(k) / L^2 + sigma_n^2 (lambda_0 = sigma_n^2: the field has no k = 0
    mode), so with D = FFT(d)

        log L = -1/2 sum_k [ |D_k|^2 / (N^2 lambda_k) + log lambda_k ] - N^2/2 log 2 pi   (FIELD.5)

    over the full N x N plane, evaluated on rfft2's half plane with weights 2 for the columns
    whose mirror image -k is not stored and 1 for the self-conjugate columns k_x = 0 and
    k_x = N/2. Without noise (sigma_n = 0) the k = 0 term is dropped: the density is then with
    respect to the (N^2 - 1)-dimensional subspace of zero-mean maps. (FIELD.6) its gradient.
    """

    def __init__(self, n_side: int = 16, noise_sd: float = 0.1) -> None:
        from nprefgen.metrics.field_stats import wavenumber_grid

        self.n_side = check_int(n_side, "n_side", low=2)
        check_alloc((self.n_side, self.n_side), "n_side")
        self.noise_sd = check_scalar(noise_sd, "noise_sd", low=0.0)
        n = self.n_side
        k = wavenumber_grid(n, BOX_SIZE, half=True)                       # (N, N//2 + 1)
        weight = np.full(k.shape, 2.0)                                    # k and its mirror -k
        weight[:, 0] = 1.0                                                # self-conjugate columns
        if n % 2 == 0:
            weight[:, -1] = 1.0
        keep = k > 0
        if self.noise_sd == 0:                                            # no k = 0 mode at all
            weight[~keep] = 0.0
        self.weight = weight.ravel()
        self.logk = np.where(keep, np.log(np.where(keep, k, 1.0)), 0.0).ravel()
        self.signal = keep.ravel().astype(np.float64) * n * n / BOX_SIZE ** 2   # N^2 / L^2, 0 at k = 0
        self.n_modes = float(self.weight.sum())                          # N^2 (N^2 - 1 without noise)

    def _power(self, maps) -> np.ndarray:
        """|D_k|^2 / N^2 on the half plane: maps (..., N, N) -> (..., M)."""
        d = np.fft.rfft2(maps, axes=(-2, -1))
        return (d.real ** 2 + d.imag ** 2).reshape(maps.shape[:-2] + (-1,)) / self.n_side ** 2

    def _eigen(self, theta):
        """(FIELD.4) lambda: (m, M) and the signal part N^2 P(k) / L^2: (m, M)."""
        a, n = theta[:, :1], theta[:, 1:]
        s = self.signal * a * np.exp(-n * self.logk)
        return s + self.noise_sd ** 2, s

    def log_prob(self, theta, maps) -> np.ndarray:
        """(FIELD.5) log p(d | A, n). theta: (m, 2); maps: (N, N) shared by every row, or
        (m, N, N) one map per row -> (m,)."""
        return self.log_prob_and_grad(theta, maps, gradient=False)

    def log_prob_and_grad(self, theta, maps, gradient: bool = True):
        """(FIELD.5) log L (m,) and (FIELD.6) d log L / d (A, n): (m, 2)."""
        theta = check_theta(theta, 2)
        maps = check_array(maps, "maps", ndim=(2, 3))
        if maps.shape[-2:] != (self.n_side, self.n_side):
            raise ValueError(f"maps: expected shape ({self.n_side}, {self.n_side}) or (m, "
                             f"{self.n_side}, {self.n_side}), got {maps.shape}")
        if maps.ndim == 3 and maps.shape[0] != theta.shape[0]:
            raise ValueError(f"maps: expected {theta.shape[0]} maps to match theta, got "
                             f"{maps.shape[0]}")
        if np.any(theta[:, 0] <= 0):
            raise ValueError("theta: expected a positive amplitude A in column 0")
        return self._log_prob(theta, self._power(maps), gradient)

    def _log_prob(self, theta, power, gradient):
        lam, s = self._eigen(theta)
        w = self.weight
        with np.errstate(divide="ignore"):
            log_lam = np.where(w > 0, np.log(np.where(w > 0, lam, 1.0)), 0.0)
        lp = -0.5 * (np.sum(w * (power / np.where(w > 0, lam, 1.0) + log_lam), axis=-1)
                     + self.n_modes * np.log(2.0 * np.pi))
        if not gradient:
            return lp
        # (FIELD.6) d log L / d lambda_k = -w_k / 2 (1 / lambda_k - |D_k|^2 / (N^2 lambda_k^2))
        safe = np.where(w > 0, lam, 1.0)
        d_lam = -0.5 * w * (1.0 / safe - power / safe ** 2)
        d_a = np.sum(d_lam * s / theta[:, :1], axis=-1)                  # d lambda / dA = s / A
        d_n = np.sum(d_lam * (-s * self.logk), axis=-1)                  # d lambda / dn = -s log k
        return lp, np.stack([d_a, d_n], axis=1)

    def __call__(self, theta, x) -> np.ndarray:
        """The :class:`nprefgen.sbi.MCMCPosterior` interface: theta (m, 2), x (m, n_iid,
        N^2) flattened maps -> log L (m,) summed over the iid maps."""
        x = check_array(x, "x", ndim=3)
        power = self._power(x.reshape(x.shape[0], x.shape[1], self.n_side, self.n_side))
        return np.sum([self._log_prob(theta, power[:, i], False) for i in range(x.shape[1])],
                      axis=0)

    def grad(self, theta, x) -> np.ndarray:
        """(FIELD.6) d log L / d theta (m, 2) for flattened maps x (m, n_iid, N^2) (for HMC)."""
        x = check_array(x, "x", ndim=3)
        power = self._power(x.reshape(x.shape[0], x.shape[1], self.n_side, self.n_side))
        return np.sum([self._log_prob(theta, power[:, i], True)[1] for i in range(x.shape[1])],
                      axis=0)


def field_task(kind: str = "gaussian", n_side: int = 16, noise_sd: float = 0.1,
               n_bins: int | None = None, a_range=(0.5, 2.0), n_range=(1.0, 3.0)) -> Task:
    """The field-level toy as a :class:`Task` whose x are maps (n, N, N): prior U(a_range) x
    U(n_range) as :func:`cosmology_grf`. For kind "gaussian" the reference sampler draws the
    exact field-level posterior (FIELD.5) by slice sampling (:func:`exact_field_posterior`);
    the log-normal field has none."""
    prior = BoxUniform([a_range[0], n_range[0]], [a_range[1], n_range[1]])
    sim = FieldSimulator(n_side, noise_sd, kind, n_bins)
    reference = None
    if kind == "gaussian":
        def reference(x_obs, n, rng):
            return exact_field_posterior(prior, x_obs, n, n_side=n_side, noise_sd=noise_sd,
                                         rng=rng)[0]
    return Task(f"{kind}_field", prior, sim, n_side * n_side, reference)


def exact_field_posterior(prior, x_obs, n: int, *, n_side: int = 16, noise_sd: float = 0.1,
                          n_chains: int = 16, n_warmup: int = 500, thin: int = 10, rng=None):
    """(FIELD.5) n draws (n, 2) of p(A, n | d) for one map d (N, N) (or iid maps (k, N, N)), by
    slice sampling of the exact likelihood times the prior
    (:class:`nprefgen.sbi.MCMCPosterior`). A and n are strongly correlated (about 0.9
    on 16x16 maps), which slice sampling along the axes explores slowly: the defaults (16
    chains, 500 warm-up steps, every 10th state kept) gave split R-hat about 1.01 there.
    Returns ``(draws, posterior)``; the posterior's ``mcmc_result`` holds R-hat and ESS."""
    from nprefgen.sbi.mcmc_posterior import MCMCPosterior

    like = GaussianFieldLikelihood(n_side, noise_sd)
    x = check_array(x_obs, "x_obs", ndim=(2, 3))
    if x.shape[-2:] != (n_side, n_side):
        raise ValueError(f"x_obs: expected a map ({n_side}, {n_side}) or maps (k, {n_side}, "
                         f"{n_side}), got {x.shape}")
    post = MCMCPosterior(prior, like, n_side * n_side, grad_log_likelihood=like.grad,
                         n_chains=n_chains, n_warmup=n_warmup, thin=thin)
    draws = post.sample(n, x.reshape(-1, n_side * n_side), rng=rng)
    return draws, post
