"""Equations tie to code and tests: every label cited exists, every label has code and a test."""
from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LABEL = r"[A-Z][A-Z0-9]*\.\d+[a-z]?"
DEFINE = re.compile(r"\\tag\{(" + LABEL + r")\}")
CITE = re.compile(r"\((" + LABEL + r")\)")
CODEMAP_ROW = re.compile(r"`?((?:nprefgen|tests)/[\w/]+\.py)::(\w+)`?")


def _defined() -> dict[str, str]:
    labels: dict[str, str] = {}
    for md in sorted((ROOT / "derivations").glob("*.md")):
        for lab in DEFINE.findall(md.read_text(encoding="utf-8")):
            assert lab not in labels, f"{lab} defined twice: {labels[lab]} and {md.name}"
            labels[lab] = md.name
    return labels


def _cited(folder: str) -> dict[str, set[str]]:
    cites: dict[str, set[str]] = {}
    for py in sorted((ROOT / folder).rglob("*.py")):
        for lab in CITE.findall(py.read_text(encoding="utf-8")):
            cites.setdefault(lab, set()).add(str(py.relative_to(ROOT)))
    return cites


def test_derivations_exist():
    assert (ROOT / "derivations" / "nn.md").exists()
    assert _defined(), "no \\tag{...} labels found in derivations/"


def test_every_cited_label_is_defined():
    defined = _defined()
    cites = _cited("nprefgen")
    for lab, files in _cited("tests").items():
        cites.setdefault(lab, set()).update(files)
    unknown = {lab: sorted(f) for lab, f in cites.items() if lab not in defined}
    assert not unknown, f"labels cited but not defined in derivations/: {unknown}"


@pytest.mark.parametrize("folder", ["nprefgen", "tests"])
def test_every_label_is_cited(folder):
    missing = sorted(set(_defined()) - set(_cited(folder)))
    assert not missing, f"labels defined in derivations/ but never cited in {folder}/: {missing}"


def test_code_map_entries_exist():
    bad = []
    for md in sorted((ROOT / "derivations").glob("*.md")):
        for path, name in CODEMAP_ROW.findall(md.read_text(encoding="utf-8")):
            f = ROOT / path
            if not f.exists() or not re.search(rf"^\s*(def|class)\s+{name}\b|^{name}\s*=",
                                                f.read_text(encoding="utf-8"), re.M):
                bad.append(f"{md.name}: {path}::{name}")
    assert not bad, f"code map names things that do not exist: {bad}"


def test_checker_catches_a_missing_label(tmp_path):
    """The checker itself can fail: a citation of an undefined label is found."""
    fake = "NN." + "999"  # built at run time so this file does not cite it itself
    text = f"x = 1  # ({fake}) no such equation"
    assert CITE.findall(text) == [fake]
    assert fake not in _defined()
