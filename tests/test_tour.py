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
    rep.table(["name", "value", "status"], [["alpha", 0.123456789, True], ["beta", 2.0, False]],
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
    assert '<td class="ok">ok</td>' in page and '<td class="fail">FAIL</td>' in page
    assert "a &lt; b &amp; c" in page and "Demo &lt;section&gt;" in page   # escaped
    assert "seed 3, quick mode" in page
    assert "raised an error" not in page


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
    with pytest.raises(ValueError, match="sections: .*no_such_section"):
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
    assert "planted bug" in page and "FAIL (planted bug)" in page
    assert page.count('<td class="fail">FAIL</td>') == 1          # only the planted bug fails
    assert "rtol 1e-08" in page and "&lt;u, J^T v&gt; = &lt;v, J u&gt;" in page
    for name in ("gradchecks-errors.png", "gradchecks-step.png"):
        assert (tmp_path / name).stat().st_size > 1000
