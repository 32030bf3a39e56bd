"""Figures for score-based models: Langevin samples and paths over a density, the noise
schedule, and the score error against the data density (derivations/score.md).

``plot_*`` functions return a matplotlib ``Figure`` and leave saving or closing to the caller.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_callable


def plot_langevin_panels(panels: dict, log_prob=None, bounds=((-10.0, 10.0), (-10.0, 10.0)),
                         n_paths: int = 12):
    """One panel per run: final particles (n, 2) over the contours of ``log_prob`` and the first
    ``n_paths`` recorded paths.

    panels : {title: (x: (n, 2), path: (m, n, 2) or None)}; log_prob : callable (k, 2) -> (k,).
    """
    import matplotlib.pyplot as plt

    if not isinstance(panels, dict) or not panels:
        raise ValueError(f"panels: expected a non-empty dict title -> (x, path), got {panels!r}"[:200])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.0), squeeze=False)
    (x0, x1), (y0, y1) = bounds
    grid = None
    if log_prob is not None:
        check_callable(log_prob, "log_prob")
        gx, gy = np.meshgrid(np.linspace(x0, x1, 160), np.linspace(y0, y1, 160))
        lp = log_prob(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
        grid = (gx, gy, np.maximum(lp, lp.max() - 15.0))
    for ax, (title, (x, path)) in zip(axes[0], panels.items()):
        x = check_array(x, "x", shape=(None, 2))
        if grid is not None:
            ax.contourf(*grid, levels=14, cmap="Greys", alpha=0.5)
        if path is not None and len(path):
            for i in range(min(n_paths, path.shape[1])):
                ax.plot(path[:, i, 0], path[:, i, 1], lw=0.6, alpha=0.7)
        ax.scatter(x[:, 0], x[:, 1], s=2, c="C3", alpha=0.5)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_sigma_schedule(sigmas, step_sizes):
    """(SCORE.8) the noise levels and (SCORE.12) the step sizes per level, log scale."""
    import matplotlib.pyplot as plt

    sigmas = check_array(sigmas, "sigmas", ndim=1)
    step_sizes = check_array(step_sizes, "step_sizes", shape=sigmas.shape)
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    i = np.arange(1, len(sigmas) + 1)
    ax.semilogy(i, sigmas, "o-", label="sigma_i")
    ax.semilogy(i, step_sizes, "s--", label="alpha_i = eps sigma_i^2 / sigma_L^2")
    ax.set_xlabel("level i")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def plot_score_error_vs_density(curves: dict,
                                ylabel: str = "sigma^2 ||s_theta - grad log p_sigma||^2 (bin mean)"):
    """The lecture's "score estimation is hard in low-density regions", measured.

    curves : {label: (log_p: (k,), error: (k,))}, binned mean squared error of a learned score
    against the exact one, at points with data log-density log_p.
    """
    import matplotlib.pyplot as plt

    if not isinstance(curves, dict) or not curves:
        raise ValueError(f"curves: expected a non-empty dict label -> (log_p, error), got {curves!r}"[:200])
    fig, ax = plt.subplots(figsize=(5.4, 3.6))
    for label, (lp, err) in curves.items():
        ax.semilogy(lp, err, "o-", ms=3, label=label)
    ax.set_xlabel("log p(x) of the data (binned)")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def plot_loss_history(history: dict, title: str = "DSM loss"):
    """Training and validation loss per epoch from a ``history_`` dict."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    ax.plot(history.get("train_loss", []), label="train")
    if history.get("val_loss"):
        ax.plot(history["val_loss"], label="validation (fixed noise)")
    ax.set_xlabel("epoch")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
