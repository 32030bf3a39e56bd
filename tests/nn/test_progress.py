"""Progress bars of the training loop (nprefgen/nn/train.py, show_progress): visible by default in
interactive use (a terminal or a Jupyter kernel), silent under pytest and when stderr is a file;
NPREFGEN_PROGRESS=1/0 forces them on or off; progress=False always wins."""
from __future__ import annotations

import io
import sys
import types

import numpy as np
import pytest

from nprefgen.flows import maf
from nprefgen.nn.train import fit_loop, show_progress


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def _fit(progress=None):
    x = np.random.default_rng(0).normal(size=(64, 2))
    flow = maf(2, 1, 4, rng=0, standardize=False)
    fit_loop(flow, flow.nll_and_grad, (x,), rng=0, epochs=2, batch_size=32, progress=progress,
             desc="bar-under-test")


def test_silent_under_pytest_by_default(monkeypatch, capsys):
    monkeypatch.delenv("NPREFGEN_PROGRESS", raising=False)
    assert show_progress(None) is False and show_progress(True) is False
    _fit()
    assert "bar-under-test" not in capsys.readouterr().err


def test_a_terminal_shows_the_bar_unless_told_not_to(monkeypatch):
    monkeypatch.delenv("NPREFGEN_PROGRESS", raising=False)
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)     # as outside pytest
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    assert show_progress(None) and show_progress(True)
    _fit()
    assert "bar-under-test" in tty.getvalue()
    assert not show_progress(False)
    monkeypatch.setenv("NPREFGEN_PROGRESS", "0")
    assert not show_progress(None)
    monkeypatch.setattr(sys, "stderr", io.StringIO())              # a file, no env: silent
    monkeypatch.delenv("NPREFGEN_PROGRESS")
    assert not show_progress(None)


def test_a_notebook_kernel_shows_the_bar(monkeypatch):
    monkeypatch.delenv("NPREFGEN_PROGRESS", raising=False)
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())             # ipykernel's stream: no tty
    shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert show_progress(None)
    terminal_ipython = types.SimpleNamespace()                    # IPython in a terminal, no kernel
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: terminal_ipython))
    assert not show_progress(None)


def test_env_forces_the_bar_on_and_is_checked(monkeypatch, capsys):
    monkeypatch.setenv("NPREFGEN_PROGRESS", "1")
    assert show_progress(None)
    _fit()
    assert "bar-under-test" in capsys.readouterr().err
    _fit(progress=False)
    assert "bar-under-test" not in capsys.readouterr().err
    monkeypatch.setenv("NPREFGEN_PROGRESS", "maybe")
    with pytest.raises(ValueError, match="^NPREFGEN_PROGRESS"):
        show_progress(None)


@pytest.mark.parametrize("name", ["NPE", "NLE", "NRE", "NPSE"])
def test_sbi_trainers_default_to_automatic_progress(name):
    """Every SBI trainer's ``progress`` defaults to None: a bar in interactive use, silent in
    tests and scripts (show_progress), not False (issue 12: 1-2 minute runs showed nothing)."""
    import inspect

    import nprefgen.sbi as sbi
    assert inspect.signature(getattr(sbi, name).train).parameters["progress"].default is None
