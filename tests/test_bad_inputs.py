"""Bad input to the functions of nn, data, kernels, metrics.field_stats, models.gmm/kmeans, testing,
the tour and the CLI raises a ValueError whose message *starts with* the argument's name (the
``name: expected ..., got ...`` form of nprefgen/_validation.py).

What is derived is not written here: the forward/backward of every layer and the fit/log_prob/
sample of every model are run through the contract batteries of nprefgen.testing.contracts by
tests/test_contracts.py, which also holds the ONE coverage guard over every public callable.
What stays are rows only a person can write: hyper-parameters specific to one function (kind
"hyper", "type", "nan"/"inf" of a scalar, "corrupt" files), and for each array argument of a
function one valid value (kind "array"), from which check_array_argument derives the NaN, inf,
empty, wrong-shape and string cases. Every thunk runs in a fresh temporary working directory.
"""
from __future__ import annotations

import gzip
import importlib
import re

import numpy as np
import pytest

import nprefgen.data
import nprefgen.nn
from nprefgen import _validation as V
from nprefgen import cli
from nprefgen.data import digits, grf, images, mnist, toys
from nprefgen.metrics import field_stats as FS
from nprefgen.models import gmm as G
from nprefgen.models import kmeans as KM
from nprefgen.nn import activations, base, containers, conv, init, io, linear, losses, optim, train
from nprefgen.nn import circular_pad, minibatch_std, spectral_power
from nprefgen.testing import strategies as ST
from nprefgen.tour import gradchecks as TG
from nprefgen.tour import report as REP
import nprefgen.tour as tour

from bad_input_table import A, E, INF, NAN, R, make_table

nn = nprefgen.nn

# the packages re-export functions named like their modules (im2col, softplus, gradcheck)
KG, KI, KL, KS = (importlib.import_module(f"nprefgen.kernels.{m}")
                  for m in ("gmm", "im2col", "logsumexp", "softplus"))
GC = importlib.import_module("nprefgen.testing.gradcheck")          # (and testing.gradcheck)

CASES, case, arrays = make_table()


# -- _validation ----------------------------------------------------------------------------------
P = "_validation."
case(P + "check_array", "shape", "arg", lambda: V.check_array(A(3), "arg", ndim=2))
case(P + "check_array", "shape", "arg", lambda: V.check_array(A(3), "arg", shape=(4,)))
case(P + "check_array", "nan", "arg", lambda: V.check_array(NAN(3), "arg"))
case(P + "check_array", "inf", "arg", lambda: V.check_array(INF(3), "arg"))
case(P + "check_array", "nan", "arg", lambda: V.check_array(NAN(3), "arg", allow_inf=True))
case(P + "check_array", "empty", "arg", lambda: V.check_array([], "arg"))
case(P + "check_array", "type", "arg", lambda: V.check_array("abc", "arg"))
case(P + "check_int", "hyper", "arg", lambda: V.check_int(0, "arg", low=1))
case(P + "check_int", "nan", "arg", lambda: V.check_int(np.nan, "arg"))
case(P + "check_int", "inf", "arg", lambda: V.check_int(np.inf, "arg"))
case(P + "check_int", "shape", "arg", lambda: V.check_int(np.arange(3), "arg"))
case(P + "check_int", "empty", "arg", lambda: V.check_int([], "arg"))
case(P + "check_scalar", "hyper", "arg", lambda: V.check_scalar(2.0, "arg", high=1.0))
case(P + "check_scalar", "nan", "arg", lambda: V.check_scalar(np.nan, "arg"))
case(P + "check_scalar", "inf", "arg", lambda: V.check_scalar(np.inf, "arg"))
case(P + "check_scalar", "shape", "arg", lambda: V.check_scalar(A(2), "arg"))
case(P + "check_scalar", "empty", "arg", lambda: V.check_scalar([], "arg"))
case(P + "check_choice", "hyper", "arg", lambda: V.check_choice("z", "arg", ("a", "b")))
case(P + "check_choice", "type", "arg", lambda: V.check_choice([1], "arg", {"a": 1}))
case(P + "check_rng", "hyper", "rng", lambda: V.check_rng("0"))
case(P + "check_rng", "hyper", "seed_rng",
     lambda: V.check_rng(np.random.RandomState(0), "seed_rng"))
case(P + "check_pair", "hyper", "arg", lambda: V.check_pair((3, 0), "arg", low=1))
case(P + "check_pair", "shape", "arg", lambda: V.check_pair((3, 3, 3), "arg", low=1))
case(P + "check_pair", "nan", "arg", lambda: V.check_pair(np.nan, "arg", low=1))
case(P + "check_pair", "empty", "arg", lambda: V.check_pair((), "arg", low=1))
case(P + "check_shape", "hyper", "arg", lambda: V.check_shape((2, -1), "arg"))
case(P + "check_shape", "shape", "arg", lambda: V.check_shape((2, 3), "arg", ndim=3))
case(P + "check_shape", "nan", "arg", lambda: V.check_shape((2, np.nan), "arg"))
case(P + "check_shape", "type", "arg", lambda: V.check_shape("abc", "arg"))
case(P + "check_float_dtype", "hyper", "dtype", lambda: V.check_float_dtype(np.int32))
case(P + "check_float_dtype", "type", "arg", lambda: V.check_float_dtype("banana", "arg"))
case(P + "check_callable", "type", "arg", lambda: V.check_callable(3, "arg"))
case(P + "check_str", "type", "arg", lambda: V.check_str(3, "arg"))
case(P + "check_same_length", "shape", "b", lambda: V.check_same_length(A(3), "a", A(4), "b"))
case(P + "check_same_length", "empty", "b", lambda: V.check_same_length(A(3), "a", E(0), "b"))
case(P + "check_spd", "shape", "arg", lambda: V.check_spd(A(2, 3), "arg"))
case(P + "check_spd", "nan", "arg", lambda: V.check_spd(NAN(2, 2), "arg"))
case(P + "check_spd", "hyper", "arg", lambda: V.check_spd([[1.0, 0.5], [0.0, 1.0]], "arg"))
case(P + "check_spd", "hyper", "arg", lambda: V.check_spd([[1.0, 2.0], [2.0, 1.0]], "arg"))
case(P + "check_alloc", "hyper", "arg", lambda: V.check_alloc((10 ** 6, 10 ** 6), "arg"))
case(P + "check_finite_result", "inf", "arg",
     lambda: V.check_finite_result(INF(2), "arg", "square", A(2)))

# -- nn.base --------------------------------------------------------------------------------------
P = "nn.base."
case(P + "Module.add_param", "nan", "value", lambda: base.Module().add_param("w", NAN(3)))
case(P + "Module.add_param", "inf", "value", lambda: base.Module().add_param("w", INF(3)))
case(P + "Module.add_param", "type", "value", lambda: base.Module().add_param("w", "abc"))
case(P + "Module.add_param", "hyper", "name", lambda: base.Module().add_param(3, A(3)))
case(P + "Module.add_child", "type", "module", lambda: base.Module().add_child("a", "abc"))
case(P + "Module.add_child", "hyper", "name",
     lambda: base.Module().add_child(3, nn.Tanh()))


def _lin(**kw):
    return nprefgen.nn.Linear(3, 2, rng=R(), **kw)


case(P + "Module.load_state_dict", "shape", "state",
     lambda: _lin().load_state_dict({"weight": A(3, 3), "bias": A(2)}))
case(P + "Module.load_state_dict", "nan", "state",
     lambda: _lin().load_state_dict({"weight": NAN(2, 3), "bias": A(2)}))
case(P + "Module.load_state_dict", "inf", "state",
     lambda: _lin().load_state_dict({"weight": A(2, 3), "bias": INF(2)}))
case(P + "Module.load_state_dict", "empty", "state", lambda: _lin().load_state_dict({}))
case(P + "Module.load_state_dict", "type", "state", lambda: _lin().load_state_dict(None))
case(P + "Module.astype", "hyper", "dtype", lambda: _lin().astype(np.int64))
case(P + "Module.astype", "type", "dtype", lambda: _lin().astype("banana"))
arrays(P + "check_input", "xx", lambda x: base.check_input(x, "xx", 3, _lin()), (4, 3), (4, 5))
arrays(P + "check_cotangent", "d_y", lambda d: base.check_cotangent(d, (4, 3)), (4, 3), (4, 5),
       empty=(0, 3))

# -- nn layers: constructors, forward, backward ----------------------------------------------------
P = "nn.activations."
for cls, arg in ((activations.LeakyReLU, "negative_slope"), (activations.ELU, "alpha")):
    case(P + cls.__name__, "hyper", arg, lambda cls=cls: cls(-0.5))
    case(P + cls.__name__, "nan", arg, lambda cls=cls: cls(np.nan))
    case(P + cls.__name__, "inf", arg, lambda cls=cls: cls(np.inf))
    case(P + cls.__name__, "type", arg, lambda cls=cls: cls("abc"))
# forward/backward of every layer: the layer battery (tests/test_contracts.py)
P = "nn.minibatch_std."
for bad, kind in ((0.0, "hyper"), (np.nan, "nan"), (np.inf, "inf"), ("abc", "type")):
    case(P + "MinibatchStd", kind, "eps", lambda bad=bad: minibatch_std.MinibatchStd(eps=bad))
P = "nn.circular_pad."
for cls in (circular_pad.CircularPad2d, circular_pad.CircularFold2d):
    case(P + cls.__name__, "hyper", "padding", lambda cls=cls: cls(-1))
    case(P + cls.__name__, "type", "padding", lambda cls=cls: cls("abc"))
