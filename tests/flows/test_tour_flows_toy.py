"""The flows_toy tour section builds in quick mode; the plotting helpers check their inputs."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.flows import realnvp
from nprefgen.plots.flows import density_grid, plot_toy_flows
from nprefgen.tour import run_tour


def test_flows_toy_section_quick(tmp_path):
    """Quick mode: the battery table is all ok, figures are written (FLOW.1 densities)."""
    path = run_tour(tmp_path, quick=True, only=["flows_toy"], progress=False, strict=True)
    page = open(path, encoding="utf-8").read()
    assert "RealNVP and MAF on 2-D toys" in page
    assert 'class="fail"' not in page and page.count('class="ok"') == 7
    pngs = sorted(p.name for p in tmp_path.glob("flows_toy-*.png"))
    assert pngs == ["flows_toy-8gaussians.png", "flows_toy-histories.png", "flows_toy-two_moons.png"]


def test_density_grid_and_bad_inputs(rng):
    """density_grid evaluates log p (FLOW.1) on the grid; wrong dims and bounds raise ValueError."""
    flow = realnvp(2, 2, 4, rng=rng)          # identity at init: the standard normal
    gx, gy, log_p = density_grid(flow, ((-2, 2), (-1, 1)), n_grid=5)
    np.testing.assert_allclose(log_p[2, 2], -np.log(2 * np.pi), rtol=1e-12)
    assert log_p.shape == (5, 5) and gx[0] == -2 and gy[-1] == 1
    with pytest.raises(ValueError, match="bounds"):
        density_grid(flow, ((2, -2), (-1, 1)))
    with pytest.raises(ValueError, match="flow"):
        density_grid(realnvp(3, 1, 4, rng=rng), ((-2, 2), (-1, 1)))
    with pytest.raises(ValueError, match="flows"):
        plot_toy_flows(np.zeros((3, 2)), {}, ((-1, 1), (-1, 1)), rng=rng)
