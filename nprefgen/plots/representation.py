"""Figures for representation learning: PCA components and spectra, reconstructions, latent
maps, training curves, principal angles, augmented views.

Every function returns a matplotlib ``Figure`` and leaves saving or closing to the caller.
Images are given as flat rows ``(n, h w)`` (square images) or ``(n, h, w)``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from nprefgen._validation import check_array


def _images(x, name: str = "images") -> np.ndarray:
    x = check_array(x, name, ndim=(2, 3))
    if x.ndim == 2:
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise ValueError(f"{name}: expected (n, side^2) or (n, h, w), got {x.shape}")
        x = x.reshape(x.shape[0], side, side)
    return x


def plot_components(mean, components, ratios=None, n_show: int = 15):
    """The mean image then the first principal directions, each with its variance ratio.
    mean: (D,), components: (k, D), ratios: (k,) or None."""
    import matplotlib.pyplot as plt

    comps = _images(np.asarray(components)[:n_show], "components")
    mu = _images(np.asarray(mean)[None], "mean")[0]
    n = comps.shape[0] + 1
    n_cols = min(n, 8)
    n_rows = int(np.ceil(n / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.3 * n_cols, 1.45 * n_rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    axes.ravel()[0].imshow(mu, cmap="gray_r", interpolation="nearest")
    axes.ravel()[0].set_title("mean", fontsize=8)
    for j, c in enumerate(comps):
        ax = axes.ravel()[j + 1]
        lim = np.abs(c).max()
        ax.imshow(c, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        label = f"v{j + 1}" + (f" {100 * ratios[j]:.1f}%" if ratios is not None else "")
        ax.set_title(label, fontsize=8)
    fig.tight_layout()
    return fig


def plot_explained_variance(ratios, marks: Sequence[int] = ()):
    """Variance ratio per component (bars) and cumulative (line). ratios: (d,)."""
    import matplotlib.pyplot as plt

    r = check_array(ratios, "ratios", ndim=1)
    k = np.arange(1, r.size + 1)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.bar(k, r, color="tab:blue", alpha=0.6, label="per component")
    ax2 = ax.twinx()
    ax2.plot(k, np.cumsum(r), color="tab:red", label="cumulative")
    for m in marks:
        ax2.axvline(m, color="gray", lw=0.6, ls=":")
    ax.set_xlabel("component")
    ax.set_ylabel("explained variance ratio")
    ax2.set_ylabel("cumulative", color="tab:red")
    ax2.set_ylim(0, 1.02)
    fig.tight_layout()
    return fig


def plot_reconstructions(originals, reconstructions: Mapping[str, np.ndarray]):
    """Rows: the originals, then one row per named reconstruction. Arrays (n, D) or (n, h, w)."""
    import matplotlib.pyplot as plt

    rows = {"original": _images(originals, "originals")}
    rows.update({k: _images(v, k) for k, v in reconstructions.items()})
    n = rows["original"].shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(0.8 * n + 1.6, 0.85 * len(rows)), squeeze=False)
    for i, (name, imgs) in enumerate(rows.items()):
        for j in range(n):
            ax = axes[i, j]
            ax.imshow(np.clip(imgs[j], 0, 1), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig


def plot_latent_map(Z, labels, title: str = "", ax=None):
    """2-D codes coloured by class label. Z: (n, 2), labels: (n,) integers."""
    import matplotlib.pyplot as plt

    Z = check_array(Z, "Z", shape=(None, 2))
    labels = np.asarray(labels)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4.4))
    cmap = plt.get_cmap("tab10")
    for c in np.unique(labels):
        m = labels == c
        ax.scatter(Z[m, 0], Z[m, 1], s=6, color=cmap(int(c) % 10), label=str(int(c)), alpha=0.8)
        ax.annotate(str(int(c)), np.median(Z[m], axis=0), fontsize=12, weight="bold",
                    ha="center", va="center", color=cmap(int(c) % 10),
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", alpha=0.6, lw=0))
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    if fig is not None:
        fig.tight_layout()
        return fig
    return ax.figure


def plot_latent_maps(maps: Mapping[str, tuple[np.ndarray, np.ndarray]]):
    """Several latent maps side by side: {title: (Z (n, 2), labels (n,))}."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(4.6 * len(maps), 4.3), squeeze=False)
    for ax, (title, (Z, y)) in zip(axes[0], maps.items()):
        plot_latent_map(Z, y, title, ax=ax)
    fig.tight_layout()
    return fig


def plot_loss_curves(curves: Mapping[str, Sequence[float]], ylabel: str = "loss", logy: bool = False):
    """One line per named curve (e.g. train / validation loss per epoch)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for name, values in curves.items():
        v = np.asarray(values, dtype=float)
        if v.size:
            ax.plot(np.arange(1, v.size + 1), v, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_subspace_angles(steps, angles: Mapping[str, np.ndarray], threshold: float = 1e-2):
    """Largest principal angle (radians, log scale) against training steps, one line per
    named run, with the test's threshold. steps: (m,); angles: {name: (m,)}."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for name, a in angles.items():
        ax.semilogy(steps, np.maximum(np.asarray(a), 1e-16), label=name)
    ax.axhline(threshold, color="gray", ls="--", lw=0.8, label=f"{threshold:g} rad")
    ax.set_xlabel("full-batch Adam steps")
    ax.set_ylabel("largest principal angle (rad)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_views(originals, views: Sequence[np.ndarray]):
    """Each column an image: the original on top, then its augmented views below."""
    import matplotlib.pyplot as plt

    rows = [_images(originals, "originals")] + [_images(v, "views") for v in views]
    n = rows[0].shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(0.8 * n, 0.85 * len(rows)), squeeze=False)
    for i, imgs in enumerate(rows):
        for j in range(n):
            axes[i, j].imshow(imgs[j], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            axes[i, j].set_axis_off()
    fig.tight_layout()
    return fig