case(P + "PeriodicConvTranspose2d", "hyper", "output_padding",
     lambda: circular_pad.PeriodicConvTranspose2d(1, 1, 3, stride=2, output_padding=1))
P = "nn.spectral_power."
case(P + "BinnedLogPower", "hyper", "n_bins", lambda: spectral_power.BinnedLogPower(8, 12))
case(P + "BinnedLogPower", "hyper", "n_side", lambda: spectral_power.BinnedLogPower(1))
case(P + "BinnedLogPower", "nan", "eps", lambda: spectral_power.BinnedLogPower(8, eps=np.nan))
case(P + "Branches", "type", "nets", lambda: spectral_power.Branches("abc"))
P = "nn.activations."
arrays(P + "sigmoid", "x", activations.sigmoid, (4, 3))
case(P + "sigmoid", "type", "x", lambda: activations.sigmoid("abc"))

P = "nn.linear."
for cls, extra in ((linear.Linear, ()), (linear.MaskedLinear, (np.ones((2, 3)),))):
    name = P + cls.__name__
    case(name, "hyper", "in_features", lambda cls=cls, e=extra: cls(0, 2, *e, rng=R()))
    case(name, "nan", "out_features", lambda cls=cls, e=extra: cls(3, np.nan, *e, rng=R()))
    case(name, "hyper", "rng", lambda cls=cls, e=extra: cls(3, 2, *e, rng="0"))
    case(name, "hyper", "init", lambda cls=cls, e=extra: cls(3, 2, *e, rng=R(), init="nope"))
    case(name, "hyper", "dtype", lambda cls=cls, e=extra: cls(3, 2, *e, rng=R(), dtype=np.int64))
arrays(P + "MaskedLinear", "mask", lambda m: linear.MaskedLinear(3, 2, m, rng=R()),
       np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]), (3, 2),
       empty=(0, 3))
case(P + "MaskedLinear", "hyper", "mask",
     lambda: linear.MaskedLinear(3, 2, 0.5 * np.ones((2, 3)), rng=R()))
arrays(P + "linear_forward", "x", lambda x: linear.linear_forward(A(2, 3), A(2), x), (4, 3), (4, 5))
arrays(P + "linear_forward", "W", lambda W: linear.linear_forward(W, A(2), A(4, 3)), (2, 3),
       (2, 3, 1))
arrays(P + "linear_forward", "b", lambda b: linear.linear_forward(A(2, 3), b, A(4, 3)), (2,), (3,))
arrays(P + "linear_backward", "d_y", lambda d: linear.linear_backward(A(2, 3), A(4, 3), d), (4, 2),
       (4, 3))
arrays(P + "linear_backward", "x", lambda x: linear.linear_backward(A(2, 3), x, A(4, 2)), (4, 3),
       (4, 4))
arrays(P + "linear_backward", "W", lambda W: linear.linear_backward(W, A(4, 3), A(4, 2)), (2, 3),
       (2, 3, 1))

P = "nn.containers."
case(P + "Sequential", "empty", "layers", lambda: containers.Sequential())
case(P + "Sequential", "type", "layers", lambda: containers.Sequential(nn.Tanh(), "abc"))


def _short_caches():
    net = nn.Sequential(_lin(), nn.Tanh())
    y, caches = net.forward(A(4, 3))
    return net.backward(caches[:1], y)


case(P + "Sequential.backward", "shape", "caches", _short_caches)
case(P + "Sequential.backward", "type", "caches",
     lambda: nn.Sequential(_lin(), nn.Tanh()).backward(None, A(4, 2)))
case(P + "MLP", "hyper", "in_features", lambda: containers.MLP(0, [4], 2, rng=R()))
case(P + "MLP", "nan", "out_features", lambda: containers.MLP(3, [4], np.nan, rng=R()))
case(P + "MLP", "hyper", "hidden", lambda: containers.MLP(3, [0], 2, rng=R()))
case(P + "MLP", "type", "hidden", lambda: containers.MLP(3, 4, 2, rng=R()))
case(P + "MLP", "hyper", "activation", lambda: containers.MLP(3, [4], 2, rng=R(), activation="x"))
case(P + "MLP", "hyper", "out_activation",
     lambda: containers.MLP(3, [4], 2, rng=R(), out_activation="x"))
case(P + "MLP", "hyper", "init", lambda: containers.MLP(3, [4], 2, rng=R(), init="x"))
case(P + "MLP", "hyper", "dtype", lambda: containers.MLP(3, [4], 2, rng=R(), dtype=np.int32))
case(P + "MLP", "hyper", "rng", lambda: containers.MLP(3, [4], 2, rng="x"))
case(P + "Reshape", "hyper", "shape", lambda: containers.Reshape(3, 0))
case(P + "Reshape", "nan", "shape", lambda: containers.Reshape(np.nan))
case(P + "Reshape", "empty", "shape", lambda: containers.Reshape())

P = "nn.conv."
for cls in (conv.Conv2d, conv.ConvTranspose2d):
    name = P + cls.__name__
    case(name, "hyper", "in_channels", lambda cls=cls: cls(0, 3, 3, rng=R()))
    case(name, "nan", "out_channels", lambda cls=cls: cls(2, np.nan, 3, rng=R()))
    case(name, "hyper", "kernel_size", lambda cls=cls: cls(2, 3, (3, 0), rng=R()))
    case(name, "shape", "kernel_size", lambda cls=cls: cls(2, 3, (3, 3, 3), rng=R()))
    case(name, "hyper", "stride", lambda cls=cls: cls(2, 3, 3, stride=0, rng=R()))
    case(name, "hyper", "padding", lambda cls=cls: cls(2, 3, 3, padding=-1, rng=R()))
    case(name, "hyper", "rng", lambda cls=cls: cls(2, 3, 3, rng="1"))
    case(name, "hyper", "dtype", lambda cls=cls: cls(2, 3, 3, rng=R(), dtype=np.int64))
    case(name, "hyper", "init", lambda cls=cls: cls(2, 3, 3, rng=R(), init="x"))
case(P + "ConvTranspose2d", "hyper", "output_padding",
     lambda: conv.ConvTranspose2d(2, 3, 3, stride=2, output_padding=2, rng=R()))
case(P + "Conv2d.output_shape", "hyper", "h",
     lambda: conv.Conv2d(2, 3, 3, rng=R()).output_shape(0, 5))
case(P + "Conv2d.output_shape", "nan", "w",
     lambda: conv.Conv2d(2, 3, 3, rng=R()).output_shape(5, np.nan))
case(P + "ConvTranspose2d.output_shape", "hyper", "h",
     lambda: conv.ConvTranspose2d(2, 3, 3, rng=R()).output_shape(0, 5))
case(P + "ConvTranspose2d.output_shape", "nan", "w",
     lambda: conv.ConvTranspose2d(2, 3, 3, rng=R()).output_shape(5, np.nan))

_S, _P0, _P1 = (1, 1), (0, 0), (1, 1)
arrays(P + "conv2d_forward", "x", lambda x: conv.conv2d_forward(A(3, 2, 3, 3), A(3), x, _S, _P1),
       (2, 2, 5, 5), (2, 4, 5, 5))
arrays(P + "conv2d_forward", "W",
       lambda W: conv.conv2d_forward(W, A(3), A(2, 2, 5, 5), _S, _P1), (3, 2, 3, 3), (3, 2, 3))
arrays(P + "conv2d_forward", "b",
       lambda b: conv.conv2d_forward(A(3, 2, 3, 3), b, A(2, 2, 5, 5), _S, _P1), (3,), (4,))
case(P + "conv2d_forward", "hyper", "stride",
     lambda: conv.conv2d_forward(A(3, 2, 3, 3), None, A(2, 2, 5, 5), (0, 1), _P1))
case(P + "conv2d_forward", "hyper", "padding",
     lambda: conv.conv2d_forward(A(3, 2, 3, 3), None, A(2, 2, 5, 5), _S, (-1, 0)))
_X = KI.im2col_numpy(A(2, 2, 5, 5), (3, 3), _S, _P1)                       # (50, 18)
arrays(P + "conv2d_backward", "d_y",
       lambda d: conv.conv2d_backward(A(3, 2, 3, 3), _X, (2, 2, 5, 5), d, _S, _P1), (2, 3, 5, 5),
       (2, 3, 5, 4))
arrays(P + "conv2d_backward", "W",
       lambda W: conv.conv2d_backward(W, _X, (2, 2, 5, 5), A(2, 3, 5, 5), _S, _P1), (3, 2, 3, 3),
       (3, 2, 3))
# X and x_rows are the caches forward returned (from a checked input): shapes are checked,
# values are not scanned a second time
case(P + "conv2d_backward", "shape", "X",
     lambda: conv.conv2d_backward(A(3, 2, 3, 3), A(49, 18), (2, 2, 5, 5), A(2, 3, 5, 5), _S, _P1))
case(P + "conv2d_backward", "empty", "X",
     lambda: conv.conv2d_backward(A(3, 2, 3, 3), E(0, 18), (2, 2, 5, 5), A(2, 3, 5, 5), _S, _P1))
case(P + "conv2d_backward", "shape", "x_shape",
     lambda: conv.conv2d_backward(A(3, 2, 3, 3), _X, (2, 2, 5), A(2, 3, 5, 5), _S, _P1))
