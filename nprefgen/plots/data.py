"""Figures for nprefgen.data: digit grids and class means, toy densities, fields and spectra.

Every function returns a matplotlib ``Figure`` and leaves saving or closing to the caller.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array


def _as_images(images, side: int | None = None) -> np.ndarray:
    x = check_array(images, "images", ndim=(2, 3))
    if x.ndim == 2:
        side = side or int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise ValueError(f"images: expected (n, side^2) or (n, side, side), got {x.shape}")
        x = x.reshape(x.shape[0], side, side)
    return x


def plot_digit_grid(images, labels=None, n_cols: int = 10, title: str | None = None):
    """Grid of images with their labels. images: (n, 64) or (n, 8, 8); labels: (n,)."""
    import matplotlib.pyplot as plt

    x = _as_images(images)
    n = x.shape[0]
    n_rows = int(np.ceil(n / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(0.9 * n_cols, 1.0 * n_rows + 0.3),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i < n:
            ax.imshow(x[i], cmap="gray_r", interpolation="nearest")
            if labels is not None:
                ax.set_title(str(int(labels[i])), fontsize=8, pad=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_class_means(images, labels, title: str | None = None):
    """The mean image of all images, then of each class. images: (n, 64) or (n, 8, 8)."""
    import matplotlib.pyplot as plt

    x = _as_images(images)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    fig, axes = plt.subplots(1, 1 + classes.shape[0], figsize=(1.1 * (1 + classes.shape[0]), 1.6))
    panels = [("all", x.mean(axis=0))] + [(str(int(c)), x[labels == c].mean(axis=0))
                                          for c in classes]
    vmax = max(p.max() for _, p in panels)
    for ax, (name, img) in zip(axes, panels):
        ax.imshow(img, cmap="gray_r", vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_toys(samples: dict, log_probs: dict | None = None, bounds: dict | None = None,
              n_grid: int = 150):
    """One panel per toy: samples (n, 2) as dots, log-density contours where a callable
    ``log_probs[name]`` (x: (m, 2) -> (m,)) is given. ``bounds[name]`` = ((x0, x1), (y0, y1))."""
    import matplotlib.pyplot as plt

    names = list(samples)
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 3.1), squeeze=False)
    for ax, name in zip(axes[0], names):
        x = check_array(samples[name], f"samples[{name!r}]", shape=(None, 2))
        lp = (log_probs or {}).get(name)
        if bounds and name in bounds:
            (x0, x1), (y0, y1) = bounds[name]
        else:
            (x0, y0), (x1, y1) = x.min(axis=0), x.max(axis=0)
        if lp is not None:
            gx, gy = np.linspace(x0, x1, n_grid), np.linspace(y0, y1, n_grid)
            X, Y = np.meshgrid(gx, gy)
            Z = lp(np.stack([X.ravel(), Y.ravel()], axis=1)).reshape(X.shape)
            Z = np.where(np.isfinite(Z), Z, np.nan)
            top = np.nanmax(Z)
            levels = np.r_[top - np.array([10.0, 8.0, 6.0, 4.0, 2.0, 1.0]), top + 1e-9]
            ax.contourf(X, Y, Z, levels=levels, cmap="Blues", alpha=0.6)   # log p in nats
        ax.scatter(x[:, 0], x[:, 1], s=1.5, c="k", alpha=0.5, linewidths=0)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_title(name + ("" if lp is not None else " (no closed-form density)"), fontsize=9)
    fig.tight_layout()
    return fig


def plot_fields(fields: dict, cmap: str = "RdBu_r", cbar_label: str = "field value"):
    """Images of 2-D fields side by side, each with a colour bar labelled ``cbar_label`` on a
    symmetric scale: ``fields[title] = (n, n)`` array."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fields), figsize=(3.4 * len(fields), 3.2), squeeze=False)
    for ax, (title, f) in zip(axes[0], fields.items()):
        f = check_array(f, f"fields[{title!r}]", ndim=2)
        lim = np.max(np.abs(f))
        im = ax.imshow(f, cmap=cmap, vmin=-lim, vmax=lim, origin="lower")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=cbar_label)
    fig.tight_layout()
    return fig


def plot_power_spectra(curves: dict):
    """Measured vs expected power spectra on log-log axes.

    ``curves[label] = dict(k=(b,), power=(b,), expected=(b,), sigma=(b,))``: the measurement
    with error bars ``sigma`` and the expected (input, bin-averaged) spectrum as a line.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.8))
    for i, (label, c) in enumerate(curves.items()):
        color = f"C{i}"
        ax.plot(c["k"], c["expected"], "-", color=color, lw=1.2, label=f"{label}: input P(k)")
        ax.errorbar(c["k"], c["power"], yerr=c["sigma"], fmt="o", ms=3, color=color,
                    capsize=2, label=f"{label}: measured")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("P(k)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_histograms(hists: dict, xlabel: str, ylabel: str = "density"):
    """Step plots of histograms: ``hists[label] = (centres, values)``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for label, (centres, values) in hists.items():
        ax.step(centres, values, where="mid", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
