"""The rows of tests/test_bad_inputs.py for the model packages: flows, samplers, sbi, metrics (c2st,
mmd) and models (pca, autoencoder, augment, contrastive, probe).

Bijector forward/inverse/backward, model fit/log_prob/sample, prior sample/log_prob and NPE/NLE
train are checked by the contract batteries (tests/test_contracts.py); the rows here are the
hyper-parameters specific to one function (an invalid value, an option string, a wrong rng
type) and one valid value per array argument of a function (kind "array", expanded by
nprefgen.testing.contracts.check_array_argument). Messages must *start with* the argument's name.
"""
from __future__ import annotations

import importlib
import re

import numpy as np
import pytest

from nprefgen import flows as F
from nprefgen import samplers as S
from nprefgen import sbi
from nprefgen.metrics import mmd as MM
from nprefgen.models import augment as AU
from nprefgen.models import autoencoder as AE
from nprefgen.models import contrastive as CO
from nprefgen.models import pca as PC
from nprefgen.models import probe as PR

from bad_input_table import A, E, INF, NAN, R, make_table

C2 = importlib.import_module("nprefgen.metrics.c2st")   # nprefgen.metrics.c2st is the function


CASES, case, arrays = make_table()


NOT_RNG = "42"   # a string is not an rng (SPEC 7 takes None, an int seed or a Generator)


def lp(x):
    return -0.5 * (np.asarray(x) ** 2).sum(axis=-1)


def glp(x):
    return -np.asarray(x)


# == flows ======================================================================================
def _flow(context_dim=0):
    return F.realnvp(2, 2, 8, rng=R(), context_dim=context_dim, standardize=False)


FLOW = _flow()
CFLOW = _flow(context_dim=3)

# x/z of forward, inverse, log_prob and fit, n and rng of sample: the bijector and density-model
# batteries (tests/test_contracts.py); the rows keep the context and the hyper-parameters
case("flows.Flow.log_prob", "shape", "context", lambda: CFLOW.log_prob(A(5, 2), A(5, 4)))
case("flows.Flow.log_prob", "nan", "context", lambda: CFLOW.log_prob(A(5, 2), NAN(5, 3)))
case("flows.Flow.log_prob", "shape", "context", lambda: CFLOW.log_prob(A(5, 2), A(4, 3)))
case("flows.Flow.sample", "hyper", "n", lambda: FLOW.sample(-1, rng=R()))
case("flows.Flow.sample", "hyper", "n", lambda: FLOW.sample(2.5, rng=R()))
case("flows.Flow.sample", "type", "rng", lambda: FLOW.sample(3, rng=NOT_RNG))
case("flows.Flow.sample", "shape", "context", lambda: CFLOW.sample(3, A(3, 5), rng=R()))
case("flows.Flow.sample", "nan", "context", lambda: CFLOW.sample(3, NAN(3), rng=R()))
case("flows.Flow.sample_and_log_prob", "type", "rng",
     lambda: FLOW.sample_and_log_prob(3, rng=NOT_RNG))
case("flows.Flow.sample_and_log_prob", "hyper", "n", lambda: FLOW.sample_and_log_prob(-3, rng=R()))
arrays("flows.Flow.fit", "x", lambda x: _flow().fit(x, rng=R(), epochs=1, progress=False),
       (20, 2), wrong=(20, 3))
case("flows.Flow.fit", "hyper", "epochs",
     lambda: _flow().fit(A(20, 2), rng=R(), epochs=0, progress=False))
for _arg, _val in ( ("batch_size", 0), ("lr", 0.0), ("lr", -1e-3),
                   ("lr", np.nan), ("validation_fraction", 1.5), ("validation_fraction", -0.1),
                   ("patience", -1), ("weight_decay", -1.0), ("clip", -1.0)):
    case("flows.Flow.fit", "hyper", _arg,
         lambda a=_arg, v=_val: _flow().fit(A(20, 2), rng=R(), epochs=1, progress=False,
                                            **{a: v}))
case("flows.Flow.mean_nll", "nan", "x", lambda: FLOW.mean_nll(NAN(5, 2)))
case("flows.Flow.mean_nll", "hyper", "batch_size", lambda: FLOW.mean_nll(A(5, 2), batch_size=0))

for _name, _build in (("realnvp", F.realnvp), ("maf", F.maf), ("spline_flow", F.spline_flow)):
    _p = f"flows.{_name}"
    case(_p, "hyper", "dim", lambda b=_build: b(0, 2, 8, rng=R()))
    case(_p, "hyper", "dim", lambda b=_build: b(-2, 2, 8, rng=R()))
    case(_p, "hyper", "n_layers", lambda b=_build: b(2, 0, 8, rng=R()))
    case(_p, "hyper", "n_layers", lambda b=_build: b(2, 2.5, 8, rng=R()))
    case(_p, "hyper", "hidden", lambda b=_build: b(2, 2, 0, rng=R()))
    case(_p, "hyper", "hidden", lambda b=_build: b(2, 2, [8, -1], rng=R()))
    case(_p, "hyper", "context_dim", lambda b=_build: b(2, 2, 8, rng=R(), context_dim=-1))
    case(_p, "hyper", "activation", lambda b=_build: b(2, 2, 8, rng=R(), activation="nope"))
    case(_p, "type", "rng", lambda b=_build: b(2, 2, 8, rng=NOT_RNG))
case("flows.realnvp", "hyper", "mask", lambda: F.realnvp(2, 2, 8, rng=R(), mask="diagonal"))
case("flows.realnvp", "hyper", "bound", lambda: F.realnvp(2, 2, 8, rng=R(), bound=-1.0))
case("flows.realnvp", "hyper", "image_shape",
     lambda: F.realnvp(4, 2, 8, rng=R(), mask="checkerboard", image_shape=(3, 3)))
case("flows.maf", "hyper", "permutation", lambda: F.maf(2, 2, 8, rng=R(), permutation="nope"))
case("flows.maf", "hyper", "bound", lambda: F.maf(2, 2, 8, rng=R(), bound=0.0))
case("flows.spline_flow", "hyper", "n_bins", lambda: F.spline_flow(2, 2, 8, rng=R(), n_bins=0))
case("flows.spline_flow", "hyper", "bound", lambda: F.spline_flow(2, 2, 8, rng=R(), bound=-3.0))
case("flows.spline_flow", "hyper", "mask",
     lambda: F.spline_flow(2, 2, 8, rng=R(), mask="diagonal"))

case("flows.coupling_masks", "hyper", "mask", lambda: F.coupling_masks("nope", 4, 2))
case("flows.coupling_masks", "hyper", "dim", lambda: F.coupling_masks("half", 0, 2))
case("flows.coupling_masks", "hyper", "n_layers", lambda: F.coupling_masks("half", 4, -1))
case("flows.coupling_masks", "hyper", "image_shape",
     lambda: F.coupling_masks("checkerboard", 4, 2, image_shape=(3, 3)))
case("flows.half_mask", "hyper", "dim", lambda: F.half_mask(0))
case("flows.alternating_mask", "hyper", "dim", lambda: F.alternating_mask(-1))
case("flows.alternating_mask", "hyper", "parity", lambda: F.alternating_mask(4, parity=2))
case("flows.checkerboard_mask", "hyper", "shape", lambda: F.checkerboard_mask((0, 3)))

# constructors and helpers of the bijectors (forward/inverse/backward: the bijector battery)
case("flows.MAF", "hyper", "dim", lambda: F.MAF(0, (8,), rng=R()))
case("flows.IAF", "hyper", "dim", lambda: F.IAF(0, (8,), rng=R()))
case("flows.ElementwiseAffine", "hyper", "dim", lambda: F.ElementwiseAffine(0))
case("flows.Chain", "empty", "bijectors", lambda: F.Chain([]))
case("flows.Chain", "shape", "bijectors", lambda: F.Chain([F.ElementwiseAffine(2), F.ElementwiseAffine(3)]))
case("flows.Flow", "hyper", "base", lambda: F.Flow([F.ElementwiseAffine(2)], base="cauchy"))
case("flows.Flow", "hyper", "context_dim", lambda: F.Flow([F.ElementwiseAffine(2)], context_dim=2))
# pure maths that now validates its own input (issue 13: the fuzz test found TypeError/NaN there)
arrays("flows.normal_log_prob", "z", F.normal_log_prob, (4, 2), wrong=(4,))
arrays("models.probe.pairwise_sq_distances", "A", lambda a: PR.pairwise_sq_distances(a, A(3, 2)),
       (4, 2), wrong=(4,))
arrays("models.probe.pairwise_sq_distances", "B", lambda b: PR.pairwise_sq_distances(A(4, 2), b),
       (3, 2), wrong=(3, 3))
arrays("sbi.abc.scott_bandwidth", "theta", lambda t: importlib.import_module("nprefgen.sbi.abc")
       .scott_bandwidth(t), (20, 2), wrong=(20,))
arrays("sbi.abc.cv_bandwidth", "theta", lambda t: importlib.import_module("nprefgen.sbi.abc")
       .cv_bandwidth(t), (20, 2), wrong=(20,))
