"""Lazy torch access for the adapters: nothing imports torch until an adapter is called."""
from __future__ import annotations

import numpy as np

from nprefgen.nn.activations import ACTIVATIONS


def require(module: str):
    """Import ``module`` (torch, zuko, nflows) or raise ImportError saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"nprefgen.interop needs {module!r} for this call; install it "
                          f"(pip install {module}) or use the adapters without it") from exc


def numpy(t) -> np.ndarray:
    """A torch tensor (or array-like) as a float64 numpy array (detached copy)."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().double().numpy()
    return np.array(t, dtype=np.float64)


def tensor(a, requires_grad: bool = False):
    torch = require("torch")
    t = torch.as_tensor(np.asarray(a, dtype=np.float64)).clone()
    return t.requires_grad_(requires_grad)


def activation_name(act) -> str:
    """The nprefgen activation equal to a torch activation module or function, exactly (same
    constants), or ValueError naming what does not map."""
    torch = require("torch")
    F = torch.nn.functional
    nn = torch.nn
    if isinstance(act, nn.ReLU) or act is F.relu or act is torch.relu:
        return "relu"
    if isinstance(act, nn.Tanh) or act is torch.tanh or act is F.tanh:
        return "tanh"
    if isinstance(act, nn.Sigmoid) or act is torch.sigmoid or act is F.sigmoid:
        return "sigmoid"
    if isinstance(act, nn.ELU) and act.alpha == 1.0 or act is F.elu:
        return "elu"
    if isinstance(act, nn.LeakyReLU) and act.negative_slope == ACTIVATIONS["leaky_relu"]().negative_slope \
            or act is F.leaky_relu:
        return "leaky_relu"
    if isinstance(act, nn.Identity):
        return "identity"
    raise ValueError(f"activation: {act!r} has no exact nprefgen counterpart (mapped: ReLU, "
                     f"Tanh, Sigmoid, ELU(alpha=1), LeakyReLU(0.01), Identity)")


def identity_rows(n: int) -> np.ndarray:
    return np.arange(n)


def interleaved_to_blocks(d: int, p: int, order: list[int]) -> np.ndarray:
    """Rows that turn an output laid out coordinate-major ``[c_0 p_0, c_0 p_1, ..., c_1 p_0, ...]``
    (``p`` parameters per coordinate, ``d`` coordinates) into parameter blocks ``[p = order[0]
    for all c, p = order[1] for all c, ...]``. -> (d * len(order),) int array."""
    return np.concatenate([np.arange(d) * p + k for k in order])
