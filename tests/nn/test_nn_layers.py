"""Linear (NN.1-NN.2c), MaskedLinear (NN.3), activations (NN.4-NN.9), Sequential/MLP (NN.10),
Flatten, Reshape: dot-product gradient tests, caught bugs, siamese accumulation, float32, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.nn import (
    ELU, MLP, Conv2d, Flatten, Identity, LeakyReLU, Linear, MaskedLinear, ReLU, Reshape, Sequential,
    Sigmoid, Softplus, Tanh, sigmoid,
)
from nprefgen.testing import check_layer, layer_vjp_errors
from nprefgen.testing.strategies import arrays_for, batch_shapes, mlp_configs, seeds

RTOL = 1e-8


def _max_error(layer, x, rng):
    """Largest relative error of the dot-product tests; exactly-zero Jacobians (a fully masked
    weight) are judged by the round-off bound instead and count as 0."""
    results = layer_vjp_errors(layer, x, rng=rng)
    return max(0.0 if r.ok and r.rel_error > r.rtol else r.rel_error for r in results), results


@given(batch_shapes(), st.integers(1, 6), st.booleans(), st.sampled_from(["torch", "xavier", "kaiming"]),
       seeds())
def test_linear_vjp(shape, d_out, bias, init, seed):
    """(NN.2a) d_x, (NN.2b) d_W, (NN.2c) d_b pass the dot-product test; forward is (NN.1)."""
    rng = np.random.default_rng(seed)
    n, d_in = shape
    layer = Linear(d_in, d_out, rng=rng, bias=bias, init=init)
    x = rng.standard_normal(shape)
    err, results = _max_error(layer, x, rng)
    assert err <= RTOL, [str(r) for r in results]
    expect = x @ layer.params["weight"].T + (layer.params["bias"] if bias else 0.0)
    np.testing.assert_allclose(layer(x), expect, rtol=1e-14)


@given(batch_shapes(), st.integers(1, 6), seeds())
def test_masked_linear_vjp_and_mask(shape, d_out, seed):
    """(NN.3) the masked layer passes the dot-product test, and masked weights get zero gradient."""
    rng = np.random.default_rng(seed)
    n, d_in = shape
    mask = (rng.uniform(size=(d_out, d_in)) < 0.5).astype(float)
    layer = MaskedLinear(d_in, d_out, mask, rng=rng)
    x = rng.standard_normal(shape)
    err, results = _max_error(layer, x, rng)
    assert err <= RTOL, [str(r) for r in results]
    np.testing.assert_allclose(layer(x), x @ (mask * layer.params["weight"]).T + layer.params["bias"],
                               rtol=1e-13, atol=1e-14)
    y, cache = layer.forward(x)
    layer.backward(cache, rng.standard_normal(y.shape))
    assert np.all(layer.grads["weight"][mask == 0] == 0.0)


ACTS = [ReLU(), LeakyReLU(0.2), Tanh(), Sigmoid(), Softplus(), ELU(), ELU(alpha=0.7), Identity()]


@pytest.mark.parametrize("act", ACTS, ids=lambda a: f"{type(a).__name__}{getattr(a, 'alpha', '')}")
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple), st.data())
def test_activation_vjp(act, shape, data):
    """(NN.4) ReLU, (NN.5) LeakyReLU, (NN.6) Tanh, (NN.7) Sigmoid, (NN.8) Softplus, (NN.9) ELU:
    d_x = d_y * phi'(x) passes the dot-product test, inputs kept 0.1 away from the kinks."""
    x = data.draw(arrays_for(shape, scale=2.0, away_from_zero=0.1))
    err, results = _max_error(act, x, np.random.default_rng(data.draw(seeds())))
    assert err <= RTOL, [str(r) for r in results]


def test_activation_values():
    """(NN.4)-(NN.9) on hand-computed values, and no overflow in (NN.7)/(NN.8) at |x| = 800."""
    x = np.array([-800.0, -2.0, -0.5, 0.5, 2.0, 800.0])
    np.testing.assert_array_equal(ReLU()(x), [0, 0, 0, 0.5, 2, 800])
    np.testing.assert_allclose(LeakyReLU(0.1)(x), [-80, -0.2, -0.05, 0.5, 2, 800], rtol=1e-15)
    np.testing.assert_allclose(Tanh()(x), np.tanh(x), rtol=1e-15)
    np.testing.assert_allclose(Sigmoid()(x[1:-1]), 1 / (1 + np.exp(-x[1:-1])), rtol=1e-15)
    np.testing.assert_allclose(sigmoid(x[[0, -1]]), [0.0, 1.0], atol=1e-300)
    np.testing.assert_allclose(Softplus()(x), [0.0, *np.log1p(np.exp(x[1:-1])), 800.0], rtol=1e-15)
    np.testing.assert_allclose(ELU(0.5)(x), [-0.5, *(0.5 * np.expm1(x[1:3])), 0.5, 2, 800], rtol=1e-15)
    for act in ACTS:
        y, cache = act.forward(x)
        d_x = act.backward(cache, np.ones_like(x))
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(d_x))