arrays("flows.ActNorm.initialize", "x", lambda x: F.ActNorm(2).initialize(x), (5, 2), wrong=(5, 3))
arrays("flows.Standardize.from_data", "x", F.Standardize.from_data, (5, 2), wrong=(5,))
case("flows.Permutation.reverse", "hyper", "dim", lambda: F.Permutation.reverse(0))
case("flows.Permutation.random", "hyper", "dim", lambda: F.Permutation.random(0, rng=R()))
case("flows.Permutation.random", "type", "rng", lambda: F.Permutation.random(3, rng=NOT_RNG))
case("flows.SplineCoupling", "hyper", "n_bins",
     lambda: F.SplineCoupling(2, F.alternating_mask(2), 8, n_bins=0, rng=R()))
case("flows.SplineCoupling", "hyper", "bound",
     lambda: F.SplineCoupling(2, F.alternating_mask(2), 8, bound=-1.0, rng=R()))
case("flows.AffineCoupling", "shape", "mask", lambda: F.AffineCoupling(np.ones((2, 2)), (8,), rng=R()))
case("flows.AffineCoupling", "type", "rng",
     lambda: F.AffineCoupling(F.alternating_mask(2), (8,), rng=NOT_RNG))
case("flows.Permutation", "hyper", "perm", lambda: F.Permutation(np.array([0, 0])))
case("flows.ActNorm", "hyper", "dim", lambda: F.ActNorm(0))
case("flows.Standardize", "hyper", "std", lambda: F.Standardize(np.zeros(2), np.array([1.0, 0.0])))
case("flows.Standardize", "nan", "mean", lambda: F.Standardize(NAN(2), np.ones(2)))
case("flows.LogitTransform", "hyper", "lam", lambda: F.LogitTransform(2, lam=0.7))
case("flows.LogitTransform", "hyper", "data_scale", lambda: F.LogitTransform(2, data_scale=0.0))
case("flows.LogitTransform.forward", "hyper", "x",
     lambda: F.LogitTransform(2).forward(np.full((3, 2), 2.0)))

# logit helpers
case("flows.dequantize", "type", "rng", lambda: F.dequantize(np.zeros((2, 3)), rng=NOT_RNG))
case("flows.dequantize", "hyper", "levels", lambda: F.dequantize(np.zeros((2, 3)), levels=1, rng=R()))
arrays("flows.dequantize", "pixels", lambda p: F.dequantize(p, rng=R()),
       np.array([[0.0, 3.0, 255.0], [10.0, 20.0, 30.0]]), wrong=(6,))
case("flows.dequantize", "shape", "noise",
     lambda: F.dequantize(np.zeros((2, 3)), rng=R(), noise=np.zeros((3, 2))))
case("flows.dequantize", "hyper", "pixels", lambda: F.dequantize(np.full((2, 3), 300.0), rng=R()))
case("flows.bits_per_dim", "hyper", "dim", lambda: F.bits_per_dim(np.zeros(3), 0))
case("flows.bits_per_dim", "hyper", "levels", lambda: F.bits_per_dim(np.zeros(3), 4, levels=1))
case("flows.bits_per_dim", "nan", "log_prob", lambda: F.bits_per_dim(NAN(3), 4))
case("flows.bits_per_dim", "shape", "log_prob", lambda: F.bits_per_dim(A(3, 2), 4))
case("flows.log_prob_from_bits_per_dim", "hyper", "dim",
     lambda: F.log_prob_from_bits_per_dim(np.zeros(3), -1))
case("flows.log_prob_from_bits_per_dim", "nan", "bpd",
     lambda: F.log_prob_from_bits_per_dim(NAN(3), 4))
case("flows.data_log_prob_from_logit", "shape", "log_prob_logit",
     lambda: F.data_log_prob_from_logit(np.zeros(4), A(3, 2)))
case("flows.data_log_prob_from_logit", "nan", "y",
     lambda: F.data_log_prob_from_logit(np.zeros(3), NAN(3, 2)))
case("flows.data_log_prob_from_logit", "hyper", "lam",
     lambda: F.data_log_prob_from_logit(np.zeros(3), A(3, 2), lam=0.5))
case("flows.load_flow", "corrupt", "path", lambda: F.load_flow("missing.npz"))


# -- the remaining Flow methods and the MADE helpers ---------------------------------------------
arrays("flows.Flow.log_prob_and_grad", "x", FLOW.log_prob_and_grad, (5, 2), wrong=(5, 3))
case("flows.Flow.log_prob_and_grad", "shape", "weights",
     lambda: FLOW.log_prob_and_grad(A(5, 2), weights=np.ones(4)))
arrays("flows.Flow.grad_log_prob", "x", FLOW.grad_log_prob, (5, 2), wrong=(5, 3))
arrays("flows.Flow.initialize", "x", lambda v: _flow().initialize(v), (5, 2), wrong=(5, 3))
arrays("flows.Flow.standardize_context", "context",
       lambda v: _flow(context_dim=3).standardize_context(v), (5, 3), wrong=(5, 2))
case("flows.made_degrees", "hyper", "dim", lambda: F.made_degrees(0, [8]))
case("flows.made_degrees", "hyper", "order", lambda: F.made_degrees(3, [8], order=[0, 0, 1]))
case("flows.MADE", "hyper", "dim", lambda: F.MADE(0, (8,), rng=R()))
case("flows.MADE", "type", "rng", lambda: F.MADE(3, (8,), rng=NOT_RNG))
case("flows.register_builder", "type", "builder", lambda: F.register_builder("mine", 3))


# == samplers ===================================================================================
X0 = np.zeros((4, 2))
_SAMPLERS = {
    "random_walk_metropolis": lambda **k: S.random_walk_metropolis(
        k.pop("log_prob", lp), k.pop("x0", X0), k.pop("n_steps", 5), rng=k.pop("rng", R()),
        n_warmup=k.pop("n_warmup", 5), **k),
    "slice_sampling": lambda **k: S.slice_sampling(
        k.pop("log_prob", lp), k.pop("x0", X0), k.pop("n_steps", 5), rng=k.pop("rng", R()),
        n_warmup=k.pop("n_warmup", 5), **k),
    "hmc": lambda **k: S.hmc(
        k.pop("log_prob", lp), k.pop("grad_log_prob", glp), k.pop("x0", X0), k.pop("n_steps", 5),
        rng=k.pop("rng", R()), n_warmup=k.pop("n_warmup", 5), **k),
}
for _name, _run in _SAMPLERS.items():
    _p = f"samplers.{_name}"
    arrays(_p, "x0", lambda x, r=_run: r(x0=x), (4, 2), wrong=(2, 2, 2))
    case(_p, "hyper", "n_steps", lambda r=_run: r(n_steps=0))
    case(_p, "hyper", "n_steps", lambda r=_run: r(n_steps=2.5))
    case(_p, "hyper", "n_warmup", lambda r=_run: r(n_warmup=-1))
    case(_p, "hyper", "thin", lambda r=_run: r(thin=0))
    case(_p, "type", "rng", lambda r=_run: r(rng=NOT_RNG))
    case(_p, "type", "log_prob", lambda r=_run: r(log_prob="not callable"))
case("samplers.random_walk_metropolis", "hyper", "step_size",
     lambda: _SAMPLERS["random_walk_metropolis"](step_size=0.0))
case("samplers.random_walk_metropolis", "hyper", "step_size",
     lambda: _SAMPLERS["random_walk_metropolis"](step_size=np.nan))
case("samplers.random_walk_metropolis", "hyper", "target_accept",
     lambda: _SAMPLERS["random_walk_metropolis"](target_accept=1.5))
case("samplers.random_walk_metropolis", "shape", "scale",
     lambda: _SAMPLERS["random_walk_metropolis"](scale=np.ones(3)))
case("samplers.slice_sampling", "hyper", "width", lambda: _SAMPLERS["slice_sampling"](width=-1.0))
case("samplers.slice_sampling", "shape", "width",
     lambda: _SAMPLERS["slice_sampling"](width=np.ones(3)))
case("samplers.slice_sampling", "hyper", "max_step_out",
     lambda: _SAMPLERS["slice_sampling"](max_step_out=-1))
case("samplers.hmc", "hyper", "step_size", lambda: _SAMPLERS["hmc"](step_size=-0.1))
case("samplers.hmc", "hyper", "n_leapfrog", lambda: _SAMPLERS["hmc"](n_leapfrog=0))
case("samplers.hmc", "hyper", "target_accept", lambda: _SAMPLERS["hmc"](target_accept=0.0))
case("samplers.hmc", "shape", "inv_mass", lambda: _SAMPLERS["hmc"](inv_mass=np.ones(3)))
case("samplers.hmc", "hyper", "inv_mass", lambda: _SAMPLERS["hmc"](inv_mass=-np.ones(2)))
case("samplers.hmc", "type", "grad_log_prob", lambda: _SAMPLERS["hmc"](grad_log_prob=3))
case("samplers.random_walk_metropolis", "nan", "log_prob",
     lambda: _SAMPLERS["random_walk_metropolis"](log_prob=lambda x: np.full(len(x), np.nan)))
case("samplers.random_walk_metropolis", "shape", "log_prob",
     lambda: _SAMPLERS["random_walk_metropolis"](log_prob=lambda x: np.zeros(len(x) + 1)))
for _name, _f in (("split_rhat", S.split_rhat), ("effective_sample_size", S.effective_sample_size)):
    arrays(f"samplers.{_name}", "samples", _f, (4, 20, 2), wrong=(20,), empty=(4, 0, 2))
    case(f"samplers.{_name}", "shape", "samples", lambda f=_f: f(A(4, 2, 2)))

# one coupling, its transforms, the Gaussian baseline
case("flows.Coupling", "hyper", "transform",
     lambda: F.Coupling(F.alternating_mask(2), "affine", [4], rng=R()))
