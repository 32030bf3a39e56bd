"""Training histories: the loss per epoch on the training and the validation data.

One colour per model; the training loss thin and dashed, the validation loss thick and solid
(a model without a validation curve has its training loss solid), a dot at the epoch whose
parameters were kept (early stopping). The y axis turns logarithmic when
the losses are positive and span more than a factor of ten, so the late epochs stay readable.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def _curve(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of losses per epoch, got shape {v.shape}")
    return v


def wants_log_scale(curves) -> bool:
    """True when every finite value is positive and they span more than a factor of ten."""
    vals = np.concatenate([c[np.isfinite(c)] for c in curves] or [np.empty(0)])
    return bool(vals.size and vals.min() > 0 and vals.max() / vals.min() > 10.0)


def plot_training_history(histories: Mapping[str, Mapping], ylabel: str = "loss",
                          title: str | None = None, logy: bool | None = None):
    """Loss against epoch for several models.

    histories : {model name: {"train": (epochs,), "val": (epochs,) optional,
                 "best_epoch": int optional (0-based)}}.
    ylabel : what the loss is, with its unit (e.g. "binary cross-entropy per pixel").
    logy : force a log (True) or linear (False) y axis; None chooses (see the module docstring).
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if not isinstance(histories, Mapping) or not histories:
        raise ValueError(f"histories: expected a non-empty mapping name -> {{'train': ..., "
                         f"'val': ...}}, got {type(histories).__name__}")
    fig, ax = plt.subplots(figsize=(5.8, 3.6))
    curves, has_val = [], False
    for i, (name, h) in enumerate(histories.items()):
        if not isinstance(h, Mapping) or "train" not in h:
            raise ValueError(f"histories[{name!r}]: expected a mapping with a 'train' curve")
        color = f"C{i % 10}"
        train = _curve(h["train"], f"histories[{name!r}]['train']")
        ep = np.arange(1, train.size + 1)
        val = h.get("val")
        alone = val is None or not len(val)          # no validation curve: train drawn solid
        ax.plot(ep, train, ls="-" if alone else "--", lw=1.8 if alone else 1.0, color=color,
                alpha=1.0 if alone else 0.8)
        curves.append(train)
        if not alone:
            has_val = True
            val = _curve(val, f"histories[{name!r}]['val']")
            ax.plot(np.arange(1, val.size + 1), val, ls="-", lw=2.0, color=color)
            curves.append(val)
            best = h.get("best_epoch")
            if best is not None and 0 <= int(best) < val.size:
                ax.plot(int(best) + 1, val[int(best)], "o", color=color, ms=5)
    if logy if logy is not None else wants_log_scale(curves):
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    handles = [Line2D([], [], color=f"C{i % 10}", lw=2.0, label=name)
               for i, name in enumerate(histories)]
    if has_val:
        handles.append(Line2D([], [], color="0.3", ls="--", lw=1.0, label="training"))
        handles.append(Line2D([], [], color="0.3", ls="-", lw=2.0, label="validation"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
