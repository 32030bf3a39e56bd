"""MADE's training path (``_forward`` / ``_backward``, issue 12 performance): each masked weight
M * W formed once per pass and kept for the backward, tanh in place, the tanh VJP fused with the
bias gradient below it and the layer's masked weight and bias gradients
(nprefgen/kernels/masked_layer.py). Checked against the layer-by-layer
Sequential path (``forward`` / ``backward``), bit for bit: output, d_x, d_context, every
parameter gradient, the input VJP; the dot-product test in float64; a planted bug caught."""
from __future__ import annotations

import numpy as np
import pytest

import nprefgen.flows.made as made_mod
from nprefgen.flows.made import MADE, _MADECache
from nprefgen.kernels.masked_layer import masked_tanh_backward_numpy
from nprefgen.testing.gradcheck import check_vjp

CASES = [dict(hidden=[7, 5], context_dim=2, activation="tanh"),
         dict(hidden=[6], context_dim=0, activation="tanh"),
         dict(hidden=[6, 6], context_dim=3, activation="relu"),
         dict(hidden=[8, 4, 6], context_dim=1, activation="softplus"),
         dict(hidden=[], context_dim=2, activation="tanh")]


def _made(case, dtype=np.float64):
    m = MADE(3, case["hidden"], rng=0, context_dim=case["context_dim"],
             activation=case["activation"], zero_init=False)
    return m.astype(dtype)


def _inputs(rng, case, n=9, dtype=np.float64):
    x = rng.standard_normal((n, 3)).astype(dtype)
    c = rng.standard_normal((n, case["context_dim"])).astype(dtype) if case["context_dim"] else None
    return x, c, rng.standard_normal((n, 6)).astype(dtype)


def _grads(m):
    """Every layer's parameter gradients, copied: {"<layer>.<name>": array}."""
    return {f"{i}.{name}": g.copy() for i, layer in enumerate(m.net.layers)
            for name, g in getattr(layer, "grads", {}).items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['activation']}-{c['hidden']}-c{c['context_dim']}")
def test_training_path_equals_layer_path_bit_for_bit(rng, case, dtype):
    m = _made(case, dtype)
    x, c, d_out = _inputs(rng, case, dtype=dtype)
    out_ref, cache_ref = m.forward(x, c)
    m.zero_grad()
    dx_ref, dc_ref = m.backward(cache_ref, d_out)
    g_ref = _grads(m)
    vjp_ref = m.input_vjp(cache_ref, d_out)
    out, cache = m._forward(x, c)
    assert isinstance(cache, _MADECache) and out.dtype == dtype
    m.zero_grad()
    dx, dc = m._backward(cache, d_out)
    g = _grads(m)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    if c is None:
        assert dc is None and dc_ref is None
    else:
        np.testing.assert_array_equal(dc, dc_ref)
    assert g.keys() == g_ref.keys() and g
    for k in g:
        np.testing.assert_array_equal(g[k], g_ref[k], err_msg=k)
    for a, b in zip(m.input_vjp(cache, d_out), vjp_ref):
        np.testing.assert_array_equal(a, b)
    m.zero_grad()                                  # the public backward takes either cache
    for a, b in zip(m.backward(cache, d_out), (dx_ref, dc_ref)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="d_out"):
        m.backward(cache, d_out[:, :5])


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[3]],
                         ids=lambda c: f"{c['activation']}-{c['hidden']}")
def test_dot_product_test_of_the_training_path(rng, case):
    """(NN.18) the training path's d_x and its weight gradient against finite differences
    (smooth activations: ReLU's kink defeats the central difference)."""
    m = _made(case)
    x, c, _ = _inputs(rng, case)

    def vjp_x(v):
        m.zero_grad()
        return m._backward(m._forward(x, c)[1], v)[0]

    check_vjp(lambda xx: m._forward(xx, c)[0], vjp_x, x, rng=rng)
    lin = m.masked_layers()[0]
    w0 = lin.params["weight"].copy()

    def f_w(w):
        lin.params["weight"][...] = w
        try:
            return m._forward(x, c)[0]
        finally:
            lin.params["weight"][...] = w0

    def vjp_w(v):
        m.zero_grad()
        m._backward(m._forward(x, c)[1], v)
        return lin.grads["weight"].copy()

    check_vjp(f_w, vjp_w, w0, rng=rng)


def test_planted_bug_in_the_fused_kernel_is_caught(rng, monkeypatch):
    """A kernel whose bias gradient sums all rows but the last changes the gradients: the
    bit-for-bit comparison above fails on it."""
    case = CASES[0]
    m = _made(case)
    x, c, d_out = _inputs(rng, case)
    m.zero_grad()
    m.backward(m.forward(x, c)[1], d_out)
    g_ref = _grads(m)

    def stale(g_w, d_w, mask, g_b, d_b, y, d_h):
        d_a, _ = masked_tanh_backward_numpy(g_w, d_w, mask, g_b, d_b, y, d_h)
        return d_a, d_a[:-1].sum(axis=0)

    monkeypatch.setattr(made_mod, "masked_tanh_backward", stale)
    m.zero_grad()
    m._backward(m._forward(x, c)[1], d_out)
    g = _grads(m)
    assert any(not np.array_equal(g[k], g_ref[k]) for k in g)
