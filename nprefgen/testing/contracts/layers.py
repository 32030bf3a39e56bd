"""The layer contract (DESIGN.md "Layers"): ``y, cache = layer.forward(x)``; ``d_x =
layer.backward(cache, d_y)`` accumulates into ``layer.grads``; no per-call state; (NN.18)."""
from __future__ import annotations

from typing import Callable, Iterator

import copy

import numpy as np

from nprefgen._validation import check_array, check_rng
from nprefgen.testing.contracts.base import (
    FLOAT32_RTOL, _REGISTRY, _bad, _check, _close, _grads, _run, _same, expect_value_error,
)
from nprefgen.testing.gradcheck import layer_vjp_errors


# ================================================================================================
# layers: y, cache = layer.forward(x); d_x = layer.backward(cache, d_y)
# ================================================================================================
class _LayerCase:
    def __init__(self, layer, x, rng):
        lacking = [a for a in ("forward", "backward", "named_parameters", "zero_grad")
                   if not callable(getattr(layer, a, None))]
        if lacking:
            raise ValueError(f"layer: expected an object with the nprefgen.nn.Module contract, got "
                             f"{type(layer).__name__} without {lacking}")
        if x is None:
            d = getattr(layer, "in_features", None)
            if d is None:
                raise ValueError(f"x: {type(layer).__name__} has no in_features; pass an input x")
            x = np.random.default_rng(0).standard_normal((4, int(d)))
        self.layer, self.x = layer, check_array(x, "x", dtype=np.float64)
        self.seed = int(check_rng(rng).integers(2**32))

    def rng(self, k: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, k])

    def cotangent(self, k: int = 0):
        y, _ = self.layer.forward(self.x)
        return self.rng(k).standard_normal(np.shape(y))


@_check("layer", "forward_returns_output_and_cache")
def _layer_forward(c: _LayerCase):
    out = c.layer.forward(c.x)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise AssertionError(f"forward: expected (y, cache), got {type(out).__name__}")
    y = out[0]
    if not isinstance(y, np.ndarray) or y.shape[:1] != c.x.shape[:1] or not np.all(np.isfinite(y)):
        raise AssertionError(f"forward: expected a finite array with {c.x.shape[0]} rows, got "
                             f"{getattr(y, 'shape', type(y).__name__)}")
    d_x = c.layer.backward(out[1], c.rng().standard_normal(y.shape))
    c.layer.zero_grad()
    if np.shape(d_x) != c.x.shape:
        raise AssertionError(f"backward: expected d_x of shape {c.x.shape}, got {np.shape(d_x)}")


@_check("layer", "deterministic_and_input_untouched")
def _layer_deterministic(c: _LayerCase):
    x = c.x.copy()
    y1, cache = c.layer.forward(x)
    y2, _ = c.layer.forward(x)
    _same(y1, y2, "forward twice")
    c.layer.backward(cache, c.cotangent())
    c.layer.zero_grad()
    _same(x, c.x, "the input after forward and backward")


@_check("layer", "no_per_call_state")
def _layer_no_state(c: _LayerCase):
    """Two forwards, then the first one's backward == a lone forward-backward (siamese use)."""
    v = c.cotangent()
    x2 = c.x + c.rng(1).standard_normal(c.x.shape)
    c.layer.zero_grad()
    y1, cache1 = c.layer.forward(c.x)
    y_keep = y1.copy()
    c.layer.forward(x2)
    _same(y1, y_keep, "the first output after a second forward")
    d1 = c.layer.backward(cache1, v)
    g1 = _grads(c.layer)
    c.layer.zero_grad()
    _, cache = c.layer.forward(c.x)
    d0 = c.layer.backward(cache, v)
    g0 = _grads(c.layer)
    c.layer.zero_grad()
    _same(d1, d0, "d_x of the first call after a second forward")
    for name in g0:
        _same(g1[name], g0[name], f"grads[{name!r}] of the first call after a second forward")