_ST, _OP = (2, 2), (1, 1)
arrays(P + "conv_transpose2d_forward", "x",
       lambda x: conv.conv_transpose2d_forward(A(2, 3, 3, 3), A(3), x, _ST, _P0, _OP),
       (2, 2, 3, 3), (2, 3, 3, 3))
arrays(P + "conv_transpose2d_forward", "W",
       lambda W: conv.conv_transpose2d_forward(W, A(3), A(2, 2, 3, 3), _ST, _P0, _OP),
       (2, 3, 3, 3), (2, 3, 3))
arrays(P + "conv_transpose2d_forward", "b",
       lambda b: conv.conv_transpose2d_forward(A(2, 3, 3, 3), b, A(2, 2, 3, 3), _ST, _P0, _OP),
       (3,), (2,))
case(P + "conv_transpose2d_forward", "hyper", "output_padding",
     lambda: conv.conv_transpose2d_forward(A(2, 3, 3, 3), None, A(2, 2, 3, 3), _ST, _P0, (2, 2)))
_XR = A(18, 2)                                                               # (n h w, c_in)
arrays(P + "conv_transpose2d_backward", "d_y",
       lambda d: conv.conv_transpose2d_backward(A(2, 3, 3, 3), _XR, (2, 2, 3, 3), d, _ST, _P0),
       (2, 3, 8, 8), (2, 3, 12, 12))
arrays(P + "conv_transpose2d_backward", "W",
       lambda W: conv.conv_transpose2d_backward(W, _XR, (2, 2, 3, 3), A(2, 3, 8, 8), _ST, _P0),
       (2, 3, 3, 3), (2, 3, 3))
case(P + "conv_transpose2d_backward", "shape", "x_rows",
     lambda: conv.conv_transpose2d_backward(A(2, 3, 3, 3), A(17, 2), (2, 2, 3, 3), A(2, 3, 8, 8),
                                            _ST, _P0))
case(P + "conv_transpose2d_backward", "shape", "x_shape",
     lambda: conv.conv_transpose2d_backward(A(2, 3, 3, 3), _XR, (2, 2, 3), A(2, 3, 8, 8), _ST, _P0))
case(P + "conv_transpose_output_size", "hyper", "stride",
     lambda: conv.conv_transpose_output_size(3, 3, 0, 0, 0))
case(P + "conv_transpose_output_size", "hyper", "size",
     lambda: conv.conv_transpose_output_size(0, 3, 1, 0, 0))
case(P + "conv_transpose_output_size", "nan", "padding",
     lambda: conv.conv_transpose_output_size(3, 3, 1, np.nan, 0))

# -- nn.init, io, losses, optim --------------------------------------------------------------------
P = "nn.init."
for fn, extra in ((init.torch_default, ()), (init.kaiming_normal, ())):
    case(P + fn.__name__, "hyper", "fan_in", lambda fn=fn: fn((2, 3), 0, rng=R()))
    case(P + fn.__name__, "nan", "fan_in", lambda fn=fn: fn((2, 3), np.nan, rng=R()))
    case(P + fn.__name__, "shape", "shape", lambda fn=fn: fn((2, -3), 3, rng=R()))
    case(P + fn.__name__, "type", "shape", lambda fn=fn: fn("abc", 3, rng=R()))
    case(P + fn.__name__, "hyper", "rng", lambda fn=fn: fn((2, 3), 3, rng="x"))
    case(P + fn.__name__, "hyper", "dtype", lambda fn=fn: fn((2, 3), 3, rng=R(), dtype=np.int64))
case(P + "kaiming_normal", "nan", "gain", lambda: init.kaiming_normal((2, 3), 3, rng=R(), gain=np.nan))
case(P + "kaiming_normal", "hyper", "gain", lambda: init.kaiming_normal((2, 3), 3, rng=R(), gain=-1.0))
case(P + "xavier_uniform", "hyper", "fan_out", lambda: init.xavier_uniform((2, 3), 3, 0, rng=R()))
case(P + "xavier_uniform", "shape", "shape", lambda: init.xavier_uniform((-2,), 3, 2, rng=R()))
case(P + "xavier_uniform", "nan", "gain",
     lambda: init.xavier_uniform((2, 3), 3, 2, rng=R(), gain=np.nan))
case(P + "xavier_uniform", "inf", "gain",
     lambda: init.xavier_uniform((2, 3), 3, 2, rng=R(), gain=np.inf))
case(P + "xavier_uniform", "hyper", "dtype",
     lambda: init.xavier_uniform((2, 3), 3, 2, rng=R(), dtype=np.int8))
case(P + "init_weight", "hyper", "kind", lambda: init.init_weight("nope", (2, 3), 3, 2, rng=R()))
case(P + "init_weight", "hyper", "dtype",
     lambda: init.init_weight("zeros", (2, 3), 3, 2, rng=R(), dtype=np.int64))
case(P + "init_weight", "shape", "shape", lambda: init.init_weight("zeros", (2, -1), 3, 2, rng=R()))
case(P + "init_weight_and_bias", "hyper", "init",
     lambda: init.init_weight_and_bias("nope", (2, 3), 2, 3, 2, rng=R()))
case(P + "init_weight_and_bias", "hyper", "n_bias",
     lambda: init.init_weight_and_bias("torch", (2, 3), 0, 3, 2, rng=R()))
case(P + "init_weight_and_bias", "shape", "shape",
     lambda: init.init_weight_and_bias("torch", (2, -3), 2, 3, 2, rng=R()))
case(P + "init_weight_and_bias", "nan", "fan_in",
     lambda: init.init_weight_and_bias("torch", (2, 3), 2, np.nan, 2, rng=R()))
case(P + "init_weight_and_bias", "hyper", "dtype",
     lambda: init.init_weight_and_bias("torch", (2, 3), 2, 3, 2, rng=R(), dtype=np.int64))

P = "nn.io."


def _lin_nan():
    layer = _lin()
    layer.params["weight"][0, 0] = np.nan
    return layer


def _write(name: str, blob: bytes) -> str:
    with open(name, "wb") as f:
        f.write(blob)
    return name


def _saved(module) -> str:
    io.save_npz("saved.npz", module)
    return "saved.npz"


case(P + "save_npz", "type", "module", lambda: io.save_npz("m.npz", "abc"))
case(P + "save_npz", "nan", "module", lambda: io.save_npz("m.npz", _lin_nan()))
case(P + "save_npz", "type", "meta", lambda: io.save_npz("m.npz", _lin(), meta=[1, 2]))
case(P + "save_npz", "type", "meta", lambda: io.save_npz("m.npz", _lin(), meta={"a": object()}))
case(P + "save_npz", "type", "path", lambda: io.save_npz(None, _lin()))
case(P + "read_npz", "corrupt", "path",
     lambda: io.read_npz(_write("bad.npz", b"PK\x03\x04garbage")))
case(P + "read_npz", "empty", "path", lambda: io.read_npz(_write("empty.npz", b"")))
case(P + "read_npz", "corrupt", "path", lambda: io.read_npz("missing.npz"))
case(P + "read_npz", "type", "path", lambda: io.read_npz(None))
case(P + "read_npz", "hyper", "max_bytes", lambda: io.read_npz(_saved(_lin()), max_bytes=-1))
case(P + "atomic_write", "type", "path", lambda: io.atomic_write(None).__enter__())
case(P + "atomic_write", "hyper", "path", lambda: io.atomic_write(".").__enter__())


case(P + "load_npz", "corrupt", "path", lambda: io.load_npz(_write("bad.npz", b"garbage"), _lin()))
case(P + "load_npz", "shape", "path",
     lambda: io.load_npz(_saved(nn.Linear(3, 4, rng=R())), _lin()))
case(P + "load_npz", "type", "module", lambda: io.load_npz(_saved(_lin()), "abc"))

P = "nn.losses."
# the prediction may have any shape (elementwise losses); the target must match it
for fn in (losses.mse_loss, losses.bce_with_logits_loss):
    arrays(P + fn.__name__, "target", lambda t, fn=fn: fn(A(4, 3), t), np.full((4, 3), 0.25), (4, 2))
    case(P + fn.__name__, "hyper", "reduction", lambda fn=fn: fn(A(4, 3), E(4, 3), "none"))
arrays(P + "mse_loss", "pred", lambda p: losses.mse_loss(p, A(4, 3)), (4, 3))
arrays(P + "bce_with_logits_loss", "logits",
       lambda a: losses.bce_with_logits_loss(a, np.full((4, 3), 0.5)), (4, 3))
case(P + "bce_with_logits_loss", "hyper", "target",
     lambda: losses.bce_with_logits_loss(A(4, 3), np.full((4, 3), 2.0)))
arrays(P + "gaussian_nll_loss", "log_var",
       lambda lv: losses.gaussian_nll_loss(A(4, 3), lv, A(4, 3)),
       (4, 3), (4, 2))
arrays(P + "gaussian_nll_loss", "mu",
       lambda m: losses.gaussian_nll_loss(m, A(4, 3), A(4, 3)), (4, 3))
arrays(P + "gaussian_nll_loss", "target",
       lambda t: losses.gaussian_nll_loss(A(4, 3), A(4, 3), t), (4, 3), (4, 2))
case(P + "gaussian_nll_loss", "hyper", "reduction",
     lambda: losses.gaussian_nll_loss(A(4, 3), A(4, 3), A(4, 3), "max"))
_LAB = np.array([0, 1, 2, 0])
arrays(P + "softmax_cross_entropy_loss", "logits",
       lambda a: losses.softmax_cross_entropy_loss(a, _LAB), (4, 3), (4, 3, 1), empty=(4, 0))
