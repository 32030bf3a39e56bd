"""Tour section: Gaussian random fields and their field statistics (nprefgen.data.grf)."""
from __future__ import annotations

import numpy as np
from scipy import stats

from nprefgen.data.grf import field_variance, gaussian_random_field, power_law
from nprefgen.metrics.field_stats import binned_power_spectrum, peak_counts, power_spectrum
from nprefgen.plots.data import plot_fields, plot_histograms, plot_power_spectra
from nprefgen.tour import rules

ORDER = 13
TITLE = "Data: Gaussian random fields and field statistics"


def build(report) -> None:
    rng = report.rng("grf")
    n_side, n_fields, n_bins = (32, 4, 8) if report.quick else (128, 32, 16)
    box = 1.0
    report.text(
        "Gaussian random fields on a periodic box with power-law spectra P(k) = A k^-n, made "
        "by colouring white noise in Fourier space (DATA.10). The radially averaged "
        "|FFT|^2 estimator (DATA.12) recovers the input spectrum within its sampling error "
        "sigma = sqrt(2 sum P^2) / N_modes (DATA.14).")
    slopes = {"n = 2": 2.0, "n = 3": 3.0}
    fields, curves, rows, peaks = {}, {}, [], {}
    for label, slope in slopes.items():
        # amplitude for unit expected pixel variance (DATA.11): one colour scale for both
        p_fn = power_law(1.0 / field_variance(power_law(1.0, slope), n_side, box), slope)
        delta = gaussian_random_field(n_side, p_fn, rng=rng, box_size=box, n_fields=n_fields)
        fields[label] = delta[0]
        ps = power_spectrum(delta, box_size=box, n_bins=n_bins)
        k, expected, sigma, _ = binned_power_spectrum(p_fn, n_side, box, n_bins,
                                                      n_fields=n_fields)
        curves[label] = dict(k=ps.k, power=ps.power, expected=expected, sigma=sigma)
        z = (ps.power - expected) / sigma
        chi2 = rules.chi2_per_bin(report, f"{label}: chi2 / bin", float(np.sum(z * z) / len(k)),
                                  len(k), show=False)
        z_max = float(np.max(np.abs(z)))
        z_bar = float(stats.norm.ppf(1.0 - (1.0 - rules.LEVEL) / (2 * len(k))))
        zc = report.check(f"{label}: max |z|", z_max, f"max |z| < {z_bar:.2f} (two-sided 1 % "
                          f"over {len(k)} bins, Bonferroni)", bool(z_max < z_bar), show=False)
        rows.append([label, n_side, n_fields, len(k), chi2.value, chi2, z_max, zc])
        pc = peak_counts(delta, bins=np.linspace(0.0, 4.0, 17))
        peaks[label] = (pc.centres, pc.values)
    report.figure(plot_fields(fields, cbar_label="delta (pixel std. units)"), "fields",
                  f"one {n_side}x{n_side} field per slope, amplitude set for unit pixel "
                  "variance (DATA.11)")
    report.figure(plot_power_spectra(curves), "pk",
                  f"measured P(k) ({n_fields} fields, error bars: DATA.14) vs the input "
                  "spectrum averaged over the same modes (DATA.13)")
    lo, hi = rules.chi2_bounds(n_bins)
    report.table(["spectrum", "n_side", "fields", "bins", "chi2 / bin", "chi2 in range",
                  "max |z|", "max |z| in range"], rows, status_col=[5, 7],
                 caption=f"z = (measured - input) / sigma per bin; chi2 / bin ~ 1 when the "
                         f"estimator and its error bars are right: with {n_bins} bins it lies in "
                         f"[{lo:.2f}, {hi:.2f}] 99 % of the time (z is only roughly Gaussian in "
                         f"the lowest bins, which hold few modes)")
    report.figure(plot_histograms(peaks, "peak height (pixel std. units)",
                                  "peaks per field"), "peaks",
                  "peak counts: local maxima over 5x5 pixels (DATA.16); the steeper spectrum "
                  "is smoother and has fewer peaks")