case("flows.Coupling", "hyper", "mask",
     lambda: F.Coupling(np.array([0.5, 1.0]), F.AffineTransform(), [4], rng=R()))
case("flows.AffineTransform", "hyper", "bound", lambda: F.AffineTransform(bound=-1.0))
case("flows.SplineTransform", "hyper", "n_bins", lambda: F.SplineTransform(n_bins=0))
case("flows.SplineTransform", "hyper", "bound", lambda: F.SplineTransform(bound=0.0))
case("models.GaussianDensity", "hyper", "ridge",
     lambda: importlib.import_module("nprefgen.models").GaussianDensity(ridge=-1.0))

# == sbi =========================================================================================
TASK = sbi.gaussian_linear(dim=2)
MOONS = sbi.two_moons()


def _sim(theta, rng):
    return np.asarray(theta) + rng.standard_normal(np.shape(theta))


SIMS = sbi.simulate(_sim, R().standard_normal((60, 2)), rng=R(1))

case("sbi.gaussian_linear", "hyper", "dim", lambda: sbi.gaussian_linear(dim=0))
case("sbi.gaussian_linear", "hyper", "prior_var", lambda: sbi.gaussian_linear(prior_var=-1.0))
case("sbi.gaussian_linear", "hyper", "noise_var", lambda: sbi.gaussian_linear(noise_var=0.0))
case("sbi.get_task", "hyper", "name", lambda: sbi.get_task("nope"))
case("sbi.Task.observations", "hyper", "n", lambda: TASK.observations(-1, rng=R()))
case("sbi.Task.observations", "type", "rng", lambda: TASK.observations(2, rng=NOT_RNG))
arrays("sbi.Task.reference_posterior", "x_obs",
       lambda x: TASK.reference_posterior(x, 5, rng=R()), (2,), wrong=(3,), empty=(0,))
case("sbi.Task.reference_posterior", "hyper", "n",
     lambda: TASK.reference_posterior(np.zeros(2), 0, rng=R()))
arrays("sbi.tasks.two_moons_reference", "x_obs",
       lambda x: MOONS.reference_posterior(x, 5, rng=R()), (2,), wrong=(3,), empty=(0,))
case("sbi.Prior.sample", "hyper", "n", lambda: TASK.prior.sample(-1, rng=R()))
case("sbi.Prior.sample", "type", "rng", lambda: TASK.prior.sample(3, rng=NOT_RNG))
arrays("sbi.Prior.log_prob", "theta", TASK.prior.log_prob, (3, 2), wrong=(3, 3))
case("sbi.BoxUniform", "hyper", "high", lambda: sbi.BoxUniform(np.ones(2), np.zeros(2)))
case("sbi.BoxUniform", "nan", "low", lambda: sbi.BoxUniform(NAN(2), np.ones(2) * 9))
case("sbi.Gaussian", "hyper", "cov", lambda: sbi.Gaussian(np.zeros(2), -np.eye(2)))

arrays("sbi.simulate", "theta", lambda t: sbi.simulate(_sim, t, rng=R()), (5, 2), wrong=(5,))
case("sbi.simulate", "type", "simulator", lambda: sbi.simulate("nope", A(5, 2), rng=R()))
case("sbi.simulate", "type", "rng", lambda: sbi.simulate(_sim, A(5, 2), rng=NOT_RNG))
case("sbi.simulate", "hyper", "batch_size", lambda: sbi.simulate(_sim, A(5, 2), rng=R(), batch_size=0))
case("sbi.simulate_from_prior", "hyper", "n",
     lambda: sbi.simulate_from_prior(TASK.prior, _sim, 0, rng=R()))
case("sbi.simulate_from_prior", "type", "rng",
     lambda: sbi.simulate_from_prior(TASK.prior, _sim, 5, rng=NOT_RNG))

_abc = lambda **k: sbi.rejection_abc(k.pop("x_obs", np.zeros(2)), k.pop("theta", SIMS.theta),
                                     k.pop("x", SIMS.x), **({"n_keep": 10} | k))
arrays("sbi.rejection_abc", "x_obs", lambda v: _abc(x_obs=v), (2,), wrong=(3,), empty=(0,))
arrays("sbi.rejection_abc", "theta", lambda v: _abc(theta=v), (60, 2), wrong=(60, 2, 1))
arrays("sbi.rejection_abc", "x", lambda v: _abc(x=v), (60, 2), wrong=(60, 2, 1))
case("sbi.rejection_abc", "shape", "x", lambda: _abc(x=A(59, 2)))      # rows must match theta
case("sbi.rejection_abc", "shape", "x_obs", lambda: _abc(x=A(60, 3)))  # columns must match x
case("sbi.rejection_abc", "hyper", "distance", lambda: _abc(distance="cosine"))
case("sbi.rejection_abc", "hyper", "scale", lambda: _abc(scale="std"))
case("sbi.rejection_abc", "hyper", "n_keep", lambda: _abc(n_keep=0))
case("sbi.rejection_abc", "hyper", "n_keep", lambda: _abc(n_keep=1000))
case("sbi.rejection_abc", "hyper", "quantile", lambda: _abc(n_keep=None, quantile=1.5))
case("sbi.rejection_abc", "hyper", "eps", lambda: _abc(n_keep=None, eps=-1.0))
case("sbi.rejection_abc", "type", "summary", lambda: _abc(summary=3))
_smc = lambda **k: sbi.smc_abc(k.pop("x_obs", np.zeros(2)), k.pop("prior", TASK.prior),
                               k.pop("simulator", _sim), k.pop("n_simulations", 300),
                               **({"rng": R()} | k))
arrays("sbi.smc_abc", "x_obs", lambda v: _smc(x_obs=v), (2,), wrong=(3,), empty=(0,))
case("sbi.smc_abc", "hyper", "n_simulations", lambda: _smc(n_simulations=0))
case("sbi.smc_abc", "hyper", "n_particles", lambda: _smc(n_particles=1))
case("sbi.smc_abc", "hyper", "n_initial", lambda: _smc(n_particles=50, n_initial=10))
case("sbi.smc_abc", "hyper", "quantile", lambda: _smc(quantile=0.0))
case("sbi.smc_abc", "hyper", "distance", lambda: _smc(distance="cosine"))
case("sbi.smc_abc", "hyper", "scale", lambda: _smc(scale="std"))
case("sbi.smc_abc", "type", "summary", lambda: _smc(summary=3))
case("sbi.smc_abc", "type", "prior", lambda: _smc(prior=object()))
case("sbi.smc_abc", "type", "simulator", lambda: _smc(simulator="nope"))
case("sbi.smc_abc", "type", "rng", lambda: _smc(rng=NOT_RNG))
case("sbi.ABCPosterior", "hyper", "bandwidth", lambda: sbi.ABCPosterior(_abc(), bandwidth="wide"))
case("sbi.ABCPosterior.sample", "hyper", "n", lambda: sbi.ABCPosterior(_abc()).sample(-2, rng=R()))
case("sbi.ABCPosterior.sample", "type", "rng",
     lambda: sbi.ABCPosterior(_abc()).sample(2, rng=NOT_RNG))

for _cls in (sbi.NPE, sbi.NLE):
    _p = f"sbi.{_cls.__name__}"
    case(_p, "hyper", "flow", lambda c=_cls: c(TASK.prior, flow="glow"))
    case(_p, "hyper", "n_transforms", lambda c=_cls: c(TASK.prior, n_transforms=0))
    case(_p, "hyper", "activation", lambda c=_cls: c(TASK.prior, activation="nope"))
    _t = lambda c=_cls, **k: c(TASK.prior, n_transforms=1, hidden=4).train(
        k.pop("theta", SIMS.theta), k.pop("x", SIMS.x), rng=k.pop("rng", R()),
        **({"max_epochs": 1} | k))
    case(f"{_p}.train", "hyper", "lr", lambda t=_t: t(lr=0.0))
    case(f"{_p}.train", "hyper", "batch_size", lambda t=_t: t(batch_size=0))
    case(f"{_p}.train", "hyper", "max_epochs", lambda t=_t: t(max_epochs=0))
case("sbi.NLE", "hyper", "method", lambda: sbi.NLE(TASK.prior, method="gibbs"))
case("sbi.NLE", "hyper", "n_chains", lambda: sbi.NLE(TASK.prior, n_chains=0))

_NPE_POST = []


def npe_posterior():
    if not _NPE_POST:
        _NPE_POST.append(sbi.NPE(TASK.prior, n_transforms=1, hidden=4).train(
            SIMS.theta, SIMS.x, rng=R(), max_epochs=1))
    return _NPE_POST[0]


case("sbi.DirectPosterior.sample", "hyper", "n", lambda: npe_posterior().sample(-1, np.zeros(2), rng=R()))
case("sbi.DirectPosterior.sample", "type", "rng",
     lambda: npe_posterior().sample(3, np.zeros(2), rng=NOT_RNG))
arrays("sbi.DirectPosterior.sample", "x", lambda v: npe_posterior().sample(3, v, rng=R()), (2,),
       wrong=(3,), empty=(0,))
case("sbi.DirectPosterior.sample", "shape", "x", lambda: npe_posterior().sample(3, rng=R()))
arrays("sbi.DirectPosterior.log_prob", "theta",
       lambda v: npe_posterior().log_prob(v, np.zeros(2)), (3, 2), wrong=(3, 3))
