"""The ``nprefgen`` command: help, version, gradcheck and tour exit codes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import nprefgen
import nprefgen.tour.gradchecks as gradchecks
from nprefgen.cli import main


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "tour" in out and "gradcheck" in out


def test_tour_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tour", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--out", "--seed", "--quick", "--sections", "--no-progress"):
        assert opt in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"nprefgen {nprefgen.__version__}"


def test_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_python_dash_m_nprefgen_works():
    """``python -m nprefgen`` runs the same command (nprefgen/__main__.py)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "nprefgen", "--version"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"nprefgen {nprefgen.__version__}"


def test_gradcheck_exits_0_when_every_check_passes(capsys):
    assert main(["gradcheck", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "Linear(3, 4)" in out and "FAIL" not in out


def test_gradcheck_exits_1_when_a_check_fails(monkeypatch, capsys):
    """A broken backward makes the command fail: feed it the planted-bug rows."""
    rows = [("layers", *r) for r in gradchecks.planted_bug_checks(seed=0)]
    monkeypatch.setattr(gradchecks, "run_gradchecks", lambda groups, seed=0: rows)
    assert main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "1 failed" in out


def test_gradcheck_covers_every_group_and_selects_groups(capsys):
    """Every layer, loss, bijector and kernel gradient by default; --group picks some."""
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    for group, name in (("layers", "Conv2d"), ("losses", "mse_loss"), ("bijectors", "IAF(context)"),
                        ("bijectors", "spline_flow(context)"), ("kernels", "ntxent"),
                        ("kernels", "rq_spline_theta_forward")):
        assert any(line.startswith(group) and name in line for line in out.splitlines()), (group, name)
    assert "context" in out and "0 failed" in out
    assert main(["gradcheck", "--group", "bijectors,kernels", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert not any(line.startswith(("layers", "losses")) for line in out.splitlines())
    assert "bijectors" in out.splitlines()[-1] and "kernels" in out.splitlines()[-1]


def test_gradcheck_unknown_group_exits_2(capsys):
    assert main(["gradcheck", "--group", "layers,nope"]) == 2
    err = capsys.readouterr().err
    assert "--group" in err and "nope" in err and "bijectors" in err


def test_gradcheck_bijector_rows_can_fail(monkeypatch, capsys):
    """A coupling whose conditioner gradient is doubled fails its bijector rows."""
    from nprefgen.flows import AffineCoupling

    original = gradchecks.bijector_cases

    def broken(*, rng=None):
        cases = original(rng=rng)
        b = cases[0][1]
        assert isinstance(b, AffineCoupling)
        net_backward = b.net._backward
        b.net._backward = lambda cache, d: 2.0 * net_backward(cache, d)
        return cases[:1]

    monkeypatch.setattr(gradchecks, "bijector_cases", broken)
    assert main(["gradcheck", "--group", "bijectors"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "AffineCoupling" in out


def test_tour_quick_gradchecks_writes_the_report(tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(["tour", "--quick", "--sections", "gradchecks", "--out", str(out), "--no-progress"])
    assert rc == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Gradient checks of every layer" in page and "quick mode" in page
    assert (out / "gradchecks-errors.png").exists()
    assert str(out / "index.html") in capsys.readouterr().out


def test_tour_unknown_section_exits_2_listing_the_valid_names(tmp_path, capsys):
    from nprefgen.tour import section_titles

    rc = main(["tour", "--quick", "--sections", "gradchecks,nope", "--out", str(tmp_path),
               "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown section name(s): nope" in err and "Traceback" not in err
    for key, title in section_titles():
        assert key in err and title in err
    assert not (tmp_path / "index.html").exists()


def test_tour_unknown_section_from_the_shell_has_no_traceback(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "nprefgen", "tour", "--sections", "pcaa",
                          "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=60)
    assert res.returncode == 2
    assert "unknown section name(s): pcaa" in res.stderr and "pca " in res.stderr
    assert "Traceback" not in res.stderr


def test_tour_help_lists_every_section_with_its_title(capsys):
    from nprefgen.tour import discover_sections, section_titles

    with pytest.raises(SystemExit) as exc:
        main(["tour", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    listed = section_titles()
    # the listing read from the sources agrees with the imported modules, in tour order
    assert [(k, m.TITLE) for k, m in discover_sections()] == listed
    lines = out.split("sections, in tour order:")[1].strip().splitlines()
    assert len(lines) == len(listed) >= 10
    for line, (key, title) in zip(lines, listed):
        assert line.split()[0] == key and line.rstrip().endswith(title)


def test_tour_prints_the_flagged_checks(tmp_path, capsys, monkeypatch):
    """The terminal lists every flagged check of the report (here: one planted in a section)."""
    import nprefgen.tour as tour
    from nprefgen.tour.report import Report

    def fake_build(outdir, **kw):
        rep = Report(outdir, seed=0)
        rep.begin("s", "S")
        rep.check("fine", 0.5, "x < 1", True)
        rep.check("bad r-hat", 1.5, "R-hat < 1.01", False)
        rep.write()
        return rep

    monkeypatch.setattr(tour, "build_tour", fake_build)
    assert main(["tour", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 checks, 1 flagged:" in out
    assert "FLAGGED s: bad r-hat = 1.5 (rule: R-hat < 1.01)" in out and "fine" not in out
