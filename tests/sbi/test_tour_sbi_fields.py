"""The field-level tour section builds in quick mode and records its checks: R-hat and ESS of the
exact posterior's chains, one C2ST per NPE against it, one HPD calibration test per NPE and field."""
from __future__ import annotations

import pytest

from nprefgen.tour import build_tour


@pytest.mark.slow
def test_sbi_fields_section_quick(tmp_path):
    report = build_tour(tmp_path, quick=True, only=["sbi_fields"], progress=False, strict=True)
    names = [c.name for c in report.checks]
    assert sum("C2ST" in n for n in names) == 2
    assert sum("HPD levels" in n for n in names) == 4
    assert any("R-hat" in n for n in names) and any("ESS" in n for n in names)
    for part in ("maps", "posterior"):
        assert (tmp_path / f"sbi_fields-{part}.png").exists()
