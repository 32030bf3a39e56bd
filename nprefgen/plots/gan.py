"""Figures for GANs: generated samples on a 2-D toy over the course of training
(derivations/gan.md). ``plot_*`` functions return a matplotlib ``Figure``."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from nprefgen._validation import check_array


def plot_sample_snapshots(snapshots: Mapping[str, np.ndarray], data, means=None,
                          bounds: float = 3.0):
    """One panel per snapshot: generated samples (n, 2) over the real data (grey) and the mode
    centres (crosses). snapshots: {title: samples}; data: (m, 2); means: (K, 2) or None."""
    import matplotlib.pyplot as plt

    data = check_array(data, "data", shape=(None, 2))
    fig, axes = plt.subplots(1, len(snapshots), figsize=(2.6 * len(snapshots), 2.8), squeeze=False)
    for ax, (title, s) in zip(axes[0], snapshots.items()):
        s = check_array(s, "snapshots", shape=(None, 2))
        ax.scatter(data[:, 0], data[:, 1], s=2, color="0.8")
        ax.scatter(s[:, 0], s[:, 1], s=2, color="C3", alpha=0.6)
        if means is not None:
            mu = check_array(means, "means", shape=(None, 2))
            ax.scatter(mu[:, 0], mu[:, 1], marker="x", color="k", s=20)
        ax.set_xlim(-bounds, bounds)
        ax.set_ylim(-bounds, bounds)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_field_maps(maps: Mapping[str, np.ndarray], n_show: int = 4):
    """Rows of maps side by side: {row title: fields (F, n, n)}, the first ``n_show`` of each,
    shown as log10(1 + delta) on one colour scale."""
    import matplotlib.pyplot as plt

    rows = {k: np.log10(1.0 + check_array(v, k, ndim=3)[:n_show]) for k, v in maps.items()}
    lo = min(float(np.percentile(v, 1)) for v in rows.values())
    hi = max(float(np.percentile(v, 99)) for v in rows.values())
    fig, axes = plt.subplots(len(rows), n_show, figsize=(1.7 * n_show + 1.2, 1.8 * len(rows)),
                             squeeze=False)
    for i, (title, fields) in enumerate(rows.items()):
        for j in range(n_show):
            ax = axes[i, j]
            ax.imshow(fields[j], cmap="magma", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_field_statistics(stats: Mapping[str, tuple], band=None, k_half=None):
    """Three panels: power spectrum ratio to the held-out real maps against k, pixel histogram
    of log10(1 + delta) and peak counts. ``stats``: {name: (k, power_ratio, (hist_x, hist_y),
    (peak_x, peak_y))}; ``band``: (k, lo, hi) the real maps' two-halves spread of the ratio;
    ``k_half``: half the Nyquist wavenumber (a vertical line)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    if band is not None:
        axes[0].fill_between(band[0], band[1], band[2], color="0.85", label="real: two halves")
    axes[0].axhspan(0.9, 1.1, color="C2", alpha=0.12, label="within 10 %")
    for i, (name, (k, ratio, hist, peaks)) in enumerate(stats.items()):
        axes[0].plot(k, ratio, "o-", ms=3, color=f"C{i}", label=name)
        axes[1].plot(hist[0], hist[1], color=f"C{i}", label=name)
        axes[2].plot(peaks[0], peaks[1], color=f"C{i}", label=name)
    if k_half is not None:
        axes[0].axvline(k_half, color="k", lw=0.8, ls=":")
    axes[0].set_xscale("log")
    axes[0].xaxis.set_major_locator(LogLocator(base=2))      # k = 4, 8, 16, ...: no crowded
    axes[0].xaxis.set_major_formatter(ScalarFormatter())     # 2 x 10^1-style minor labels
    axes[0].xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_xlabel("k")
    axes[0].set_ylabel("P(k) / P_real(k)")
    axes[1].set_xlabel("log10(1 + delta)")
    axes[1].set_ylabel("pixel density")
    axes[1].set_yscale("log")
    axes[2].set_xlabel("peak height delta")
    axes[2].set_ylabel("peaks per map")
    axes[2].set_yscale("log")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