case(P + "softmax_cross_entropy_loss", "shape", "labels",
     lambda: losses.softmax_cross_entropy_loss(A(4, 3), _LAB[:3]))
case(P + "softmax_cross_entropy_loss", "nan", "labels",
     lambda: losses.softmax_cross_entropy_loss(A(4, 3), np.array([0, 1, np.nan, 0])))
case(P + "softmax_cross_entropy_loss", "hyper", "labels",
     lambda: losses.softmax_cross_entropy_loss(A(4, 3), np.array([0, 1, 3, 0])))
case(P + "softmax_cross_entropy_loss", "hyper", "reduction",
     lambda: losses.softmax_cross_entropy_loss(A(4, 3), _LAB, "avg"))
arrays(P + "softmax", "logits", losses.softmax, (4, 3), (4,), empty=(4, 0))

P = "nn.optim."


def _pg():
    return [(A(3), A(3))]


for cls in (optim.SGD, optim.Adam):
    name = P + cls.__name__
    case(name, "hyper", "lr", lambda cls=cls: cls(_pg(), lr=-1.0))
    case(name, "nan", "lr", lambda cls=cls: cls(_pg(), lr=np.nan))
    case(name, "inf", "lr", lambda cls=cls: cls(_pg(), lr=np.inf))
    case(name, "hyper", "weight_decay", lambda cls=cls: cls(_pg(), weight_decay=-1.0))
    case(name, "empty", "params", lambda cls=cls: cls([]))
    case(name, "shape", "params", lambda cls=cls: cls([(A(3), A(4))]))
    case(name, "type", "params", lambda cls=cls: cls(None))
    case(name, "type", "params", lambda cls=cls: cls([A(3)]))
case(P + "SGD", "hyper", "momentum", lambda: optim.SGD(_pg(), momentum=1.5))
case(P + "Adam", "hyper", "betas", lambda: optim.Adam(_pg(), betas=(0.9, 1.0)))
case(P + "Adam", "nan", "betas", lambda: optim.Adam(_pg(), betas=(np.nan, 0.9)))
case(P + "Adam", "type", "betas", lambda: optim.Adam(_pg(), betas=0.9))
case(P + "Adam", "hyper", "eps", lambda: optim.Adam(_pg(), eps=0.0))
case(P + "Optimizer", "empty", "params", lambda: optim.Optimizer([]))
case(P + "Optimizer", "type", "params", lambda: optim.Optimizer([(1, 2)]))
case(P + "clip_grad_norm", "hyper", "max_norm", lambda: optim.clip_grad_norm(_pg(), 0.0))
case(P + "clip_grad_norm", "nan", "max_norm", lambda: optim.clip_grad_norm(_pg(), np.nan))
case(P + "clip_grad_norm", "nan", "params", lambda: optim.clip_grad_norm([(A(3), NAN(3))], 1.0))
case(P + "clip_grad_norm", "inf", "params", lambda: optim.clip_grad_norm([(A(3), INF(3))], 1.0))
case(P + "clip_grad_norm", "type", "params", lambda: optim.clip_grad_norm([A(3)], 1.0))

# -- nn.train: the shared training loop ------------------------------------------------------------
P = "nn.train."


def _loop(**kw):
    net = linear.Linear(2, 1, rng=R())

    def mse_and_grad(x, y):
        out, cache = net.forward(x)
        loss, d_out = losses.mse_loss(out, y)
        net.backward(cache, d_out)
        return loss

    args = {"train_data": (A(6, 2), A(6, 1)), "rng": R(), "epochs": 1} | kw
    return train.fit_loop(net, mse_and_grad, args.pop("train_data"), **args)


for _arg, _val in (("epochs", 0), ("batch_size", 0), ("lr", 0.0), ("lr", np.nan),
                   ("weight_decay", -1.0), ("clip", 0.0), ("patience", 0), ("min_batch_size", 0),
                   ("on_divergence", "ignore"), ("divergence_tol", 0.0), ("optimizer", "lbfgs"),
                   ("hook", 3)):
    case(P + "fit_loop", "hyper", _arg, lambda a=_arg, v=_val: _loop(**{a: v}))
case(P + "fit_loop", "type", "rng", lambda: _loop(rng="0"))
case(P + "fit_loop", "shape", "train_data", lambda: _loop(train_data=(A(6, 2), A(5, 1))))
case(P + "fit_loop", "nan", "train_data", lambda: _loop(train_data=(NAN(6, 2), A(6, 1))))
case(P + "fit_loop", "type", "train_data", lambda: _loop(train_data=None))
case(P + "fit_loop", "nan", "val_data", lambda: _loop(val_data=(NAN(3, 2), A(3, 1)),
                                                      evaluate=lambda x, y: 0.0))
case(P + "fit_loop", "type", "evaluate", lambda: _loop(val_data=(A(3, 2), A(3, 1))))
case(P + "fit_loop", "type", "loss_and_grad",
     lambda: train.fit_loop(linear.Linear(2, 1, rng=R()), None, (A(6, 2),), rng=R()))
case(P + "validation_split", "hyper", "validation_fraction",
     lambda: train.validation_split(10, 1.0, rng=R()))
case(P + "validation_split", "nan", "validation_fraction",
     lambda: train.validation_split(10, np.nan, rng=R()))
case(P + "validation_split", "hyper", "n", lambda: train.validation_split(0, 0.1, rng=R()))
case(P + "validation_split", "type", "rng", lambda: train.validation_split(10, 0.1, rng="0"))
case(P + "clip_grad_norm", "shape", "params", lambda: optim.clip_grad_norm([(A(3), A(2))], 1.0))

# -- kernels ---------------------------------------------------------------------------------------
for fn in (KL.logsumexp_rows, KL.logsumexp_rows_numpy):
    # +-inf entries are part of the documented contract (NN.20): -inf rows are empty mixtures
    arrays("kernels.logsumexp." + fn.__name__, "a", fn, (4, 3), (4,), inf=False)
    case("kernels.logsumexp." + fn.__name__, "empty", "a", lambda fn=fn: fn(E(4, 0)))
for fn in (KS.softplus, KS.softplus_numpy, KS.softplus_grad, KS.softplus_grad_numpy):
    arrays("kernels.softplus." + fn.__name__, "x", fn, (4, 3))       # elementwise: any shape
    case("kernels.softplus." + fn.__name__, "type", "x", lambda fn=fn: fn("abc"))
for fn in (KI.im2col, KI.im2col_numpy):
    name = "kernels.im2col." + fn.__name__
    arrays(name, "x", lambda x, fn=fn: fn(x, (3, 3), _S, _P1), (2, 2, 5, 5), (2, 5, 5))
    case(name, "hyper", "kernel_size", lambda fn=fn: fn(A(2, 2, 5, 5), (0, 3), _S, _P1))
    case(name, "hyper", "kernel_size", lambda fn=fn: fn(A(2, 2, 5, 5), (9, 9), _S, _P1))
    case(name, "hyper", "stride", lambda fn=fn: fn(A(2, 2, 5, 5), (3, 3), (0, 1), _P1))
    case(name, "hyper", "padding", lambda fn=fn: fn(A(2, 2, 5, 5), (3, 3), _S, (-1, 0)))
    case(name, "shape", "stride", lambda fn=fn: fn(A(2, 2, 5, 5), (3, 3), (1,), _P1))
for fn in (KI.col2im, KI.col2im_numpy):
    name = "kernels.im2col." + fn.__name__
    arrays(name, "cols", lambda c, fn=fn: fn(c, (2, 2, 5, 5), (3, 3), _S, _P0), (18, 18), (17, 18))
    case(name, "shape", "x_shape", lambda fn=fn: fn(A(18, 18), (2, 2, 5), (3, 3), _S, _P0))
    case(name, "hyper", "x_shape", lambda fn=fn: fn(A(18, 18), (2, 2, -5, 5), (3, 3), _S, _P0))
    case(name, "hyper", "stride", lambda fn=fn: fn(A(18, 18), (2, 2, 5, 5), (3, 3), (0, 0), _P0))
case("kernels.im2col.conv_output_size", "hyper", "stride", lambda: KI.conv_output_size(5, 3, 0, 0))
case("kernels.im2col.conv_output_size", "hyper", "kernel_size",
     lambda: KI.conv_output_size(5, 0, 1, 0))
case("kernels.im2col.conv_output_size", "nan", "size", lambda: KI.conv_output_size(np.nan, 3, 1, 0))
case("kernels.im2col.conv_output_size", "hyper", "padding",
     lambda: KI.conv_output_size(5, 3, 1, -1))

