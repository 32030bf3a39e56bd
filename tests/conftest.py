"""Shared fixtures: float64, seeds through fixtures, a fast hypothesis profile."""
from __future__ import annotations

import os
import signal

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

settings.register_profile(
    "nprefgen", max_examples=int(os.environ.get("NPREFGEN_HYPOTHESIS_EXAMPLES", "20")),
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True, print_blob=True,
)
settings.load_profile("nprefgen")


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed for each test."""
    return np.random.default_rng(20261127)


def pytest_collection_modifyitems(config, items):
    """Mark the tests listed in tests/slow_tests.py ``slow`` (``-m "not slow"``: the fast subset)."""
    from slow_tests import mark_slow
    config.slow_unmatched = mark_slow(items, pytest.mark.slow)
    here = os.path.dirname(os.path.abspath(__file__))      # the whole suite: no file or -k given
    config.slow_collected_all = not config.getoption("-k") and all(
        os.path.abspath(str(a)).rstrip(os.sep) in (here, os.path.dirname(here)) for a in config.args)


@pytest.fixture
def alarm():
    """Fail instead of hanging: a SIGALRM after the given seconds (POSIX main thread only)."""
    if not hasattr(signal, "SIGALRM"):
        pytest.skip("needs SIGALRM")

    def handler(signum, frame):
        raise TimeoutError("hung")

    old = signal.signal(signal.SIGALRM, handler)
    yield lambda seconds: signal.alarm(seconds)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# -- the autodiff oracles (tests/oracle/, and every test marked torch or oracle) -------------------
_ORACLE_MARKS = ("oracle", "torch")
_ORACLE_MODULES = ("torch", "jax", "zuko", "nflows")   # the [oracle] extras
_REQUIRE = "NPREFGEN_REQUIRE_ORACLE"


def _skip_reason(report) -> str:
    return report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)


def _oracle_skip(report) -> bool:
    """A skip of a torch/oracle-marked test, or an importorskip of a library of the extras."""
    if any(m in getattr(report, "keywords", {}) for m in _ORACLE_MARKS):
        return True
    reason = _skip_reason(report)
    return any(f"could not import '{m}'" in reason for m in _ORACLE_MODULES)


def pytest_configure(config):
    """Under NPREFGEN_REQUIRE_ORACLE=1 (CI's oracle step) every library of the extras must import."""
    if os.environ.get(_REQUIRE) == "1":
        for m in _ORACLE_MODULES:
            try:
                __import__(m)
            except ImportError as exc:
                raise pytest.UsageError(f"{_REQUIRE}=1 but {m} is not importable ({exc}); "
                                        f"install the extras: pip install '.[oracle]'") from exc


def _fail_oracle_skip(report) -> None:
    if report.skipped and os.environ.get(_REQUIRE) == "1" and _oracle_skip(report):
        report.outcome = "failed"
        report.longrepr = (f"{_REQUIRE}=1 but this cross-check was skipped ({_skip_reason(report)}); "
                           f"the oracles must not skip in CI")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under NPREFGEN_REQUIRE_ORACLE=1 a skipped torch/JAX cross-check is a failure."""
    outcome = yield
    _fail_oracle_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a module skipped at import (``torch = pytest.importorskip("torch")``)."""
    outcome = yield
    _fail_oracle_skip(outcome.get_result())


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say so when cross-checks against torch/JAX/zuko/nflows were skipped (no extras)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if _oracle_skip(r)]
    if skipped:
        terminalreporter.write_line(
            f"oracle cross-checks skipped: {len(skipped)} tests or modules against "
            f"torch/JAX/zuko/nflows did not run; install .[oracle] (pip install '.[oracle]') to run them")
