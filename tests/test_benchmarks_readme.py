"""benchmarks/README.md documents every script in benchmarks/, with options that exist."""
from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))


def _row(script: str) -> str:
    rows = [line for line in README.splitlines() if line.startswith(f"| [`{script}`]")]
    assert len(rows) == 1, f"benchmarks/README.md: expected one table row for {script}"
    return rows[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_has_a_row_with_what_peer_run_and_runtime(script):
    cells = [c.strip() for c in _row(script).strip("|").split("|")]
    assert len(cells) == 5 and all(cells), cells          # script, what, peer, run, runtime
    assert f"benchmarks/{script}" in cells[3]
    assert re.search(r"\d+\s*(s|min)\b", cells[4]), f"{script}: no runtime in {cells[4]!r}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_options_named_in_the_row_exist(script):
    source = (ROOT / "benchmarks" / script).read_text(encoding="utf-8")
    options = set(re.findall(r"(--[a-z][a-z0-9-]*)", _row(script)))
    missing = sorted(o for o in options if f'"{o}"' not in source)
    assert not missing, f"{script}: README names options the script lacks: {missing}"


def test_results_have_a_home():
    assert "RESULTS.md" in README and (ROOT / "benchmarks" / "RESULTS.md").exists()
