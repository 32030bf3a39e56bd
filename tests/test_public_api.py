"""The public API: every subpackage exports its names; randomness is a keyword-only ``rng=None``.

Issue 8 ("One API, following the ecosystem's conventions"): ``from nprefgen.models import
GaussianMixture`` works, and every public function or method that draws random numbers takes
``rng`` keyword-only with default None (SPEC 7: None, an int seed or a Generator, normalised by
``nprefgen._validation.check_rng``). Both are checked by introspection, so a new module or a new
function is covered without touching this file.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import nprefgen

SUBPACKAGES = ["data", "flows", "kernels", "metrics", "models", "nn", "samplers", "sbi",
               "sbi.diagnostics", "testing"]

# Callables whose ``rng`` is positional by protocol: nprefgen calls them as ``f(theta, rng)`` with a
# Generator, and users write their own (simulator, reference-sampler and augmentation protocols).
PROTOCOL = {
    "nprefgen.sbi.tasks.GaussianLinearSimulator.__call__",
    "nprefgen.sbi.tasks.TwoMoonsSimulator.__call__",
    "nprefgen.sbi.tasks.GaussianMixtureSimulator.__call__",
    "nprefgen.sbi.cosmology.CosmologyGRFSimulator.__call__",
    "nprefgen.models.augment.Augment.__call__",          # SimCLR.fit calls augment(x, rng)
}

# TO REMOVE AT MERGE (issue 8): signatures in files owned by other helpers, changed on their
# branches in parallel. Each entry must go once its owner's branch is merged (the test
# ``test_exemptions_are_still_needed`` fails on an entry that is already fixed).
IN_FLIGHT = {
    # "flows" helper: nprefgen/flows/*, nprefgen/plots/flows.py
     
     
     
     
     
     
     
     
     
     
    # "train" helper: models/autoencoder.py, models/contrastive.py, sbi/npe.py, nle.py, posterior.py
     "nprefgen.models.autoencoder.conv_autoencoder",
    "nprefgen.models.autoencoder.dense_autoencoder",
    "nprefgen.models.autoencoder.linear_autoencoder",
     "nprefgen.models.contrastive.conv_simclr",
    "nprefgen.models.contrastive.dense_simclr", 
     "nprefgen.sbi.npe.build_flow",
    "nprefgen.sbi.posterior.DirectPosterior.estimate_acceptance",
    "nprefgen.sbi.posterior.DirectPosterior.sample",
    "nprefgen.sbi.posterior.DirectPosterior.sample_batched",
    "nprefgen.sbi.posterior.MCMCPosterior.sample",
    "nprefgen.sbi.posterior.MCMCPosterior.sample_batched",
    # "reliability" helper: samplers/*, sbi/priors.py, sbi/simulate.py, metrics/mmd.py
    "nprefgen.metrics.mmd.median_bandwidth", "nprefgen.metrics.mmd.mmd2",
    "nprefgen.metrics.mmd.mmd_permutation_test", "nprefgen.samplers.hmc.hmc",
    "nprefgen.samplers.mcmc.check_run_args", "nprefgen.samplers.metropolis.random_walk_metropolis",
    "nprefgen.samplers.slice.slice_sampling", "nprefgen.samplers.slice.slice_update",
    "nprefgen.sbi.priors.BoxUniform.sample", "nprefgen.sbi.priors.Gaussian.sample",
    "nprefgen.sbi.priors.Prior.sample", "nprefgen.sbi.simulate.batch_seeds",
    "nprefgen.sbi.simulate.simulate", "nprefgen.sbi.simulate.simulate_from_prior",
    # "contracts" helper: nprefgen/testing/*
    
    
    
    "nprefgen.testing.bijector_checks.randomize_parameters",
     
     
    
}


def _public_modules():
    """Every importable nprefgen module without a private path component (plots included)."""
    names = ["nprefgen"]
    for info in pkgutil.walk_packages(nprefgen.__path__, "nprefgen."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]):
            continue
        names.append(info.name)
    return sorted(names)


def _public_callables():
    """(qualified name, callable) for each public function, class and method defined in nprefgen."""
    seen = {}
    for name in _public_modules():
        mod = importlib.import_module(name)
        for attr, obj in vars(mod).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                continue
            if inspect.isfunction(obj):
                seen[f"{name}.{attr}"] = obj
            elif inspect.isclass(obj):
                seen[f"{name}.{attr}"] = obj                       # the constructor
                for meth_name, meth in vars(obj).items():
                    if meth_name.startswith("_") and meth_name != "__call__":
                        continue
                    if isinstance(meth, (staticmethod, classmethod)):
                        meth = meth.__func__
                    if inspect.isfunction(meth):
                        seen[f"{name}.{attr}.{meth_name}"] = meth
    return sorted(seen.items())


def _rng_violations():
    bad = []
    for qualname, obj in _public_callables():
        if qualname in PROTOCOL or qualname in IN_FLIGHT:
            continue
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        p = sig.parameters.get("rng")
        if p is None:
            continue
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is not None:
            bad.append(f"{qualname}{sig}")
    return bad


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_all_names_import(sub):
    """Each subpackage has ``__all__``, every name in it exists, and there are no duplicates."""
    mod = importlib.import_module(f"nprefgen.{sub}")
    assert hasattr(mod, "__all__"), f"nprefgen.{sub} has no __all__"
    assert len(set(mod.__all__)) == len(mod.__all__), f"nprefgen.{sub}.__all__ has duplicates"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"nprefgen.{sub}.__all__ names missing attributes: {missing}"
    ns = {}
    exec(f"from nprefgen.{sub} import *", ns)                    # noqa: S102 - the user's view
    assert set(mod.__all__) <= set(ns)


@pytest.mark.parametrize("sub, names", [
    ("models", ["GaussianMixture", "PCA", "kmeans_plusplus", "LinearProbe", "Autoencoder",
                "SimCLR", "Augment"]),
    ("metrics", ["c2st", "mmd2", "power_spectrum"]),
    ("sbi", ["NPE", "NLE", "BoxUniform", "Gaussian", "rejection_abc", "two_moons", "simulate"]),
    ("sbi.diagnostics", ["run_sbc", "tarp_test", "pit_values"]),
    ("samplers", ["hmc", "slice_sampling", "random_walk_metropolis"]),
    ("data", ["load_digits", "sample_two_moons", "TOYS"]),
    ("nn", ["Linear", "MLP", "Adam", "torch_default"]),
    ("testing", ["check_layer", "check_bijector"]),
])
def test_headline_names_exported(sub, names):
    """The names a README reader reaches for first are importable from the subpackage."""
    mod = importlib.import_module(f"nprefgen.{sub}")
    missing = [n for n in names if n not in mod.__all__]
    assert not missing, f"nprefgen.{sub} does not export {missing}"


def test_every_public_class_of_a_subpackage_is_exported():
    """A public class defined in a subpackage's module is in that subpackage's ``__all__``."""
    missing = []
    for sub in ["models", "metrics", "nn", "data"]:   # samplers.mcmc.CountingLogProb is a helper
        pkg = importlib.import_module(f"nprefgen.{sub}")
        for qualname, obj in _public_callables():
            if not qualname.startswith(f"nprefgen.{sub}.") or not inspect.isclass(obj):
                continue
            if qualname.count(".") != 3 or issubclass(obj, BaseException):
                continue                                         # methods; exceptions are optional
            if obj.__name__ not in pkg.__all__:
                missing.append(qualname)
    assert not missing, f"public classes not exported by their subpackage: {missing}"


def test_rng_is_keyword_only_with_default_none():
    """SPEC 7: ``rng`` is keyword-only and defaults to None wherever a public callable takes one."""
    bad = _rng_violations()
    assert not bad, "rng must be keyword-only with default None:\n  " + "\n  ".join(bad)


def test_exemptions_are_still_needed():
    """An exemption that no longer matches anything (renamed, fixed) must be removed."""
    names = dict(_public_callables())
    stale = sorted(q for q in PROTOCOL | IN_FLIGHT if q not in names)
    assert not stale, f"stale exemptions: {stale}"
    fixed = []
    for q in sorted(IN_FLIGHT):
        p = inspect.signature(names[q]).parameters.get("rng")
        if p is not None and p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is None:
            fixed.append(q)
    assert not fixed, f"IN_FLIGHT exemptions already fixed, remove them: {fixed}"


def test_the_checker_catches_a_positional_rng(monkeypatch):
    """The introspection above is able to fail: a planted positional ``rng`` is reported."""
    import nprefgen.data.toys as toys

    def sample_planted(n, rng):  # pragma: no cover - never called
        return np.zeros((n, 2))
    sample_planted.__module__ = "nprefgen.data.toys"
    monkeypatch.setattr(toys, "sample_planted", sample_planted, raising=False)
    assert any("sample_planted" in b for b in _rng_violations())


@pytest.mark.parametrize("sub", [""] + ["." + s for s in SUBPACKAGES])
def test_imports_first_without_cycles_or_plots(sub):
    """In a fresh interpreter, ``import nprefgen<sub>`` works first (no import cycle) and pulls
    neither matplotlib (plots stay opt-in) nor torch, scikit-learn or hypothesis."""
    code = (f"import sys, nprefgen{sub}; "
            "print(sorted(m for m in ('matplotlib', 'torch', 'sklearn', 'hypothesis') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"import nprefgen{sub} pulled {out.stdout.strip()}"


def _spec7_cases():
    """(name, f(rng) -> array) for the rng-taking entry points of this issue's files."""
    from nprefgen import data, metrics, models, nn
    from nprefgen.sbi import ABCPosterior, rejection_abc, two_moons
    from nprefgen.sbi import diagnostics as dg

    g = np.random.default_rng(0)
    X = g.standard_normal((60, 2))
    img = g.uniform(size=(3, 8, 8))
    s, t = g.standard_normal((10, 20, 2)), g.standard_normal((10, 2))
    gmm = models.GaussianMixture(2, max_iter=3).fit(X, rng=0)
    task = two_moons()
    abc = ABCPosterior(rejection_abc(np.zeros(2), X, X + 0.1, n_keep=20))
    return [
        ("GaussianMixture.fit", lambda rng: models.GaussianMixture(
            2, max_iter=3, init_params="random").fit(X, rng=rng).means_),
        ("GaussianMixture.sample", lambda rng: gmm.sample(5, rng=rng)),
        ("kmeans_plusplus", lambda rng: models.kmeans_plusplus(X, 3, rng=rng)[0]),
        ("Augment", lambda rng: models.Augment((8, 8))(img, rng=rng)),
        ("random_rotation", lambda rng: models.random_rotation(img, rng=rng)),
        ("LinearProbe.fit", lambda rng: models.LinearProbe().fit(
            X, (X[:, 0] > 0).astype(int), rng=rng, epochs=2).predict_proba(X)),
        ("c2st", lambda rng: np.array(metrics.c2st(X, X + 1, rng=rng, max_epochs=2))),
        ("sample_two_moons", lambda rng: data.sample_two_moons(5, rng=rng)),
        ("Toy.sample", lambda rng: data.TOYS["rings"].sample(5, rng=rng)),
        ("Linear", lambda rng: nn.Linear(3, 2, rng=rng).params["weight"]),
        ("torch_default", lambda rng: nn.torch_default((2, 3), 3, rng=rng)),
        ("tarp_fractions", lambda rng: dg.tarp_fractions(s, t, rng=rng)),
        ("pit_values", lambda rng: dg.pit_values(np.round(s), np.round(t), rng=rng)),
        ("Task.observations", lambda rng: task.observations(3, rng=rng)[1]),
        ("Task.reference_posterior", lambda rng: task.reference_posterior(np.zeros(2), 5, rng=rng)),
        ("ABCPosterior.sample", lambda rng: abc.sample(5, rng=rng)),
    ]


