"""derivations/*.md notation: unambiguous fractions and one row per symbol in each symbol table.

* ``a/2h^2`` reads as ``(a/2) h^2`` to anyone who parses it literally; write ``a/(2h^2)``. Inside
  math, a slash followed by a number glued to a symbol or a bracket (``/2h``, ``/2\\sigma``,
  ``/2(h^2+s^2)``) is flagged.
* A file's ``## Symbols`` table gives each symbol one meaning: no symbol appears in two rows.
"""
from __future__ import annotations

import pathlib
import re

import pytest

from tests.test_derivations_render import _math_lines, inline_math

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "derivations").glob("*.md"))
_DISPLAY = re.compile(r"\$\$(.*?)\$\$", re.S)
_CODE_SPAN = re.compile(r"`[^`]*`")
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
# a slash, a number, then (without a space) a letter, a command or an opening bracket
_AMBIGUOUS = re.compile(r"/\s*\d+(?:\.\d+)?(?=[A-Za-z(\[]|\\(?!right|big|Big|rangle|rvert|rVert)[A-Za-z])")


def _math(text: str) -> list[tuple[int, str]]:
    """``(line, math)`` for every inline span and display block outside code."""
    out = [(no, span) for no, body in _math_lines(text) for span in inline_math(body)]
    clean = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    clean = _CODE_SPAN.sub(" ", clean)
    for m in _DISPLAY.finditer(clean):
        out.append((clean.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


def ambiguous_fractions(text: str) -> list[str]:
    return [f"line {no}: '{span.strip()[:80]}'" for no, span in _math(text) if _AMBIGUOUS.search(span)]


def _split_top(cell: str) -> list[str]:
    """Split a math cell at commas outside braces: ``\\epsilon, n_{a,b}, M`` -> 3 symbols."""
    parts, depth, cur = [], 0, ""
    for ch in cell:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def _normalise(symbol: str) -> str:
    s = re.sub(r"\s+", "", symbol)
    s = re.sub(r"\((?:x|\\cdot|\.)\)$", "", s)          # f(x), m(\cdot): the symbol is f, m
    return s


def table_symbols(text: str) -> dict[str, list[int]]:
    """symbol -> the table rows (1-based) listing it, from the ``## Symbols`` section."""
    m = re.search(r"^## Symbols\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        return {}
    rows: dict[str, list[int]] = {}
    body = [line for line in m.group(1).splitlines() if line.lstrip().startswith("|")][2:]
    for i, line in enumerate(body, 1):
        first = line.strip().strip("|").split("|")[0]
        for span in re.findall(r"\$([^$]+)\$", first):
            for sym in _split_top(span):
                sym = _normalise(sym)
                if sym:
                    rows.setdefault(sym, []).append(i)
    return rows


@pytest.mark.parametrize("md", FILES, ids=[f.name for f in FILES])
def test_no_ambiguous_fraction(md):
    bad = ambiguous_fractions(md.read_text(encoding="utf-8"))
    assert not bad, f"{md.name}: write a/(2h^2), not a/2h^2:\n" + "\n".join(bad)


@pytest.mark.parametrize("md", FILES, ids=[f.name for f in FILES])
def test_each_symbol_has_one_row(md):
    rows = table_symbols(md.read_text(encoding="utf-8"))
    twice = {s: r for s, r in rows.items() if len(r) > 1}
    assert not twice, f"{md.name}: symbols listed in more than one row of the symbol table: {twice}"


def test_symbol_tables_are_found():
    with_tables = [f.name for f in FILES if table_symbols(f.read_text(encoding="utf-8"))]
    assert {"flows.md", "splines.md", "sbi.md", "nn.md"} <= set(with_tables), with_tables


@pytest.mark.parametrize("text", [
    r"$k = \exp(-\lVert a-b\rVert^2/2h^2)$",
    r"$$ e^{-x^2/2\sigma^2} \tag{X.1} $$",
    r"with $1-e^{-m^2/2(h^2+2s^2)}$ here",
])
def test_fraction_checker_catches(text):
    assert len(ambiguous_fractions(text)) == 1


@pytest.mark.parametrize("text", [
    r"$\exp(-\lVert a-b\rVert^2/(2h^2))$",
    r"$k^{-2/(p+4)}$ and $1/s_x$ and $\sqrt{2/\pi}$ and $x/2$",
    r"$\partial\mu/\partial\theta$ and $\log_2 17$ and $y/\sqrt 2$",
    "`a/2h` in code is not math",
])
def test_fraction_checker_accepts(text):
    assert ambiguous_fractions(text) == []


def test_symbol_checker_catches_a_repeat():
    text = "## Symbols\n\n| symbol | meaning |\n|---|---|\n| $B$ | bound |\n| $A, B$ | sets |\n\n## Next\n"
    assert {s: r for s, r in table_symbols(text).items() if len(r) > 1} == {"B": [1, 2]}
