"""Figures for simulation-based inference: pair plots, P-P plots, SBC ranks, TARP and coverage.

Every function returns a matplotlib ``Figure`` (the caller saves or closes it) and draws the
reference a calibrated posterior should follow: the diagonal with a 99 % band for P-P, coverage
and TARP curves; the binomial 99 % band for SBC rank histograms.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from nprefgen._validation import check_array, check_int

_COLORS = ["C0", "C1", "C2", "C3", "C4", "C5"]


def _as_dict(samples, name="samples"):
    if isinstance(samples, dict):
        return {k: check_array(v, f"{name}[{k!r}]", ndim=2) for k, v in samples.items()}
    return {"": check_array(samples, name, ndim=2)}


def pair_plot(samples, theta_true=None, labels=None, limits=None, max_points: int = 3000,
              bins: int = 40, title: str | None = None):
    """Corner plot of posterior draws: histograms on the diagonal, scatter below it.

    samples : (n, p) or {name: (n, p)} (several posteriors overlaid, e.g. reference vs NPE).
    theta_true : (p,) drawn as lines and a star. labels : p axis names. limits : (p, 2).
    """
    import matplotlib.pyplot as plt

    sets = _as_dict(samples)
    p = next(iter(sets.values())).shape[1]
    for k, v in sets.items():
        if v.shape[1] != p:
            raise ValueError(f"samples[{k!r}]: expected {p} columns, got shape {v.shape}")
    labels = list(labels) if labels is not None else [f"$\\theta_{i + 1}$" for i in range(p)]
    if limits is None:
        allv = np.concatenate(list(sets.values()))
        lo, hi = np.percentile(allv, 0.5, axis=0), np.percentile(allv, 99.5, axis=0)
        pad = 0.05 * (hi - lo + 1e-12)
        limits = np.stack([lo - pad, hi + pad], axis=1)
    limits = check_array(limits, "limits", shape=(p, 2))
    truth = None if theta_true is None else check_array(theta_true, "theta_true", shape=(p,))
    size = min(2.2 * p, 12.0)
    fig, axes = plt.subplots(p, p, figsize=(size + 1, size), squeeze=False)
    for i in range(p):
        for j in range(p):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            for c, (name, v) in enumerate(sets.items()):
                color = _COLORS[c % len(_COLORS)]
                if i == j:
                    ax.hist(v[:, i], bins=bins, range=tuple(limits[i]), density=True,
                            histtype="step", color=color, label=name or None)
                else:
                    sub = v[:max_points]
                    ax.scatter(sub[:, j], sub[:, i], s=2, alpha=0.25, color=color, rasterized=True)
            if truth is not None:
                ax.axvline(truth[j], color="k", lw=0.8, ls="--")
                if i != j:
                    ax.axhline(truth[i], color="k", lw=0.8, ls="--")
                    ax.plot(truth[j], truth[i], "k*", ms=9)
            ax.set_xlim(limits[j])
            if i != j:
                ax.set_ylim(limits[i])
            else:
                ax.set_yticks([])
            if i == p - 1:
                ax.set_xlabel(labels[j])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i])
    if len(sets) > 1 or next(iter(sets)):
        handles = [plt.Line2D([], [], color=_COLORS[c % len(_COLORS)]) for c in range(len(sets))]
        fig.legend(handles, list(sets), loc="upper right", bbox_to_anchor=(0.98, 0.88))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _diagonal_band(ax, n: int, level: float = 0.99):
    """The KS band of the empirical CDF of n uniform values around the diagonal."""
    a = np.linspace(0, 1, 101)
    eps = stats.kstwo.ppf(level, n)
    ax.fill_between(a, np.clip(a - eps, 0, 1), np.clip(a + eps, 0, 1), color="0.85",
                    label=f"{int(level * 100)}% band")
    ax.plot(a, a, "k--", lw=0.8, label="calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")


def _param_colors(p: int) -> list:
    """p distinct colours: tab10 up to 10 parameters, then evenly spaced hues of viridis."""
    import matplotlib

    if p <= 10:
        return [matplotlib.colormaps["tab10"](k) for k in range(p)]
    return [matplotlib.colormaps["viridis"](x) for x in np.linspace(0.0, 0.95, p)]


def pp_plot(u, labels=None, title: str = "P-P plot"):
    """The empirical CDF of PIT values (SBI.15) per marginal against alpha, with the 99 % KS band
    of a calibrated posterior around the diagonal.

    u : (N, p) PIT values, or {name: (N, p)}: one panel per name (method), one colour per
    parameter (the same colour for the same parameter in every panel), a legend in each panel.
    labels : p parameter names (default theta_1 ... theta_p).
    """
    import matplotlib.pyplot as plt

    sets = _as_dict(u, "u")
    p = next(iter(sets.values())).shape[1]
    for k, v in sets.items():
        if v.shape[1] != p:
            raise ValueError(f"u[{k!r}]: expected {p} columns, got shape {v.shape}")
    labels = list(labels) if labels is not None else [f"$\\theta_{k + 1}$" for k in range(p)]
    if len(labels) != p:
        raise ValueError(f"labels: expected {p} names, got {len(labels)}")
    colors = _param_colors(p)
    m = len(sets)
    fig, axes = plt.subplots(1, m, figsize=(3.6 * m + 0.4, 3.9), squeeze=False)
    for ax, (name, vals) in zip(axes[0], sets.items()):
        n = vals.shape[0]
        _diagonal_band(ax, n)
        for k in range(p):
            x = np.sort(vals[:, k])                      # the empirical CDF as a step function
            ax.step(np.r_[0.0, x, 1.0], np.r_[0.0, np.arange(1, n + 1) / n, 1.0], where="post",
                    color=colors[k], lw=1.4, label=labels[k])
        ax.set_xlabel("alpha (nominal quantile)")
        ax.set_title(f"{name} (N = {n})" if name else f"N = {n}", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    axes[0, 0].set_ylabel("empirical CDF of PIT")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def coverage_plot(alphas, coverage, n: int, title: str = "expected coverage"):
    """Expected coverage curves (SBI.16), {name: (len(alphas),)}, with the 99 % band for ``n``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    _diagonal_band(ax, check_int(n, "n", low=1))
    for c, (name, cov) in enumerate(coverage.items()):
        ax.plot(alphas, cov, color=_COLORS[c % len(_COLORS)], lw=1.5, label=name)
    ax.set_xlabel("credibility level")
    ax.set_ylabel("empirical coverage")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def tarp_plot(alphas, ecp, n: int, title: str = "TARP"):
    """TARP expected coverage probability curves (SBI.18), {name: (len(alphas),)}."""
    fig = coverage_plot(alphas, ecp, n, title=title)
    fig.axes[0].set_ylabel("expected coverage probability")
    return fig