def test_spec7_semantics():
    """None, an int seed and a Generator all work; the same seed repeats; a Generator advances, so
    repeated calls with one Generator give fresh draws (no estimator-owned seed, STYLE.md)."""
    repeats, fresh = [], []
    for name, f in _spec7_cases():
        assert np.all(np.isfinite(np.asarray(f(None), dtype=float))), name
        if not np.array_equal(f(7), f(7)):
            repeats.append(name)
        g = np.random.default_rng(7)
        if np.array_equal(f(g), f(g)) or not np.array_equal(f(np.random.default_rng(7)), f(7)):
            fresh.append(name)
    assert not repeats, f"the same int seed does not repeat: {repeats}"
    assert not fresh, f"a Generator is not advanced, or differs from its int seed: {fresh}"


def test_no_estimator_keeps_a_generator():
    """Fitted estimators hold parameters, not random state (STYLE.md: no estimator-owned seeds)."""
    from nprefgen import models

    X = np.random.default_rng(0).standard_normal((40, 3))
    fitted = [models.GaussianMixture(2, max_iter=3).fit(X, rng=1), models.PCA(2).fit(X),
              models.LinearProbe().fit(X, (X[:, 0] > 0).astype(int), rng=1, epochs=2)]
    for est in fitted:
        held = [k for k, v in vars(est).items()
                if isinstance(v, (np.random.Generator, np.random.SeedSequence)) or "seed" in k]
        assert not held, f"{type(est).__name__} keeps random state: {held}"