arrays("sbi.DirectPosterior.log_prob", "x",
       lambda v: npe_posterior().log_prob(A(3, 2), v), (2,), wrong=(3,), empty=(0,))
arrays("sbi.DirectPosterior.sample_batched", "xs",
       lambda v: npe_posterior().sample_batched(3, v, rng=R()), (4, 2), wrong=(4, 3))
case("sbi.DirectPosterior.sample_batched", "hyper", "n",
     lambda: npe_posterior().sample_batched(0, A(4, 2), rng=R()))

# diagnostics
from nprefgen.sbi import diagnostics as D  # noqa: E402

arrays("sbi.diagnostics.pit_values", "samples", lambda v: D.pit_values(v, A(4, 2)), (4, 10, 2),
       wrong=(10,), empty=(4, 0, 2))
arrays("sbi.diagnostics.pit_values", "theta_true", lambda v: D.pit_values(A(4, 10, 2), v), (4, 2),
       wrong=(5, 2))
arrays("sbi.diagnostics.sbc_ranks", "samples", lambda v: D.sbc_ranks(v, A(4, 2)), (4, 10, 2),
       wrong=(10,))
arrays("sbi.diagnostics.tarp_fractions", "samples",
       lambda v: D.tarp_fractions(v, A(4, 2), rng=R()), (4, 10, 2), wrong=(10,))
case("sbi.diagnostics.tarp_fractions", "type", "rng",
     lambda: D.tarp_fractions(A(4, 10, 2), A(4, 2), rng=NOT_RNG))
case("sbi.diagnostics.sbc_uniformity", "hyper", "n_draws",
     lambda: D.sbc_uniformity(np.zeros((4, 2)), 0, rng=R()))
case("sbi.diagnostics.sbc_uniformity", "hyper", "n_bins",
     lambda: D.sbc_uniformity(np.zeros((4, 2)), 10, rng=R(), n_bins=0))
case("sbi.diagnostics.pp_curve", "nan", "u", lambda: D.pp_curve(NAN(4, 2)))
case("sbi.diagnostics.calibration_flags", "hyper", "level",
     lambda: D.calibration_flags(np.full((4, 2), 0.5), level=2.0))
case("sbi.diagnostics.heldout_log_likelihood", "type", "log_prob",
     lambda: D.heldout_log_likelihood(3, A(4, 2), A(4, 2)))
case("sbi.diagnostics.heldout_log_likelihood", "shape", "x",
     lambda: D.heldout_log_likelihood(lambda t, x: np.zeros(len(t)), A(4, 2), A(5, 2)))
case("sbi.diagnostics.hpd_levels", "nan", "log_prob_true",
     lambda: D.hpd_levels(A(4, 10), NAN(4)))
case("sbi.diagnostics.tarp_test", "hyper", "level",
     lambda: D.tarp_test(A(4, 10, 2), A(4, 2), rng=R(), level=-0.1))


# == metrics: c2st, mmd ==========================================================================
_c2 = lambda **k: C2.c2st(k.pop("x", A(20, 2)), k.pop("y", A(20, 2) + 1), rng=k.pop("rng", R()),
                          **({"max_epochs": 2, "n_folds": 2} | k))
arrays("metrics.c2st", "x", lambda v: _c2(x=v), (20, 2), wrong=(20, 2, 1))
case("metrics.c2st", "shape", "y", lambda: _c2(x=A(20, 3)))   # columns must match x
arrays("metrics.c2st", "y", lambda v: _c2(y=v), (20, 2), wrong=(20, 2, 1))
case("metrics.c2st", "type", "rng", lambda: _c2(rng=NOT_RNG))
case("metrics.c2st", "hyper", "n_folds", lambda: _c2(n_folds=1))
case("metrics.c2st", "hyper", "max_epochs", lambda: _c2(max_epochs=0))
arrays("metrics.mmd2", "x", lambda v: MM.mmd2(v, A(10, 2)), (10, 2), wrong=(10, 2, 1))
arrays("metrics.mmd2", "y", lambda v: MM.mmd2(A(10, 2), v), (10, 2), wrong=(10, 2, 1))
case("metrics.mmd2", "hyper", "bandwidth", lambda: MM.mmd2(A(10, 2), A(10, 2), bandwidth=0.0))
case("metrics.mmd2", "hyper", "bandwidth", lambda: MM.mmd2(A(10, 2), A(10, 2), bandwidth=np.inf))
case("metrics.mmd_permutation_test", "type", "rng",
     lambda: MM.mmd_permutation_test(A(10, 2), A(10, 2), rng=NOT_RNG))
case("metrics.mmd_permutation_test", "hyper", "n_permutations",
     lambda: MM.mmd_permutation_test(A(10, 2), A(10, 2), rng=R(), n_permutations=0))
case("metrics.mmd_permutation_test", "nan", "x",
     lambda: MM.mmd_permutation_test(NAN(10, 2), A(10, 2), rng=R()))
case("metrics.median_bandwidth", "hyper", "max_points",
     lambda: MM.median_bandwidth(A(10, 2), A(10, 2), max_points=1))
case("metrics.median_bandwidth", "nan", "x", lambda: MM.median_bandwidth(NAN(10, 2), A(10, 2)))

# == models: pca, autoencoder, augment, contrastive, probe =======================================
arrays("models.pca_fit", "X", lambda v: PC.pca_fit(v, 2), (10, 3), wrong=(10,))
case("models.pca_fit", "hyper", "n_components", lambda: PC.pca_fit(A(10, 3), 0))
case("models.pca_fit", "hyper", "n_components", lambda: PC.pca_fit(A(10, 3), 4))
case("models.PCA", "hyper", "n_components", lambda: PC.PCA(-1))
_PCA = PC.PCA(2).fit(A(10, 3))
arrays("models.PCA.transform", "X", _PCA.transform, (4, 3), wrong=(4, 2))
arrays("models.PCA.inverse_transform", "Z", _PCA.inverse_transform, (4, 2), wrong=(4, 3))
arrays("models.principal_angles", "A", lambda v: PC.principal_angles(v, A(3, 2)), (3, 2),
       wrong=(3,))
case("models.reconstruction_error", "shape", "X_hat",
     lambda: PC.reconstruction_error(A(4, 3), A(4, 2)))

_AE = AE.dense_autoencoder(6, 2, (8,), rng=R())
case("models.dense_autoencoder", "hyper", "latent_dim", lambda: AE.dense_autoencoder(6, 0, rng=R()))
case("models.dense_autoencoder", "hyper", "in_features",
     lambda: AE.dense_autoencoder(-6, 2, rng=R()))
case("models.dense_autoencoder", "hyper", "activation",
     lambda: AE.dense_autoencoder(6, 2, rng=R(), activation="nope"))
case("models.dense_autoencoder", "hyper", "loss",
     lambda: AE.dense_autoencoder(6, 2, rng=R(), loss="hinge"))
case("models.dense_autoencoder", "type", "rng", lambda: AE.dense_autoencoder(6, 2, rng=NOT_RNG))
case("models.linear_autoencoder", "hyper", "latent_dim",
     lambda: AE.linear_autoencoder(6, -1, rng=R()))
case("models.conv_autoencoder", "hyper", "image_shape",
     lambda: AE.conv_autoencoder((0, 8, 8), 2, rng=R()))
arrays("models.Autoencoder.encode", "X", _AE.encode, (4, 6), wrong=(4, 5))
arrays("models.Autoencoder.decode", "Z", _AE.decode, (4, 2), wrong=(4, 3))
arrays("models.Autoencoder.reconstruct", "X", _AE.reconstruct, (4, 6), wrong=(4, 5))
for _arg, _val in (("epochs", 0), ("batch_size", 0), ("lr", 0.0), ("lr", -1.0),
                   ("weight_decay", -1.0)):
    case("models.Autoencoder.fit", "hyper", _arg,
         lambda a=_arg, v=_val: AE.dense_autoencoder(6, 2, (8,), rng=R()).fit(
             A(8, 6), rng=R(), progress=False, **({"epochs": 1} | {a: v})))
case("models.Autoencoder.fit", "shape", "X_val",
     lambda: _AE.fit(A(8, 6), rng=R(), epochs=1, progress=False, X_val=A(4, 5)))

IMG = R(2).uniform(size=(3, 8, 8))
arrays("models.rotate", "images", lambda v: AU.rotate(v, np.zeros(3)), (3, 8, 8), wrong=(8,))
case("models.rotate", "shape", "angles_deg", lambda: AU.rotate(IMG, np.zeros(4)))
case("models.rotate", "nan", "angles_deg", lambda: AU.rotate(IMG, NAN(3)))
case("models.zoom", "hyper", "factors", lambda: AU.zoom(IMG, -np.ones(3)))
case("models.random_rotation", "type", "rng", lambda: AU.random_rotation(IMG, rng=NOT_RNG))
case("models.random_rotation", "hyper", "max_degrees",
     lambda: AU.random_rotation(IMG, rng=R(), max_degrees=-1.0))
case("models.random_zoom", "hyper", "factors", lambda: AU.random_zoom(IMG, rng=R(), factors=(1.1, 0.9)))
case("models.random_resized_crop", "hyper", "scale",
     lambda: AU.random_resized_crop(IMG, rng=R(), scale=(0.0, 1.5)))
case("models.random_resized_crop", "type", "rng", lambda: AU.random_resized_crop(IMG, rng=NOT_RNG))
case("models.random_brightness_contrast", "hyper", "brightness",
     lambda: AU.random_brightness_contrast(IMG, rng=R(), brightness=-0.1))
