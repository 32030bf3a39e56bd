"""The two SBI tour sections build in quick mode."""
from __future__ import annotations

import pytest

from nprefgen.tour import run_tour


@pytest.mark.parametrize("name", ["sbi_benchmarks", "sbi_cosmology"])
def test_section_builds(tmp_path, name):
    path = run_tour(tmp_path, quick=True, only=[name], progress=False, strict=True)
    page = open(path, encoding="utf-8").read()
    assert "C2ST" in page or "coverage" in page
    assert len(list(tmp_path.glob(f"{name}-*.png"))) >= 3
