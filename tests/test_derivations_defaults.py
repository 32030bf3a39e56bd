"""Defaults the derivations state are the ones the code applies (derivations/sbi.md, MCMC.2-MCMC.9).

The slice sampler's fallback after 200 rejected shrinks is counted, not silent; the constants the
prose quotes (stepping-out budget, HMC jitter, the ESS floor) are read from the code, so a change
in one without the other fails here.
"""
from __future__ import annotations

import inspect
import pathlib

import numpy as np

from nprefgen.samplers import diagnostics as mcmc_diag
from nprefgen.samplers import hmc as hmc_module
from nprefgen.samplers.slice import slice_sampling, slice_update

ROOT = pathlib.Path(__file__).resolve().parents[1]
SBI_MD = (ROOT / "derivations" / "sbi.md").read_text(encoding="utf-8")


def test_slice_fallback_is_counted():
    """(MCMC.4) a slice of zero width (all mass at the current point) exhausts the 200 shrinks
    on every update; the count is reported, and it is 0 on an ordinary target."""
    def point_mass(x):
        return np.where(np.all(x == 0.0, axis=1), 0.0, -np.inf)

    res = slice_sampling(point_mass, np.zeros((3, 2)), 2, rng=0, n_warmup=1)
    assert res.extra["shrink_exhausted"] == 3 * 2 * (1 + 2)        # chains * coords * sweeps
    assert np.all(res.samples == 0.0)

    def gaussian(x):
        return -0.5 * np.sum(x * x, axis=1)

    res = slice_sampling(gaussian, np.zeros((3, 2)), 20, rng=0, n_warmup=5)
    assert res.extra["shrink_exhausted"] == 0


def test_stated_defaults_match_the_code():
    """The numbers sbi.md quotes for MCMC.4, HMC and MCMC.9 are the code's."""
    params = inspect.signature(slice_update).parameters
    assert params["max_step_out"].default == 20 and params["max_shrink"].default == 200
    assert "20" in SBI_MD and "200" in SBI_MD
    hmc_src = inspect.getsource(hmc_module)
    assert "rng.uniform(0.8, 1.2" in hmc_src and "U(0.8, 1.2)" in SBI_MD
    assert "1.0 / np.log10(max(m * n, 10))" in inspect.getsource(mcmc_diag.effective_sample_size)
    assert r"1/\log_{10}(n_c N)" in SBI_MD
