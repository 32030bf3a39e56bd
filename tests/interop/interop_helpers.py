"""Shared set-up of the zuko and nflows interop tests: perturbed library flows and inputs."""
from __future__ import annotations

import numpy as np


def perturbed(flow, seed=0, scale=0.3):
    """The library's random initialisation plus N(0, scale^2) on every parameter."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return flow


def inputs(dim, context_dim, n=6, seed=1, spread=1.5):
    """(n, dim) points of sd ``spread`` and (n, context_dim) contexts, or None without context."""
    rng = np.random.default_rng(seed)
    return (spread * rng.standard_normal((n, dim)),
            rng.standard_normal((n, context_dim)) if context_dim else None)
