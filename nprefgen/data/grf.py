"""Gaussian random fields with a prescribed power spectrum (derivations/data.md, DATA.8-DATA.11).

A statistically homogeneous, isotropic Gaussian field delta on a periodic box of side L is fixed
by its power spectrum P(k), <delta(k) delta*(k')> = (2 pi)^2 delta_D(k - k') P(|k|) (DATA.8).
On an N x N grid the Fourier modes must be independent complex Gaussians with
<|FFT(delta)_k|^2> = N^4 P(|k|) / L^2 (DATA.9) and Hermitian symmetry FFT(delta)_{-k} =
conj(FFT(delta)_k), so that delta is real. The DFT of real white noise has exactly this structure
with <|W_k|^2> = N^2, hence (DATA.10)

    delta = IFFT( N sqrt(P(|k|)) / L * FFT(w) ),  w ~ N(0, I),

computed with rfft2/irfft2 on the half plane. The k = 0 mode is set to zero: the fields have
zero spatial mean and P(0) is never evaluated (power laws diverge there).

A log-normal field (derivations/fields.md, FIELD.7) is built from a Gaussian one g of pixel
variance sigma_g^2 (DATA.11): delta = exp(g - sigma_g^2 / 2) - 1 has mean zero, is bounded below
by -1 and has a long positive tail, a toy of the cosmic web's non-Gaussian density field.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_alloc, check_int, check_rng, check_scalar
from nprefgen.metrics.field_stats import evaluate_power, wavenumber_grid


def power_law(amplitude: float = 1.0, slope: float = 2.0):
    """P(k) = amplitude * k^(-slope), a callable for :func:`gaussian_random_field`."""
    amplitude = check_scalar(amplitude, "amplitude", low=0.0)
    slope = check_scalar(slope, "slope")

    def p(k):
        return amplitude * np.asarray(k, dtype=np.float64) ** (-slope)

    return p


def field_variance(power_spectrum, n_side: int, box_size: float = 1.0) -> float:
    """Expected pixel variance of :func:`gaussian_random_field` (DATA.11):
    sigma^2 = (1 / L^2) sum_{k != 0} P(|k|) over the N x N Fourier grid."""
    n_side = check_int(n_side, "n_side", low=2)
    check_alloc((n_side, n_side), "n_side")
    box_size = check_scalar(box_size, "box_size", low=0.0, low_inclusive=False)
    k = wavenumber_grid(n_side, box_size)                                  # (N, N) full plane
    return float(np.sum(evaluate_power(power_spectrum, k[k > 0], "power_spectrum"))
                 / box_size**2)


def gaussian_random_field(n_side: int, power_spectrum, *, rng=None,
                          box_size: float = 1.0, n_fields: int = 1) -> np.ndarray:
    """Real Gaussian random fields whose expected power spectrum is ``power_spectrum`` (DATA.10).

    Parameters
    ----------
    n_side : int, pixels per side N
    power_spectrum : callable, P(k) for an array of angular wavenumbers k = 2 pi m / L > 0;
        must return finite, non-negative values of the same shape
    rng : None, an int seed or a Generator (SPEC 7), draws the white noise
    box_size : float, the side L (pixel size L / N)
    n_fields : int, independent fields F

    Returns
    -------
    delta : (F, N, N) float64, zero spatial mean, pixel variance sum_{k != 0} P(|k|) / L^2
        (DATA.11); :func:`nprefgen.metrics.field_stats.power_spectrum` recovers P(k).
    """
    n_side = check_int(n_side, "n_side", low=2)
    rng = check_rng(rng)
    box_size = check_scalar(box_size, "box_size", low=0.0, low_inclusive=False)
    n_fields = check_int(n_fields, "n_fields", low=1)
    check_alloc((n_side, n_side), "n_side")
    check_alloc((n_fields, n_side, n_side), "n_fields")
    k = wavenumber_grid(n_side, box_size, half=True)                      # (N, N//2 + 1)
    p = np.zeros_like(k)
    nonzero = k > 0
    p[nonzero] = evaluate_power(power_spectrum, k[nonzero], "power_spectrum")
    amplitude = n_side * np.sqrt(p) / box_size                            # (DATA.10), A_0 = 0
    white = rng.standard_normal((n_fields, n_side, n_side))
    modes = np.fft.rfft2(white, axes=(1, 2)) * amplitude                   # Hermitian half plane
    return np.fft.irfft2(modes, s=(n_side, n_side), axes=(1, 2))


def lognormal_field(n_side: int, power_spectrum, *, rng=None, box_size: float = 1.0,
                    n_fields: int = 1) -> np.ndarray:
    """(FIELD.7) delta = exp(g - sigma_g^2 / 2) - 1 with g a :func:`gaussian_random_field` of
    spectrum ``power_spectrum`` and sigma_g^2 its expected pixel variance (DATA.11), so that
    E[delta] = 0 and delta > -1. Arguments as in :func:`gaussian_random_field`.

    Returns
    -------
    delta : (F, N, N) float64
    """
    g = gaussian_random_field(n_side, power_spectrum, rng=rng, box_size=box_size,
                              n_fields=n_fields)
    var = field_variance(power_spectrum, n_side, box_size)
    return np.expm1(g - 0.5 * var)
