"""The tour machinery (Report, section discovery, failure reporting) and the gradchecks section."""
from __future__ import annotations

import importlib
import inspect
import os
import sys
import textwrap

import numpy as np
import pytest

import nprefgen.nn as nn
import nprefgen.tour.sections as sections_pkg
from nprefgen.cli import main
from nprefgen.nn import losses
from nprefgen.tour import build_tour, discover_sections, run_tour
from nprefgen.tour.gradchecks import (
    BrokenLinear, layer_cases, loss_cases, planted_bug_checks, run_all_layer_checks,
)
from nprefgen.tour.report import Report


# -- fake sections on a temporary path ------------------------------------------------------------

@pytest.fixture
def fake_sections(tmp_path, monkeypatch):
    """``add(name, source)`` writes a section module that discovery finds next to the real ones."""
    folder = tmp_path / "fake_sections"
    folder.mkdir()
    monkeypatch.setattr(sections_pkg, "__path__", [*sections_pkg.__path__, str(folder)])

    def add(name: str, source: str) -> str:
        (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        importlib.invalidate_caches()
        monkeypatch.delitem(sys.modules, f"{sections_pkg.__name__}.{name}", raising=False)
        return name

    yield add
    for f in folder.glob("*.py"):
        sys.modules.pop(f"{sections_pkg.__name__}.{f.stem}", None)


_OK = """
ORDER = {order}
TITLE = "Fake {name}"
def build(report):
    report.text("fake section {name} ran")
"""

_BOOM = """
ORDER = -5
TITLE = "Fake failing section"
def build(report):
    report.text("before the error")
    raise RuntimeError("planted failure in zz_boom")
"""


# -- Report ----------------------------------------------------------------------------------------

def test_report_writes_index_with_figures_and_tables(tmp_path):
    import matplotlib.pyplot as plt

    rep = Report(tmp_path / "out", seed=3, quick=True)
    rep.begin("demo", "Demo <section>")
    rep.text("a < b & c")
    good = rep.check("alpha small", 0.123456789, "alpha < 1", True, show=False)
    bad = rep.check("beta small", 2.0, "beta < 1", False, show=False)
    rep.table(["name", "value", "status"], [["alpha", 0.123456789, good], ["beta", 2.0, bad],
                                            ["gamma", "-", None]],
              caption="a table", status_col=2)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    fname = rep.figure(fig, "line", caption="a line")
    path = rep.write(1.0)

    assert path == os.path.join(str(tmp_path / "out"), "index.html") == rep.index_path
    page = open(path, encoding="utf-8").read()
    assert fname == "demo-line.png" and (tmp_path / "out" / fname).stat().st_size > 1000
    assert f'<img src="{fname}"' in page
    assert "<table>" in page and "<caption>a table</caption>" in page
    assert "<td>0.1235</td>" in page                       # 4 significant digits
    assert '<td class="ok" id="demo-check-1" title="alpha small = 0.1235; rule: alpha &lt; 1">ok' \
        in page
    assert '<td class="fail" id="demo-check-2"' in page and ">FLAGGED</td>" in page
    assert '<td class="na">not checked</td>' in page
    # the summary at the top links to the flagged check only
    top = page.split("<nav>")[0]
    assert "2 recorded in 1 of 1 section(s)" in top and "1 flagged" in top
    assert '<li><a href="#demo">Demo &lt;section&gt;</a>: 1 flagged' in top
    assert '<a href="#demo-check-2">beta small</a> = 2 <span class="rule">(rule: beta &lt; 1)' in top
    assert "demo-check-1" not in top
    assert rep.flagged == [bad] and rep.checks == [good, bad]
    assert "a &lt; b &amp; c" in page and "Demo &lt;section&gt;" in page   # escaped
    assert "seed 3, quick mode" in page
    assert "raised an error" not in page


def test_check_renders_inline_and_unplaced_checks_are_listed_at_the_section_end(tmp_path):
    rep = Report(tmp_path, seed=0)
    rep.begin("a", "Section A")
    c = rep.check("integral", 1.0000001, "|integral - 1| < 1e-3", True)
    rep.check("hidden", 7, "hidden < 5", False, show=False)      # never placed in a table
    rep.text("after")
    rep.begin("b", "Section B")
    rep.text("no checks here")
    page = open(rep.write(), encoding="utf-8").read()
    assert c.status == "ok" and c.anchor == "a-check-1"
    assert ('<p class="check" id="a-check-1"><span class="ok">ok</span> integral = 1 '
            '<span class="rule">(rule: |integral - 1| &lt; 1e-3)</span></p>') in page
    body_a = page.split('<h2 id="a">')[1].split('<h2 id="b">')[0]
    assert body_a.index("after") < body_a.index("Further checks") < body_a.index('id="a-check-2"')
    assert '<span class="fail">FLAGGED</span> hidden = 7' in body_a
    assert "Section A</a> <span class=\"fail\">(1 flagged)</span>" in page     # in the nav
    assert "2 recorded in 1 of 2 section(s)" in page


def test_summary_says_none_flagged_when_every_check_passes(tmp_path):
    rep = Report(tmp_path, seed=0)
    rep.begin("a", "A")
    rep.check("x", 0.5, "x < 1", True)
    page = open(rep.write(), encoding="utf-8").read()
    assert "none flagged" in page and "<ul>" not in page


def test_bare_booleans_cannot_mark_a_table_ok(tmp_path):
    """Structural: a status column takes Check objects (with their rule) or None, never a bool."""
    rep = Report(tmp_path, seed=0)
    rep.begin("a", "A")
    with pytest.raises(ValueError, match=r"rows\[0\]\[1\]: expected a Check"):
        rep.table(["name", "status"], [["x", True]], status_col=1)
    with pytest.raises(ValueError, match="passed: expected a bool"):
        rep.check("x", 1.0, "x < 2", "yes")
    with pytest.raises(ValueError, match="passed: expected a bool"):
        rep.check("x", 1.0, "x < 2", None)
    with pytest.raises(ValueError, match="rule"):
        rep.check("x", 1.0, "  ", True)
    with pytest.raises(ValueError, match="no section has begun"):
        Report(tmp_path, seed=0).check("x", 1.0, "x < 2", True)


def test_no_section_writes_a_bare_ok_or_fail():
    """Sections state outcomes only through report.check: no string literal "ok"/"FAIL" cell."""
    import ast

    folder = os.path.dirname(sections_pkg.__file__)
    offenders = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(folder, name), encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    node.value.strip().lower() in {"ok", "fail", "failed", "passed", "flagged"}:
                offenders.append(f"{name}:{node.lineno} {node.value!r}")
    assert not offenders, offenders


def test_report_rng_is_deterministic_per_seed_and_distinct_across_names(tmp_path):
    a, b = Report(tmp_path, seed=0), Report(tmp_path, seed=0)
    assert np.array_equal(a.rng("flows").standard_normal(5), b.rng("flows").standard_normal(5))
    # a fresh generator on every call, so sections do not disturb each other
    assert np.array_equal(a.rng("flows").standard_normal(5), a.rng("flows").standard_normal(5))
    draws = {name: a.rng(name).standard_normal(5) for name in ["flows", "sbi", "gmm", "flowsx", "a", ""]}
    keys = list(draws)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert not np.allclose(draws[keys[i]], draws[keys[j]]), (keys[i], keys[j])
    other_seed = Report(tmp_path, seed=1).rng("flows").standard_normal(5)
    assert not np.allclose(other_seed, draws["flows"])


# -- discovery -------------------------------------------------------------------------------------

def test_discovery_sorts_by_order_then_name(fake_sections):
    for name, order in [("zz_c", -1), ("zz_a", -2), ("zz_b", -1)]:
        fake_sections(name, _OK.format(order=order, name=name))
    found = discover_sections(["zz_c", "zz_a", "zz_b"])
    assert [k for k, _ in found] == ["zz_a", "zz_b", "zz_c"]
    assert found[0][1].TITLE == "Fake zz_a"


def test_unknown_section_name_raises_value_error():
    with pytest.raises(ValueError, match="section.*no_such_section"):
        discover_sections(["gradchecks", "no_such_section"])
    with pytest.raises(ValueError, match="no_such_section"):
        run_tour("unused", only=["no_such_section"], progress=False)


def test_real_sections_keep_the_contract():
    """Every module in nprefgen/tour/sections imports and has an int ORDER and a str TITLE."""
    found = discover_sections()
    assert "gradchecks" in [k for k, _ in found]
    for key, mod in found:
        assert isinstance(mod.ORDER, int) and mod.ORDER < 10**6, f"{key} failed to import or lacks ORDER"
        assert isinstance(mod.TITLE, str) and mod.TITLE and callable(mod.build), key
    orders = [mod.ORDER for _, mod in found]
    assert orders == sorted(orders)


# -- failures --------------------------------------------------------------------------------------

def test_failing_section_is_reported_and_others_still_run(tmp_path, fake_sections):
    fake_sections("zz_boom", _BOOM)
    fake_sections("zz_fine", _OK.format(order=-4, name="zz_fine"))
    report = build_tour(tmp_path, only=["zz_boom", "zz_fine"], progress=False)
    assert [k for k, _ in report.failures] == ["zz_boom"]
    assert "planted failure in zz_boom" in report.failures[0][1]
    page = open(report.index_path, encoding="utf-8").read()
    assert "1 section(s) raised an error: zz_boom" in page
    assert "RuntimeError: planted failure in zz_boom" in page
    assert "before the error" in page and "fake section zz_fine ran" in page
    with pytest.raises(RuntimeError, match="planted failure"):
        build_tour(tmp_path, only=["zz_boom"], progress=False, strict=True)


def test_section_that_fails_to_import_is_reported(tmp_path, fake_sections):
    fake_sections("zz_broken_import", "import nprefgen.no_such_module_here\nORDER = 1\n")
    fake_sections("zz_no_build", "ORDER = 1\nTITLE = 'no build'\n")
    report = build_tour(tmp_path, only=["zz_broken_import", "zz_no_build"], progress=False)
    assert sorted(k for k, _ in report.failures) == ["zz_broken_import", "zz_no_build"]
    text = "\n".join(t for _, t in report.failures)
    assert "no_such_module_here" in text and "lacks ['build']" in text


def test_cli_tour_exits_1_after_writing_the_report_when_a_section_raises(tmp_path, fake_sections,
                                                                        capsys):
    fake_sections("zz_boom", _BOOM)
    out = tmp_path / "tour"
    rc = main(["tour", "--out", str(out), "--sections", "zz_boom", "--no-progress"])
    assert rc == 1
    assert (out / "index.html").exists()
    err = capsys.readouterr().err
    assert "zz_boom" in err and "planted failure" in err


def test_run_tour_returns_the_index_path(tmp_path, fake_sections):
    fake_sections("zz_fine", _OK.format(order=0, name="zz_fine"))
    path = run_tour(tmp_path, only=["zz_fine"], progress=False, strict=True)
    assert path == os.path.join(str(tmp_path), "index.html") and os.path.exists(path)


# -- gradient checks -------------------------------------------------------------------------------

def test_every_layer_and_loss_passes_the_dot_product_test():
    """(NN.18) with the central difference (NN.19) on every layer: all rows ok, errors tiny."""
    rows = run_all_layer_checks(seed=1)
    bad = [r for r in rows if not r[3]]
    assert not bad
    assert max(r[2] for r in rows) < 1e-8
    assert all(isinstance(d, str) and isinstance(p, str) for d, p, _, _ in rows)
    # parameters are named as in a torch state_dict
    mlp_names = {p for d, p, _, _ in rows if d.startswith("MLP(3, [5, 4]")}
    assert mlp_names == {"input", "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"}


def test_every_layer_type_of_nn_is_covered():
    classes = {obj for name in nn.__all__ for obj in [getattr(nn, name)]
               if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj is not nn.Module}
    covered = {type(m) for _, layer, _ in layer_cases(rng=np.random.default_rng(0)) for m in layer.modules()}
    assert classes - covered == set(), f"layers without a gradient check: {classes - covered}"


def test_every_loss_is_covered():
    names = {name for name, f in inspect.getmembers(losses, inspect.isfunction)
             if name.endswith("_loss") and f.__module__ == losses.__name__}
    covered = {desc.split()[0] for desc, *_ in loss_cases(rng=np.random.default_rng(0))}
    assert names and names <= covered, f"losses without a gradient check: {names - covered}"


def test_planted_bug_is_caught_only_in_the_weight_row():
    rows = planted_bug_checks(seed=2)
    status = {p: (err, ok) for _, p, err, ok in rows}
    assert set(status) == {"input", "weight", "bias"}
    assert not status["weight"][1] and status["weight"][0] > 1e-4
    assert status["input"][1] and status["bias"][1]
    assert issubclass(BrokenLinear, nn.Linear)


def test_gradchecks_bad_arguments():
    with pytest.raises(ValueError, match="seed"):
        run_all_layer_checks(seed=-1)
    with pytest.raises(ValueError, match="rng"):
        run_all_layer_checks(rng="42")


def test_gradchecks_section_quick(tmp_path):
    path = run_tour(tmp_path, quick=True, only=["gradchecks"], progress=False, strict=True)
    page = open(path, encoding="utf-8").read()
    assert "Gradient checks of every layer" in page
    assert "planted bug" in page and "fails (planted bug)" in page
    assert "FLAGGED" not in page.split("<nav>")[0] and "none flagged" in page
    # every layer row is a check with its rule; the planted bug fails its test, as expected
    assert page.count('<td class="ok" id="gradchecks-check-') == page.count("gradchecks-check-")
    assert '<td class="fail"' not in page
    assert "<td>fails</td><td>fails (planted bug)</td>" in page
    assert "rtol 1e-08" in page and "&lt;u, J^T v&gt; = &lt;v, J u&gt;" in page
    for name in ("gradchecks-errors.png", "gradchecks-step.png"):
        assert (tmp_path / name).stat().st_size > 1000


# -- the sections' checks --------------------------------------------------------------------------

def test_toys_section_checks_only_what_has_a_density(tmp_path):
    report = build_tour(tmp_path, quick=True, only=["toys"], progress=False, strict=True)
    names = [c.name for c in report.checks]
    assert names == ["rings: integral of p", "checkerboard: integral of p", "8gaussians: integral of p"]
    assert all(c.passed and c.rule == "|integral - 1| < 1e-3" for c in report.checks)
    page = open(report.index_path, encoding="utf-8").read()
    assert page.count('<td class="na">not checked</td>') == 2       # two_moons, pinwheel


def test_grf_section_flags_chi2_from_the_number_of_bins(tmp_path):
    from nprefgen.tour import rules

    report = build_tour(tmp_path, quick=True, only=["grf"], progress=False, strict=True)
    chi2 = [c for c in report.checks if "chi2" in c.name]
    lo, hi = rules.chi2_bounds(8)
    assert len(chi2) == 2 and all(f"{lo:.2f} <= chi2/bin <= {hi:.2f}" in c.rule for c in chi2)
    assert all(c.passed == (lo <= c.value <= hi) for c in chi2)


def test_rules_flag_at_their_bars(tmp_path):
    from scipy import stats

    from nprefgen.tour import rules

    rep = Report(tmp_path, seed=0)
    rep.begin("a", "A")
    assert rules.ks_uniform(rep, "k", 0.0101).passed and not rules.ks_uniform(rep, "k", 0.0099).passed
    assert rules.rhat(rep, "r", 1.0099).passed and not rules.rhat(rep, "r", 1.01).passed
    assert rules.ess(rep, "e", 100).passed and not rules.ess(rep, "e", 99.9).passed
    # chi2 / B: the central 99 % of chi2_B / B, narrower with more bins
    lo, hi = rules.chi2_bounds(8)
    assert np.isclose(lo, stats.chi2.ppf(0.005, 8) / 8) and np.isclose(hi, stats.chi2.ppf(0.995, 8) / 8)
    lo64, hi64 = rules.chi2_bounds(64)
    assert lo < lo64 < 1 < hi64 < hi
    assert rules.chi2_per_bin(rep, "c", 1.0, 8).passed and not rules.chi2_per_bin(rep, "c", hi + 0.01, 8).passed
    assert not rules.chi2_per_bin(rep, "c", lo - 0.01, 8).passed
    # C2ST: 0.5 + z_0.99 * 0.5 / sqrt(2 n); a chance classifier exceeds it 1 % of the time
    bar = rules.c2st_bar(200)
    assert np.isclose(bar, 0.5 + 2.3263478740 * 0.5 / 20.0)
    acc = stats.binom(400, 0.5)
    assert 0.005 < acc.sf(np.floor(bar * 400)) < 0.015
    assert rules.c2st(rep, "c", bar, 200).passed and not rules.c2st(rep, "c", bar + 1e-3, 200).passed
