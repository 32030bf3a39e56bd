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


CODEMAP_LINE = re.compile(r"^\|\s*([^|]*?)\s*\|\s*(.*?)\s*\|\s*$")


def code_map_rows() -> list[tuple[str, list[str], list[tuple[str, str]]]]:
    """``(file, labels, [(path, name), ...])`` for every row of every *Code map* table."""
    rows = []
    for md in sorted((ROOT / "derivations").glob("*.md")):
        m = re.search(r"^## Code map\s*$(.*?)(?=^## |\Z)", md.read_text(encoding="utf-8"), re.M | re.S)
        if not m:
            continue
        for line in m.group(1).splitlines():
            cells = CODEMAP_LINE.match(line)
            if not cells:
                continue
            labels = re.findall(LABEL, cells.group(1))
            entries = CODEMAP_ROW.findall(cells.group(2))
            if labels and entries:
                rows.append((md.name, labels, entries))
    return rows


def _definitions(path: str, name: str) -> list[str]:
    """Source (docstring included) of every function or class called ``name`` in ``path``."""
    import ast
    text = (ROOT / path).read_text(encoding="utf-8")
    tree = ast.parse(text)
    found = [ast.get_source_segment(text, node) or "" for node in ast.walk(tree)
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name]
    found += [line for line in text.splitlines() if re.match(rf"^{name}\s*=", line)]
    return found


def code_map_citation_failures() -> list[str]:
    """Rows whose named function/class does not cite any of the row's labels in its body or
    docstring, and labels of a row that none of its functions cites."""
    bad = []
    for md, labels, entries in code_map_rows():
        cited_by_row = set()
        for path, name in entries:
            sources = _definitions(path, name) if (ROOT / path).exists() else []
            cited = {lab for lab in labels for src in sources if re.search(rf"\b{re.escape(lab)}\b", src)}
            if sources and not cited:
                bad.append(f"{md}: {path}::{name} cites none of {labels}")
            cited_by_row |= cited
        missing = [lab for lab in labels if lab not in cited_by_row]
        if missing and len(entries) > 1:
            bad.append(f"{md}: no function of the row {labels} cites {missing}")
        # a row naming a kernel and the class that uses it: the class calls that kernel
        kernels = [name for path, name in entries if path.startswith("nprefgen/kernels/")]
        users = [(path, name) for path, name in entries if not path.startswith("nprefgen/kernels/")
                 and path.startswith("nprefgen/") and (ROOT / path).exists()]
        for kernel in kernels:
            for path, name in users:
                base = kernel.removesuffix("_numpy")          # the numba kernel or its NumPy twin
                if not any(re.search(rf"\b{base}(_numpy)?\b", src) for src in _definitions(path, name)):
                    bad.append(f"{md}: {path}::{name} does not call {kernel} (row {labels})")
    return bad


# Rows failing today that another helper is fixing; the test wants exactly these (a fixed row
# must leave this list, a new failure fails the test).
PENDING = {
}


def test_code_map_functions_cite_their_labels():
    """Each code-map function's body or docstring cites its equation label (``(FLOW.5)``), and a
    class listed beside a kernel calls that kernel (the code map names what actually runs)."""
    rows = code_map_rows()
    assert len(rows) > 30, "no code map rows found; did the format change?"
    bad = set(code_map_citation_failures())
    new = sorted(bad - set(PENDING))
    assert not new, "code map rows whose code does not cite the label:\n  " + "\n  ".join(new)
    fixed = sorted(set(PENDING) - bad)
    assert not fixed, f"fixed rows still listed in PENDING (remove them): {fixed}"


def test_citation_checker_can_fail(tmp_path, monkeypatch):
    """A code-map row naming a function that cites another label is reported."""
    md = tmp_path / "derivations"
    md.mkdir()
    (tmp_path / "nprefgen").mkdir()
    (tmp_path / "nprefgen" / "m.py").write_text('def f(x):\n    """(NN.1) y = x"""\n    return x\n')
    (md / "x.md").write_text("## Code map\n\n| label | code |\n|---|---|\n| NN.2 | `nprefgen/m.py::f` |\n"
                             "| NN.1 | `nprefgen/m.py::f` |\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert code_map_citation_failures() == ["x.md: nprefgen/m.py::f cites none of ['NN.2']"]
