"""Summary statistics of 2-D fields: power spectrum, pixel histogram, peak counts.

The three statistics used to judge generated cosmological maps (Rodriguez et al. 2018,
"Fast cosmic web simulations with generative adversarial networks"; Mustafa et al. 2019,
"CosmoGAN"): the radially averaged power spectrum, the histogram of log10(x + 1), and the
histogram of the heights of local maxima over a 5x5 neighbourhood.

Fourier conventions (derivations/data.md, DATA.8-DATA.14): a square field of n_side^2 pixels on a
box of side L; angular wavenumbers k = 2 pi m / L for integer m (numpy's ``fftfreq`` order);
the DFT is numpy's unnormalised ``fft2``. With these, P_hat(k) = L^2 |FFT(delta)_k|^2 / N^4
(DATA.12) is an unbiased estimate of the power spectrum P(k) that
:func:`nprefgen.data.grf.gaussian_random_field` imposes.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_scalar


class PowerSpectrum(NamedTuple):
    """k: (b,) mean |k| of the modes in each non-empty bin; power: (b,) the estimate;
    n_modes: (b,) number of |delta_k|^2 terms averaged (Fourier grid points times fields)."""

    k: np.ndarray
    power: np.ndarray
    n_modes: np.ndarray


class Histogram(NamedTuple):
    """centres: (b,), values: (b,), edges: (b + 1,)."""

    centres: np.ndarray
    values: np.ndarray
    edges: np.ndarray


def _check_fields(field, name: str = "field") -> np.ndarray:
    """(n, n) or (F, n, n) -> (F, n, n) float64."""
    x = check_array(field, name, ndim=(2, 3), dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.shape[1] != x.shape[2] or x.shape[1] < 2:
        raise ValueError(f"{name}: expected square fields of side >= 2, got shape {x.shape}")
    return x


def evaluate_power(power_fn, k: np.ndarray, name: str = "power_fn") -> np.ndarray:
    """P(k) for an array k > 0, checked: a callable returning finite, non-negative values of k's
    shape (shared by the field generator :mod:`nprefgen.data.grf` and the binned expectation).
    ``name`` is the argument named in errors. -> P(k), k's shape."""
    if not callable(power_fn):
        raise ValueError(f"{name}: expected a callable P(k), got {type(power_fn).__name__}")
    with np.errstate(all="ignore"):
        p = np.asarray(power_fn(k), dtype=np.float64)
    if p.shape != k.shape:
        raise ValueError(f"{name}: expected an array of shape {k.shape} for k of that shape, "
                         f"got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        n_bad = int(np.sum(~np.isfinite(p)) + np.sum(p < 0))
        raise ValueError(f"{name}: expected finite non-negative P(k) for k > 0, got {n_bad} "
                         f"negative or non-finite values")
    return p


def _check_bins(bins, range):
    """``bins``: an int >= 1 or (b + 1,) finite increasing edges; ``range``: None or a finite
    (lo, hi) with lo < hi (numpy.histogram's arguments, checked with their names)."""
    if np.ndim(bins) == 0:
        check_int(bins, "bins", low=1)
    else:
        edges = check_array(bins, "bins", ndim=1)
        if edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError(f"bins: expected at least two increasing edges, got {edges}")
    if range is not None:
        lo_hi = check_array(range, "range", shape=(2,))
        if not lo_hi[0] < lo_hi[1]:
            raise ValueError(f"range: expected (lo, hi) with lo < hi, got {tuple(lo_hi)}")


def wavenumber_grid(n_side: int, box_size: float = 1.0, half: bool = False) -> np.ndarray:
    """|k| on the Fourier grid: k = 2 pi (m_x, m_y) / L (DATA.8).

    Returns (n_side, n_side) in ``fft2`` order, or (n_side, n_side // 2 + 1) in ``rfft2`` order
    when ``half``.
    """
    n_side = check_int(n_side, "n_side", low=2)
    box_size = check_scalar(box_size, "box_size", low=0.0, low_inclusive=False)
    d = box_size / n_side
    ky = 2.0 * np.pi * np.fft.fftfreq(n_side, d=d)
    kx = 2.0 * np.pi * (np.fft.rfftfreq(n_side, d=d) if half else np.fft.fftfreq(n_side, d=d))
    return np.hypot(ky[:, None], kx[None, :])


def power_spectrum_bins(n_side: int, box_size: float, n_bins: int, spacing: str = "linear"):
    """Bin index of every fft2 mode (or -1 outside [k_f, k_Nyquist]), |k| and the edges in k
    (the binning of :func:`power_spectrum`, shared with the cosmology task's likelihood).
    -> idx: (n_side, n_side) int, kmag: (n_side, n_side), edges: (n_bins + 1,).

    Bins are set in units of the fundamental k_f = 2 pi / L, where |k| / k_f = sqrt(mx^2 + my^2)
    is computed exactly from integers: the edges run from 1 to n_side / 2 (the Nyquist
    wavenumber along an axis); corner modes beyond it are left out.
    """
    n_bins = check_int(n_bins, "n_bins", low=1)
    check_choice(spacing, "spacing", ("linear", "log"))
    m = np.fft.fftfreq(n_side, d=1.0 / n_side)                    # integer mode numbers
    q = np.hypot(m[:, None], m[None, :])                          # |k| / k_f, (n, n)
    q_max = n_side / 2
    edges_q = (np.linspace(1.0, q_max, n_bins + 1) if spacing == "linear"
               else np.geomspace(1.0, q_max, n_bins + 1))
    idx = np.searchsorted(edges_q, q, side="right") - 1
    idx[q == q_max] = n_bins - 1                                  # the last edge is inclusive
    idx[(q < 1.0) | (q > q_max)] = -1
    k_f = 2.0 * np.pi / box_size
    return idx.ravel(), q.ravel() * k_f, edges_q * k_f


def power_spectrum(field, box_size: float = 1.0, n_bins: int = 16, spacing: str = "log",
                   overdensity: bool = False) -> PowerSpectrum:
    """Radially averaged power spectrum (DATA.12).

    P_hat_b = (1 / N_b) sum_{k in bin b} L^2 |FFT(delta)_k|^2 / N^4, averaged over the fields too.
    Its mean is the bin average of P(k) (DATA.13) and its variance 2 sum P(k)^2 / n_modes^2,
    the sum running over the n_modes (mode, field) terms of the bin (DATA.14): about
    P / sqrt(n_modes / 2), the error of a mean of n_modes / 2 independent P chi-square(2)/2
    variables (modes k and -k are complex conjugates, so only half of them are free).

    Parameters
    ----------
    field : (n, n) or (F, n, n) real fields delta (F fields are averaged)
    box_size : float, side L of the box
    n_bins : int, bins in |k| between k_f = 2 pi / L and the Nyquist wavenumber pi n / L
    spacing : {"log", "linear"}
    overdensity : bool, first map each field to rho / mean(rho) - 1 (as for density maps)

    Returns
    -------
    PowerSpectrum(k, power, n_modes), each (b,) with b <= n_bins: empty bins are dropped.
    """
    x = _check_fields(field)
    box_size = check_scalar(box_size, "box_size", low=0.0, low_inclusive=False)
    n_fields, n_side = x.shape[0], x.shape[1]
    if overdensity:
        mean = x.mean(axis=(1, 2), keepdims=True)
        if np.any(mean <= 0):
            raise ValueError("field: overdensity=True needs fields with a positive mean")
        x = x / mean - 1.0
    idx, kmag, _ = power_spectrum_bins(n_side, box_size, n_bins, spacing)
    modes = np.fft.fft2(x, axes=(1, 2))                                       # (F, n, n)
    power = (box_size**2 / n_side**4) * np.sum(np.abs(modes) ** 2, axis=0).ravel()  # (DATA.12)
    ok = idx >= 0
    counts = np.bincount(idx[ok], minlength=n_bins)
    sums = np.bincount(idx[ok], weights=power[ok], minlength=n_bins)
    ksum = np.bincount(idx[ok], weights=kmag[ok], minlength=n_bins)
    keep = counts > 0
    n_modes = counts[keep] * n_fields
    return PowerSpectrum(ksum[keep] / counts[keep], sums[keep] / n_modes, n_modes)


def binned_power_spectrum(power_fn, n_side: int, box_size: float = 1.0, n_bins: int = 16,
                          spacing: str = "log", n_fields: int = 1):
    """What :func:`power_spectrum` estimates for a field of spectrum ``power_fn``.

    Returns ``(k, power, sigma, n_modes)`` on the same non-empty bins as
    :func:`power_spectrum`: the mean |k| of each bin's modes, the mean of P(|k|) over them
    (DATA.13), the standard error of the estimate from ``n_fields`` fields,
    sigma = sqrt(2 F sum_{k in bin} P(|k|)^2) / n_modes (DATA.14), and n_modes = F x (grid
    points in the bin).
    """
    n_side = check_int(n_side, "n_side", low=2)
    n_fields = check_int(n_fields, "n_fields", low=1)
    box_size = check_scalar(box_size, "box_size", low=0.0, low_inclusive=False)
    idx, kmag, _ = power_spectrum_bins(n_side, box_size, n_bins, spacing)
    ok = idx >= 0
    p = evaluate_power(power_fn, kmag[ok], "power_fn")
    counts = np.bincount(idx[ok], minlength=n_bins)
    keep = counts > 0
    mean_p = np.bincount(idx[ok], weights=p, minlength=n_bins)[keep] / counts[keep]
    sum_p2 = np.bincount(idx[ok], weights=p * p, minlength=n_bins)[keep]
    kbar = np.bincount(idx[ok], weights=kmag[ok], minlength=n_bins)[keep] / counts[keep]
    sigma = np.sqrt(2.0 * sum_p2 / n_fields) / counts[keep]                  # (DATA.14)
    return kbar, mean_p, sigma, counts[keep] * n_fields


def pixel_histogram(field, bins=50, range=None, density: bool = True) -> Histogram:
    """Histogram of log10(x + 1) over all pixels of all fields (DATA.15).

    field : (n, n) or (F, n, n) with x > -1 (e.g. mass or counts maps)
    bins : int or (b + 1,) edges; range : (lo, hi) of log10(x + 1) when ``bins`` is an int.
    Pass the same ``bins`` edges to compare two sets of fields.
    """
    x = _check_fields(field)
    if np.any(x <= -1.0):
        raise ValueError(f"field: log10(x + 1) needs x > -1, got min {x.min():.4g}")
    _check_bins(bins, range)
    v = np.log10(1.0 + x).ravel()                                            # (DATA.15)
    hist, edges = np.histogram(v, bins=bins, range=range, density=density)
    return Histogram(0.5 * (edges[:-1] + edges[1:]), hist.astype(np.float64), edges)


def find_peaks(field, size: int = 5, periodic: bool = True) -> np.ndarray:
    """Boolean mask of local maxima (DATA.16): pixels strictly larger than every other pixel of
    the size x size window centred on them (ties are not peaks).

    field : (n, n) or (F, n, n); periodic: the window wraps around the edges (fields on a
    torus, like Gaussian random fields), else it is cut at the edges. Returns a mask of the
    input's shape.
    """
    x = check_array(field, "field", ndim=(2, 3), dtype=np.float64)
    size = check_int(size, "size", low=3)
    if size % 2 == 0:
        raise ValueError(f"size: expected an odd window size, got {size}")
    r = size // 2
    x3 = x[None] if x.ndim == 2 else x
    if periodic and min(x3.shape[1:]) < size:
        raise ValueError(f"field: periodic peaks need fields at least {size} pixels wide, "
                         f"got shape {x.shape}")
    pad = ((0, 0), (r, r), (r, r))
    xp = np.pad(x3, pad, mode="wrap") if periodic else np.pad(x3, pad, constant_values=-np.inf)
    h, w = x3.shape[1:]
    peak = np.ones(x3.shape, dtype=bool)
    for dy in np.arange(-r, r + 1):
        for dx in np.arange(-r, r + 1):
            if dy == 0 and dx == 0:
                continue
            peak &= x3 > xp[:, r + dy:r + dy + h, r + dx:r + dx + w]
    return peak[0] if x.ndim == 2 else peak


def peak_counts(field, bins=20, range=None, size: int = 5, periodic: bool = True) -> Histogram:
    """Histogram of the heights of the local maxima (DATA.16), in mean peaks per field.

    field : (n, n) or (F, n, n); bins : int or (b + 1,) edges; range : (lo, hi) of the heights.
    """
    x = _check_fields(field)
    _check_bins(bins, range)
    mask = find_peaks(x, size=size, periodic=periodic)
    heights = x[mask]
    if heights.size == 0 and range is None and np.ndim(bins) == 0:
        range = (float(x.min()), float(x.max()) + 1.0)
    hist, edges = np.histogram(heights, bins=bins, range=range)
    return Histogram(0.5 * (edges[:-1] + edges[1:]), hist / x.shape[0], edges)