_U_FULL = np.broadcast_to(np.eye(2), (3, 2, 2)).copy()
_U_DIAG = np.ones((3, 2))
for suffix in ("", "_numpy"):
    for kind, U, bad_U in (("full", _U_FULL, np.broadcast_to(np.ones((2, 2)), (3, 2, 2)).copy()),
                           ("diag", _U_DIAG, -_U_DIAG)):
        fn = getattr(KG, f"log_gaussian_prob_{kind}{suffix}")
        name = "kernels.gmm." + fn.__name__
        arrays(name, "X", lambda X, fn=fn, U=U: fn(X, A(3, 2), U), (6, 2), (6,))
        arrays(name, "means", lambda m, fn=fn, U=U: fn(A(6, 2), m, U), (3, 2), (3, 3))
        arrays(name, "prec_chol", lambda u, fn=fn: fn(A(6, 2), A(3, 2), u), U,
               U.shape[:-1] + (3,))
        # not upper triangular (full) / a non-positive diagonal (diag): log|U| would be wrong or NaN
        case(name, "hyper", "prec_chol", lambda fn=fn, b=bad_U: fn(A(6, 2), A(3, 2), b))
    fn = getattr(KG, "log_responsibilities" + suffix)
    name = "kernels.gmm." + fn.__name__
    # -inf entries are valid (a zero weight); +inf and rows without a finite entry are not
    arrays(name, "weighted_log_prob", fn, (6, 3), (6,), inf=False)
    case(name, "inf", "weighted_log_prob", lambda fn=fn: fn(INF(6, 3)))
    case(name, "inf", "weighted_log_prob",
         lambda fn=fn: fn(np.where(np.arange(3) < 3, -np.inf, 0.0) * np.ones((6, 3))))
    for stat in ("weighted_sums", "weighted_scatter_full", "weighted_scatter_diag"):
        fn = getattr(KG, stat + suffix)
        name = "kernels.gmm." + fn.__name__
        extra = () if stat == "weighted_sums" else (A(3, 2),)
        arrays(name, "X", lambda X, fn=fn, e=extra: fn(X, np.full((6, 3), 1 / 3), *e), (6, 2), (6,))
        arrays(name, "resp", lambda r, fn=fn, e=extra: fn(A(6, 2), r, *e), (6, 3), (5, 3))
        if extra:
            arrays(name, "means", lambda m, fn=fn: fn(A(6, 2), np.full((6, 3), 1 / 3), m), (3, 2),
                   (3, 3))

# -- testing ---------------------------------------------------------------------------------------
P = "testing.gradcheck."
_x0 = A(2, 3)


def _vjp(v):
    return v * np.cos(_x0)


case(P + "directional_derivative", "type", "fun",
     lambda: GC.directional_derivative(3, _x0, A(2, 3)))
arrays(P + "directional_derivative", "x", lambda x: GC.directional_derivative(np.sin, x, A(2, 3)),
       (2, 3))
arrays(P + "directional_derivative", "u", lambda u: GC.directional_derivative(np.sin, _x0, u),
       (2, 3), (3,))
case(P + "directional_derivative", "hyper", "step",
     lambda: GC.directional_derivative(np.sin, _x0, A(2, 3), step=0.0))
for fn in (GC.vjp_error, GC.check_vjp):
    name = P + fn.__name__
    arrays(name, "x", lambda x, fn=fn: fn(np.sin, lambda v: v * np.cos(x), x, rng=R()), (2, 3))
    case(name, "shape", "vjp", lambda fn=fn: fn(np.sin, lambda v: v[0], _x0, rng=R()))
    case(name, "type", "fun", lambda fn=fn: fn(None, _vjp, _x0, rng=R()))
    case(name, "type", "vjp", lambda fn=fn: fn(np.sin, None, _x0, rng=R()))
    case(name, "hyper", "rng", lambda fn=fn: fn(np.sin, _vjp, _x0, rng="0"))
    case(name, "hyper", "step", lambda fn=fn: fn(np.sin, _vjp, _x0, rng=R(), step=-1e-3))
    case(name, "nan", "rtol", lambda fn=fn: fn(np.sin, _vjp, _x0, rng=R(), rtol=np.nan))
    case(name, "hyper", "rtol", lambda fn=fn: fn(np.sin, _vjp, _x0, rng=R(), rtol=-1.0))
case(P + "vjp_error", "shape", "v", lambda: GC.vjp_error(np.sin, _vjp, _x0, rng=R(), v=A(3)))
case(P + "check_vjp", "hyper", "n_directions",
     lambda: GC.check_vjp(np.sin, _vjp, _x0, rng=R(), n_directions=0))
arrays(P + "gradcheck", "x",
       lambda x: GC.gradcheck(lambda z: float(np.sum(z * z)), lambda z: 2 * z, x, rng=R()), (2, 3))
case(P + "gradcheck", "shape", "grad",
     lambda: GC.gradcheck(lambda z: float(np.sum(z * z)), lambda z: z[0], _x0, rng=R()))
case(P + "gradcheck", "type", "grad", lambda: GC.gradcheck(np.sum, None, _x0, rng=R()))
case(P + "gradcheck", "hyper", "rng", lambda: GC.gradcheck(np.sum, np.ones_like, _x0, rng="0"))
for fn in (GC.layer_vjp_errors, GC.check_layer):
    name = P + fn.__name__
    arrays(name, "x", lambda x, fn=fn: fn(nn.Tanh(), x, rng=R()), (2, 3))
    case(name, "shape", "x", lambda fn=fn: fn(_lin(), A(2, 4), rng=R()))
    case(name, "type", "layer", lambda fn=fn: fn("abc", _x0, rng=R()))
    case(name, "hyper", "layer", lambda fn=fn: fn(_lin(dtype=np.float32), _x0, rng=R()))
    case(name, "nan", "rtol", lambda fn=fn: fn(nn.Tanh(), _x0, rng=R(), rtol=np.nan))
    case(name, "hyper", "rng", lambda fn=fn: fn(nn.Tanh(), _x0, rng="x"))

P = "testing.strategies."
for fn in (ST.batch_shapes, ST.image_shapes):
    case(P + fn.__name__, "hyper", "max_batch", lambda fn=fn: fn(max_batch=0))
    case(P + fn.__name__, "nan", "max_batch", lambda fn=fn: fn(max_batch=np.nan))
case(P + "batch_shapes", "hyper", "max_features",
     lambda: ST.batch_shapes(min_features=5, max_features=4))
case(P + "image_shapes", "hyper", "max_size", lambda: ST.image_shapes(min_size=9, max_size=8))
for fn in (ST.arrays_for, ST.strided_arrays):
    case(P + fn.__name__, "shape", "shape", lambda fn=fn: fn((2, -1)))
    case(P + fn.__name__, "type", "shape", lambda fn=fn: fn("abc"))
    case(P + fn.__name__, "nan", "scale", lambda fn=fn: fn((2, 3), scale=np.nan))
    case(P + fn.__name__, "inf", "scale", lambda fn=fn: fn((2, 3), scale=np.inf))
    case(P + fn.__name__, "hyper", "scale", lambda fn=fn: fn((2, 3), scale=-1.0))
case(P + "arrays_for", "hyper", "away_from_zero", lambda: ST.arrays_for((2,), away_from_zero=-1.0))
case(P + "spd_matrices", "hyper", "min_eig", lambda: ST.spd_matrices(min_eig=0.0))
case(P + "spd_matrices", "hyper", "max_eig", lambda: ST.spd_matrices(min_eig=2.0, max_eig=1.0))
case(P + "spd_matrices", "inf", "max_eig", lambda: ST.spd_matrices(max_eig=np.inf))
case(P + "spd_matrices", "hyper", "dim", lambda: ST.spd_matrices(dim=0))
case(P + "mlp_configs", "hyper", "max_in", lambda: ST.mlp_configs(max_in=0))
case(P + "mlp_configs", "hyper", "max_depth", lambda: ST.mlp_configs(max_depth=-1))
case(P + "mlp_configs", "hyper", "activations", lambda: ST.mlp_configs(activations=("nope",)))
case(P + "mlp_configs", "empty", "activations", lambda: ST.mlp_configs(activations=()))

# -- data ------------------------------------------------------------------------------------------
P = "data.digits."
case(P + "read_digits_file", "corrupt", "path",
     lambda: digits.read_digits_file(_write("d.npz", b"x")))
case(P + "read_digits_file", "empty", "path", lambda: digits.read_digits_file(_write("d.npz", b"")))
case(P + "read_digits_file", "type", "path", lambda: digits.read_digits_file(3))
case(P + "load_digits", "hyper", "split", lambda: digits.load_digits("training"))
case(P + "load_digits", "hyper", "scale", lambda: digits.load_digits(scale="bits"))
case(P + "load_digits", "hyper", "flatten", lambda: digits.load_digits(flatten="yes"))
case(P + "load_digits", "corrupt", "path", lambda: digits.load_digits(path=_write("d.npz", b"x")))
case(P + "split_indices", "shape", "labels", lambda: digits.split_indices(np.zeros((4, 2), int)))
case(P + "split_indices", "nan", "labels", lambda: digits.split_indices(np.array([0.0, np.nan])))
case(P + "split_indices", "empty", "labels", lambda: digits.split_indices(np.zeros(0, int)))
case(P + "split_indices", "hyper", "seed", lambda: digits.split_indices(np.arange(5), seed=-1))

P = "data.grf."
_PL = grf.power_law()
case(P + "power_law", "hyper", "amplitude", lambda: grf.power_law(amplitude=-1.0))
case(P + "power_law", "nan", "slope", lambda: grf.power_law(slope=np.nan))
case(P + "power_law", "inf", "amplitude", lambda: grf.power_law(amplitude=np.inf))
for fn, call in ((grf.field_variance, lambda fn, ps, **kw: fn(ps, 8, **kw)),
                 (grf.gaussian_random_field, lambda fn, ps, **kw: fn(8, ps, rng=R(), **kw)),
                 (grf.lognormal_field, lambda fn, ps, **kw: fn(8, ps, rng=R(), **kw))):
    name = P + fn.__name__
    case(name, "type", "power_spectrum", lambda fn=fn, c=call: c(fn, 3))
    case(name, "nan", "power_spectrum", lambda fn=fn, c=call: c(fn, lambda k: np.nan * k))
    case(name, "inf", "power_spectrum", lambda fn=fn, c=call: c(fn, lambda k: np.inf * k))
    case(name, "hyper", "power_spectrum", lambda fn=fn, c=call: c(fn, lambda k: -k))
    case(name, "shape", "power_spectrum", lambda fn=fn, c=call: c(fn, lambda k: k[:3]))
    case(name, "hyper", "box_size", lambda fn=fn, c=call: c(fn, _PL, box_size=0.0))
    case(name, "nan", "box_size", lambda fn=fn, c=call: c(fn, _PL, box_size=np.nan))
