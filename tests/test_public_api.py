"""The public API: every subpackage exports its names, imports without cycles, and the entry points
that draw random numbers behave as SPEC 7 says.

Issue 8 ("One API, following the ecosystem's conventions"): ``from nprefgen.models import
GaussianMixture`` works (checked by introspection, so a new module is covered without touching
this file); ``rng`` accepts None, an int seed or a Generator (normalised by
``nprefgen._validation.check_rng``), the same seed repeats and a Generator advances; fitted
estimators hold no random state. That ``rng`` is keyword-only with default None in every public
signature is checked once, by ``test_rng_is_keyword_only`` in tests/test_contracts.py.
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
    ] + _spec7_sbi_cases()


def _weights(module):
    return np.concatenate([p.ravel() for p, _ in module.parameters()])


def _spec7_sbi_cases():
    """The same for the priors, simulation, samplers, posteriors, MMD test and builders."""
    from nprefgen import samplers
    from nprefgen.metrics import mmd_permutation_test
    from nprefgen.models import dense_autoencoder, dense_simclr
    from nprefgen.sbi import BoxUniform, DirectPosterior, Gaussian, MCMCPosterior
    from nprefgen.sbi.npe import build_flow
    from nprefgen.sbi.simulate import batch_seeds, simulate, simulate_from_prior
    from nprefgen.testing import randomize_parameters

    X = np.random.default_rng(1).standard_normal((40, 2))
    box = BoxUniform(-3 * np.ones(2), 3 * np.ones(2))
    gauss = Gaussian(np.zeros(2), np.eye(2))
    sim = lambda t, r: t + r.standard_normal(t.shape)          # noqa: E731
    lp = lambda x: -0.5 * np.sum(x * x, axis=1)                # noqa: E731
    x0 = X[:3]
    direct = DirectPosterior(build_flow("maf", 2, 2, 1, [4], None, None, rng=0), box)
    mcmc = MCMCPosterior(gauss, lambda t, x: -0.5 * np.sum((x - t[:, None]) ** 2, axis=(1, 2)), 2,
                         method="rwm", n_chains=2, n_warmup=5)

    def randomized(rng):
        from nprefgen.nn import Linear
        layer = Linear(3, 2, rng=0)
        randomize_parameters(layer, rng=rng)
        return _weights(layer)

    return [
        ("BoxUniform.sample", lambda rng: box.sample(5, rng=rng)),
        ("Gaussian.sample", lambda rng: gauss.sample(5, rng=rng)),
        ("simulate", lambda rng: simulate(sim, X[:5], rng=rng, batch_size=2).x),
        ("simulate_from_prior", lambda rng: simulate_from_prior(box, sim, 5, rng=rng).x),
        ("batch_seeds", lambda rng: np.array([s.generate_state(2) for s in batch_seeds(3, rng=rng)])),
        ("hmc", lambda rng: samplers.hmc(lp, lambda x: -x, x0, 5, rng=rng, n_warmup=3).samples),
        ("slice_sampling", lambda rng: samplers.slice_sampling(lp, x0, 5, rng=rng, n_warmup=3).samples),
        ("random_walk_metropolis", lambda rng: samplers.random_walk_metropolis(
            lp, x0, 5, rng=rng, n_warmup=3).samples),
        ("mmd_permutation_test", lambda rng: np.array(mmd_permutation_test(
            X[:20], X[20:] + 0.1, rng=rng, n_permutations=100))),
        ("DirectPosterior.sample", lambda rng: direct.sample(5, x=np.zeros(2), rng=rng)),
        ("DirectPosterior.sample_batched", lambda rng: direct.sample_batched(3, X[:2], rng=rng)),
        ("MCMCPosterior.sample", lambda rng: mcmc.sample(4, x=np.zeros(2), rng=rng)),
        ("build_flow", lambda rng: np.concatenate(
            [p.ravel() for _, p, _ in build_flow("maf", 2, 1, 1, [4], None, None, rng=rng)
             .named_parameters()])),
        ("randomize_parameters", randomized),
        ("dense_autoencoder", lambda rng: _weights(dense_autoencoder(3, 2, (4,), rng=rng))),
        ("dense_simclr", lambda rng: _weights(dense_simclr(3, 2, (4,), proj_dim=2, proj_hidden=3,
                                                           rng=rng))),
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
    from nprefgen.sbi import NPE, BoxUniform

    prior = BoxUniform(-4 * np.ones(3), 4 * np.ones(3))
    npe = NPE(prior, flow="maf", n_transforms=1, hidden=4)
    posterior = npe.train(X, X[:, :2], rng=1, max_epochs=1)
    fitted = [models.GaussianMixture(2, max_iter=3).fit(X, rng=1), models.PCA(2).fit(X),
              models.LinearProbe().fit(X, (X[:, 0] > 0).astype(int), rng=1, epochs=2),
              models.dense_autoencoder(3, 2, (4,), rng=0).fit(X, rng=1, epochs=1, progress=False),
              npe, posterior, posterior.flow]
    for est in fitted:
        held = [k for k, v in vars(est).items()
                if isinstance(v, (np.random.Generator, np.random.SeedSequence)) or "seed" in k]
        assert not held, f"{type(est).__name__} keeps random state: {held}"
