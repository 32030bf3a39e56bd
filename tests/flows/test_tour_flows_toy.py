"""The flows_toy tour section builds in quick mode; the plotting helpers check their inputs."""
from __future__ import annotations

import re

import numpy as np
import pytest

from nprefgen.flows import maf, realnvp, spline_flow
from nprefgen.plots.flows import density_grid, plot_histories, plot_toy_flows
from nprefgen.tour import run_tour


def test_flows_toy_section_quick(tmp_path):
    """Quick mode: the battery table is all ok (SplineCoupling (SPL.12, SPL.13) included), every toy
    has a RealNVP, MAF and Spline row with finite numbers, figures are written (FLOW.1 densities)."""
    path = run_tour(tmp_path, quick=True, only=["flows_toy"], progress=False, strict=True)
    page = open(path, encoding="utf-8").read()
    assert "RealNVP, MAF and spline flows on 2-D toys" in page
    assert 'class="fail"' not in page and page.count('class="ok"') == 8 + 6    # battery + training
    assert "<tr><td>SplineCoupling (SPL.12, 13), context 2</td>" in page
    for toy in ("two_moons", "8gaussians"):
        for flow in ("RealNVP", "MAF", "Spline"):
            row = re.search(rf"<tr><td>{toy}</td><td>{flow}</td>(.*?)</tr>", page)
            assert row is not None, (toy, flow)
            cells = re.findall(r"<td>(.*?)</td>", row.group(1))
            assert len(cells) == 7 and np.isfinite(float(cells[3]))         # test mean log p (the
            # training status cell is a <td class="ok">, not matched here)
            assert (cells[4] == "-") == (toy == "two_moons")                 # closed form only
            if toy == "8gaussians":
                np.testing.assert_allclose(float(cells[4]) - float(cells[3]), float(cells[5]),
                                           rtol=1e-3, atol=1e-3)             # gap = true - test
    for toy in ("two_moons", "8gaussians"):
        caption = re.search(rf'<img src="flows_toy-{toy}.png"[^>]*><figcaption>(.*?)</figcaption>',
                            page)
        assert caption is not None and "of RealNVP, MAF and the spline flow" in caption.group(1)
    pngs = sorted(p.name for p in tmp_path.glob("flows_toy-*.png"))
    assert pngs == ["flows_toy-8gaussians.png", "flows_toy-histories.png", "flows_toy-two_moons.png"]


def test_plot_toy_flows_three_flows_and_true_density(rng):
    """Two rows: data + one density (FLOW.1) per flow on top, true density + samples below; a
    non-callable true_log_prob raises ValueError naming it."""
    import matplotlib.pyplot as plt

    flows = {name: build(2, 1, 4, rng=rng, standardize=False) for name, build in
             (("RealNVP", realnvp), ("MAF", maf), ("Spline", spline_flow))}
    x = rng.standard_normal((50, 2))
    fig = plot_toy_flows(x, flows, ((-2, 2), (-2, 2)), rng=rng, n_samples=20, n_grid=6,
                         true_log_prob=lambda p: -0.5 * np.sum(p ** 2, axis=1) - np.log(2 * np.pi))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["data", "RealNVP: density", "MAF: density", "Spline: density",
                      "true density", "RealNVP: samples", "MAF: samples", "Spline: samples"]
    # the flows are the identity at init, so every density image equals the true N(0, I) one
    true_img = fig.axes[4].get_images()[0].get_array()
    for k in (1, 2, 3):
        np.testing.assert_allclose(fig.axes[k].get_images()[0].get_array(), true_img, rtol=1e-12)
    plt.close(fig)
    with pytest.raises(ValueError, match="true_log_prob"):
        plot_toy_flows(x, flows, ((-2, 2), (-2, 2)), rng=rng, true_log_prob=3.0)


def test_histories_axis_ignores_a_spike():
    """One diverging training step (loss 7600) must not flatten the curves: the y axis stays near
    the validation losses and the title says it was clipped."""
    import matplotlib.pyplot as plt

    h = {"a": {"train_loss": [3.0, 2.0, 7600.0, 1.5], "val_loss": [2.5, 1.9, 1.8, 1.6],
               "best_epoch": 3, "epochs": 4}}
    fig = plot_histories(h)
    lo, hi = fig.axes[0].get_ylim()
    assert 1.0 < lo < 1.6 and 2.5 <= hi < 3.0
    assert "clipped" in fig.axes[0].get_title()
    plt.close(fig)


def test_density_grid_and_bad_inputs(rng):
    """density_grid evaluates log p (FLOW.1) on the grid; wrong dims and bounds raise ValueError."""
    flow = realnvp(2, 2, 4, rng=rng, standardize=False)          # identity at init: the standard normal
    gx, gy, log_p = density_grid(flow, ((-2, 2), (-1, 1)), n_grid=5)
    np.testing.assert_allclose(log_p[2, 2], -np.log(2 * np.pi), rtol=1e-12)
    assert log_p.shape == (5, 5) and gx[0] == -2 and gy[-1] == 1
    with pytest.raises(ValueError, match="bounds"):
        density_grid(flow, ((2, -2), (-1, 1)))
    with pytest.raises(ValueError, match="flow"):
        density_grid(realnvp(3, 1, 4, rng=rng, standardize=False), ((-2, 2), (-1, 1)))
    with pytest.raises(ValueError, match="flows"):
        plot_toy_flows(np.zeros((3, 2)), {}, ((-1, 1), (-1, 1)), rng=rng)
