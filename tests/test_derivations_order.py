"""derivations/*.md: within each file, the labels of a prefix are defined in reading order
(FLOW.4 comes after FLOW.3 and before FLOW.5), so a student reading top to bottom meets them in
number order; letter suffixes (GMM.3a, GMM.3b) follow their number."""
from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TAG = re.compile(r"\\tag\{([A-Z][A-Z0-9]*)\.(\d+)([a-z]?)\}")


def out_of_order(text: str) -> list[str]:
    """Pairs ``'A.m before A.n'`` where a label with a larger number precedes a smaller one."""
    last: dict[str, tuple[int, str]] = {}
    bad = []
    for prefix, number, suffix in TAG.findall(text):
        key = (int(number), suffix)
        if prefix in last and key < last[prefix]:
            prev = last[prefix]
            bad.append(f"{prefix}.{prev[0]}{prev[1]} before {prefix}.{number}{suffix}")
        last[prefix] = max(last.get(prefix, key), key)
    return bad


@pytest.mark.parametrize("md", sorted((ROOT / "derivations").glob("*.md")), ids=lambda p: p.name)
def test_labels_in_reading_order(md):
    bad = out_of_order(md.read_text(encoding="utf-8"))
    assert not bad, f"{md.name}: labels out of reading order: {bad}"


def test_order_checker_can_fail():
    assert out_of_order(r"\tag{X.1} \tag{X.3} \tag{X.2}") == ["X.3 before X.2"]
    assert out_of_order(r"\tag{X.1} \tag{X.2a} \tag{X.2b} \tag{Y.1} \tag{X.3}") == []
