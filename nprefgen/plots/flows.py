"""Figures for normalizing flows: learned densities on a grid, samples, training curves
(derivations/flows.md), and grids of image samples (derivations/splines.md).

``draw_*`` functions draw into a given Axes; ``plot_*`` functions return a matplotlib ``Figure``
and leave saving or closing to the caller.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_int, check_rng


def _bounds(bounds):
    b = check_array(bounds, "bounds", shape=(2, 2))
    if np.any(b[:, 1] <= b[:, 0]):
        raise ValueError(f"bounds: expected ((x_lo, x_hi), (y_lo, y_hi)) with lo < hi, got {b.tolist()}")
    return b


def density_grid(flow, bounds, n_grid: int = 200, context=None, batch_size: int = 20000):
    """log p on an ``n_grid`` x ``n_grid`` grid over ``bounds`` for a 2-D flow (FLOW.1).

    bounds: ((x_lo, x_hi), (y_lo, y_hi)); context: one (C,) row or None.
    -> gx, gy: (n_grid,), log_p: (n_grid, n_grid) with rows along y.
    """
    if getattr(flow, "dim", None) != 2:
        raise ValueError(f"flow: expected a 2-D flow, got dim {getattr(flow, 'dim', None)}")
    b = _bounds(bounds)
    n_grid = check_int(n_grid, "n_grid", low=2)
    gx, gy = np.linspace(*b[0], n_grid), np.linspace(*b[1], n_grid)
    xx, yy = np.meshgrid(gx, gy)
    pts = np.column_stack([xx.ravel(), yy.ravel()])
    log_p = np.concatenate([flow.log_prob(pts[s:s + batch_size], context)
                            for s in range(0, pts.shape[0], batch_size)])
    return gx, gy, log_p.reshape(n_grid, n_grid)


def _draw_log_p(ax, gx, gy, log_p, title, cmap, gamma) -> None:
    """exp(log p) on a grid as an image; colour ~ density^gamma."""
    from matplotlib.colors import PowerNorm

    ax.imshow(np.exp(log_p), origin="lower", extent=(gx[0], gx[-1], gy[0], gy[-1]),
              aspect="auto", cmap=cmap, interpolation="bilinear", norm=PowerNorm(gamma))
    ax.set_xlim(gx[0], gx[-1])
    ax.set_ylim(gy[0], gy[-1])
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def draw_density(ax, flow, bounds, n_grid: int = 200, context=None, title: str | None = None,
                 cmap: str = "magma", gamma: float = 0.5) -> np.ndarray:
    """The learned density exp(log p) as an image over ``bounds`` (colour ~ density^gamma, so
    low-density bridges between modes stay visible); returns log p on the grid."""
    gx, gy, log_p = density_grid(flow, bounds, n_grid, context)
    _draw_log_p(ax, gx, gy, log_p, title, cmap, gamma)
    return log_p


def draw_samples(ax, x, bounds, title: str | None = None, color: str = "tab:blue",
                 size: float = 1.5) -> None:
    """A scatter of 2-D points x: (n, 2) within ``bounds``."""
    x = check_array(x, "x", shape=(None, 2))
    b = _bounds(bounds)
    ax.scatter(x[:, 0], x[:, 1], s=size, alpha=0.5, color=color, linewidths=0)
    ax.set_xlim(*b[0])
    ax.set_ylim(*b[1])
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def plot_toy_flows(data, flows: dict, bounds, *, rng=None, n_samples: int = 2000,
                   n_grid: int = 200, title: str | None = None, true_log_prob=None):
    """Two rows of panels: the data and each named flow's density on top, below them the true
    density (when ``true_log_prob`` is given) and each flow's samples x = f^-1(z).

    data: (n, 2); flows: {name: Flow}; true_log_prob: None or a callable x (m, 2) -> (m,).
    Returns the Figure.
    """
    import matplotlib.pyplot as plt

    rng = check_rng(rng)
    data = check_array(data, "data", shape=(None, 2))
    if not flows:
        raise ValueError("flows: expected at least one named flow, got none")
    if true_log_prob is not None and not callable(true_log_prob):
        raise ValueError(f"true_log_prob: expected None or a callable x (m, 2) -> (m,), got "
                         f"{type(true_log_prob).__name__}")
    n_cols = 1 + len(flows)
    fig, axes = plt.subplots(2, n_cols, figsize=(2.3 * n_cols, 4.6), squeeze=False)
    draw_samples(axes[0, 0], data[:n_samples], bounds, "data", color="black")
    if true_log_prob is None:
        axes[1, 0].axis("off")
    else:
        b = _bounds(bounds)
        n = check_int(n_grid, "n_grid", low=2)
        gx, gy = np.linspace(*b[0], n), np.linspace(*b[1], n)
        xx, yy = np.meshgrid(gx, gy)
        log_p = np.asarray(true_log_prob(np.column_stack([xx.ravel(), yy.ravel()])), dtype=np.float64)
        _draw_log_p(axes[1, 0], gx, gy, log_p.reshape(n, n), "true density", "magma", 0.5)
    for k, (name, flow) in enumerate(flows.items()):
        draw_density(axes[0, 1 + k], flow, bounds, n_grid, title=f"{name}: density")
        draw_samples(axes[1, 1 + k], flow.sample(n_samples, rng=rng), bounds, f"{name}: samples",
                     color=f"C{k}")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_histories(histories: dict, ylabel: str = "mean NLL (nats)"):
    """Training (thin) and validation (thick) loss per epoch for each named history of
    ``Flow.fit``; the best epoch is marked. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for name, h in histories.items():
        ep = np.arange(1, len(h["train_loss"]) + 1)
        line, = ax.plot(ep, h["train_loss"], lw=1, alpha=0.6)
        if h["val_loss"]:                    # a diverged epoch has a training loss only
            ax.plot(np.arange(1, len(h["val_loss"]) + 1), h["val_loss"], lw=1.8,
                    color=line.get_color(), label=name)
            ax.plot(h["best_epoch"] + 1, h["val_loss"][h["best_epoch"]], "o", color=line.get_color())
        else:
            line.set_label(name)
    values = np.concatenate([np.asarray(h["val_loss"] or h["train_loss"], dtype=np.float64)
                             for h in histories.values()] or [np.zeros(0)])
    values = values[np.isfinite(values)]
    if values.size:
        # one diverging Adam step can send a training loss to 1e4 nats and flatten every curve:
        # clip the axis at the 95th percentile of the validation curves and say so
        lo, hi = float(np.min(values)), float(np.quantile(values, 0.95))
        pad = 0.1 * max(hi - lo, 1e-3)
        ax.set_ylim(lo - pad, hi + 2 * pad)
        top = max((np.nanmax(np.asarray(h["train_loss"] + h["val_loss"], dtype=np.float64))
                   for h in histories.values() if h["train_loss"]), default=-np.inf)
        if top > hi + 2 * pad:
            ax.set_title(f"y axis clipped to the bulk of the curves (largest value {top:.3g})",
                         fontsize=8, color="0.4")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# -- image flows (the digits experiments, derivations/splines.md) ---------------------------------