case(P + "field_variance", "hyper", "n_side", lambda: grf.field_variance(_PL, 1))
case(P + "gaussian_random_field", "hyper", "n_side", lambda: grf.gaussian_random_field(1, _PL, rng=R()))
case(P + "gaussian_random_field", "hyper", "n_fields",
     lambda: grf.gaussian_random_field(8, _PL, rng=R(), n_fields=0))
case(P + "gaussian_random_field", "hyper", "rng", lambda: grf.gaussian_random_field(8, _PL, rng="0"))
case(P + "lognormal_field", "hyper", "n_fields", lambda: grf.lognormal_field(8, _PL, rng=R(), n_fields=0))

P = "data.mnist."
_IDX = bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3])                   # a valid 1-D uint8 IDX file
case(P + "parse_idx", "corrupt", "blob", lambda: mnist.parse_idx(_IDX[:-1]))
case(P + "parse_idx", "corrupt", "blob", lambda: mnist.parse_idx(b"\x01" + _IDX[1:]))
case(P + "parse_idx", "empty", "blob", lambda: mnist.parse_idx(b""))
case(P + "parse_idx", "type", "blob", lambda: mnist.parse_idx("abc"))
case(P + "read_idx", "corrupt", "path", lambda: mnist.read_idx(_write("t.idx", _IDX + b"\x00")))
case(P + "read_idx", "corrupt", "path",
     lambda: mnist.read_idx(_write("t.idx.gz", gzip.compress(_IDX)[:-6])))
case(P + "read_idx", "empty", "path", lambda: mnist.read_idx(_write("t.idx", b"")))
case(P + "read_idx", "type", "path", lambda: mnist.read_idx(None))
case(P + "sha256_file", "corrupt", "path", lambda: mnist.sha256_file("missing.gz"))
case(P + "sha256_file", "type", "path", lambda: mnist.sha256_file(None))
case(P + "verify_file", "corrupt", "path",
     lambda: mnist.verify_file(_write("f", b"ab"), 2, "0" * 64))
case(P + "verify_file", "corrupt", "path", lambda: mnist.verify_file("missing", 2, "0" * 64))
case(P + "verify_file", "hyper", "size",
     lambda: mnist.verify_file(_write("f", b"ab"), -2, "0" * 64))
case(P + "verify_file", "hyper", "sha256", lambda: mnist.verify_file(_write("f", b"ab"), 2, "xyz"))
# every download_file row fails before any network access
_DL = dict(filename="f.gz", root=".", size=10, sha256="0" * 64)
case(P + "download_file", "hyper", "timeout", lambda: mnist.download_file(**_DL, timeout=0.0))
case(P + "download_file", "nan", "timeout", lambda: mnist.download_file(**_DL, timeout=np.nan))
case(P + "download_file", "empty", "mirrors", lambda: mnist.download_file(**_DL, mirrors=()))
case(P + "download_file", "type", "mirrors",
     lambda: mnist.download_file(**_DL, mirrors="http://x/"))
case(P + "download_file", "hyper", "size", lambda: mnist.download_file(**{**_DL, "size": -1}))
case(P + "download_file", "hyper", "sha256", lambda: mnist.download_file(**{**_DL, "sha256": "x"}))
case(P + "download_file", "hyper", "filename",
     lambda: mnist.download_file(**{**_DL, "filename": "../f.gz"}))
case(P + "download_file", "type", "root", lambda: mnist.download_file(**{**_DL, "root": None}))


def _mnist_dir(images: bytes) -> str:
    """A folder whose test-split images file is ``images`` (and labels a valid 2-label file)."""
    import os
    os.makedirs("mn", exist_ok=True)
    _write("mn/t10k-images-idx3-ubyte", images)
    _write("mn/t10k-labels-idx1-ubyte", bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 7]))
    return "mn"


_IMG = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(8)   # (2, 2, 2) images
case(P + "load_mnist", "hyper", "split", lambda: mnist.load_mnist("mn", split="val"))
case(P + "load_mnist", "hyper", "scale", lambda: mnist.load_mnist("mn", scale="x"))
case(P + "load_mnist", "hyper", "dtype", lambda: mnist.load_mnist("mn", dtype=np.int64))
case(P + "load_mnist", "hyper", "flatten", lambda: mnist.load_mnist("mn", flatten=1))
case(P + "load_mnist", "hyper", "timeout",
     lambda: mnist.load_mnist("mn", download=True, timeout=-1.0))
case(P + "load_mnist", "corrupt", "root",
     lambda: mnist.load_mnist(_mnist_dir(_IMG[:-1]), split="test", verify=False))
case(P + "load_mnist", "shape", "root",
     lambda: mnist.load_mnist(_mnist_dir(_IMG), split="test", verify=True))
case(P + "load_mnist", "empty", "root", lambda: mnist.load_mnist(".", split="test"))
case(P + "load_mnist", "type", "root", lambda: mnist.load_mnist(None))

P = "data.toys."
for fn in (toys.sample_two_moons, toys.sample_rings, toys.sample_checkerboard,
           toys.sample_8gaussians, toys.sample_pinwheel):
    case(P + fn.__name__, "hyper", "n", lambda fn=fn: fn(0, rng=R()))
    case(P + fn.__name__, "nan", "n", lambda fn=fn: fn(np.nan, rng=R()))
    case(P + fn.__name__, "hyper", "rng", lambda fn=fn: fn(5, rng="0"))
case(P + "sample_two_moons", "nan", "noise", lambda: toys.sample_two_moons(5, rng=R(), noise=np.nan))
case(P + "sample_two_moons", "inf", "noise", lambda: toys.sample_two_moons(5, rng=R(), noise=np.inf))
case(P + "sample_8gaussians", "hyper", "sigma", lambda: toys.sample_8gaussians(5, rng=R(), sigma=0.0))
case(P + "sample_pinwheel", "inf", "rate", lambda: toys.sample_pinwheel(5, rng=R(), rate=np.inf))
case(P + "sample_pinwheel", "hyper", "n_arms", lambda: toys.sample_pinwheel(5, rng=R(), n_arms=0))
case(P + "sample_checkerboard", "hyper", "n_side",
     lambda: toys.sample_checkerboard(5, rng=R(), n_side=3))
for fn in (toys.rings_log_normaliser, toys.sample_rings, toys.log_prob_rings):
    call = ((lambda r, fn=fn: fn(r, 0.1)) if fn is toys.rings_log_normaliser else
            (lambda r, fn=fn: fn(5, rng=R(), radii=r)) if fn is toys.sample_rings else
            (lambda r, fn=fn: fn(A(4, 2), radii=r)))
    arrays(P + fn.__name__, "radii", call, (3,), (3, 1))
    case(P + fn.__name__, "hyper", "radii", lambda c=call: c(np.array([1.0, -1.0])))
case(P + "rings_log_normaliser", "hyper", "sigma", lambda: toys.rings_log_normaliser([1.0], 0.0))
for fn in (toys.log_prob_rings, toys.log_prob_checkerboard, toys.log_prob_8gaussians):
    arrays(P + fn.__name__, "x", fn, (4, 2), (4, 3))
case(P + "log_prob_checkerboard", "hyper", "n_side", lambda: toys.log_prob_checkerboard(A(4, 2), 5))
case(P + "log_prob_8gaussians", "nan", "sigma",
     lambda: toys.log_prob_8gaussians(A(4, 2), sigma=np.nan))
case(P + "eight_gaussians_means", "hyper", "n_modes", lambda: toys.eight_gaussians_means(0))
case(P + "eight_gaussians_means", "nan", "radius", lambda: toys.eight_gaussians_means(8, np.nan))
case(P + "eight_gaussians_means", "inf", "radius", lambda: toys.eight_gaussians_means(8, np.inf))
case(P + "Toy", "type", "sampler", lambda: toys.Toy("t", 3, None, ((0, 1), (0, 1))))
case(P + "Toy", "type", "log_prob_fn",
     lambda: toys.Toy("t", toys.sample_two_moons, 3, ((0, 1), (0, 1))))
case(P + "Toy", "shape", "bounds", lambda: toys.Toy("t", toys.sample_two_moons, None, (0, 1)))
case(P + "Toy", "nan", "bounds",
     lambda: toys.Toy("t", toys.sample_two_moons, None, ((0, np.nan), (0, 1))))
case(P + "Toy", "type", "params",
     lambda: toys.Toy("t", toys.sample_two_moons, None, ((0, 1), (0, 1)), params=[1]))
case(P + "Toy.sample", "hyper", "n", lambda: toys.TOYS["rings"].sample(0, rng=R()))
case(P + "Toy.sample", "hyper", "rng", lambda: toys.TOYS["rings"].sample(5, rng="x"))
arrays(P + "Toy.log_prob", "x", toys.TOYS["8gaussians"].log_prob, (4, 2), (4, 3))
case("data.images.load_image_data", "hyper", "dataset", lambda: images.load_image_data("cifar"))
case("data.images.load_image_data", "type", "mnist_root", lambda: images.load_image_data("mnist"))
case("data.images.load_image_data", "hyper", "max_train",
     lambda: images.load_image_data(max_train=1))
