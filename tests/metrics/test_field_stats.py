"""Field statistics: power spectrum normalisation and binning (DATA.8, DATA.12-DATA.14), pixel
histogram of log10(x + 1) (DATA.15), peaks over a 5x5 window (DATA.16)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from nprefgen.metrics.field_stats import (
    find_peaks, peak_counts, pixel_histogram, power_spectrum, wavenumber_grid,
)


def test_wavenumber_grid():
    """(DATA.8) k = 2 pi m / L in fft order; the half grid is the rfft layout."""
    k = wavenumber_grid(8, 2.0)
    assert k.shape == (8, 8)
    assert k[0, 1] == pytest.approx(np.pi) and k[0, 4] == pytest.approx(4 * np.pi)
    assert k[3, 4] == pytest.approx(5 * np.pi)
    np.testing.assert_array_equal(wavenumber_grid(8, 2.0, half=True), k[:, :5])
    np.testing.assert_array_equal(k, k[(-np.arange(8)) % 8][:, (-np.arange(8)) % 8])  # |k|=|-k|


def test_power_spectrum_of_a_cosine():
    """(DATA.12) exactly: cos(2 pi 3 x / L) has |FFT| = N^2 / 2 at m = (0, +-3), i.e. P_hat =
    L^2 / 4 on those two grid points and 0 elsewhere; the bin holding q = 3 averages them."""
    n, box = 32, 1.5
    x = (np.arange(n) + 0.5) * box / n
    field = np.cos(2 * np.pi * 3 * x / box)[None, :] * np.ones((n, 1))
    ps = power_spectrum(field, box_size=box, n_bins=15, spacing="linear")
    hit = np.flatnonzero(ps.power > 1e-20)
    assert hit.shape == (1,)
    b = hit[0]
    assert ps.power[b] == pytest.approx(2 * box**2 / 4 / ps.n_modes[b], rel=1e-12)
    assert ps.k[b] - 2 * np.pi * 3 / box < 2 * np.pi / box        # the bin around q = 3
    np.testing.assert_allclose(np.delete(ps.power, b), 0.0, atol=1e-25)


def test_binning_counts_every_mode_once():
    n = 24
    m = np.fft.fftfreq(n, 1 / n)
    q = np.hypot(m[:, None], m[None, :])
    in_range = int(np.sum((q >= 1) & (q <= n / 2)))
    for spacing in ("linear", "log"):
        for n_bins in (1, 5, 30):
            ps = power_spectrum(np.ones((3, n, n)), n_bins=n_bins, spacing=spacing)
            assert ps.n_modes.sum() == 3 * in_range
            assert len(ps.k) <= n_bins and np.all(np.diff(ps.k) > 0)
            assert np.all(ps.n_modes > 0)                              # empty bins dropped
    assert power_spectrum(np.ones((n, n)), n_bins=30, spacing="log").k.shape[0] < 30


def log_slope(ps, level):
    """Weighted least-squares slope of log(P / level) on log k and its standard error; the
    weights N_b / 2 are the inverse variances of log P_hat (DATA.14)."""
    w = ps.n_modes / 2.0
    X = np.stack([np.ones_like(ps.k), np.log(ps.k)], axis=1)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    return (cov @ X.T @ (w * np.log(ps.power / level)))[1], np.sqrt(cov[1, 1])


def test_white_noise_spectrum_is_flat():
    """(DATA.12)-(DATA.14) iid N(0, v) pixels: P = v L^2 / N^2 in every bin, within 4 sigma of
    sqrt(2 / N_b) P; and a weighted fit of log P on log k has slope 0 within 4 standard errors.
    A smoothed (red) field fails both."""
    n, box, v, n_fields = 64, 3.0, 0.7, 8
    field = np.sqrt(v) * np.random.default_rng(31).standard_normal((n_fields, n, n))
    ps = power_spectrum(field, box_size=box, n_bins=14)
    flat = v * box**2 / n**2
    sigma = flat * np.sqrt(2.0 / ps.n_modes)
    assert np.max(np.abs(ps.power - flat) / sigma) < 4.0
    slope, se = log_slope(ps, flat)
    assert abs(slope) < 4 * se
    smooth = sum(np.roll(field, (i, j), axis=(1, 2)) for i in (0, 1) for j in (0, 1)) / 2.0
    ps_s = power_spectrum(smooth, box_size=box, n_bins=14)      # same pixel variance v
    assert np.max(np.abs(ps_s.power - flat) / sigma) > 10
    slope, se = log_slope(ps_s, flat)
    assert slope < -10 * se


def test_overdensity():
    rng = np.random.default_rng(2)
    delta = 0.1 * rng.standard_normal((2, 16, 16))
    delta -= delta.mean(axis=(1, 2), keepdims=True)
    rho = 5.0 * (1 + delta)
    a = power_spectrum(rho, overdensity=True)
    b = power_spectrum(delta)
    np.testing.assert_allclose(a.power, b.power, rtol=1e-12)
    with pytest.raises(ValueError, match="^field: overdensity"):
        power_spectrum(delta, overdensity=True)


def test_pixel_histogram_of_log10():
    """(DATA.15) values 0, 9, 99, 999 map to log10(x + 1) = 0, 1, 2, 3."""
    field = np.array([[0.0, 9.0, 99.0, 999.0]] * 4)
    h = pixel_histogram(field, bins=np.array([-0.5, 0.5, 1.5, 2.5, 3.5]), density=False)
    np.testing.assert_array_equal(h.values, [4, 4, 4, 4])
    np.testing.assert_allclose(h.centres, [0, 1, 2, 3])
    rng = np.random.default_rng(3)
    maps = rng.lognormal(0.0, 1.0, (3, 16, 16))
    hd = pixel_histogram(maps, bins=20)
    assert np.sum(hd.values * np.diff(hd.edges)) == pytest.approx(1.0, rel=1e-12)
    with pytest.raises(ValueError, match=r"^field: log10\(x \+ 1\) needs x > -1"):
        pixel_histogram(np.full((4, 4), -1.0))


def test_peaks_on_a_hand_built_field():
    """(DATA.16) spikes on a flat field: isolated spikes are peaks, a spike within 2 pixels of a
    higher one is not, plateaus (ties) are not, and the window wraps around when periodic."""
    f = np.zeros((20, 20))
    f[5, 5], f[5, 8] = 3.0, 2.0          # 3 columns apart: both peaks
    f[12, 12], f[13, 14] = 4.0, 1.0      # within the 5x5 window of the 4: only the 4
    f[16, 3] = f[16, 4] = 5.0            # a plateau of two equal pixels: no peak
    f[0, 0], f[19, 18] = 1.5, 1.0        # neighbours through the wrap-around
    f[9, 19] = 2.5                       # at the right edge
    got = {tuple(p) for p in np.argwhere(find_peaks(f))}
    assert got == {(5, 5), (5, 8), (12, 12), (0, 0), (9, 19)}
    got_open = {tuple(p) for p in np.argwhere(find_peaks(f, periodic=False))}
    assert got_open == got | {(19, 18)}
    both = np.stack([f, -f])             # -f has no peaks: its maxima are tied zeros
    pc = peak_counts(both, bins=np.array([0.0, 1.25, 2.25, 3.5, 4.5]))
    np.testing.assert_allclose(pc.values, np.array([0, 2, 2, 1]) / 2)   # per field
    assert pc.centres.shape == (4,)
    assert find_peaks(np.ones((6, 6))).sum() == 0


def test_peak_window_size():
    f = np.zeros((15, 15))
    f[4, 4], f[4, 7] = 2.0, 1.0          # 3 apart: separate in 5x5, not in 7x7
    assert find_peaks(f, size=5).sum() == 2
    assert find_peaks(f, size=7).sum() == 1
    assert find_peaks(f, size=3).sum() == 2


@given(seed=st.integers(0, 10_000), n=st.integers(5, 24), periodic=st.booleans())
def test_find_peaks_matches_scipy_maximum_filter(seed, n, periodic):
    """Continuous random fields have no ties, so a peak is where x equals its 5x5 maximum."""
    x = np.random.default_rng(seed).standard_normal((2, n, n))
    mode = "wrap" if periodic else "constant"
    ref = x == ndimage.maximum_filter(x, size=(1, 5, 5), mode=mode, cval=-np.inf)
    np.testing.assert_array_equal(find_peaks(x, periodic=periodic), ref)


@pytest.mark.parametrize("call,arg", [
    (lambda: power_spectrum(np.zeros((4, 5))), "field"),
    (lambda: power_spectrum(np.zeros(16)), "field"),
    (lambda: power_spectrum(np.zeros((8, 8)), n_bins=0), "n_bins"),
    (lambda: power_spectrum(np.zeros((8, 8)), spacing="cubic"), "spacing"),
    (lambda: power_spectrum(np.zeros((8, 8)), box_size=-1.0), "box_size"),
    (lambda: power_spectrum(np.full((8, 8), np.inf)), "field"),
    (lambda: find_peaks(np.zeros((8, 8)), size=4), "size"),
    (lambda: find_peaks(np.zeros((4, 4))), "field"),
])
def test_bad_inputs_name_the_argument(call, arg):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        call()
