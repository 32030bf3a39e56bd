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
