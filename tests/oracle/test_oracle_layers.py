"""Every nn layer (the catalogue of nprefgen/tour/gradchecks.py: Linear, MaskedLinear, every
activation, MLP, Flatten, Reshape, Conv2d, ConvTranspose2d and a conv autoencoder) against
torch.autograd and jax.grad with identical weights: the output (NN.1, NN.3, NN.21, NN.27) and
the VJP of <v, y> w.r.t. the input and every parameter (NN.2a-c, NN.24, NN.28), float64, <= 1e-10
relative."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.tour.gradchecks import layer_cases
from oracle_backends import assert_rel
from oracle_formulas import layer

pytestmark = pytest.mark.oracle

CASES = layer_cases(rng=0)


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0] for c in CASES])
def test_layer_value_and_vjp(case, backend, rng):
    desc, mod, x = CASES[case]
    y, cache = mod.forward(x)
    v = rng.standard_normal(y.shape)
    mod.zero_grad()
    d_x = mod.backward(cache, v)
    params = {name: p.copy() for name, p, _ in mod.named_parameters()}

    def loss(d):
        return backend.sum(layer(backend, mod, d, "", d["x"]) * backend.asarray(v))

    value, grads = backend.value_and_grad(loss, {"x": x, **params})
    assert value == pytest.approx(float(np.sum(y * v)), rel=1e-10, abs=1e-12)
    y_ref = backend.numpy(layer(backend, mod, {k: backend.asarray(a) for k, a in params.items()},
                                "", backend.asarray(x)))
    assert_rel(y, y_ref, what=f"{desc}: y")
    assert_rel(d_x, grads["x"], what=f"{desc}: d_x")
    for name, _, g in mod.named_parameters():
        assert_rel(g, grads[name], what=f"{desc}: d_{name}")


def test_planted_bug_is_caught(backend, rng):
    """A Linear whose weight gradient is doubled fails the same comparison."""
    from nprefgen.tour.gradchecks import BrokenLinear

    mod = BrokenLinear(3, 4, rng=rng)
    x = rng.standard_normal((5, 3))
    y, cache = mod.forward(x)
    v = rng.standard_normal(y.shape)
    mod.zero_grad()
    mod.backward(cache, v)
    params = {name: p.copy() for name, p, _ in mod.named_parameters()}
    _, grads = backend.value_and_grad(
        lambda d: backend.sum(layer(backend, mod, d, "", d["x"]) * backend.asarray(v)),
        {"x": x, **params})
    assert_rel(mod.grads["bias"], grads["bias"])
    with pytest.raises(AssertionError, match="relative error"):
        assert_rel(mod.grads["weight"], grads["weight"])
