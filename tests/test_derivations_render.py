"""derivations/*.md render on GitHub: the three rules its math renderer needs.

GitHub splits a table row on ``|`` before it looks for math, so a ``|`` (or ``\\|``) inside
``$...$`` in a table cell breaks the table: write ``\\lvert x \\rvert``, ``\\lVert x \\rVert``
or ``\\mid``. Inline math opens only at a ``$`` not followed by a space and closes only at a ``$``
not preceded by one, so ``$ x$`` and ``$x $`` show as raw dollars. And inline math never spans a
line break. Display math (``$$ ... $$``) and code (fenced blocks, backtick spans) are exempt.
"""
from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "derivations").glob("*.md"))
_CODE_SPAN = re.compile(r"`[^`]*`")
_DISPLAY_INLINE = re.compile(r"\$\$.*?\$\$")


def _math_lines(text: str):
    """``(line number, line with code spans and one-line displays removed)`` outside fenced
    code and multi-line display blocks."""
    in_fence = in_display = False
    for no, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        body = _DISPLAY_INLINE.sub(" ", _CODE_SPAN.sub(" ", line))
        if in_display:
            if "$$" in body:
                in_display = False
            continue
        if "$$" in body:                      # a display block opens here and closes later
            in_display = True
            body = body.split("$$", 1)[0]
        yield no, body


def _dollars(body: str) -> list[int]:
    """Positions of the unescaped single ``$`` of a line."""
    return [m.start() for m in re.finditer(r"(?<!\\)\$", body)]


def inline_math(body: str) -> list[str]:
    """The contents of the ``$...$`` spans of one line (pairs of unescaped dollars)."""
    pos = _dollars(body)
    return [body[a + 1:b] for a, b in zip(pos[::2], pos[1::2])]


def render_problems(text: str) -> list[str]:
    """Every violation of the three rules in one markdown text, as ``line N: what``."""
    problems, open_at = [], None
    for no, body in _math_lines(text):
        if len(_dollars(body)) % 2:           # a span opens here and closes on a later line
            if open_at is None:
                problems.append(f"line {no}: inline math runs across a line break (odd number "
                                "of $)")
            open_at = None if open_at is not None else no
            continue
        in_table = body.lstrip().startswith("|")
        for span in inline_math(body):
            if span[:1].isspace() or span[-1:].isspace():
                problems.append(f"line {no}: space after an opening or before a closing $ in "
                                f"${span}$")
            if in_table and "|" in span:
                problems.append(f"line {no}: '|' inside math in a table cell: ${span}$ "
                                r"(use \lvert \rvert, \lVert \rVert or \mid)")
    return problems


@pytest.mark.parametrize("md", FILES, ids=[f.name for f in FILES])
def test_derivation_renders_on_github(md):
    problems = render_problems(md.read_text(encoding="utf-8"))
    assert not problems, f"{md.name}:\n" + "\n".join(problems)


def test_files_are_found():
    assert len(FILES) >= 7 and any(f.name == "flows.md" for f in FILES)


@pytest.mark.parametrize("text, expected", [
    ("| a | $\\|x\\|$ |", "'|' inside math in a table cell"),
    ("| a | $p(x | y)$ |", "'|' inside math in a table cell"),
    ("the value $x $ here", "space after an opening or before a closing $"),
    ("the value $ x$ here", "space after an opening or before a closing $"),
    ("a sum $x +\ny$ over two lines", "inline math runs across a line break"),
])
def test_checker_catches_each_rule(text, expected):
    """The checker can fail: one planted violation of each rule is found."""
    problems = render_problems(text)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize("text", [
    "| a | $\\lvert x \\rvert$ and $p(x \\mid y)$ |",
    "prose with |x| outside math and $a$ and $b$",
    "$$ \\|x\\| = 1, \\quad |y| \\tag{NN.1} $$",
    "```\n$ not math $\n```",
    "`$ code $` and $\\$5$",
    "$$\n a |b| \n$$",
])
def test_checker_accepts_what_renders(text):
    assert render_problems(text) == []
