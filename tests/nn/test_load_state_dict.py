"""Module.load_state_dict: dtypes (float32 into float64 is refused unless cast=True), array-likes
(numpy, lists, torch tensors after .detach(), jax arrays) and ignored extra buffers."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.nn import MLP, Linear, MaskedLinear, Sequential, Tanh


def _state(net, dtype=np.float64, rng=None):
    rng = np.random.default_rng(0) if rng is None else rng
    return {k: rng.standard_normal(v.shape).astype(dtype) for k, v in net.state_dict().items()}


def test_float32_into_float64_is_refused_with_the_way_out():
    net = MLP(3, [4], 2, rng=0)
    before = net.state_dict()
    s32 = _state(net, np.float32)
    with pytest.raises(ValueError, match=r"state\['0.weight'\]: expected dtype float64 .* got "
                                         r"float32; convert explicitly: .*cast=True"):
        net.load_state_dict(s32)
    for k, v in net.state_dict().items():               # nothing was copied
        np.testing.assert_array_equal(v, before[k])
    net.load_state_dict(s32, cast=True)                 # exact: float32 -> float64
    for k, v in net.state_dict().items():
        assert v.dtype == np.float64
        np.testing.assert_array_equal(v, s32[k].astype(np.float64))


def test_float64_into_float32_module_rounds_only_when_asked():
    net = MLP(3, [4], 2, rng=0).astype(np.float32)
    s64 = _state(net)
    with pytest.raises(ValueError, match="expected dtype float32 .* got float64"):
        net.load_state_dict(s64)
    net.load_state_dict(s64, cast=True)
    for k, v in net.state_dict().items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, s64[k].astype(np.float32))
    big = dict(s64, **{"0.bias": np.full(4, 1e300)})    # overflows float32: refused, not inf
    with pytest.raises(ValueError, match=r"state\['0.bias'\]"):
        net.load_state_dict(big, cast=True)


def test_array_likes_lists_and_integers():
    lin = Linear(2, 2, rng=0)
    lin.load_state_dict({"weight": [[1, 2], [3, 4]], "bias": (0.5, -0.5)})
    np.testing.assert_array_equal(lin.params["weight"], [[1.0, 2.0], [3.0, 4.0]])
    assert lin.params["weight"].dtype == np.float64
    with pytest.raises(ValueError, match=r"state\['bias'\]: expected shape \(2,\)"):
        lin.load_state_dict({"weight": np.eye(2), "bias": np.zeros(3)})


def test_ignore_extra_buffers_by_name_or_pattern():
    """A PyTorch MADE registers its masks as buffers: its state_dict has '<i>.mask' entries."""
    mask = np.tril(np.ones((3, 3)))
    net = Sequential(MaskedLinear(3, 3, mask, rng=0), Tanh(), Linear(3, 2, rng=0))
    state = {**_state(net), "0.mask": mask}
    with pytest.raises(ValueError, match=r"unexpected \['0.mask'\].*ignore="):
        net.load_state_dict(state)
    net.load_state_dict(state, ignore=["*.mask"])
    net.load_state_dict(state, ignore="0.mask")
    np.testing.assert_array_equal(net.state_dict()["2.bias"], state["2.bias"])
    with pytest.raises(ValueError, match=r"ignore: .* matches parameters of this module \['0.weight', '2.weight'\]"):
        net.load_state_dict(state, ignore=["*.weight"])
    with pytest.raises(ValueError, match="ignore: expected names"):
        net.load_state_dict(state, ignore=[3])


@pytest.mark.torch
def test_torch_tensors_and_a_torch_made_state_dict():
    torch = pytest.importorskip("torch")

    class TorchMasked(torch.nn.Linear):
        def __init__(self, n_in, n_out, mask):
            super().__init__(n_in, n_out, dtype=torch.float64)
            self.register_buffer("mask", torch.as_tensor(mask))

        def forward(self, x):
            return torch.nn.functional.linear(x, self.weight * self.mask, self.bias)

    mask = np.tril(np.ones((3, 3)))
    theirs = torch.nn.Sequential(TorchMasked(3, 3, mask), torch.nn.Tanh(),
                                 torch.nn.Linear(3, 2, dtype=torch.float64))
    ours = Sequential(MaskedLinear(3, 3, mask, rng=0), Tanh(), Linear(3, 2, rng=0))
    sd = theirs.state_dict()
    assert "0.mask" in sd
    ours.load_state_dict({k: v.detach() for k, v in sd.items()}, ignore=["*.mask"])
    x = np.random.default_rng(1).standard_normal((4, 3))
    np.testing.assert_allclose(ours(x), theirs(torch.as_tensor(x)).detach().numpy(), rtol=1e-14)
    with pytest.raises(ValueError, match=r"\.detach\(\)"):          # a tensor that requires grad
        ours.load_state_dict(dict(theirs.named_parameters()))
    with pytest.raises(ValueError, match="float32.*cast=True"):     # torch's default dtype
        ours.load_state_dict({k: v.float() for k, v in sd.items()}, ignore=["*.mask"])


@pytest.mark.torch
def test_jax_arrays():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    lin = Linear(2, 3, rng=0)
    w = jax.numpy.arange(6.0).reshape(3, 2)
    lin.load_state_dict({"weight": w, "bias": jax.numpy.ones(3)})
    np.testing.assert_array_equal(lin.params["weight"], np.arange(6.0).reshape(3, 2))