def sbc_rank_plot(ranks, n_draws: int, n_bins: int = 20, labels=None, title: str = "SBC ranks"):
    """Histograms of SBC ranks (SBI.17) per parameter with the 99 % binomial band of a uniform."""
    import matplotlib.pyplot as plt

    r = check_array(ranks, "ranks", ndim=2)
    L = check_int(n_draws, "n_draws", low=1)
    n_bins = check_int(n_bins, "n_bins", low=2, high=L + 1)
    n, p = r.shape
    fig, axes = plt.subplots(1, p, figsize=(3.0 * p, 2.6), squeeze=False)
    edges = np.floor(np.linspace(0, L + 1, n_bins + 1)) - 0.5
    widths = np.diff(edges)
    for k in range(p):
        ax = axes[0, k]
        prob = widths / (L + 1.0)
        lo = stats.binom.ppf(0.005, n, prob)
        hi = stats.binom.ppf(0.995, n, prob)
        centers = 0.5 * (edges[1:] + edges[:-1])
        ax.fill_between(centers, lo, hi, step="mid", color="0.85")
        ax.hist(r[:, k], bins=edges, color="C0", alpha=0.8)
        ax.axhline(n * prob.mean(), color="k", lw=0.8, ls="--")
        ax.set_xlabel(labels[k] if labels is not None else f"rank of $\\theta_{k + 1}$")
    axes[0, 0].set_ylabel("count")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def fields_and_summaries_plot(fields, titles, summaries, means, cbar_label: str = "field value"):
    """Fields side by side, each with its colour bar on one shared symmetric scale, then their
    summaries (dots) against the mean summary mu(theta) (lines), one colour per field.

    fields : (k, n, n); titles : k strings; summaries, means : (k, b).
    """
    import matplotlib.pyplot as plt

    f = check_array(fields, "fields", ndim=3)
    k = f.shape[0]
    s = check_array(summaries, "summaries", ndim=2)
    mu = check_array(means, "means", shape=s.shape)
    if s.shape[0] != k or len(titles) != k:
        raise ValueError(f"summaries, titles: expected {k} of each (one per field), got "
                         f"{s.shape[0]} and {len(titles)}")
    lim = float(np.max(np.abs(f)))
    fig, axes = plt.subplots(1, k + 1, figsize=(3.6 * (k + 1), 3.1))
    for c, (ax, fi, t) in enumerate(zip(axes, f, titles)):
        im = ax.imshow(fi, cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower")
        ax.set_title(t, fontsize=9, color=_COLORS[c % len(_COLORS)])
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=cbar_label)
    bins = np.arange(s.shape[1])
    for c, (si, mi, t) in enumerate(zip(s, mu, titles)):
        color = _COLORS[c % len(_COLORS)]
        axes[-1].plot(bins, si, "o", color=color, label=f"{t}: measured")
        axes[-1].plot(bins, mi, "-", color=color, label=f"{t}: mu(theta)")
    axes[-1].set_xlabel("k bin")
    axes[-1].set_ylabel("log P(k)")
    axes[-1].set_title("summaries (dots) vs mu(theta) (lines)", fontsize=9)
    axes[-1].legend(fontsize=6)
    fig.tight_layout()
    return fig
