"""The oracle set-up itself (numpy only, always runs): the extras, CI's oracle step, and the
conftest guard that turns a skipped cross-check into a failure under NPREFGEN_REQUIRE_ORACLE=1
while a plain run skips cleanly and says so."""
from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_extras_and_ci_step():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extras = cfg["options.extras_require"]["oracle"].split()
    assert "torch==2.13.0" in extras
    assert {e.split("==")[0] for e in extras} == {"torch", "jax", "zuko", "nflows"}
    assert "oracle:" in cfg["tool:pytest"]["markers"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install ".[oracle' in ci
    assert 'NPREFGEN_REQUIRE_ORACLE=1 .venv/bin/python -m pytest -m "oracle or torch' in ci
    # after the README's commands and the JIT-off kernel step
    assert ci.index("NUMBA_DISABLE_JIT=1") < ci.index('pip install ".[oracle')


def _run(tmp_path, require: bool):
    blocked = tmp_path / "blocked"
    blocked.mkdir(exist_ok=True)
    for m in ("torch", "jax"):
        (blocked / f"{m}.py").write_text(f"raise ModuleNotFoundError('{m} hidden by the test')\n")
    env = {**os.environ, "PYTHONPATH": str(blocked)}
    env.pop("NPREFGEN_REQUIRE_ORACLE", None)
    if require:
        env["NPREFGEN_REQUIRE_ORACLE"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/oracle/test_oracle_layers.py::test_planted_bug_is_caught",
                           "tests/nn/test_nn_torch.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_skips_cleanly_without_the_extras_and_fails_when_required(tmp_path):
    plain = _run(tmp_path, require=False)
    assert plain.returncode == 0, plain.stdout[-2000:]
    assert "oracle cross-checks skipped" in plain.stdout and "install .[oracle]" in plain.stdout
    required = _run(tmp_path, require=True)
    assert required.returncode != 0
    assert "NPREFGEN_REQUIRE_ORACLE=1 but torch is not importable" in required.stdout + required.stderr
