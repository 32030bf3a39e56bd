"""The tour's figures carry what a reader needs: distinct colours and a legend per parameter in
P-P plots with the calibrated band, train vs validation histories with labelled axes, colour
bars on fields."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from nprefgen.plots.data import plot_fields  # noqa: E402
from nprefgen.plots.sbi import fields_and_summaries_plot, pp_plot  # noqa: E402
from nprefgen.plots.training import plot_training_history, wants_log_scale  # noqa: E402


def test_pp_plot_one_panel_per_method_distinct_colours_per_parameter():
    rng = np.random.default_rng(0)
    u = {"NPE": rng.uniform(size=(40, 3)), "NLE": rng.uniform(size=(40, 3))}
    fig = pp_plot(u, title="t")
    assert len(fig.axes) == 2
    per_panel = []
    for ax, name in zip(fig.axes, u):
        assert ax.get_title().startswith(name)
        curves = [ln for ln in ax.get_lines() if ln.get_label().startswith("$\\theta")]
        assert len(curves) == 3
        colours = [to_rgba(ln.get_color()) for ln in curves]
        assert len(set(colours)) == 3                          # distinct per parameter
        per_panel.append(colours)
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "99% band" in labels and "calibrated" in labels
        assert all(f"$\\theta_{k}$" in labels for k in (1, 2, 3))
        assert ax.collections, "the KS band is drawn"
        # the step curve is the empirical CDF: it ends at 1 and never decreases
        y = curves[0].get_ydata()
        assert y[-1] == 1.0 and np.all(np.diff(y) >= 0)
    assert per_panel[0] == per_panel[1]                        # same parameter, same colour
    plt.close(fig)
    with pytest.raises(ValueError, match="labels"):
        pp_plot(u, labels=["a", "b"])


def test_training_history_pairs_train_and_validation_by_colour():
    hist = {"a": {"train": [3.0, 2.0, 1.5], "val": [3.2, 2.1, 1.8], "best_epoch": 2},
            "b": {"train": [2.0, 1.0, 0.9]}}
    fig = plot_training_history(hist, ylabel="nats")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "nats"
    lines = [ln for ln in ax.get_lines()]
    a_lines = [ln for ln in lines if to_rgba(ln.get_color()) == to_rgba("C0")]
    assert {ln.get_linestyle() for ln in a_lines} >= {"--", "-"}
    assert ax.get_yscale() == "linear"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["a", "b", "training", "validation"]
    b_line = [ln for ln in lines if to_rgba(ln.get_color()) == to_rgba("C1")]
    assert [ln.get_linestyle() for ln in b_line] == ["-"]      # training alone: solid
    plt.close(fig)
    # a loss spanning more than a factor of ten gets a log axis; a negative one never does
    fig = plot_training_history({"m": {"train": [100.0, 10.0, 1.0]}})
    assert fig.axes[0].get_yscale() == "log"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["m"]
    plt.close(fig)
    assert not wants_log_scale([np.array([-5.0, 100.0])])
    with pytest.raises(ValueError, match="train"):
        plot_training_history({"m": {"val": [1.0]}})


def test_fields_have_labelled_colour_bars():
    rng = np.random.default_rng(1)
    fig = plot_fields({"a": rng.standard_normal((8, 8)), "b": rng.standard_normal((8, 8))},
                      cbar_label="delta")
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "delta"]
    assert len(bars) == 2
    plt.close(fig)
    f = rng.standard_normal((2, 8, 8))
    fig = fields_and_summaries_plot(f, ["x", "y"], rng.standard_normal((2, 4)),
                                    rng.standard_normal((2, 4)), cbar_label="field")
    assert len([ax for ax in fig.axes if ax.get_ylabel() == "field"]) == 2
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len({im.get_clim() for im in images}) == 1          # one shared scale
    plt.close(fig)