def tile(images, side: int, n_cols: int, pad: float = np.nan) -> np.ndarray:
    """(n, side*side) images -> one (rows*(side+1)-1, n_cols*(side+1)-1) array for imshow."""
    images = check_array(images, "images", ndim=2)
    n = images.shape[0]
    n_rows = -(-n // n_cols)
    out = np.full((n_rows * (side + 1) - 1, n_cols * (side + 1) - 1), pad)
    for i in range(n):
        r, c = divmod(i, n_cols)
        out[r * (side + 1): r * (side + 1) + side, c * (side + 1): c * (side + 1) + side] = \
            images[i].reshape(side, side)
    return out


def plot_sample_grids(samples: dict, side: int, levels: int, n_cols: int = 8,
                      titles: dict | None = None, panels_per_row: int = 3):
    """One panel per model: its samples as a grid of images (grey levels 0..L-1, white = 0)."""
    import matplotlib.pyplot as plt

    names = list(samples)
    n_rows = -(-len(names) // panels_per_row)
    n_cols_fig = min(len(names), panels_per_row)
    fig, axes = plt.subplots(n_rows, n_cols_fig, figsize=(3.6 * n_cols_fig, 2.2 * n_rows + 0.4),
                             squeeze=False)
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        ax.imshow(tile(samples[name], side, n_cols), cmap=cmap, vmin=0, vmax=levels - 1)
        ax.set_title((titles or {}).get(name, name), fontsize=10)
    fig.tight_layout()
    return fig


def plot_conditional_samples(samples, centres, centre_idx, side: int, levels: int):
    """One row per centre: the centre alone (outlined), then the samples drawn at it.

    samples : (k, m, side*side) integer images; centres : (k, C) the centre pixels they were
    drawn at; centre_idx : (C,) the row-major indices of the (square) centre block.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    samples = check_array(samples, "samples", ndim=3)
    side = check_int(side, "side", low=2)
    levels = check_int(levels, "levels", low=2)
    centre_idx = np.asarray(centre_idx, dtype=np.int64)
    centres = check_array(centres, "centres", shape=(samples.shape[0], centre_idx.size))
    if samples.shape[2] != side * side:
        raise ValueError(f"samples: expected shape (k, m, {side * side}), got {samples.shape}")
    k, m, dim = samples.shape
    fig, axes = plt.subplots(k, m + 1, figsize=(0.9 * (m + 1), 0.95 * k), squeeze=False)
    size = int(np.sqrt(centre_idx.size))
    lo = (side - size) // 2
    for r in range(k):
        centre_only = np.zeros(dim)
        centre_only[centre_idx] = centres[r]
        row = [centre_only] + list(samples[r])
        for c, img in enumerate(row):
            ax = axes[r, c]
            ax.imshow(img.reshape(side, side), cmap="gray_r", vmin=0, vmax=levels - 1)
            ax.add_patch(Rectangle((lo - 0.5, lo - 0.5), size, size, fill=False, ec="tab:red", lw=0.8))
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel("all zero" if not np.any(centres[r]) else f"centre {r}",
                              fontsize=7)
    axes[0, 0].set_title("context", fontsize=8)
    axes[0, 1].set_title("samples", fontsize=8, loc="left")
    fig.tight_layout(pad=0.2)
    return fig