case("data.images.central_indices", "hyper", "side", lambda: images.central_indices(1))
case("data.images.central_indices", "hyper", "size", lambda: images.central_indices(8, 8))

# -- metrics.field_stats ---------------------------------------------------------------------------
P = "metrics.field_stats."
case(P + "evaluate_power", "type", "power_fn", lambda: FS.evaluate_power(3, np.ones(2)))
case(P + "evaluate_power", "shape", "power_fn", lambda: FS.evaluate_power(lambda k: k[:1], np.ones(2)))
case(P + "evaluate_power", "nan", "power_fn", lambda: FS.evaluate_power(lambda k: k * np.nan, np.ones(2)))
case(P + "power_spectrum_bins", "hyper", "n_bins", lambda: FS.power_spectrum_bins(8, 1.0, 0))
case(P + "power_spectrum_bins", "hyper", "spacing", lambda: FS.power_spectrum_bins(8, 1.0, 4, "cubic"))
for fn in (FS.power_spectrum, FS.pixel_histogram, FS.peak_counts):
    arrays(P + fn.__name__, "field", fn, np.abs(A(2, 8, 8)), (2, 8, 7), empty=(0, 8, 8))
    case(P + fn.__name__, "shape", "field", lambda fn=fn: fn(A(8)))
arrays(P + "find_peaks", "field", FS.find_peaks, (2, 8, 8), (8,), empty=(0, 8, 8))
case(P + "find_peaks", "hyper", "size", lambda: FS.find_peaks(A(8, 8), size=4))
case(P + "peak_counts", "hyper", "size", lambda: FS.peak_counts(A(8, 8), size=1))
case(P + "power_spectrum", "hyper", "n_bins", lambda: FS.power_spectrum(A(8, 8), n_bins=0))
case(P + "power_spectrum", "hyper", "spacing", lambda: FS.power_spectrum(A(8, 8), spacing="x"))
case(P + "power_spectrum", "nan", "box_size", lambda: FS.power_spectrum(A(8, 8), box_size=np.nan))
case(P + "pixel_histogram", "hyper", "bins", lambda: FS.pixel_histogram(np.ones((8, 8)), bins=0))
case(P + "pixel_histogram", "nan", "bins",
     lambda: FS.pixel_histogram(np.ones((8, 8)), bins=np.array([0.0, np.nan, 1.0])))
case(P + "pixel_histogram", "shape", "bins",
     lambda: FS.pixel_histogram(np.ones((8, 8)), bins=np.ones((2, 2))))
case(P + "pixel_histogram", "nan", "range",
     lambda: FS.pixel_histogram(np.ones((8, 8)), range=(np.nan, 1.0)))
case(P + "pixel_histogram", "hyper", "range",
     lambda: FS.pixel_histogram(np.ones((8, 8)), range=(1.0, 0.0)))
case(P + "peak_counts", "hyper", "bins", lambda: FS.peak_counts(A(8, 8), bins=-3))
case(P + "peak_counts", "inf", "range", lambda: FS.peak_counts(A(8, 8), range=(0.0, np.inf)))
case(P + "wavenumber_grid", "hyper", "n_side", lambda: FS.wavenumber_grid(1))
case(P + "wavenumber_grid", "nan", "box_size", lambda: FS.wavenumber_grid(8, np.nan))
case(P + "wavenumber_grid", "inf", "box_size", lambda: FS.wavenumber_grid(8, np.inf))
case(P + "binned_power_spectrum", "type", "power_fn", lambda: FS.binned_power_spectrum(3, 8))
case(P + "binned_power_spectrum", "nan", "power_fn",
     lambda: FS.binned_power_spectrum(lambda k: np.nan * k, 8))
case(P + "binned_power_spectrum", "inf", "power_fn",
     lambda: FS.binned_power_spectrum(lambda k: np.inf * k, 8))
case(P + "binned_power_spectrum", "shape", "power_fn",
     lambda: FS.binned_power_spectrum(lambda k: k[:2], 8))
case(P + "binned_power_spectrum", "hyper", "n_fields",
     lambda: FS.binned_power_spectrum(_PL, 8, n_fields=0))
case(P + "binned_power_spectrum", "hyper", "n_bins",
     lambda: FS.binned_power_spectrum(_PL, 8, n_bins=0))

# -- models.gmm and kmeans -------------------------------------------------------------------------
P = "models.gmm."
_COV = {"full": np.broadcast_to(np.eye(2), (3, 2, 2)).copy(), "diag": np.ones((3, 2)),
        "spherical": np.ones(3)}
_BADSHAPE = {"full": (3, 2), "diag": (3, 2, 2), "spherical": (3, 2)}
_FIRST_ARG = {"precision_cholesky": "covariances", "covariance_cholesky": "covariances",
              "precision_cholesky_from_precisions": "precisions",
              "precisions_from_cholesky": "prec_chol"}
for fn in (G.precision_cholesky, G.precision_cholesky_from_precisions, G.covariance_cholesky,
           G.precisions_from_cholesky):
    for ct in ("full", "diag", "spherical"):
        arrays(P + fn.__name__, _FIRST_ARG[fn.__name__], lambda c, fn=fn, ct=ct: fn(c, ct),
               _COV[ct], _BADSHAPE[ct])
    case(P + fn.__name__, "hyper", "covariance_type", lambda fn=fn: fn(_COV["diag"], "tied"))
case(P + "precision_cholesky", "hyper", "covariances",
     lambda: G.precision_cholesky(-_COV["diag"], "diag"))
case(P + "covariance_cholesky", "hyper", "covariances",
     lambda: G.covariance_cholesky(-_COV["full"], "full"))
case(P + "n_parameters", "hyper", "n_components", lambda: G.n_parameters(0, 2, "full"))
case(P + "n_parameters", "nan", "n_features", lambda: G.n_parameters(2, np.nan, "full"))
case(P + "n_parameters", "hyper", "covariance_type", lambda: G.n_parameters(2, 2, "tied"))
_W3 = np.full(3, 1 / 3)
_UF = _COV["full"]
arrays(P + "log_gaussian_prob", "X", lambda X: G.log_gaussian_prob(X, A(3, 2), _UF, "full"), (6, 2),
       (6,))
arrays(P + "log_gaussian_prob", "means", lambda m: G.log_gaussian_prob(A(6, 2), m, _UF, "full"),
       (3, 2), (3, 3))
case(P + "log_gaussian_prob", "hyper", "covariance_type",
     lambda: G.log_gaussian_prob(A(6, 2), A(3, 2), _UF, "tied"))
arrays(P + "e_step", "X", lambda X: G.e_step(X, _W3, A(3, 2), _UF, "full"), (6, 2), (6,))
arrays(P + "e_step", "weights", lambda w: G.e_step(A(6, 2), w, A(3, 2), _UF, "full"), (3,), (4,))
case(P + "e_step", "hyper", "weights", lambda: G.e_step(A(6, 2), -_W3, A(3, 2), _UF, "full"))
case(P + "e_step", "hyper", "covariance_type", lambda: G.e_step(A(6, 2), _W3, A(3, 2), _UF, "x"))
_R3 = np.full((6, 3), 1 / 3)
arrays(P + "m_step", "X", lambda X: G.m_step(X, _R3, "full", 1e-6), (6, 2), (6,))
arrays(P + "m_step", "resp", lambda r: G.m_step(A(6, 2), r, "full", 1e-6), (6, 3), (5, 3))
case(P + "m_step", "hyper", "reg_covar", lambda: G.m_step(A(6, 2), _R3, "full", -1.0))
case(P + "m_step", "nan", "reg_covar", lambda: G.m_step(A(6, 2), _R3, "diag", np.nan))
case(P + "m_step", "hyper", "covariance_type", lambda: G.m_step(A(6, 2), _R3, "x", 1e-6))


def _em(**kw):
    args = dict(X=A(6, 2), weights=_W3, means=A(3, 2), prec_chol=_UF, covariance_type="full",
                reg_covar=1e-6, max_iter=5, tol=1e-3)
    return G.em(**{**args, **kw})


arrays(P + "em", "X", lambda X: _em(X=X), (6, 2), (6,))
arrays(P + "em", "means", lambda m: _em(means=m), (3, 2), (3, 3))
case(P + "em", "hyper", "max_iter", lambda: _em(max_iter=0))
case(P + "em", "nan", "tol", lambda: _em(tol=np.nan))
case(P + "em", "hyper", "reg_covar", lambda: _em(reg_covar=-1.0))
case(P + "em", "hyper", "covariance_type", lambda: _em(covariance_type="x"))
for init_params in ("kmeans", "random"):
    arrays(P + "initial_responsibilities", "X",
           lambda X, ip=init_params: G.initial_responsibilities(X, 2, ip, rng=R()), (6, 2), (6,))
case(P + "initial_responsibilities", "hyper", "init_params",
     lambda: G.initial_responsibilities(A(6, 2), 2, "kmeans+", rng=R()))
case(P + "initial_responsibilities", "hyper", "n_components",
     lambda: G.initial_responsibilities(A(6, 2), 7, "random", rng=R()))
case(P + "initial_responsibilities", "hyper", "kmeans_iter",
     lambda: G.initial_responsibilities(A(6, 2), 2, "kmeans", rng=R(), kmeans_iter=-1))
case(P + "initial_responsibilities", "hyper", "rng",
     lambda: G.initial_responsibilities(A(6, 2), 2, "random", rng="0"))


