"""The bad-input sweep of tests/test_bad_inputs.py, extended to the model packages: flows,
samplers, sbi, metrics (c2st, mmd) and models (pca, autoencoder, augment, contrastive, probe).

Every row calls one public entry point with one bad argument (wrong shape, NaN/inf, empty, an
invalid hyper-parameter or option string, a wrong rng type) and expects a ValueError whose
message *starts with* the argument's name (the ``name: expected ..., got ...`` form of
nprefgen/_validation.py). Rows are ``(callable path, kind, argument, thunk)``.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from nprefgen import flows as F
from nprefgen import samplers as S
from nprefgen import sbi
from nprefgen.flows import logit as LG
from nprefgen.metrics import c2st as C2
from nprefgen.metrics import mmd as MM
from nprefgen.models import augment as AU
from nprefgen.models import autoencoder as AE
from nprefgen.models import contrastive as CO
from nprefgen.models import pca as PC
from nprefgen.models import probe as PR


def R(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def A(*shape) -> np.ndarray:
    return R(1).standard_normal(shape)


def NAN(*shape) -> np.ndarray:
    a = A(*shape)
    a.flat[-1] = np.nan
    return a


def INF(*shape) -> np.ndarray:
    a = A(*shape)
    a.flat[0] = np.inf
    return a


def E(*shape) -> np.ndarray:
    return np.zeros(shape)


CASES: list[tuple[str, str, str, object]] = []


def case(path: str, kind: str, arg: str, thunk) -> None:
    CASES.append((path, kind, arg, thunk))


def arrays(path, arg, call, good, wrong=None, empty=None, inf=True):
    """The shape / nan / inf / empty rows of one array argument: ``call(array)``."""
    good = tuple(good)
    if wrong is not None:
        case(path, "shape", arg, lambda: call(A(*wrong)))
    case(path, "nan", arg, lambda: call(NAN(*good)))
    if inf:
        case(path, "inf", arg, lambda: call(INF(*good)))
    case(path, "empty", arg, lambda: call(E(*(empty or (0,) + good[1:]))))


NOT_RNG = 42    # an int seed is not a Generator: the package takes Generators only


def lp(x):
    return -0.5 * (np.asarray(x) ** 2).sum(axis=-1)


def glp(x):
    return -np.asarray(x)


# == flows ======================================================================================
def _flow(context_dim=0):
    return F.realnvp(2, 2, 8, rng=R(), context_dim=context_dim)


FLOW = _flow()
CFLOW = _flow(context_dim=3)

arrays("flows.Flow.log_prob", "x", FLOW.log_prob, (5, 2), wrong=(5, 3))
arrays("flows.Flow.inverse", "z", FLOW.inverse, (5, 2), wrong=(5, 3))
arrays("flows.Flow.forward", "x", FLOW.forward, (5, 2), wrong=(5, 3))
case("flows.Flow.log_prob", "shape", "context", lambda: CFLOW.log_prob(A(5, 2), A(5, 4)))
case("flows.Flow.log_prob", "nan", "context", lambda: CFLOW.log_prob(A(5, 2), NAN(5, 3)))
case("flows.Flow.log_prob", "shape", "context", lambda: CFLOW.log_prob(A(5, 2), A(4, 3)))
case("flows.Flow.sample", "hyper", "n", lambda: FLOW.sample(-1, R()))
case("flows.Flow.sample", "hyper", "n", lambda: FLOW.sample(2.5, R()))
case("flows.Flow.sample", "type", "rng", lambda: FLOW.sample(3, NOT_RNG))
case("flows.Flow.sample", "shape", "context", lambda: CFLOW.sample(3, R(), A(3, 5)))
case("flows.Flow.sample", "nan", "context", lambda: CFLOW.sample(3, R(), NAN(3)))
case("flows.Flow.sample_and_log_prob", "type", "rng",
     lambda: FLOW.sample_and_log_prob(3, NOT_RNG))
case("flows.Flow.sample_and_log_prob", "hyper", "n", lambda: FLOW.sample_and_log_prob(-3, R()))
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
case("flows.Flow.fit", "type", "rng", lambda: _flow().fit(A(20, 2), rng=NOT_RNG, epochs=1,
                                                          progress=False))
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

# the bijectors: forward / inverse of each kind (the public, checked entry points)
_BIJ = {
    "AffineCoupling": lambda: F.AffineCoupling(F.alternating_mask(2), (8,), rng=R()),
    "SplineCoupling": lambda: F.SplineCoupling(2, F.alternating_mask(2), 8, rng=R()),
    "MAF": lambda: F.MAF(2, (8,), rng=R()),
    "IAF": lambda: F.IAF(2, (8,), rng=R()),
    "Permutation": lambda: F.Permutation(np.array([1, 0])),
    "ElementwiseAffine": lambda: F.ElementwiseAffine(2),
    "ActNorm": lambda: F.ActNorm(2),
    "Standardize": lambda: F.Standardize(np.zeros(2), np.ones(2)),
    "LogitTransform": lambda: F.LogitTransform(2),
    "Chain": lambda: F.Chain([F.Permutation(np.array([1, 0])), F.ElementwiseAffine(2)]),
}
for _name, _make in _BIJ.items():
    _b = _make()
    arrays(f"flows.{_name}.forward", "x", _b.forward, (5, 2), wrong=(5, 3))
    arrays(f"flows.{_name}.inverse", "z", _b.inverse, (5, 2), wrong=(5, 3))
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
case("flows.dequantize", "type", "rng", lambda: F.dequantize(np.zeros((2, 3)), NOT_RNG))
case("flows.dequantize", "hyper", "levels", lambda: F.dequantize(np.zeros((2, 3)), R(), levels=1))
arrays("flows.dequantize", "pixels", lambda p: F.dequantize(p, R()), (2, 3), wrong=(6,))
case("flows.dequantize", "shape", "noise",
     lambda: F.dequantize(np.zeros((2, 3)), R(), noise=np.zeros((3, 2))))
case("flows.dequantize", "hyper", "pixels", lambda: F.dequantize(np.full((2, 3), 300.0), R()))
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


@pytest.mark.parametrize("path, kind, arg, thunk", CASES,
                         ids=[f"{p}-{k}-{a}-{i}" for i, (p, k, a, _) in enumerate(CASES)])
def test_bad_input_raises_value_error_naming_the_argument(path, kind, arg, thunk, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=rf"^{re.escape(arg)}\b"):
        thunk()
