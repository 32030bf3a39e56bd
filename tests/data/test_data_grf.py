"""Gaussian random fields: the construction (DATA.8-DATA.10), the pixel variance (DATA.11) and
recovery of the input spectrum by the estimator within its sampling error (DATA.12-DATA.14)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nprefgen.data.grf import field_variance, gaussian_random_field, power_law
from nprefgen.metrics.field_stats import binned_power_spectrum, power_spectrum, wavenumber_grid


def bumpy(k):
    """A spectrum that is not a power law: a slope, a bump and a cut-off."""
    return 0.02 * k**-1.0 * (1 + 3 * np.exp(-0.5 * ((k - 60.0) / 10.0) ** 2)) * np.exp(-k / 300)


def z_scores(delta, p_fn, box, n_bins, spacing="log"):
    ps = power_spectrum(delta, box_size=box, n_bins=n_bins, spacing=spacing)
    k, expected, sigma, n_modes = binned_power_spectrum(p_fn, delta.shape[-1], box, n_bins,
                                                        spacing, n_fields=delta.shape[0])
    np.testing.assert_allclose(ps.k, k, rtol=1e-14)
    np.testing.assert_array_equal(ps.n_modes, n_modes)
    return (ps.power - expected) / sigma, ps


@pytest.mark.parametrize("p_fn,spacing", [(power_law(1e-3, 2.5), "log"), (bumpy, "linear")])
def test_estimator_recovers_input_spectrum(p_fn, spacing):
    """(DATA.8)-(DATA.10) fields of spectrum P; (DATA.12) the estimate; (DATA.13) its mean is the
    bin average of P; (DATA.14) its error sqrt(2 sum P^2) / N_b. Every bin within 4 sigma and
    sum z^2 below the 1 - 1e-4 chi-square quantile (16 fields of 64^2: >= 64 terms per bin,
    so z is close to normal)."""
    box, n_bins = 2.0, 12
    delta = gaussian_random_field(64, p_fn, rng=np.random.default_rng(21), box_size=box,
                                  n_fields=16)
    z, ps = z_scores(delta, p_fn, box, n_bins, spacing)
    assert ps.n_modes.min() >= 64 and len(z) >= 10
    assert np.max(np.abs(z)) < 4.0, z
    assert np.sum(z * z) < stats.chi2.ppf(1 - 1e-4, len(z))


def test_wrong_normalisation_is_caught():
    """The same check fails when the box size (hence the normalisation L^2 / N^4) is wrong."""
    p_fn = power_law(1e-3, 2.5)
    delta = gaussian_random_field(64, p_fn, rng=np.random.default_rng(21), box_size=2.0,
                                  n_fields=16)
    z, _ = z_scores(delta, p_fn, 1.0, 12)
    assert np.max(np.abs(z)) > 10


def test_matches_a_full_plane_construction():
    """(DATA.10) equals IFFT(N sqrt(P) / L * FFT(w)) on the full plane with the same white noise:
    the rfft half-plane path keeps Hermitian symmetry, so the full-plane result is real. Odd and
    even sizes."""
    p_fn = power_law(1.0, 3.0)
    for n_side in (15, 16):
        box = 3.0
        delta = gaussian_random_field(n_side, p_fn, rng=np.random.default_rng(4), box_size=box,
                                      n_fields=3)
        white = np.random.default_rng(4).standard_normal((3, n_side, n_side))
        k = wavenumber_grid(n_side, box)
        amp = np.zeros_like(k)
        amp[k > 0] = n_side * np.sqrt(p_fn(k[k > 0])) / box
        full = np.fft.ifft2(amp * np.fft.fft2(white, axes=(1, 2)), axes=(1, 2))
        assert np.max(np.abs(full.imag)) < 1e-12 * np.max(np.abs(full.real))
        np.testing.assert_allclose(delta, full.real, rtol=1e-10, atol=1e-13)
        assert delta.shape == (3, n_side, n_side) and delta.dtype == np.float64
        np.testing.assert_allclose(delta.mean(axis=(1, 2)), 0.0, atol=1e-12)   # A_0 = 0


def test_every_mode_has_the_prescribed_variance():
    """(DATA.9) <|FFT(delta)_k|^2> = N^4 P(k) / L^2 mode by mode, over F = 400 fields of 8 x 8.
    |FFT|^2 / E is chi2(2)/2 (variance 1) for complex modes and chi2(1) (variance 2) for the
    real self-conjugate (Nyquist) modes: a mean of F has sd sqrt(var / F); require 4 sd."""
    n, box, n_fields = 8, 0.7, 400
    p_fn = power_law(3.0, 2.0)
    delta = gaussian_random_field(n, p_fn, rng=np.random.default_rng(8), box_size=box,
                                  n_fields=n_fields)
    mean_sq = np.mean(np.abs(np.fft.fft2(delta, axes=(1, 2))) ** 2, axis=0)   # (n, n)
    k = wavenumber_grid(n, box)
    expected = np.zeros_like(k)
    expected[k > 0] = n**4 * p_fn(k[k > 0]) / box**2
    m = np.arange(n)
    self_conj = ((2 * m[:, None]) % n == 0) & ((2 * m[None, :]) % n == 0)
    sd = expected * np.sqrt(np.where(self_conj, 2.0, 1.0) / n_fields)
    assert mean_sq[0, 0] < 1e-20                                      # the removed k = 0 mode
    z = (mean_sq - expected)[k > 0] / sd[k > 0]
    assert np.max(np.abs(z)) < 4.0, z


def test_pixel_variance_matches_sum_of_spectrum():
    """(DATA.11) E[delta^2] = sum_{k != 0} P / L^2. The mean over F fields of the spatial mean of
    delta^2 has variance 2 sum_k P^2 / (L^4 F) (every grid point contributes 2 P^2, as in
    DATA.14); require 4 standard deviations."""
    box, n_side, n_fields = 0.5, 32, 40
    p_fn = power_law(2e-4, 1.5)
    delta = gaussian_random_field(n_side, p_fn, rng=np.random.default_rng(5), box_size=box,
                                  n_fields=n_fields)
    k = wavenumber_grid(n_side, box)
    p = p_fn(k[k > 0])
    expected = field_variance(p_fn, n_side, box)
    assert expected == pytest.approx(p.sum() / box**2, rel=1e-14)
    sd = np.sqrt(2 * np.sum(p**2) / (box**4 * n_fields))
    assert abs(np.mean(delta**2) - expected) < 4 * sd


def test_white_spectrum_gives_white_noise():
    """P = v L^2 / N^2 (flat) gives iid pixels of variance v (less the removed k = 0 mode)."""
    n_side, box, v = 32, 1.0, 2.5
    delta = gaussian_random_field(n_side, lambda k: np.full_like(k, v * box**2 / n_side**2),
                                  rng=np.random.default_rng(6), box_size=box, n_fields=8)
    expected = v * (1 - 1 / n_side**2)
    assert field_variance(lambda k: np.full_like(k, v * box**2 / n_side**2), n_side, box) == \
        pytest.approx(expected, rel=1e-12)
    x = delta.reshape(8, -1)
    corr = np.mean(x[:, 1:] * x[:, :-1]) / np.mean(x * x)
    assert abs(corr) < 4 / np.sqrt(x.size)
    assert abs(np.var(x) / expected - 1) < 4 * np.sqrt(2 / x.size)


def test_determinism_and_independence():
    p_fn = power_law()
    a = gaussian_random_field(16, p_fn, rng=np.random.default_rng(1), n_fields=2)
    b = gaussian_random_field(16, p_fn, rng=np.random.default_rng(1), n_fields=2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], a[1])


@pytest.mark.parametrize("kwargs,arg", [
    ({"n_side": 1}, "n_side"),
    ({"power_spectrum": 3.0}, "power_spectrum"),
    ({"power_spectrum": lambda k: -k}, "power_spectrum"),
    ({"power_spectrum": lambda k: k * np.nan}, "power_spectrum"),
    ({"power_spectrum": lambda k: 1.0}, "power_spectrum"),
    ({"rng": "0"}, "rng"),
    ({"box_size": 0.0}, "box_size"),
    ({"n_fields": 0}, "n_fields"),
])
def test_bad_inputs_name_the_argument(kwargs, arg):
    args = {"n_side": 8, "power_spectrum": power_law(), "rng": np.random.default_rng(0)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{arg}:"):
        gaussian_random_field(**args)
