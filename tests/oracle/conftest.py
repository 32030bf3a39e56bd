"""Fixtures of the autodiff cross-checks: ``backend`` runs a test once under torch.autograd and
once under JAX (float64); see oracle_backends.py."""
from __future__ import annotations

import pytest

from oracle_backends import BACKENDS


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    """A torch or JAX backend (skipped when the library is missing, unless
    NPREFGEN_REQUIRE_ORACLE=1)."""
    return BACKENDS[request.param]()