class _BadTanh(Tanh):
    """A plausible bug: 1 - y instead of 1 - y^2."""

    def _derivative(self, x, y):
        return 1.0 - y


class _BadSigmoid(Sigmoid):
    """A plausible bug: sigmoid' written as sigmoid."""

    def _derivative(self, x, y):
        return y


def test_wrong_activation_derivative_is_caught(rng):
    """(NN.6) and (NN.7) with a wrong derivative fail the dot-product test by a wide margin."""
    x = rng.standard_normal((4, 3))
    for bad in (_BadTanh(), _BadSigmoid()):
        with pytest.raises(AssertionError, match="dot-product test failed"):
            check_layer(bad, x, rng=rng)
        assert _max_error(bad, x, rng)[0] > 1e-2


class _TransposedGradLinear(Linear):
    """A plausible bug: d_W = x^T d_y (the transpose of (NN.2b)), only shape-compatible if square."""

    def _accumulate_weight_grad(self, d_W):
        self.grads["weight"] += d_W.T


class _MisScaledGradLinear(Linear):
    """A plausible bug: the weight gradient averaged over the batch inside the layer."""

    def _accumulate_weight_grad(self, d_W):
        self.grads["weight"] += d_W / 4.0


def test_broken_linear_backwards_are_caught(rng):
    """Violations of (NN.2b) are caught on the weight and only there."""
    x = rng.standard_normal((4, 3))
    check_layer(Linear(3, 3, rng=np.random.default_rng(0)), x, rng=rng)
    for bad in (_TransposedGradLinear(3, 3, rng=np.random.default_rng(0)),
                _MisScaledGradLinear(3, 3, rng=np.random.default_rng(0))):
        with pytest.raises(AssertionError, match="weight"):
            check_layer(bad, x, rng=rng)
        errors = {r.name: r.rel_error for r in layer_vjp_errors(bad, x, rng=rng)}
        assert errors["weight"] > 1e-2 and errors["input"] <= RTOL and errors["bias"] <= RTOL


@given(mlp_configs(), st.integers(1, 5), seeds())
def test_mlp_vjp(cfg, n, seed):
    """(NN.10) the chain rule through Sequential: input and every parameter pass the test."""
    rng = np.random.default_rng(seed)
    net = MLP(cfg["in_features"], cfg["hidden"], cfg["out_features"], rng=rng,
              activation=cfg["activation"])
    assert [name for name, _, _ in net.named_parameters()][:2] == ["0.weight", "0.bias"]
    x = rng.standard_normal((n, cfg["in_features"]))
    err, results = _max_error(net, x, rng)
    assert len(results) == 1 + 2 * (len(cfg["hidden"]) + 1)
    assert err <= RTOL, [str(r) for r in results]


def test_relu_mlp_and_reshape_flatten_vjp(rng):
    """(NN.10) through ReLU/LeakyReLU MLPs and a conv net with Reshape/Flatten. Kinks avoided: every
    pre-activation is checked to be > 0.015 from 0, while the stencil moves it by ~2h |W u| < 0.01."""
    for act in ("relu", "leaky_relu"):
        for seed in range(100):      # the first draw whose pre-activations all clear the kink
            r = np.random.default_rng(seed)
            net = MLP(3, [5, 4], 2, rng=r, activation=act)
            x = r.standard_normal((4, 3))
            if min(np.abs(h).min() for h in _preactivations(net, x)) > 0.015:
                break
        else:
            raise AssertionError("no kink-free draw found")
        check_layer(net, x, rng=rng)
    net = Sequential(Linear(4, 2 * 3 * 3, rng=rng), Reshape(2, 3, 3), Conv2d(2, 3, 2, rng=rng),
                     Tanh(), Flatten(), Linear(12, 2, rng=rng))
    check_layer(net, rng.standard_normal((3, 4)), rng=rng)
    check_layer(Flatten(), rng.standard_normal((2, 3, 2, 2)), rng=rng)
    check_layer(Reshape(3, 2), rng.standard_normal((2, 6)), rng=rng)


