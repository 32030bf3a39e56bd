"""The DSM loss and its parameter gradients against PyTorch autograd on the same network, batch,
noise and levels (derivations/score.md, SCORE.5, SCORE.6, SCORE.7)."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.models.ncsn import NCSN, geometric_sigmas

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


@pytest.mark.parametrize("conditioning", ["scale", "concat"])
def test_dsm_matches_torch_autograd(conditioning, rng):
    """(SCORE.5) (SCORE.6) (SCORE.7) loss to 1e-13 and every parameter gradient to 1e-11 relative."""
    model = NCSN(3, hidden=(16, 16), conditioning=conditioning, activation="softplus",
                 sigmas=geometric_sigmas(5.0, 0.05, 6), rng=rng)
    x = rng.standard_normal((32, 3))
    z, levels = model.draw_noise(32, rng=rng)
    model.zero_grad()
    loss = model.dsm_loss_and_grad(x, z, levels)

    named = list(model.net.named_parameters())
    params = {name: torch.tensor(p, requires_grad=True) for name, p, _ in named}
    sigma = torch.tensor(model.sigmas[levels])[:, None]
    xt = torch.tensor(x) + sigma * torch.tensor(z)
    h = torch.cat([xt, torch.log(sigma)], dim=1) if conditioning == "concat" else xt
    n_linear = len(model.net.layers) // 2 + 1
    for i in range(n_linear):
        h = torch.nn.functional.linear(h, params[f"{2 * i}.weight"], params[f"{2 * i}.bias"])
        if i < n_linear - 1:
            h = torch.nn.functional.softplus(h)
    s = h / sigma
    loss_t = (0.5 * sigma**2 * ((s + torch.tensor(z) / sigma) ** 2).sum(1, keepdim=True)).mean()
    loss_t.backward()
    assert loss == pytest.approx(loss_t.item(), rel=1e-13)
    for name, _, g in named:
        ref = params[name].grad.numpy()
        assert np.abs(g - ref).max() <= 1e-11 * np.abs(ref).max(), name
