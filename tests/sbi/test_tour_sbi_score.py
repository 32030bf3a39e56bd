"""The sbi_score tour section builds in quick mode and records one C2ST check per method
(SCORE.15-SCORE.18 through NPSE, next to NPE)."""
from __future__ import annotations

import pytest

from nprefgen.tour import build_tour


@pytest.mark.slow
def test_sbi_score_section_quick(tmp_path):
    report = build_tour(tmp_path, quick=True, only=["sbi_score"], progress=False, strict=True)
    names = [c.name for c in report.checks]
    assert names == ["gaussian_linear 2-D, NPSE: C2ST", "gaussian_linear 2-D, NPE: C2ST"]
    assert all(0.0 <= c.value <= 1.0 for c in report.checks)
    assert (tmp_path / "sbi_score-draws.png").exists()
