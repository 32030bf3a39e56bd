"""Figures for Gaussian mixtures: log-density contours with component ellipses, EM
log-likelihood histories, and information criteria against K (derivations/gmm.md).

``draw_*`` functions draw into a given Axes; ``plot_*`` functions return a matplotlib ``Figure``
and leave saving or closing to the caller.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_int


def _dense_covariances(model) -> np.ndarray:
    """(K, d, d) covariance matrices of a fitted GaussianMixture of any covariance_type."""
    cov = model.covariances_
    d = model.means_.shape[1]
    if model.covariance_type == "full":
        return cov
    if model.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(d) for c in cov])


def ellipse_points(mean, cov, n_std: float = 2.0, n_points: int = 100) -> np.ndarray:
    """Points on the n_std-sigma contour of N(mean, cov) in 2-D: (n_points, 2).

    x = mean + n_std * C (cos t, sin t) with C C^T = cov (C = chol(cov)).
    """
    mean = check_array(mean, "mean", shape=(2,))
    cov = check_array(cov, "cov", shape=(2, 2))
    t = np.linspace(0.0, 2.0 * np.pi, check_int(n_points, "n_points", low=3))
    circle = np.stack([np.cos(t), np.sin(t)], axis=1)
    return mean + n_std * circle @ np.linalg.cholesky(cov).T


def draw_gmm(ax, model, X=None, bounds=None, n_grid: int = 150, levels: int = 12,
             n_std=(1.0, 2.0), title: str | None = None, floor: float = 12.0) -> None:
    """Filled contours of the fitted log-density (GMM.1) on a grid, data points, and each
    component's 1- and 2-sigma ellipses (line width by weight) with its mean.

    model : a fitted ``nprefgen.models.gmm.GaussianMixture`` with d = 2.
    X : (n, 2) points to scatter, optional. bounds : ((x0, x1), (y0, y1)); default from X or the
    components. floor : shade log p down to ``floor`` nats below its maximum.
    """
    if model.means_.shape[1] != 2:
        raise ValueError(f"model: expected a mixture in 2 dimensions, got d = {model.means_.shape[1]}")
    if bounds is None:
        pts = X if X is not None else model.means_
        lo, hi = pts.min(0), pts.max(0)
        pad = 0.15 * (hi - lo) + 1e-9
        bounds = ((lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1]))
    (x0, x1), (y0, y1) = bounds
    gx, gy = np.meshgrid(np.linspace(x0, x1, n_grid), np.linspace(y0, y1, n_grid))
    lp = model.score_samples(np.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(gx.shape)
    top = lp.max()
    ax.contourf(gx, gy, np.maximum(lp, top - floor), levels=levels, cmap="viridis")
    if X is not None:
        ax.scatter(X[:, 0], X[:, 1], s=2, c="white", alpha=0.35, linewidths=0)
    cov = _dense_covariances(model)
    w_max = model.weights_.max()
    for k in range(model.n_components):
        for s in n_std:
            e = ellipse_points(model.means_[k], cov[k], n_std=s)
            ax.plot(e[:, 0], e[:, 1], color="tab:red",
                    lw=0.6 + 1.6 * model.weights_[k] / w_max, alpha=0.9 if s == n_std[0] else 0.5)
        ax.plot(*model.means_[k], marker="+", color="tab:red", ms=6)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def plot_gmm_panels(panels, n_cols: int = 4, bounds: dict | None = None, floor: float = 12.0):
    """One ``draw_gmm`` panel per entry of ``panels``: {title: (model, X)}; bounds: {title: box}."""
    import matplotlib.pyplot as plt

    n = len(panels)
    n_cols = min(n_cols, n)
    n_rows = int(np.ceil(n / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.0 * n_cols, 3.0 * n_rows), squeeze=False)
    for ax, (title, (model, X)) in zip(axes.ravel(), panels.items()):
        draw_gmm(ax, model, X, bounds=(bounds or {}).get(title), title=title, floor=floor)
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_em_histories(histories: dict, title: str | None = None):
    """Mean log-likelihood per EM iteration (GMM.11): {label: (n_iter,) array}."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for label, h in histories.items():
        h = np.asarray(h)
        ax.plot(np.arange(1, len(h) + 1), h, marker=".", ms=3, lw=1, label=label)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("mean log-likelihood")
    if len(histories) <= 10:
        ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_information_criteria(ks, curves: dict, title: str | None = None):
    """Information criteria (GMM.13a, GMM.13b) against the number of components K.

    curves : {label: (len(ks),) values}; the minimum of each curve is marked.
    """
    import matplotlib.pyplot as plt

    ks = np.asarray(ks)
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for label, v in curves.items():
        v = np.asarray(v, dtype=float)
        line, = ax.plot(ks, v, marker="o", ms=3, label=label)
        j = int(np.argmin(v))
        ax.plot(ks[j], v[j], marker="*", ms=12, color=line.get_color())
    ax.set_xlabel("number of components K")
    ax.set_ylabel("criterion (lower is better)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_image_mosaic(images, n_cols: int = 10, title: str | None = None, side: int | None = None,
                      gap: int = 1):
    """Square images tiled into one mosaic drawn by a single ``imshow`` (fast for many images).

    images : (n, side^2) or (n, side, side) with values in [0, 1] (clipped); white gaps of
    ``gap`` pixels separate the tiles.
    """
    import matplotlib.pyplot as plt

    x = check_array(images, "images", ndim=(2, 3))
    if x.ndim == 2:
        side = side or int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise ValueError(f"images: expected (n, side^2) or (n, side, side), got {x.shape}")
        x = x.reshape(x.shape[0], side, side)
    n, h, w = x.shape
    n_cols = min(check_int(n_cols, "n_cols", low=1), n)
    n_rows = int(np.ceil(n / n_cols))
    canvas = np.zeros((n_rows * (h + gap) + gap, n_cols * (w + gap) + gap))
    for i in range(n):
        r, c = divmod(i, n_cols)
        y0, x0 = gap + r * (h + gap), gap + c * (w + gap)
        canvas[y0:y0 + h, x0:x0 + w] = np.clip(x[i], 0.0, 1.0)
    fig, ax = plt.subplots(figsize=(0.55 * n_cols + 0.2, 0.55 * n_rows + 0.5))
    ax.imshow(canvas, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
