"""Two-dimensional toy densities: two moons, concentric rings, checkerboard, 8 Gaussians, pinwheel.

Each toy has a sampler ``sample_<name>(n, *, rng=None, ...) -> (n, 2)`` and, where the density has
a closed form, ``log_prob_<name>(x, ...) -> (n,)`` (derivations/data.md, DATA.1-DATA.7):

============  =====================================================  ==========================
toy           definition                                             exact ``log_prob``
============  =====================================================  ==========================
two_moons     points on two interleaved half circles + N(0, s^2 I)    none (a Gaussian blurred
              (DATA.1)                                               arc: a 1-D integral)
rings         mixture of radial Gaussians N(|x|; r_k, s^2) / C_k      yes (DATA.2, DATA.3)
              (DATA.2-DATA.4)
checkerboard  uniform on the 8 dark squares of a 4x4 board (DATA.5)   yes
8gaussians    equal mixture of N(mu_j, s^2 I), mu_j on a circle       yes (DATA.6)
              (DATA.6)
pinwheel      rotated, warped Gaussian arms (Johnson et al. 2016)     none (the warp has no
              (DATA.7)                                               closed-form inverse)
============  =====================================================  ==========================

``TOYS[name]`` holds a :class:`Toy` with the default parameters:
``TOYS["rings"].sample(n, rng=rng)``, ``TOYS["rings"].log_prob(x)``, ``TOYS["rings"].has_log_prob``,
``TOYS["rings"].bounds`` (a box holding essentially all the mass, for plots and grids). ``rng`` is
keyword-only everywhere: None, an int seed or a Generator (SPEC 7).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.special import ndtr

from nprefgen._validation import (
    check_alloc, check_array, check_callable, check_int, check_rng, check_scalar,
)
from nprefgen.kernels import logsumexp_rows_numpy

_LOG_2PI = np.log(2.0 * np.pi)


def _check_x(x) -> np.ndarray:
    return check_array(x, "x", shape=(None, 2), dtype=np.float64)


# -- two moons --------------------------------------------------------------------------------
def sample_two_moons(n: int, *, rng=None, noise: float = 0.1) -> np.ndarray:
    """Two interleaved half circles with Gaussian noise (DATA.1). Returns x: (n, 2).

    Each point picks a moon with probability 1/2 and an angle t ~ U(0, pi): the upper moon is
    (cos t, sin t), the lower one (1 - cos t, 1/2 - sin t); then x = p + noise * eps.
    """
    n = check_int(n, "n", low=1)
    check_alloc((n, 2), "n")
    rng = check_rng(rng)
    noise = check_scalar(noise, "noise", low=0.0)
    lower = rng.random(n) < 0.5                      # which moon
    t = rng.uniform(0.0, np.pi, n)
    p = np.stack([np.cos(t), np.sin(t)], axis=1)     # (n, 2) upper moon
    p[lower] = np.array([1.0, 0.5]) - p[lower]       # (DATA.1) lower moon, point-reflected
    return p + noise * rng.standard_normal((n, 2))


# -- concentric rings -------------------------------------------------------------------------
def _rings_params(radii, sigma):
    radii = check_array(radii, "radii", ndim=1)
    if np.any(radii <= 0):
        raise ValueError(f"radii: expected positive radii, got {radii}")
    sigma = check_scalar(sigma, "sigma", low=0.0, low_inclusive=False)
    return radii, sigma


def rings_log_normaliser(radii, sigma: float) -> np.ndarray:
    """log C_k = log 2 pi (r_k Phi(r_k/s) + s phi(r_k/s)) (DATA.3). radii: (K,) -> (K,)."""
    radii, sigma = _rings_params(radii, sigma)
    a = radii / sigma
    phi = np.exp(-0.5 * a * a) / np.sqrt(2.0 * np.pi)
    return np.log(2.0 * np.pi * (radii * ndtr(a) + sigma * phi))


def log_prob_rings(x, radii=(0.75, 1.5, 2.25), sigma: float = 0.1) -> np.ndarray:
    """Equal mixture of radial Gaussians (DATA.2): x: (n, 2) -> log p(x): (n,).

    p(x) = (1/K) sum_k N(|x|; r_k, s^2) / C_k, with C_k of (DATA.3) making each ring a density
    on the plane.
    """
    x = _check_x(x)
    radii, sigma = _rings_params(radii, sigma)
    rho = np.hypot(x[:, 0], x[:, 1])                                    # (n,)
    z = (rho[:, None] - radii[None, :]) / sigma                         # (n, K)
    log_n = -0.5 * z * z - np.log(sigma) - 0.5 * _LOG_2PI               # log N(|x|; r_k, s^2)
    terms = log_n - rings_log_normaliser(radii, sigma)[None, :] - np.log(radii.shape[0])
    return logsumexp_rows_numpy(terms)                                   # (DATA.2)


def _sample_ring_radius(n: int, r: float, sigma: float, rng) -> np.ndarray:
    """rho ~ rho N(rho; r, s^2) on rho > 0 by rejection from (r + s|u|) phi(u) (DATA.4)."""
    a = r / sigma
    p_normal = r / (r + sigma * np.sqrt(2.0 / np.pi))   # mixture weight of the N(0, 1) part
    out = np.empty(n)
    filled = 0
    while filled < n:
        m = n - filled
        u = rng.standard_normal(m)
        rayleigh = rng.random(m) >= p_normal             # the |u| phi(u) part: +-Rayleigh(1)
        sign = np.where(rng.random(m) < 0.5, -1.0, 1.0)
        u[rayleigh] = (sign * np.sqrt(-2.0 * np.log1p(-rng.random(m))))[rayleigh]
        accept = (u >= -a) & (rng.random(m) * (r + sigma * np.abs(u)) <= r + sigma * u)
        got = r + sigma * u[accept]
        out[filled:filled + got.shape[0]] = got
        filled += got.shape[0]
    return out


def sample_rings(n: int, *, rng=None, radii=(0.75, 1.5, 2.25),
                 sigma: float = 0.1) -> np.ndarray:
    """Exact samples of the rings density (DATA.2): a ring k uniformly, an angle uniformly, a
    radius from rho N(rho; r_k, s^2) on rho > 0 by rejection (DATA.4). Returns x: (n, 2)."""
    n = check_int(n, "n", low=1)
    check_alloc((n, 2), "n")
    rng = check_rng(rng)
    radii, sigma = _rings_params(radii, sigma)
    ring = rng.integers(0, radii.shape[0], n)
    rho = np.empty(n)
    for k, r in enumerate(radii):
        sel = ring == k
        rho[sel] = _sample_ring_radius(int(sel.sum()), float(r), sigma, rng)
    theta = rng.uniform(0.0, 2.0 * np.pi, n)
    return np.stack([rho * np.cos(theta), rho * np.sin(theta)], axis=1)


# -- checkerboard -----------------------------------------------------------------------------
def _check_board(n_side):
    n_side = check_int(n_side, "n_side", low=2)
    check_alloc((n_side, n_side, 2), "n_side")
    if n_side % 2:
        raise ValueError(f"n_side: expected an even number of squares per side, got {n_side}")
    return n_side


def log_prob_checkerboard(x, n_side: int = 4) -> np.ndarray:
    """Uniform on the dark squares of an n_side x n_side board of unit squares centred on 0
    (DATA.5): log p = -log(n_side^2 / 2) where floor(x1) + floor(x2) is even, -inf elsewhere.
    x: (n, 2) -> (n,)."""
    x = _check_x(x)
    n_side = _check_board(n_side)
    half = n_side / 2
    inside = np.all((x >= -half) & (x < half), axis=1)
    dark = (np.floor(x[:, 0]) + np.floor(x[:, 1])) % 2 == 0
    return np.where(inside & dark, -np.log(n_side * n_side / 2), -np.inf)


def sample_checkerboard(n: int, *, rng=None, n_side: int = 4) -> np.ndarray:
    """A dark square uniformly, then a uniform point in it (DATA.5). Returns x: (n, 2)."""
    n = check_int(n, "n", low=1)
    check_alloc((n, 2), "n")
    rng = check_rng(rng)
    n_side = _check_board(n_side)
    i, j = np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="ij")
    corners = np.stack([i.ravel(), j.ravel()], axis=1) - n_side // 2    # lower-left corners
    corners = corners[corners.sum(axis=1) % 2 == 0]                      # dark: i + j even
    pick = rng.integers(0, corners.shape[0], n)
    return corners[pick] + rng.random((n, 2))


# -- 8 Gaussians ------------------------------------------------------------------------------
def eight_gaussians_means(n_modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """mu_j = radius (cos 2 pi j / J, sin 2 pi j / J) (DATA.6). Returns (J, 2)."""
    n_modes = check_int(n_modes, "n_modes", low=1)
    check_alloc((n_modes, 2), "n_modes")
    radius = check_scalar(radius, "radius", low=0.0)
    angle = 2.0 * np.pi * np.arange(n_modes) / n_modes
    return radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def log_prob_8gaussians(x, n_modes: int = 8, radius: float = 2.0, sigma: float = 0.2) -> np.ndarray:
    """(DATA.6) log p(x) = logsumexp_j [-|x - mu_j|^2 / (2 s^2)] - log(2 pi s^2) - log J.
    x: (n, 2) -> (n,)."""
    x = _check_x(x)
    sigma = check_scalar(sigma, "sigma", low=0.0, low_inclusive=False)
    mu = eight_gaussians_means(n_modes, radius)
    check_alloc((x.shape[0], mu.shape[0], 2), "n_modes")
    sq = np.sum((x[:, None, :] - mu[None, :, :]) ** 2, axis=2)          # (n, J)
    return (logsumexp_rows_numpy(-0.5 * sq / sigma**2)
            - np.log(2.0 * np.pi * sigma**2) - np.log(mu.shape[0]))


def sample_8gaussians(n: int, *, rng=None, n_modes: int = 8, radius: float = 2.0,
                      sigma: float = 0.2) -> np.ndarray:
    """A mode j uniformly, then mu_j + sigma * eps (DATA.6). Returns x: (n, 2)."""
    n = check_int(n, "n", low=1)
    check_alloc((n, 2), "n")
    rng = check_rng(rng)
    sigma = check_scalar(sigma, "sigma", low=0.0, low_inclusive=False)
    mu = eight_gaussians_means(n_modes, radius)
    return mu[rng.integers(0, mu.shape[0], n)] + sigma * rng.standard_normal((n, 2))


# -- pinwheel ---------------------------------------------------------------------------------
def sample_pinwheel(n: int, *, rng=None, n_arms: int = 5, radial_std: float = 0.3,
                    tangential_std: float = 0.1, rate: float = 0.25) -> np.ndarray:
    """Pinwheel after Johnson et al. (2016, "Composing graphical models with neural networks")
    (DATA.7): f = (1 + radial_std e1, tangential_std e2), an arm c uniformly, and
    x = R(2 pi c / n_arms + rate exp(f1)) f, a rotation, so |x| = |f|. Returns x: (n, 2).
    Their code rotates by the opposite angle and multiplies by 10: theirs is 10 times the
    mirror image (x2 -> -x2) of this one."""
    n = check_int(n, "n", low=1)
    check_alloc((n, 2), "n")
    rng = check_rng(rng)
    n_arms = check_int(n_arms, "n_arms", low=1)
    radial_std = check_scalar(radial_std, "radial_std", low=0.0)
    tangential_std = check_scalar(tangential_std, "tangential_std", low=0.0)
    rate = check_scalar(rate, "rate")
    f = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
    f[:, 0] += 1.0
    arm = rng.integers(0, n_arms, n)
    angle = 2.0 * np.pi * arm / n_arms + rate * np.exp(f[:, 0])          # (DATA.7)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * f[:, 0] - s * f[:, 1], s * f[:, 0] + c * f[:, 1]], axis=1)


# -- registry ---------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Toy:
    """A toy density with its default parameters: ``sample(n, rng=...)``, ``log_prob(x)``.

    ``bounds = ((x_lo, x_hi), (y_lo, y_hi))`` holds all but a negligible part of the mass.
    ``sampler`` is called as ``sampler(n, rng=rng, **params)``.
    """

    name: str
    sampler: Callable
    log_prob_fn: Callable | None
    bounds: tuple
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_callable(self.sampler, "sampler")
        if self.log_prob_fn is not None:
            check_callable(self.log_prob_fn, "log_prob_fn")
        check_array(self.bounds, "bounds", shape=(2, 2))
        if not isinstance(self.params, dict):
            raise ValueError(f"params: expected a dict of keyword arguments, got "
                             f"{type(self.params).__name__}")

    @property
    def has_log_prob(self) -> bool:
        return self.log_prob_fn is not None

    def sample(self, n: int, *, rng=None) -> np.ndarray:
        """x: (n, 2) drawn with ``rng`` (None, an int seed or a Generator, SPEC 7)."""
        return self.sampler(n, rng=rng, **self.params)

    def log_prob(self, x) -> np.ndarray:
        """x: (n, 2) -> (n,); raises NotImplementedError for toys without a closed form."""
        if self.log_prob_fn is None:
            raise NotImplementedError(
                f"the {self.name} toy has no closed-form density (see nprefgen.data.toys)")
        return self.log_prob_fn(x, **self.params)


TOYS = {
    "two_moons": Toy("two_moons", sample_two_moons, None, ((-1.5, 2.5), (-1.0, 1.5)),
                     {"noise": 0.1}),
    "rings": Toy("rings", sample_rings, log_prob_rings, ((-3.0, 3.0), (-3.0, 3.0)),
                 {"radii": (0.75, 1.5, 2.25), "sigma": 0.1}),
    "checkerboard": Toy("checkerboard", sample_checkerboard, log_prob_checkerboard,
                        ((-2.0, 2.0), (-2.0, 2.0)), {"n_side": 4}),
    "8gaussians": Toy("8gaussians", sample_8gaussians, log_prob_8gaussians,
                      ((-3.25, 3.25), (-3.25, 3.25)), {"n_modes": 8, "radius": 2.0, "sigma": 0.2}),
    "pinwheel": Toy("pinwheel", sample_pinwheel, None, ((-2.5, 2.5), (-2.5, 2.5)),
                    {"n_arms": 5, "radial_std": 0.3, "tangential_std": 0.1, "rate": 0.25}),
}