case("models.gaussian_noise", "hyper", "sigma", lambda: AU.gaussian_noise(IMG, rng=R(), sigma=-1.0))
case("models.gaussian_noise", "nan", "images", lambda: AU.gaussian_noise(NAN(3, 8, 8), rng=R()))
case("models.random_flip", "hyper", "p", lambda: AU.random_flip(IMG, rng=R(), p=1.5))
case("models.random_flip", "hyper", "axis", lambda: AU.random_flip(IMG, rng=R(), axis="diagonal"))
case("models.sample_crop_boxes", "hyper", "n", lambda: AU.sample_crop_boxes(-1, 8, 8, rng=R()))
case("models.Augment", "hyper", "image_shape", lambda: AU.Augment((0, 8)))
case("models.Augment", "hyper", "noise", lambda: AU.Augment((8, 8), noise=-1.0))

arrays("models.ntxent_loss", "z_a", lambda v: CO.ntxent_loss(v, A(4, 3)), (4, 3), wrong=(4,))
arrays("models.ntxent_loss", "z_b", lambda v: CO.ntxent_loss(A(4, 3), v), (4, 3), wrong=(5, 3))
case("models.ntxent_loss", "hyper", "tau", lambda: CO.ntxent_loss(A(4, 3), A(4, 3), tau=0.0))
case("models.dense_simclr", "hyper", "in_features", lambda: CO.dense_simclr(0, rng=R()))
case("models.dense_simclr", "hyper", "tau", lambda: CO.dense_simclr(6, rng=R(), tau=-0.5))
case("models.dense_simclr", "type", "rng", lambda: CO.dense_simclr(6, rng=NOT_RNG))
_SC = CO.dense_simclr(6, 4, (8,), 4, 8, rng=R())
arrays("models.SimCLR.features", "X", _SC.features, (4, 6), wrong=(4, 5))
case("models.SimCLR.loss_and_grad", "hyper", "views",
     lambda: _SC.loss_and_grad(A(4, 6), A(4, 6), views="one"))
case("models.SimCLR.loss_and_grad", "shape", "x_b", lambda: _SC.loss_and_grad(A(4, 6), A(5, 6)))
case("models.SimCLR.fit", "type", "augment",
     lambda: _SC.fit(A(8, 6), 3, rng=R(), epochs=1, progress=False))
case("models.SimCLR.fit", "hyper", "epochs",
     lambda: _SC.fit(A(8, 6), lambda x, rng: x, rng=R(), epochs=0, progress=False))

_Y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
case("models.LinearProbe", "hyper", "weight_decay", lambda: PR.LinearProbe(weight_decay=-1.0))
case("models.LinearProbe.fit", "shape", "y",
     lambda: PR.LinearProbe().fit(A(8, 3), _Y[:5], rng=R(), epochs=1))
case("models.LinearProbe.fit", "hyper", "lr",
     lambda: PR.LinearProbe().fit(A(8, 3), _Y, rng=R(), epochs=1, lr=0.0))
case("models.LinearProbe.fit", "hyper", "y",
     lambda: PR.LinearProbe().fit(A(8, 3), _Y - 1, rng=R(), epochs=1))
_LP = PR.LinearProbe().fit(A(8, 3), _Y, rng=R(), epochs=2)
arrays("models.LinearProbe.predict", "F", _LP.predict, (4, 3), wrong=(4, 2))
case("models.KNNClassifier", "hyper", "k", lambda: PR.KNNClassifier(k=0))
case("models.KNNClassifier", "hyper", "metric", lambda: PR.KNNClassifier(metric="hamming"))
case("models.KNNClassifier.fit", "shape", "y", lambda: PR.KNNClassifier(k=3).fit(A(8, 3), _Y[:3]))
case("models.KNNClassifier.fit", "hyper", "k", lambda: PR.KNNClassifier(k=9).fit(A(8, 3), _Y))
_KNN = PR.KNNClassifier(k=3).fit(A(8, 3), _Y)
arrays("models.KNNClassifier.predict", "F", _KNN.predict, (4, 3), wrong=(4, 2))
case("models.probe_accuracies", "type", "rng",
     lambda: PR.probe_accuracies(A(8, 3), _Y, A(4, 3), _Y[:4], rng=NOT_RNG))
case("models.probe_accuracies", "shape", "F_test",
     lambda: PR.probe_accuracies(A(8, 3), _Y, A(4, 2), _Y[:4], rng=R()))


# -- second pass: the remaining public helpers of metrics and models -----------------------------
case("metrics.train_classifier", "hyper", "hidden",
     lambda: C2.train_classifier(A(10, 2), np.arange(10) % 2, rng=R(), hidden=0, max_epochs=1))
case("metrics.train_classifier", "type", "rng",
     lambda: C2.train_classifier(A(10, 2), np.arange(10) % 2, rng=NOT_RNG, hidden=4, max_epochs=1))
_FIT = PC.pca_fit(A(10, 3), 2)
arrays("models.PCA.fit_transform", "X", PC.PCA(2).fit_transform, (10, 3), wrong=(10,))
arrays("models.PCA.reconstruct", "X", _PCA.reconstruct, (4, 3), wrong=(4, 2))
arrays("models.Autoencoder.evaluate", "X", _AE.evaluate, (4, 6), wrong=(4, 5))
arrays("models.SimCLR.project", "X", _SC.project, (4, 6), wrong=(4, 5))
case("models.conv_simclr", "hyper", "image_shape", lambda: CO.conv_simclr((0, 8, 8), rng=R()))
arrays("models.warp_affine", "images",
       lambda v: AU.warp_affine(v, np.tile(np.eye(2), (3, 1, 1)), np.zeros((3, 2))), (3, 8, 8),
       wrong=(8,))
case("models.warp_affine", "shape", "A",
     lambda: AU.warp_affine(IMG, np.tile(np.eye(3), (3, 1, 1)), np.zeros((3, 2))))
case("models.adjust_brightness_contrast", "shape", "brightness",
     lambda: AU.adjust_brightness_contrast(IMG, np.zeros(4), np.ones(3)))
arrays("models.LinearProbe.predict_proba", "F", _LP.predict_proba, (4, 3), wrong=(4, 2))
case("models.LinearProbe.score", "shape", "y", lambda: _LP.score(A(4, 3), _Y[:3]))
arrays("models.KNNClassifier.kneighbors", "F", _KNN.kneighbors, (4, 3), wrong=(4, 2))
case("models.KNNClassifier.kneighbors", "hyper", "chunk", lambda: _KNN.kneighbors(A(4, 3), 0))
case("models.KNNClassifier.score", "shape", "y", lambda: _KNN.score(A(4, 3), _Y[:3]))


case("sbi.diagnostics.uniformity_pvalues", "nan", "u", lambda: D.uniformity_pvalues(NAN(4, 2)))
case("sbi.diagnostics.marginal_coverage", "nan", "u", lambda: D.marginal_coverage(NAN(4, 2)))
case("sbi.diagnostics.expected_coverage", "nan", "f", lambda: D.expected_coverage(NAN(4)))
case("sbi.diagnostics.tarp_coverage", "nan", "f", lambda: D.tarp_coverage(NAN(4)))
case("sbi.diagnostics.tarp_area", "nan", "ecp", lambda: D.tarp_area(NAN(len(D.ALPHAS))))
case("sbi.diagnostics.run_sbc", "hyper", "n_sims",
     lambda: D.run_sbc(lambda n, x, rng: None, TASK.prior, _sim, 0, 5, rng=R()))
case("sbi.diagnostics.run_sbc", "type", "rng",
     lambda: D.run_sbc(lambda n, x, rng: None, TASK.prior, _sim, 3, 5, rng=NOT_RNG))


# -- MCMCPosterior (the NLE / explicit-likelihood posterior) and the remaining sbi entry points ---
def _loglik(theta, x):
    return -0.5 * ((np.asarray(x) - np.asarray(theta)[:, None, :]) ** 2).sum(axis=(1, 2))


_MC = lambda **k: sbi.MCMCPosterior(TASK.prior, _loglik, 2, **({"n_chains": 2, "n_warmup": 2,
                                                                 "n_init": 10} | k))
case("sbi.MCMCPosterior", "hyper", "method", lambda: _MC(method="gibbs"))
case("sbi.MCMCPosterior", "hyper", "n_chains", lambda: _MC(n_chains=0))
case("sbi.MCMCPosterior", "hyper", "n_warmup", lambda: _MC(n_warmup=-1))
case("sbi.MCMCPosterior", "hyper", "thin", lambda: _MC(thin=0))
case("sbi.MCMCPosterior", "hyper", "init", lambda: _MC(init="zeros"))
case("sbi.MCMCPosterior", "hyper", "dim_x", lambda: sbi.MCMCPosterior(TASK.prior, _loglik, 0))
case("sbi.MCMCPosterior", "type", "log_likelihood",
     lambda: sbi.MCMCPosterior(TASK.prior, 3, 2))
case("sbi.MCMCPosterior", "hyper", "method", lambda: _MC(method="hmc"))  # hmc needs a gradient
case("sbi.MCMCPosterior.sample", "hyper", "n", lambda: _MC().sample(-1, np.zeros(2), rng=R()))
case("sbi.MCMCPosterior.sample", "type", "rng", lambda: _MC().sample(3, np.zeros(2), rng=NOT_RNG))
arrays("sbi.MCMCPosterior.sample", "x", lambda v: _MC().sample(3, v, rng=R()), (2,), wrong=(3,),
       empty=(0,))
