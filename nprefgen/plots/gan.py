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
