"""Optional cross-check against torch.autograd (skipped without torch): the same weights give the
same log-densities (FLOW.1) and the same gradients with respect to every parameter, the input and
the context (FLOW.8, FLOW.15, FLOW.22) for conditional RealNVP and MAF flows, to 1e-10 in float64."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.flows import (
    MAF, ActNorm, AffineCoupling, Permutation, Standardize, maf, realnvp,
)
from nprefgen.nn import Linear, MaskedLinear, Tanh
from nprefgen.testing.bijector_checks import randomize_parameters

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


def _mlp(net, h, params, prefix):
    """An nprefgen Sequential of (Masked)Linear/Tanh layers, replayed in torch."""
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Linear):
            w = params[f"{prefix}{i}.weight"]
            if isinstance(layer, MaskedLinear):
                w = w * torch.as_tensor(layer.mask)
            h = h @ w.T + params[f"{prefix}{i}.bias"]
        elif isinstance(layer, Tanh):
            h = torch.tanh(h)
        else:  # pragma: no cover - the tests build tanh networks only
            raise AssertionError(type(layer))
    return h


def _clamp(raw, bound):
    return bound * torch.tanh(raw / bound) if bound else raw


def torch_log_prob(flow, x, c, params):
    """(FLOW.1)-(FLOW.3) written directly in torch from the flow's structure and buffers."""
    c = (c - torch.as_tensor(flow.context_mean)) / torch.as_tensor(flow.context_std)
    log_det = torch.zeros(x.shape[0], dtype=x.dtype)
    for k, b in enumerate(flow.bijectors):
        p = f"{k}."
        if isinstance(b, Standardize):
            x = (x - torch.as_tensor(b.mean)) / torch.as_tensor(b.std)
            log_det = log_det - torch.log(torch.as_tensor(b.std)).sum()
        elif isinstance(b, ActNorm):
            x = x * torch.exp(params[p + "log_scale"]) + params[p + "shift"]
            log_det = log_det + params[p + "log_scale"].sum()
        elif isinstance(b, Permutation):
            x = x[:, torch.as_tensor(b.perm)]
        elif isinstance(b, AffineCoupling):
            a_idx = torch.as_tensor(np.flatnonzero(b.mask == 1))
            b_idx = torch.as_tensor(np.flatnonzero(b.mask == 0))
            h = _mlp(b.net, torch.cat([x[:, a_idx], c], dim=1), params, p + "net.")
            s = _clamp(h[:, : len(b_idx)], b.bound)
            y_b = x[:, b_idx] * torch.exp(s) + h[:, len(b_idx):]
            z = x.clone()
            z[:, b_idx] = y_b
            x, log_det = z, log_det + s.sum(dim=1)
        elif isinstance(b, MAF):
            out = _mlp(b.made.net, torch.cat([x, c], dim=1), params, p + "made.net.")
            mu, alpha = out[:, : b.dim], _clamp(out[:, b.dim:], b.bound)
            x, log_det = (x - mu) * torch.exp(-alpha), log_det - alpha.sum(dim=1)
        else:  # pragma: no cover
            raise AssertionError(type(b))
    return -0.5 * (x * x).sum(dim=1) - 0.5 * x.shape[1] * np.log(2 * np.pi) + log_det


@pytest.mark.parametrize("build", [realnvp, maf])
def test_log_prob_and_gradients_match_torch(build, rng):
    """Same weights: log p, d/d(every parameter) of sum_i w_i log p_i, d/dx and d/dc agree."""
    data, ctx = rng.standard_normal((20, 4)) * 2 + 1, rng.standard_normal((20, 3)) * 4
    kw = dict(permutation="random") if build is maf else {}
    flow = build(4, 3, [7, 5], rng=rng, context_dim=3, activation="tanh", actnorm=True,
                 standardize=data, standardize_context=ctx, **kw)
    randomize_parameters(flow, rng=rng, scale=0.4)
    x, c, w = rng.standard_normal((6, 4)), rng.standard_normal((6, 3)), rng.standard_normal(6)

    flow.zero_grad()
    lp, d_x, d_c = flow.log_prob_and_grad(x, c, weights=w)

    params = {k: torch.tensor(v, requires_grad=True) for k, v in flow.state_dict().items()}
    xt = torch.tensor(x, requires_grad=True)
    ct = torch.tensor(c, requires_grad=True)
    lpt = torch_log_prob(flow, xt, ct, params)
    (lpt * torch.as_tensor(w)).sum().backward()

    np.testing.assert_allclose(lp, lpt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d_x, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d_c, ct.grad.numpy(), rtol=1e-10, atol=1e-12)
    grads = {name: g for name, _, g in flow.named_parameters()}
    assert set(grads) == set(params)
    for name, t in params.items():
        np.testing.assert_allclose(grads[name], t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