@given(st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple), seeds())
def test_flatten_reshape_vjp(shape, seed):
    """Flatten and Reshape (pure reindexing) pass the dot-product test for drawn shapes and
    round-trip each other."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    flat, cache = Flatten().forward(x)
    assert flat.shape == (shape[0], int(np.prod(shape[1:])))
    assert all(r.ok for r in layer_vjp_errors(Flatten(), x, rng=rng))
    back = Reshape(*shape[1:])
    np.testing.assert_array_equal(back(flat), x)
    assert all(r.ok for r in layer_vjp_errors(back, flat, rng=rng))


def _preactivations(net, x):
    out = []
    for layer in net.layers:
        x = layer(x)
        if isinstance(layer, Linear):
            out.append(x)
    return out[:-1]


def test_siamese_accumulates_sum_of_two_passes(rng):
    """(NN.10) one network applied twice: two backwards with interleaved caches give exactly the
    sum of two separate passes; caches from interleaved forwards stay valid (no per-call state)."""
    net = Sequential(Conv2d(1, 2, 3, padding=1, rng=rng), Tanh(), Flatten(), Linear(2 * 16, 3, rng=rng),
                     ELU())
    x1, x2 = rng.standard_normal((2, 5, 1, 4, 4))
    d1, d2 = rng.standard_normal((2, 5, 3))
    # interleaved: forward 1, forward 2, backward 1, backward 2
    y1, c1 = net.forward(x1)
    y2, c2 = net.forward(x2)
    net.zero_grad()
    dx1 = net.backward(c1, d1)
    dx2 = net.backward(c2, d2)
    together = {name: g.copy() for name, _, g in net.named_parameters()}
    separate = {}
    for x, d, dx in ((x1, d1, dx1), (x2, d2, dx2)):
        net.zero_grad()
        y, c = net.forward(x)
        np.testing.assert_array_equal(net.backward(c, d), dx)
        for name, _, g in net.named_parameters():
            separate[name] = separate.get(name, 0.0) + g
    for name in together:
        np.testing.assert_allclose(together[name], separate[name], rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(y1, net(x1))          # the cache of the first call was not touched


def test_float32_close_to_float64(rng):
    """float32 parameters and inputs stay float32 through forward and backward."""
    x = rng.standard_normal((5, 4))
    n64 = MLP(4, [8, 8], 3, rng=np.random.default_rng(3), activation="softplus")
    n32 = MLP(4, [8, 8], 3, rng=np.random.default_rng(3), activation="softplus", dtype=np.float32)
    y64, c64 = n64.forward(x)
    y32, c32 = n32.forward(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)
    d = rng.standard_normal(y64.shape)
    d_x32 = n32.backward(c32, d.astype(np.float32))
    assert d_x32.dtype == np.float32 and all(g.dtype == np.float32 for _, _, g in n32.named_parameters())
    np.testing.assert_allclose(d_x32, n64.backward(c64, d), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="float64"):
        layer_vjp_errors(n32, x, rng=rng)
    n16 = MLP(4, [8], 3, rng=np.random.default_rng(3)).astype(np.float32)
    assert all(p.dtype == np.float32 for _, p, _ in n16.named_parameters())
    masked = MaskedLinear(3, 2, np.tril(np.ones((2, 3))), rng=rng).astype(np.float32)
    y, cache = masked.forward(np.ones((2, 3), dtype=np.float32))
    assert y.dtype == np.float32 and masked.backward(cache, np.ones((2, 2), np.float32)).dtype == np.float32
    # integer input to the public helpers is promoted, not truncated
    np.testing.assert_allclose(sigmoid(np.array([0, 1])), [0.5, 1 / (1 + np.exp(-1.0))], rtol=1e-15)


def test_bad_inputs_raise(rng):
    lin = Linear(3, 2, rng=rng)
    with pytest.raises(ValueError, match="x: Linear expected 3 features on axis 1"):
        lin.forward(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="x: expected finite values"):
        lin.forward(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="x: expected 2 dimensions"):
        lin.forward(np.zeros(3))
    y, cache = lin.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"d_y: expected shape \(4, 2\)"):
        lin.backward(cache, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="in_features"):
        Linear(0, 2, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        Linear(3, 2, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="init"):
        Linear(3, 2, rng=rng, init="ones")
    with pytest.raises(ValueError, match="mask"):
        MaskedLinear(3, 2, np.full((2, 3), 0.5), rng=rng)
    with pytest.raises(ValueError, match="mask"):
        MaskedLinear(3, 2, np.ones((3, 2)), rng=rng)
    with pytest.raises(ValueError, match="negative_slope"):
        LeakyReLU(-0.1)
    with pytest.raises(ValueError, match="alpha"):
        ELU(float("nan"))
    with pytest.raises(ValueError, match="activation"):
        MLP(2, [3], 1, rng=rng, activation="swish")
    with pytest.raises(ValueError, match="hidden"):
        MLP(2, [0], 1, rng=rng)
    with pytest.raises(ValueError, match="layers"):
        Sequential()
    with pytest.raises(ValueError, match="x: expected 6 values"):
        Reshape(2, 3).forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="d_y"):
        Tanh().backward(Tanh().forward(np.zeros((2, 2)))[1], np.zeros((2, 3)))