@_check("layer", "gradients_accumulate")
def _layer_accumulate(c: _LayerCase):
    c.layer.zero_grad()
    _, cache = c.layer.forward(c.x)
    v = c.cotangent()
    c.layer.backward(cache, v)
    g1 = _grads(c.layer)
    c.layer.backward(cache, v)
    for name, g in _grads(c.layer).items():
        _close(g, 2.0 * g1[name], 1e-14, f"grads[{name!r}] after two backward calls (expected twice one)")
    c.layer.zero_grad()
    for name, g in _grads(c.layer).items():
        if np.any(g != 0):
            raise AssertionError(f"zero_grad: grads[{name!r}] is not zero")


@_check("layer", "backward_dot_product")
def _layer_dot(c: _LayerCase):
    bad = [str(r) for r in layer_vjp_errors(c.layer, c.x, rng=c.rng(2)) if not r.ok]
    if bad:
        raise AssertionError("(NN.18) " + "; ".join(bad))


@_check("layer", "bad_input_x")
def _layer_bad_x(c: _LayerCase):
    for kind in ("nan", "inf", "empty"):
        expect_value_error(lambda: c.layer.forward(_bad(c.x, kind)), "x", f"forward({kind} x)")
    # a layer that declares its input size (in_features: the last axis; in_channels: axis 1 of
    # (n, c, h, w)) refuses any other size and any other number of dimensions; for the others
    # (elementwise layers) any shape is part of the contract, or refused with a ValueError
    shape = list(c.x.shape)
    axis = -1 if hasattr(c.layer, "in_features") else 1 if hasattr(c.layer, "in_channels") else None
    shape[-1 if axis is None else axis] += 1
    wide = c.rng(3).standard_normal(shape)
    for bad, what in ((wide, "x with a wrong input size"), (c.x[0], "x without its batch axis")):
        if axis is None:
            try:
                c.layer.forward(bad)
                continue
            except Exception:   # noqa: BLE001
                pass
        expect_value_error(lambda: c.layer.forward(bad), "x", f"forward({what})")
    expect_value_error(lambda: c.layer.forward("abc"), "x", "forward(a string)")


@_check("layer", "bad_cotangent")
def _layer_bad_dy(c: _LayerCase):
    y, cache = c.layer.forward(c.x)
    v = c.rng().standard_normal(y.shape)
    for kind in ("nan", "inf"):
        expect_value_error(lambda: c.layer.backward(cache, _bad(v, kind)), "d_y", f"backward({kind} d_y)")
    wrong = c.rng().standard_normal(y.shape[:-1] + (y.shape[-1] + 1,))
    expect_value_error(lambda: c.layer.backward(cache, wrong), "d_y", "backward(d_y of the wrong shape)")
    c.layer.zero_grad()


@_check("layer", "float32_accepted")
def _layer_float32(c: _LayerCase):
    x32 = c.x.astype(np.float32)
    y64, _ = c.layer.forward(x32.astype(np.float64))
    y, _ = c.layer.forward(x32)
    _close(y, y64, FLOAT32_RTOL, "forward(float32 x) against forward(float64 x)")
    if callable(getattr(c.layer, "astype", None)):
        layer32 = copy.deepcopy(c.layer).astype(np.float32)
        y32, cache = layer32.forward(x32)
        if y32.dtype != np.float32:
            raise AssertionError(f"astype(float32).forward(float32 x): expected float32, got {y32.dtype}")
        _close(y32, y64, FLOAT32_RTOL, "a float32 layer against float64")
        d_x = layer32.backward(cache, np.ones_like(y32))
        if np.asarray(d_x).dtype != np.float32:
            raise AssertionError(f"a float32 layer's backward: expected float32 d_x, got "
                                 f"{np.asarray(d_x).dtype}")


def layer_checks(layer, x=None, *, rng=None) -> Iterator[tuple[str, Callable[[], None]]]:
    """The layer battery as ``(name, thunk)`` pairs. layer: a float64 ``nprefgen.nn.Module`` (or
    any object with forward/backward/named_parameters/zero_grad); x: (n, ...) float64 input in the
    layer's smooth region (default: standard normal (4, in_features))."""
    case = _LayerCase(layer, x, rng)
    for name, fn in _REGISTRY["layer"].items():
        yield name, (lambda fn=fn: fn(case))


def check_layer(layer, x=None, *, rng=None) -> list[str]:
    """Run :func:`layer_checks`; raise AssertionError naming every failed sub-check, else return
    the names of the passed ones."""
    return _run("layer", layer_checks(layer, x, rng=rng), type(layer).__name__)
