"""The score tour section builds in quick mode and reproduces the lecture's table; the plotting
helpers check their inputs (derivations/score.md, SCORE.12, SCORE.14)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from nprefgen.plots.score import plot_langevin_panels, plot_score_error_vs_density


def test_score_section_quick(tmp_path):
    """(SCORE.12) (SCORE.14) quick mode: the exact-score rows say plain Langevin misses the
    weight 0.8 by many sd and annealed Langevin lands within 3 sd; figures are written."""
    from nprefgen.tour import run_tour

    path = run_tour(tmp_path, quick=True, only=["score"], progress=False, strict=True)
    page = open(path, encoding="utf-8").read()
    rows = dict(re.findall(r"<tr><td>([^<]*Langevin[^<]*)</td><td>([0-9.]+)</td>", page))
    assert float(rows["plain Langevin, exact score"]) < 0.6
    assert abs(float(rows["annealed Langevin, exact score"]) - 0.8) < 0.034     # 3 sd at n = 1280
    assert "annealed Langevin, learned NCSN" in rows
    assert len(list(tmp_path.glob("score-*.png"))) == 5


def test_plot_helpers_check_inputs():
    with pytest.raises(ValueError, match="^panels:"):
        plot_langevin_panels({})
    with pytest.raises(ValueError, match="^x:"):
        plot_langevin_panels({"a": (np.zeros((3, 3)), None)})
    with pytest.raises(ValueError, match="^curves:"):
        plot_score_error_vs_density({})


def test_score_toys_section_quick(tmp_path):
    """Quick mode builds: one row per toy with a finite MMD^2, the digit grids are written."""
    from nprefgen.tour import run_tour

    path = run_tour(tmp_path, quick=True, only=["score_toys"], progress=False, strict=True)
    page = open(path, encoding="utf-8").read()
    for toy in ("two_moons", "8gaussians", "checkerboard"):
        row = re.search(rf"<tr><td>{toy}</td>((?:<td>[^<]*</td>)+)</tr>", page)
        assert row is not None and np.isfinite(float(re.findall(r"<td>([^<]*)</td>", row.group(1))[1]))
    assert (tmp_path / "score_toys-digits.png").exists()