arrays("sbi.MCMCPosterior.log_prob", "theta", lambda v: _MC().log_prob(v, np.zeros(2)), (3, 2),
       wrong=(3, 3))
arrays("sbi.MCMCPosterior.log_prob", "x", lambda v: _MC().log_prob(A(3, 2), v), (2,),
       wrong=(3,), empty=(0,))
arrays("sbi.MCMCPosterior.set_default_x", "x", lambda v: _MC().set_default_x(v), (2,),
       wrong=(3,), empty=(0,))
arrays("sbi.MCMCPosterior.sample_batched", "xs", lambda v: _MC().sample_batched(3, v, rng=R()),
       (2, 2), wrong=(2, 3))
arrays("sbi.DirectPosterior.set_default_x", "x", lambda v: npe_posterior().set_default_x(v),
       (2,), wrong=(3,), empty=(0,))
arrays("sbi.DirectPosterior.log_prob_pairs", "theta",
       lambda v: npe_posterior().log_prob_pairs(v, A(3, 2)), (3, 2), wrong=(3, 3))
arrays("sbi.DirectPosterior.log_prob_pairs", "xs",
       lambda v: npe_posterior().log_prob_pairs(A(3, 2), v), (3, 2), wrong=(3, 3))
case("sbi.DirectPosterior.estimate_acceptance", "hyper", "n",
     lambda: npe_posterior().estimate_acceptance(np.zeros(2), rng=R(), n=0))
arrays("sbi.gaussian_linear_posterior", "x_obs",
       lambda v: sbi.gaussian_linear_posterior(v, np.zeros(2), 0.1, 0.1), (3, 2), wrong=(3,))
case("sbi.gaussian_linear_posterior", "hyper", "prior_var",
     lambda: sbi.gaussian_linear_posterior(A(3, 2), np.zeros(2), -0.1, 0.1))
case("sbi.gaussian_linear_posterior", "hyper", "noise_var",
     lambda: sbi.gaussian_linear_posterior(A(3, 2), np.zeros(2), 0.1, 0.0))
arrays("sbi.BoxUniform.in_support", "theta", MOONS.prior.in_support, (3, 2), wrong=(3, 3))
case("sbi.Prior.check_in_support", "hyper", "theta",
     lambda: MOONS.prior.check_in_support(np.full((3, 2), 5.0)))
# helper mcmc (issue 12): mode jumps, the convergence check, the prior protocol, MCMC files
case("samplers.ISIRMove", "type", "proposal", lambda: S.ISIRMove(object()))
case("samplers.ISIRMove", "hyper", "n_proposals", lambda: S.ISIRMove(MOONS.prior, n_proposals=0))
case("samplers.ISIRMove", "hyper", "every", lambda: S.ISIRMove(MOONS.prior, every=0))
case("samplers.ISIRMove", "hyper", "start", lambda: S.ISIRMove(MOONS.prior, start=-1))
case("samplers.slice_sampling", "type", "jump", lambda: _SAMPLERS["slice_sampling"](jump=3))
case("samplers.hmc", "type", "jump", lambda: _SAMPLERS["hmc"](jump="isir"))
case("samplers.random_walk_metropolis", "type", "jump",
     lambda: _SAMPLERS["random_walk_metropolis"](jump=object()))
arrays("samplers.convergence_check", "samples", S.convergence_check, (4, 20, 2), wrong=(20,),
       empty=(4, 0, 2))
case("sbi.MCMCPosterior", "hyper", "jump_every", lambda: _MC(jump_every=-1))
case("sbi.MCMCPosterior", "hyper", "n_jump_proposals", lambda: _MC(n_jump_proposals=0))
case("sbi.MCMCPosterior", "hyper", "rhat_max", lambda: _MC(rhat_max=np.nan))
case("sbi.MCMCPosterior", "type", "prior", lambda: sbi.MCMCPosterior(object(), _loglik, 2))
case("sbi.MCMCPosterior.load", "type", "path", lambda: sbi.MCMCPosterior.load(3, MOONS.prior))
case("sbi.priors.check_prior", "type", "prior", lambda: sbi.priors.check_prior(object()))
case("sbi.priors.check_prior", "type", "prior", lambda: sbi.priors.check_prior(None))


# == score-based models (helper score): models.score/ncsn/ncsn_conv, samplers.langevin, kernels ===
from nprefgen.kernels import dsm as KDSM  # noqa: E402
from nprefgen.kernels import langevin as KLV  # noqa: E402
from nprefgen.models import ncsn as NC  # noqa: E402
from nprefgen.models import ncsn_conv as NCC  # noqa: E402
from nprefgen.models import score as SC  # noqa: E402
SL = importlib.import_module("nprefgen.samplers.langevin")  # the module (the package exports the function)

_W, _MU, _COV = np.array([0.3, 0.7]), np.array([[0.0, 0.0], [1.0, 1.0]]), np.stack([np.eye(2)] * 2)
for _f in ("mixture_log_prob", "mixture_score"):
    arrays(f"models.score.{_f}", "x", lambda v, f=_f: getattr(SC, f)(v, _W, _MU, _COV), (4, 2),
           wrong=(4, 3))
    case(f"models.score.{_f}", "hyper", "weights",
         lambda f=_f: getattr(SC, f)(A(4, 2), [0.5, 0.6], _MU, _COV))
    case(f"models.score.{_f}", "hyper", "covs",
         lambda f=_f: getattr(SC, f)(A(4, 2), _W, _MU, -_COV))
    case(f"models.score.{_f}", "hyper", "sigma", lambda f=_f: getattr(SC, f)(A(4, 2), _W, _MU, _COV, -1.0))
for _f in ("gaussian_log_prob", "gaussian_score"):
    arrays(f"models.score.{_f}", "x", lambda v, f=_f: getattr(SC, f)(v, np.zeros(2), np.eye(2)),
           (4, 2), wrong=(4, 3))
    case(f"models.score.{_f}", "shape", "cov", lambda f=_f: getattr(SC, f)(A(4, 2), np.zeros(2), np.eye(3)))
case("models.score.GaussianMixtureScore", "hyper", "weights",
     lambda: SC.GaussianMixtureScore([0.5, 0.6], _MU, _COV))
arrays("models.score.mode_weights", "x", lambda v: SC.mode_weights(v, _MU), (4, 2), wrong=(4, 3))
case("models.ncsn.geometric_sigmas", "hyper", "sigma_L", lambda: NC.geometric_sigmas(1.0, 2.0, 3))
case("models.ncsn.geometric_sigmas", "hyper", "n_levels", lambda: NC.geometric_sigmas(1.0, 0.1, 0))
arrays("models.ncsn.sigma_max_from_data", "x", NC.sigma_max_from_data, (5, 2), wrong=(5,))
case("models.ncsn.sigma_max_from_data", "hyper", "max_points",
     lambda: NC.sigma_max_from_data(A(5, 2), max_points=1))
_NCSN = lambda **k: NC.NCSN(2, **({"hidden": (4,), "sigmas": [1.0, 0.5], "rng": 0} | k))  # noqa: E731
case("models.ncsn.NCSN", "hyper", "conditioning", lambda: _NCSN(conditioning="film"))
case("models.ncsn.NCSN", "hyper", "activation", lambda: _NCSN(activation="gelu"))
case("models.ncsn.NCSN", "hyper", "sigmas", lambda: _NCSN(sigmas=[0.5, 1.0]))
case("models.ncsn.NCSN", "hyper", "sigma_min", lambda: _NCSN(sigma_min=0.0))
case("models.ncsn.NCSN", "type", "rng", lambda: _NCSN(rng=NOT_RNG))
arrays("models.ncsn.NCSN.score", "x", lambda v: _NCSN().score(v, 0.5), (4, 2), wrong=(4, 3))
case("models.ncsn.NCSN.score", "hyper", "sigma", lambda: _NCSN().score(A(4, 2), 0.0))
arrays("models.ncsn.NCSN.dsm_loss_and_grad", "z",
       lambda v: _NCSN().dsm_loss_and_grad(A(4, 2), v, np.zeros(4, int)), (4, 2), wrong=(4, 3))
case("models.ncsn.NCSN.dsm_loss_and_grad", "hyper", "levels",
     lambda: _NCSN().dsm_loss_and_grad(A(4, 2), A(4, 2), np.full(4, 2)))
arrays("models.ncsn.NCSN.dsm_loss", "x", lambda v: _NCSN().dsm_loss(v, A(4, 2), np.zeros(4, int)),
       (4, 2), wrong=(4, 3))
case("models.ncsn.NCSN.dsm_loss", "hyper", "levels",
     lambda: _NCSN().dsm_loss(A(4, 2), A(4, 2), np.zeros(3, int)))
case("models.ncsn.NCSN.draw_noise", "hyper", "n", lambda: _NCSN().draw_noise(0))
arrays("models.ncsn.NCSN.set_schedule_from_data", "x", lambda v: _NCSN().set_schedule_from_data(v),
       (5, 2), wrong=(5, 3))
