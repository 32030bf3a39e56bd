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
    rows = gradchecks.planted_bug_checks(seed=0)
    monkeypatch.setattr(gradchecks, "run_all_layer_checks", lambda seed=0: rows)
    assert main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "1 failed" in out


def test_tour_quick_gradchecks_writes_the_report(tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(["tour", "--quick", "--sections", "gradchecks", "--out", str(out), "--no-progress"])
    assert rc == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Gradient checks of every layer" in page and "quick mode" in page
    assert (out / "gradchecks-errors.png").exists()
    assert str(out / "index.html") in capsys.readouterr().out


def test_tour_unknown_section_exits_2(tmp_path, capsys):
    rc = main(["tour", "--quick", "--sections", "gradchecks,nope", "--out", str(tmp_path),
               "--no-progress"])
    assert rc == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "index.html").exists()