def _er(**kw):
    args = dict(X=A(6, 2), n_components=2, covariance_type="full", reg_covar=1e-6, max_iter=3,
                tol=1e-3, n_init=1, init_params="random", kmeans_iter=2, rng=R())
    return G.em_restarts(**{**args, **kw})


case(P + "em_restarts", "hyper", "n_init", lambda: _er(n_init=0))
case(P + "em_restarts", "hyper", "rng", lambda: _er(rng="0"))
case(P + "em_restarts", "hyper", "init_params", lambda: _er(init_params="kmeans+"))
case(P + "em_restarts", "hyper", "covariance_type", lambda: _er(covariance_type="tied"))


def _sm(**kw):
    args = dict(n=5, weights=_W3, means=A(3, 2), covariances=_COV["full"], covariance_type="full",
                rng=R())
    return G.sample_mixture(**{**args, **kw})


case(P + "sample_mixture", "hyper", "n", lambda: _sm(n=0))
arrays(P + "sample_mixture", "weights", lambda w: _sm(weights=w), (3,), (4,))
case(P + "sample_mixture", "hyper", "weights", lambda: _sm(weights=-_W3))
arrays(P + "sample_mixture", "means", lambda m: _sm(means=m), (3, 2), (3,))
arrays(P + "sample_mixture", "covariances", lambda c: _sm(covariances=c), _COV["full"], (3, 2))
case(P + "sample_mixture", "hyper", "rng", lambda: _sm(rng="1"))
case(P + "sample_mixture", "hyper", "covariance_type", lambda: _sm(covariance_type="x"))

GM = G.GaussianMixture
for arg, bad in (("n_components", 0), ("covariance_type", "tied"), ("tol", -1.0),
                 ("reg_covar", np.inf), ("max_iter", 0), ("n_init", 0), ("init_params", "x"),
                 ("kmeans_iter", -1)):
    case(P + "GaussianMixture", "inf" if bad is np.inf else "hyper", arg,
         lambda arg=arg, bad=bad: GM(**{arg: bad}))
case(P + "GaussianMixture", "nan", "tol", lambda: GM(tol=np.nan))
_XG = np.concatenate([A(10, 2), A(10, 2) + 5.0])
# fit's X and rng, log_prob/score_samples's X, sample's n and rng: the density-model battery
case(P + "GaussianMixture.fit", "hyper", "n_components", lambda: GM(30).fit(_XG, rng=R()))
case(P + "GaussianMixture.fit", "shape", "weights_init",
     lambda: GM(2, weights_init=_W3).fit(_XG, rng=R()))
case(P + "GaussianMixture.fit", "nan", "means_init",
     lambda: GM(2, means_init=NAN(2, 2)).fit(_XG, rng=R()))
case(P + "GaussianMixture.fit", "hyper", "precisions_init",
     lambda: GM(2, covariance_type="diag", precisions_init=-np.ones((2, 2))).fit(_XG, rng=R()))
_GM_FITTED = GM(2, max_iter=5).fit(_XG, rng=R())
for meth in ("score", "predict_proba", "predict", "bic", "aic"):
    arrays(P + "GaussianMixture." + meth, "X", getattr(_GM_FITTED, meth), (4, 2), (4, 3))
case(P + "GaussianMixture.sample", "hyper", "n", lambda: _GM_FITTED.sample(0, rng=R()))

P = "models.kmeans."
arrays(P + "squared_distances", "X", lambda X: KM.squared_distances(X, A(3, 2)), (6, 2), (6,))
arrays(P + "squared_distances", "centers",
       lambda c: KM.squared_distances(A(6, 2), c), (3, 2), (3, 3))
arrays(P + "kmeans_plusplus", "X", lambda X: KM.kmeans_plusplus(X, 2, rng=R()), (6, 2), (6,))
case(P + "kmeans_plusplus", "hyper", "n_clusters", lambda: KM.kmeans_plusplus(A(6, 2), 7, rng=R()))
case(P + "kmeans_plusplus", "hyper", "n_local_trials",
     lambda: KM.kmeans_plusplus(A(6, 2), 2, rng=R(), n_local_trials=0))
case(P + "kmeans_plusplus", "hyper", "rng", lambda: KM.kmeans_plusplus(A(6, 2), 2, rng="x"))
arrays(P + "lloyd", "X", lambda X: KM.lloyd(X, A(2, 2)), (6, 2), (6,))
arrays(P + "lloyd", "centers", lambda c: KM.lloyd(A(6, 2), c), (2, 2), (2, 3))
case(P + "lloyd", "hyper", "max_iter", lambda: KM.lloyd(A(6, 2), A(2, 2), max_iter=-1))

# -- tour and cli ----------------------------------------------------------------------------------
P = "tour."
case(P + "discover_sections", "hyper", "only", lambda: tour.discover_sections(["no_such_section"]))
case(P + "discover_sections", "type", "only", lambda: tour.discover_sections(3))
for fn in (tour.build_tour, tour.run_tour):
    case(P + fn.__name__, "hyper", "seed", lambda fn=fn: fn("out", seed=-1, only=["grf"]))
    case(P + fn.__name__, "type", "seed", lambda fn=fn: fn("out", seed="0", only=["grf"]))
    case(P + fn.__name__, "hyper", "only", lambda fn=fn: fn("out", only=["nope"], progress=False))
    case(P + fn.__name__, "type", "outdir", lambda fn=fn: fn(None, only=["grf"], progress=False))
P = "tour.report."
case(P + "Report", "type", "outdir", lambda: REP.Report(None))
case(P + "Report", "hyper", "seed", lambda: REP.Report("out", seed=-1))
case(P + "Report", "nan", "seed", lambda: REP.Report("out", seed=np.nan))


def _rep():
    r = REP.Report("out")
    r.begin("s", "S")
    return r


case(P + "Report.begin", "type", "key", lambda: REP.Report("out").begin(3, "t"))
case(P + "Report.begin", "type", "title", lambda: REP.Report("out").begin("k", None))
case(P + "Report.fail", "type", "trace", lambda: _rep().fail("s", None))
case(P + "Report.rng", "type", "name", lambda: _rep().rng(3))
case(P + "Report.text", "type", "paragraph", lambda: _rep().text(None))
case(P + "Report.html", "type", "fragment", lambda: _rep().html(3))
case(P + "Report.table", "shape", "rows", lambda: _rep().table(["a", "b"], [[1, 2], [3]]))
case(P + "Report.table", "empty", "header", lambda: _rep().table([], [[1]]))
case(P + "Report.table", "hyper", "status_col", lambda: _rep().table(["a"], [[True]], status_col=3))
case(P + "Report.figure", "type", "fig", lambda: _rep().figure("abc", "f"))
case(P + "Report.check", "type", "name", lambda: _rep().check(3, 1.0, "x < 2", True))
case(P + "Report.check", "type", "rule", lambda: _rep().check("x", 1.0, None, True))
case(P + "Report.check", "type", "passed", lambda: _rep().check("x", 1.0, "x < 2", "yes"))
case(P + "Report.write", "nan", "total_seconds", lambda: _rep().write(np.nan))
case(P + "Report.write", "hyper", "total_seconds", lambda: _rep().write(-1.0))
P = "tour.gradchecks."
for fn in (TG.layer_cases, TG.loss_cases, TG.bijector_cases, TG.kernel_cases):
    case(P + fn.__name__, "hyper", "rng", lambda fn=fn: fn(rng="0"))
case(P + "run_gradchecks", "hyper", "groups", lambda: TG.run_gradchecks(("layers", "nope")))
case(P + "run_gradchecks", "type", "groups", lambda: TG.run_gradchecks("layers"))
case(P + "run_gradchecks", "empty", "groups", lambda: TG.run_gradchecks(()))
case(P + "run_gradchecks", "hyper", "seed", lambda: TG.run_gradchecks(seed=-1))
case(P + "run_gradchecks", "hyper", "rng", lambda: TG.run_gradchecks(rng="3"))
case(P + "run_gradchecks", "nan", "rtol", lambda: TG.run_gradchecks(rtol=np.nan))
for fn in (TG.run_all_layer_checks, TG.planted_bug_checks):
    case(P + fn.__name__, "hyper", "seed", lambda fn=fn: fn(-1))
    case(P + fn.__name__, "nan", "seed", lambda fn=fn: fn(np.nan))
    case(P + fn.__name__, "hyper", "rng", lambda fn=fn: fn(rng="3"))
    case(P + fn.__name__, "nan", "rtol", lambda fn=fn: fn(rtol=np.nan))
    case(P + fn.__name__, "hyper", "rtol", lambda fn=fn: fn(rtol=0.0))

# -- the tests (the coverage guard over every public callable: tests/test_contracts.py) ----------
@pytest.mark.parametrize("path, kind, arg, thunk", [
    pytest.param(*c, id=f"{c[0]}-{c[1]}-{c[2]}") for c in CASES])
def test_bad_input_raises_value_error_naming_the_argument(path, kind, arg, thunk, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    if kind == "array":          # the derived array-argument contract (several sub-checks)
        thunk()
        return
    with pytest.raises(ValueError, match=rf"^{re.escape(arg)}\b"):
        thunk()


def test_cli_reports_bad_seed_as_usage_error(capsys):
    """``nprefgen gradcheck --seed -1`` is a usage error (exit 2), not a traceback."""
    assert cli.main(["gradcheck", "--seed", "-1"]) == 2
    assert "seed" in capsys.readouterr().err