case("models.ncsn.NCSN.sample", "hyper", "n", lambda: _NCSN().sample(0))
case("models.ncsn.NCSN.sample", "hyper", "eps", lambda: _NCSN().sample(3, eps=0.0))
case("models.ncsn.NCSN.sample", "shape", "x0", lambda: _NCSN().sample(3, x0=A(2, 2)))
case("models.ncsn.NCSN.sample", "hyper", "method", lambda: _NCSN().sample(3, method="gpu"))
case("models.ncsn.NCSN.load", "corrupt", "path", lambda: _NCSN().load("missing.npz"))
case("models.ncsn_conv.ConvNCSN", "hyper", "image_shape", lambda: NCC.ConvNCSN((8, 8)))
case("models.ncsn_conv.ConvNCSN", "hyper", "channels", lambda: NCC.ConvNCSN((1, 4, 4), channels=0))
_LV = lambda **k: SL.langevin(k.pop("score", glp), k.pop("x0", X0),  # noqa: E731
                              **({"eps": 0.1, "n_steps": 2, "rng": R()} | k))
arrays("samplers.langevin.langevin", "x0", lambda v: _LV(x0=v), (4, 2), wrong=(2, 2, 2))
case("samplers.langevin.langevin", "hyper", "eps", lambda: _LV(eps=0.0))
case("samplers.langevin.langevin", "hyper", "n_steps", lambda: _LV(n_steps=0))
case("samplers.langevin.langevin", "hyper", "record_every", lambda: _LV(record_every=-1))
case("samplers.langevin.langevin", "type", "score", lambda: _LV(score="not callable"))
case("samplers.langevin.langevin", "shape", "score", lambda: _LV(score=lambda x: x[:, :1]))
case("samplers.langevin.langevin", "type", "rng", lambda: _LV(rng=NOT_RNG))
_ALV = lambda **k: SL.annealed_langevin(  # noqa: E731
    k.pop("score", lambda x, s: -x), k.pop("x0", X0), k.pop("sigmas", [1.0, 0.5]),
    **({"eps": 0.1, "n_steps_each": 2, "rng": R()} | k))
arrays("samplers.langevin.annealed_langevin", "x0", lambda v: _ALV(x0=v), (4, 2), wrong=(2, 2, 2))
arrays("samplers.langevin.annealed_langevin", "sigmas", lambda v: _ALV(sigmas=v), np.array([1.0, 0.5]),
       wrong=(2, 2))
case("samplers.langevin.annealed_langevin", "hyper", "sigmas", lambda: _ALV(sigmas=[0.5, 1.0]))
case("samplers.langevin.annealed_langevin", "hyper", "sigmas", lambda: _ALV(sigmas=[1.0, -0.5]))
case("samplers.langevin.annealed_langevin", "hyper", "eps", lambda: _ALV(eps=-1.0))
case("samplers.langevin.annealed_langevin", "hyper", "n_steps_each", lambda: _ALV(n_steps_each=0))
case("samplers.langevin.annealed_langevin", "hyper", "method", lambda: _ALV(method="gpu"))
case("samplers.langevin.annealed_langevin", "hyper", "denoise", lambda: _ALV(denoise="yes"))
case("samplers.langevin.annealed_langevin", "shape", "score", lambda: _ALV(score=lambda x, s: x[:-1]))
case("samplers.langevin.annealed_langevin", "type", "rng", lambda: _ALV(rng=NOT_RNG))
for _f in ("dsm_loss", "dsm_loss_numpy"):
    arrays(f"kernels.dsm.{_f}", "s", lambda v, f=_f: getattr(KDSM, f)(v, A(4, 2), 1.0), (4, 2),
           wrong=(4,))
    arrays(f"kernels.dsm.{_f}", "z", lambda v, f=_f: getattr(KDSM, f)(A(4, 2), v, 1.0), (4, 2),
           wrong=(4, 3))
    case(f"kernels.dsm.{_f}", "hyper", "sigma", lambda f=_f: getattr(KDSM, f)(A(4, 2), A(4, 2), 0.0))
    case(f"kernels.dsm.{_f}", "shape", "sigma", lambda f=_f: getattr(KDSM, f)(A(4, 2), A(4, 2), np.ones(3)))
for _f in ("annealed_langevin_mlp", "annealed_langevin_mlp_numpy"):
    _run_mlp = lambda f=_f, **k: getattr(KLV, f)(  # noqa: E731
        k.pop("x0", X0), k.pop("sigmas", [1.0, 0.5]), k.pop("weights", [np.eye(2)]),
        k.pop("biases", [np.zeros(2)]), **({"eps": 0.1, "n_steps_each": 2, "rng": R()} | k))
    arrays(f"kernels.langevin.{_f}", "x0", lambda v, r=_run_mlp: r(x0=v), (4, 2), wrong=(2, 2, 2))
    case(f"kernels.langevin.{_f}", "hyper", "sigmas", lambda r=_run_mlp: r(sigmas=[0.5, 1.0]))
    case(f"kernels.langevin.{_f}", "hyper", "eps", lambda r=_run_mlp: r(eps=0.0))
    case(f"kernels.langevin.{_f}", "hyper", "activation", lambda r=_run_mlp: r(activation="gelu"))
    case(f"kernels.langevin.{_f}", "shape", "weights", lambda r=_run_mlp: r(weights=[np.eye(3)]))
    case(f"kernels.langevin.{_f}", "type", "rng", lambda r=_run_mlp: r(rng=NOT_RNG))
for _f in ("langevin_mlp", "langevin_mlp_numpy"):
    case(f"kernels.langevin.{_f}", "hyper", "n_steps_each",
         lambda f=_f: getattr(KLV, f)(X0, [np.eye(2)], [np.zeros(2)], eps=0.1, n_steps=0))
    case(f"kernels.langevin.{_f}", "hyper", "sigmas",
         lambda f=_f: getattr(KLV, f)(X0, [np.eye(2)], [np.zeros(2)], sigma=0.0, eps=0.1, n_steps=2))

# == VAE, GAN and their kernels (helper "vae") ===================================================
# fit/save/load: the model battery (tests/test_contracts.py); a Gaussian VAE takes any real x
from nprefgen.kernels import elbo as KE                                            # noqa: E402
from nprefgen.models import gan as GA                                              # noqa: E402
from nprefgen.models import gan_r1 as GR                                           # noqa: E402
from nprefgen.metrics import frechet as FR                                         # noqa: E402
from nprefgen.models import vae as VA                                              # noqa: E402


def _vae():
    return VA.dense_vae(4, 2, (5,), rng=R(), likelihood="gaussian")


def _gan():
    return GA.mlp_gan(3, 2, (5,), rng=R())


U01 = np.random.default_rng(3).uniform(0.0, 1.0, (5, 4))          # valid Bernoulli data
arrays("models.vae.VAE.encode", "x", lambda v: _vae().encode(v), (5, 4), wrong=(5, 3))
arrays("models.vae.VAE.decode", "z", lambda v: _vae().decode(v), (5, 2), wrong=(5, 3))
arrays("models.vae.VAE.reconstruct", "x", lambda v: _vae().reconstruct(v), (5, 4), wrong=(5, 3))
arrays("models.vae.VAE.elbo", "x", lambda v: _vae().elbo(v, rng=R()), (5, 4), wrong=(5, 3))
case("models.vae.VAE.elbo", "hyper", "n_samples", lambda: _vae().elbo(A(5, 4), n_samples=0))
arrays("models.vae.VAE.elbo_and_grad", "x", lambda v: _vae().elbo_and_grad(v, rng=R()), (5, 4),
       wrong=(5, 3))
arrays("models.vae.VAE.elbo_and_grad", "eps", lambda v: _vae().elbo_and_grad(A(5, 4), v),
       (5, 2), wrong=(5, 3))
arrays("models.vae.VAE.elbo_and_grad", "weights",
       lambda v: _vae().elbo_and_grad(A(5, 4), rng=R(), weights=v), (5,), wrong=(4,))
arrays("models.vae.VAE.iwae_and_grad", "x", lambda v: _vae().iwae_and_grad(v, 3, rng=R()),
       (5, 4), wrong=(5, 3))
arrays("models.vae.VAE.iwae_and_grad", "eps", lambda v: _vae().iwae_and_grad(A(5, 4), 3, v),
       (3, 5, 2), wrong=(2, 5, 2))
case("models.vae.VAE.iwae_and_grad", "hyper", "k", lambda: _vae().iwae_and_grad(A(5, 4), 0))
arrays("models.vae.VAE.log_prob_iwae", "x", lambda v: _vae().log_prob_iwae(v, 3, rng=R()),
       (5, 4), wrong=(5, 3))
case("models.vae.VAE.log_prob_iwae", "hyper", "k", lambda: _vae().log_prob_iwae(A(5, 4), 0))
case("models.vae.VAE.log_prob_iwae", "hyper", "batch",
     lambda: _vae().log_prob_iwae(A(5, 4), 3, batch=0))
case("models.vae.VAE.log_prob_iwae", "type", "rng",
     lambda: _vae().log_prob_iwae(A(5, 4), 3, rng=NOT_RNG))
case("models.vae.VAE.sample", "hyper", "n", lambda: _vae().sample(0))
case("models.vae.VAE.sample", "type", "rng", lambda: _vae().sample(3, rng=NOT_RNG))
case("models.vae.VAE.fit", "hyper", "objective", lambda: _vae().fit(A(8, 4), objective="kl"))
case("models.vae.VAE.fit", "hyper", "k", lambda: _vae().fit(A(8, 4), objective="iwae", k=0))
case("models.vae.VAE.fit", "shape", "x",
     lambda: VA.conv_vae((1, 4, 4), 2, rng=R()).fit(U01.reshape(5, 1, 2, 2), epochs=1))
