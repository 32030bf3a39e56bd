"""Old import paths kept when a module is split by concept.

``nprefgen/sbi/posterior.py`` was split into posterior.py (DirectPosterior, SBI.12),
mcmc_posterior.py (MCMCPosterior, SBI.13) and posterior_files.py (the file format), and
``nprefgen/models/gmm.py`` into gmm.py (the GaussianMixture estimator), gmm_params.py (GMM.3a,
GMM.3b, GMM.12), gmm_density.py (GMM.1, GMM.3, GMM.4, GMM.14) and gmm_em.py (GMM.5-GMM.11,
GMM.15-GMM.17). Every public name of the old modules is still importable from them and is the
very object of its new home (a re-export, not a copy: a copy would let a monkeypatch or an
``isinstance`` check see two classes).
"""
from __future__ import annotations

import importlib

import pytest

MOVED = {
    "nprefgen.sbi.posterior": {
        "nprefgen.sbi.posterior": ["DirectPosterior", "LeakageWarning", "LEAKAGE_THRESHOLD"],
        "nprefgen.sbi.mcmc_posterior": ["MCMCPosterior"],
        "nprefgen.sbi.posterior_files": ["MCMC_KEY", "register_likelihood"],
    },
    "nprefgen.models.gmm": {
        "nprefgen.models.gmm": ["GaussianMixture", "NotFittedError"],
        "nprefgen.models.gmm_params": [
            "COVARIANCE_TYPES", "precision_cholesky", "precision_cholesky_from_precisions",
            "covariance_cholesky", "precisions_from_cholesky", "n_parameters"],
        "nprefgen.models.gmm_density": ["log_gaussian_prob", "e_step", "sample_mixture"],
        "nprefgen.models.gmm_em": ["INIT_PARAMS", "m_step", "EMResult", "em",
                                   "initial_responsibilities"],
    },
}
CASES = [(old, home, name) for old, homes in MOVED.items() for home, names in homes.items()
         for name in names]


@pytest.mark.parametrize("old, home, name", CASES, ids=[f"{o}.{n}" for o, _, n in CASES])
def test_old_path_is_the_new_object(old, home, name):
    obj = getattr(importlib.import_module(old), name)
    assert obj is getattr(importlib.import_module(home), name)
    if callable(obj) and home != old:
        assert obj.__module__ == home, f"{old}.{name} is defined in {obj.__module__}, not {home}"


def test_package_namespaces_unchanged():
    """The names the packages exported before the split, from the same objects."""
    from nprefgen import models, sbi
    from nprefgen.models import gmm
    from nprefgen.sbi import posterior

    assert sbi.MCMCPosterior is posterior.MCMCPosterior
    assert sbi.DirectPosterior is posterior.DirectPosterior
    assert sbi.LeakageWarning is posterior.LeakageWarning
    assert models.GaussianMixture is gmm.GaussianMixture
    assert models.EMResult is gmm.EMResult
    assert models.NotFittedError is gmm.NotFittedError
