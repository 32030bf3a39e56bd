"""PyTorch cross-check: a torch MLP's and conv net's state_dict loaded into nprefgen by name give
the same outputs, input gradients and parameter gradients to 1e-10 in float64 (NN.10, NN.25, NN.28).
Skipped cleanly when torch is not importable."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.nn import (
    ELU, MLP, Conv2d, ConvTranspose2d, Flatten, LeakyReLU, Linear, ReLU, Reshape, Sequential, Sigmoid,
    Softplus, Tanh, mse_loss,
)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
tnn = torch.nn


def _load_from_torch(ours, theirs):
    """Copy a torch module's state_dict into nprefgen by name (names must match one-to-one)."""
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})


def _compare(ours, theirs, x, rng):
    """Forward, MSE loss against a random target, backward; compare y, d_x and every d_param."""
    _load_from_torch(ours, theirs)
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    target = rng.standard_normal(tuple(ty.shape))
    tloss = tnn.functional.mse_loss(ty, torch.from_numpy(target))
    tloss.backward()
    y, cache = ours.forward(x)
    loss, d_y = mse_loss(y, target)
    ours.zero_grad()
    d_x = ours.backward(cache, d_y)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert loss == pytest.approx(tloss.item(), rel=1e-10)
    np.testing.assert_allclose(d_x, tx.grad.numpy(), rtol=1e-10, atol=1e-13)
    tparams = dict(theirs.named_parameters())
    ours_names = [name for name, _, _ in ours.named_parameters()]
    assert sorted(ours_names) == sorted(tparams)
    for name, _, g in ours.named_parameters():
        np.testing.assert_allclose(g, tparams[name].grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name)


def _torch_net(builder):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return builder().double()


def test_mlp_matches_torch(rng):
    """(NN.10) an MLP with every activation, torch weights loaded by name."""
    theirs = _torch_net(lambda: tnn.Sequential(
        tnn.Linear(4, 8), tnn.Tanh(), tnn.Linear(8, 8), tnn.Softplus(), tnn.Linear(8, 6), tnn.ELU(),
        tnn.Linear(6, 5), tnn.LeakyReLU(0.1), tnn.Linear(5, 5), tnn.ReLU(), tnn.Linear(5, 3),
        tnn.Sigmoid()))
    ours = Sequential(Linear(4, 8, rng=rng), Tanh(), Linear(8, 8, rng=rng), Softplus(),
                      Linear(8, 6, rng=rng), ELU(), Linear(6, 5, rng=rng), LeakyReLU(0.1),
                      Linear(5, 5, rng=rng), ReLU(), Linear(5, 3, rng=rng), Sigmoid())
    _compare(ours, theirs, rng.standard_normal((7, 4)), rng)
    # the MLP builder yields the same names as torch.nn.Sequential
    built = MLP(4, [8], 3, rng=rng, activation="tanh")
    theirs2 = _torch_net(lambda: tnn.Sequential(tnn.Linear(4, 8), tnn.Tanh(), tnn.Linear(8, 3)))
    _compare(built, theirs2, rng.standard_normal((5, 4)), rng)


def test_conv_net_matches_torch(rng):
    """(NN.25) Conv2d and (NN.28) ConvTranspose2d in a conv autoencoder with strides, padding,
    output_padding, non-square kernels, Flatten and Reshape (torch's Unflatten)."""
    theirs = _torch_net(lambda: tnn.Sequential(
        tnn.Conv2d(2, 4, 3, stride=2, padding=1), tnn.Tanh(),
        tnn.Conv2d(4, 3, (2, 3), stride=(1, 2), padding=(0, 1)), tnn.ELU(),
        tnn.Flatten(), tnn.Linear(3 * 3 * 2, 12), tnn.Softplus(), tnn.Unflatten(1, (3, 2, 2)),
        tnn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), tnn.Tanh(),
        tnn.ConvTranspose2d(4, 2, (3, 2), stride=(2, 3), padding=(0, 1), output_padding=(1, 2),
                            bias=False)))
    ours = Sequential(
        Conv2d(2, 4, 3, stride=2, padding=1, rng=rng), Tanh(),
        Conv2d(4, 3, (2, 3), stride=(1, 2), padding=(0, 1), rng=rng), ELU(),
        Flatten(), Linear(3 * 3 * 2, 12, rng=rng), Softplus(), Reshape(3, 2, 2),
        ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1, rng=rng), Tanh(),
        ConvTranspose2d(4, 2, (3, 2), stride=(2, 3), padding=(0, 1), output_padding=(1, 2), bias=False,
                        rng=rng))
    x = rng.standard_normal((3, 2, 7, 6))
    _compare(ours, theirs, x, rng)
    assert ours(x).shape == (3, 2, 10, 11)          # (NN.21), (NN.27) by hand: 7x6 -> 4x3 -> 3x2 | 2x2 -> 4x4 -> 10x11
