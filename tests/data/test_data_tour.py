"""Quick-mode runs of the data tour sections: digits (11), toys (12), grf (13)."""
from __future__ import annotations

import pytest

from nprefgen.tour import discover_sections, run_tour


@pytest.mark.parametrize("name,order,figures", [
    ("digits", 11, ["digits-grid.png", "digits-means.png"]),
    ("toys", 12, ["toys-samples.png"]),
    ("grf", 13, ["grf-fields.png", "grf-pk.png", "grf-peaks.png"]),
])
def test_section_quick(tmp_path, name, order, figures):
    (key, mod), = discover_sections([name])
    assert mod.ORDER == order and mod.TITLE
    index = run_tour(tmp_path, quick=True, only=[name], progress=False, strict=True)
    page = open(index, encoding="utf-8").read()
    for fig in figures:
        assert (tmp_path / fig).stat().st_size > 1000
        assert fig in page
    assert "FAIL" not in page                     # every status cell of the tables is ok
