"""nprefgen.metrics: two-sample tests and field statistics.

- :func:`c2st` (c2st.py, SBI.20): classifier two-sample test accuracy, as sbibm.
- :func:`mmd2`, :func:`mmd_permutation_test` (mmd.py): maximum mean discrepancy, Gaussian kernel.
- :func:`power_spectrum`, :func:`pixel_histogram`, :func:`peak_counts` (field_stats.py): summary
  statistics of 2-D fields (derivations/data.md).
- :func:`frechet_distance`, :func:`frechet_floor` (frechet.py, GAN.13): Frechet distance of
  8x8 digit samples in a bundled classifier's feature space.
"""
from nprefgen.metrics.c2st import c2st, train_classifier
from nprefgen.metrics.field_stats import (
    Histogram, PowerSpectrum, binned_power_spectrum, find_peaks, peak_counts, pixel_histogram,
    power_spectrum, wavenumber_grid,
)
from nprefgen.metrics.frechet import frechet_distance, frechet_floor
from nprefgen.metrics.mmd import median_bandwidth, mmd2, mmd_permutation_test

__all__ = [
    "c2st", "train_classifier", "mmd2", "mmd_permutation_test", "median_bandwidth",
    "power_spectrum", "binned_power_spectrum", "PowerSpectrum", "pixel_histogram", "Histogram",
    "peak_counts", "find_peaks", "wavenumber_grid", "frechet_distance", "frechet_floor",
]