case("models.vae.VAE.fit", "hyper", "x", lambda: VA.dense_vae(4, 2, rng=R()).fit(U01 + 1.0))
case("models.vae.VAE", "type", "encoder", lambda: VA.VAE("enc", _vae().decoder, in_features=4,
                                                          latent_dim=2))
case("models.vae.VAE", "hyper", "latent_dim",
     lambda: VA.VAE(_vae().encoder, _vae().decoder, in_features=4, latent_dim=0))
case("models.vae.VAE", "hyper", "image_shape",
     lambda: VA.VAE(_vae().encoder, _vae().decoder, in_features=4, latent_dim=2,
                    image_shape=(1, 3, 3)))
case("models.vae.VAE", "hyper", "beta",
     lambda: VA.VAE(_vae().encoder, _vae().decoder, in_features=4, latent_dim=2, beta=-1.0))
case("models.vae.dense_vae", "hyper", "latent_dim", lambda: VA.dense_vae(4, 0))
case("models.vae.dense_vae", "hyper", "hidden", lambda: VA.dense_vae(4, 2, (0,)))
case("models.vae.dense_vae", "hyper", "likelihood", lambda: VA.dense_vae(4, 2, likelihood="x"))
case("models.vae.dense_vae", "hyper", "decoder_var",
     lambda: VA.dense_vae(4, 2, likelihood="gaussian", decoder_var=0.0))
case("models.vae.dense_vae", "type", "rng", lambda: VA.dense_vae(4, 2, rng=NOT_RNG))
case("models.vae.conv_vae", "hyper", "image_shape", lambda: VA.conv_vae((1, 6, 8), 2))
case("models.vae.conv_vae", "hyper", "channels", lambda: VA.conv_vae((1, 8, 8), 2, (4,)))
case("models.vae.conv_vae", "hyper", "latent_dim", lambda: VA.conv_vae((1, 8, 8), 0))
case("models.vae.linear_gaussian_vae", "hyper", "latent_dim",
     lambda: VA.linear_gaussian_vae(4, 0))
arrays("models.vae.ppca_ml", "x", lambda v: VA.ppca_ml(v, 1), (6, 3))
case("models.vae.ppca_ml", "hyper", "latent_dim", lambda: VA.ppca_ml(A(6, 3), 3))
case("models.vae.load_vae", "corrupt", "path", lambda: VA.load_vae("no_such_file.npz"))
arrays("kernels.elbo.kl_standard_normal", "mu", lambda v: KE.kl_standard_normal(v, A(4, 2)),
       (4, 2), wrong=(4,))
arrays("kernels.elbo.kl_standard_normal_numpy", "log_var",
       lambda v: KE.kl_standard_normal_numpy(A(4, 2), v), (4, 2), wrong=(4, 3))
for _f in (KE.bernoulli_log_lik, KE.bernoulli_log_lik_numpy):
    arrays(f"kernels.elbo.{_f.__name__}", "logits", lambda v, f=_f: f(U01, v), (5, 4),
           wrong=(5, 3))
    case(f"kernels.elbo.{_f.__name__}", "hyper", "x", lambda f=_f: f(U01 + 1.0, A(5, 4)))
for _f in (KE.gaussian_log_lik, KE.gaussian_log_lik_numpy):
    arrays(f"kernels.elbo.{_f.__name__}", "mean", lambda v, f=_f: f(A(5, 4), v, A(5, 4)), (5, 4),
           wrong=(5, 3))
for _f in (KE.elbo, KE.elbo_numpy):
    arrays(f"kernels.elbo.{_f.__name__}", "log_lik", lambda v, f=_f: f(v, A(5, 2), A(5, 2)), (5,),
           wrong=(4,))
    case(f"kernels.elbo.{_f.__name__}", "hyper", "beta",
         lambda f=_f: f(A(5), A(5, 2), A(5, 2), beta=-1.0))
arrays("models.gan.GAN.discriminate", "x", lambda v: _gan().discriminate(v), (5, 3), wrong=(5, 2))
arrays("models.gan.GAN.discriminator_loss_and_grad", "x_real",
       lambda v: _gan().discriminator_loss_and_grad(v, A(4, 2)), (5, 3), wrong=(5, 2))
arrays("models.gan.GAN.discriminator_loss_and_grad", "z",
       lambda v: _gan().discriminator_loss_and_grad(A(5, 3), v), (4, 2), wrong=(4, 3))
arrays("models.gan.GAN.generator_loss_and_grad", "z",
       lambda v: _gan().generator_loss_and_grad(v), (4, 2), wrong=(4, 3))
case("models.gan.GAN.sample", "hyper", "n", lambda: _gan().sample(0))
case("models.gan.GAN.sample", "type", "rng", lambda: _gan().sample(3, rng=NOT_RNG))
for _arg, _val in (("steps", 0), ("batch_size", 0), ("n_critic", 0), ("instance_noise", -1.0),
                   ("ema", 1.0), ("on_divergence", "ignore"), ("r1_gamma", -1.0)):
    case("models.gan.GAN.fit", "hyper", _arg,
         lambda a=_arg, v=_val: _gan().fit(A(8, 3), rng=R(), **{a: v}))
case("models.gan.GAN", "type", "generator",
     lambda: GA.GAN("g", _gan().discriminator, latent_dim=2, data_dim=3))
case("models.gan.GAN", "hyper", "latent_dim",
     lambda: GA.GAN(_gan().generator, _gan().discriminator, latent_dim=0, data_dim=3))
def _nested_discriminator():
    """A discriminator R1 does not cover: a Sequential nested in the Sequential."""
    from nprefgen.nn import Linear, Sequential, Tanh
    return Sequential(Sequential(Linear(3, 4, rng=R())), Tanh(), Linear(4, 1, rng=R()))


case("models.gan.GAN.fit", "type", "discriminator",
     lambda: GA.GAN(_gan().generator, _nested_discriminator(), latent_dim=2, data_dim=3).fit(
         A(8, 3), rng=R(), r1_gamma=1.0))
case("models.gan_r1.check_r1_discriminator", "type", "discriminator",
     lambda: GR.check_r1_discriminator(_nested_discriminator()))
case("models.gan_r1.input_gradient", "type", "caches",
     lambda: GR.input_gradient(_gan().discriminator, A(5, 3)))
case("models.gan_r1.r1_penalty_and_grad", "hyper", "gamma",
     lambda: GR.r1_penalty_and_grad(_gan().discriminator, _gan().discriminator.forward(A(5, 3))[1],
                                    -1.0))
case("metrics.frechet.build_classifier", "type", "rng", lambda: FR.build_classifier(rng=NOT_RNG))
arrays("metrics.frechet.digits_features", "x", lambda v: FR.digits_features(v), (5, 64),
       wrong=(5, 63))
arrays("metrics.frechet.feature_moments", "x", lambda v: FR.feature_moments(v), (5, 64),
       wrong=(5, 63))
arrays("metrics.frechet.frechet_distance", "samples_a",
       lambda v: FR.frechet_distance(v, A(4, 64)), (5, 64), wrong=(5, 63))
arrays("metrics.frechet.frechet_distance", "samples_b",
       lambda v: FR.frechet_distance(A(4, 64), v), (5, 64), wrong=(5, 63))
arrays("metrics.frechet.frechet_from_moments", "mu_a",
       lambda v: FR.frechet_from_moments(v, np.eye(3), A(3), np.eye(3)), (3,), wrong=(3, 1))
arrays("metrics.frechet.frechet_from_moments", "cov_b",
       lambda v: FR.frechet_from_moments(A(3), np.eye(3), A(3), v), np.eye(3), wrong=(3, 2))
case("models.gan.mlp_gan", "hyper", "latent_dim", lambda: GA.mlp_gan(3, 0))
case("models.gan.mlp_gan", "hyper", "hidden", lambda: GA.mlp_gan(3, 2, (0,)))
case("models.gan.conv_gan", "hyper", "image_shape", lambda: GA.conv_gan((1, 6, 8)))
case("models.gan.conv_gan", "hyper", "channels", lambda: GA.conv_gan((1, 8, 8), 2, (4,)))
case("models.gan.conv_gan", "hyper", "d_hidden", lambda: GA.conv_gan((1, 8, 8), d_hidden=0))
case("models.gan.conv_gan", "type", "minibatch_std",
     lambda: GA.conv_gan((1, 8, 8), minibatch_std="yes"))
arrays("models.gan.discriminator_loss", "a_real", lambda v: GA.discriminator_loss(v, A(3, 1)),
       (4, 1), wrong=(4,))
arrays("models.gan.generator_loss", "a_fake", GA.generator_loss, (4, 1), wrong=(4,))
arrays("models.gan.mode_coverage", "samples",
       lambda v: GA.mode_coverage(v, A(8, 2), 0.1), (6, 2), wrong=(6,))
case("models.gan.mode_coverage", "hyper", "sigma", lambda: GA.mode_coverage(A(6, 2), A(8, 2), 0.0))


@pytest.mark.parametrize("path, kind, arg, thunk", CASES,
                         ids=[f"{p}-{k}-{a}-{i}" for i, (p, k, a, _) in enumerate(CASES)])
def test_bad_input_raises_value_error_naming_the_argument(path, kind, arg, thunk, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    if kind == "array":          # the derived array-argument contract (several sub-checks)
        thunk()
        return
    with pytest.raises(ValueError, match=rf"^{re.escape(arg)}\b"):
        thunk()
