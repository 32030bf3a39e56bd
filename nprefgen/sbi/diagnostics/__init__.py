"""Is the posterior trustworthy? Calibration diagnostics (derivations/sbi.md, SBI.14-SBI.19).

* held-out log-likelihood of q(theta | x)                       :mod:`.likelihood` (SBI.14)
* PIT values per marginal, P-P curves, expected coverage          :mod:`.calibration` (SBI.15-14)
* simulation-based calibration ranks and uniformity tests         :mod:`.sbc` (SBI.17)
* TARP expected coverage probability and its area criterion       :mod:`.tarp` (SBI.18-17)
* C2ST and MMD against reference draws                            :mod:`nprefgen.metrics`

Every check works on arrays of posterior draws (N, L, p) for N simulated test observations and
the true parameters (N, p), so it serves any posterior: NPE, NLE, ABC, MCMC.
"""
from nprefgen.sbi.diagnostics.calibration import (
    ALPHAS, calibration_flags, expected_coverage, hpd_levels, marginal_coverage, pit_values,
    pp_curve, uniformity_pvalues,
)
from nprefgen.sbi.diagnostics.likelihood import heldout_log_likelihood
from nprefgen.sbi.diagnostics.sbc import run_sbc, sbc_ranks, sbc_uniformity
from nprefgen.sbi.diagnostics.tarp import tarp_area, tarp_coverage, tarp_fractions, tarp_test

__all__ = ["ALPHAS", "pit_values", "pp_curve", "uniformity_pvalues", "marginal_coverage",
           "hpd_levels", "expected_coverage", "calibration_flags", "heldout_log_likelihood",
           "sbc_ranks", "sbc_uniformity", "run_sbc", "tarp_fractions", "tarp_coverage",
           "tarp_area", "tarp_test"]
