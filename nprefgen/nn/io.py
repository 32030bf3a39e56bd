"""Saving and loading parameters as ``.npz`` (never pickle).

File layout: one array per parameter, keyed by its PyTorch ``state_dict`` name, e.g. an
``MLP(2, [64], 1)`` saves ``0.weight (64, 2)``, ``0.bias (64,)``, ``2.weight (1, 64)``,
``2.bias (1,)``. A PyTorch user converts with
``{k: v.detach().numpy() for k, v in torch_module.state_dict().items()}`` and back with
``torch.from_numpy``; names and layouts match one-to-one for Linear, Sequential, Conv2d and
ConvTranspose2d. Extra metadata (model hyper-parameters) can be stored under keys starting with
``__meta__.`` as plain numeric or string arrays.
"""
from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from nprefgen._validation import check_array
from nprefgen.nn.base import Module

META_PREFIX = "__meta__."


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path: expected a file path (str or os.PathLike), got "
                         f"{type(path).__name__}")
    return path


def _check_module(module) -> Module:
    if not isinstance(module, Module):
        raise ValueError(f"module: expected an nprefgen.nn.Module, got {type(module).__name__}")
    return module


def save_npz(path, module: Module, meta: dict | None = None) -> None:
    """Write ``module.state_dict()`` (plus ``meta`` entries) to a compressed ``.npz`` at exactly
    ``path`` (numpy.savez would append ``.npz`` to a name without it, which ``load_npz(path)``
    then could not find).

    Non-finite parameters are refused (``load_npz`` would refuse them anyway)."""
    _check_path(path)
    arrays = {name: check_array(p, f"module: parameter {name!r}", allow_empty=True)
              for name, p in _check_module(module).state_dict().items()}
    if meta is not None and not isinstance(meta, dict):
        raise ValueError(f"meta: expected a dict of numeric or string values, got "
                         f"{type(meta).__name__}")
    for key, value in (meta or {}).items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise ValueError(f"meta[{key!r}]: expected a numeric or string value, got an object")
        arrays[META_PREFIX + key] = arr
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def read_npz(path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` with ``allow_pickle=False``; corrupt files raise ValueError."""
    if not os.path.exists(_check_path(path)):
        raise ValueError(f"path: expected an existing .npz file, got {os.fspath(path)!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError) as exc:
        raise ValueError(f"path: {os.fspath(path)!r} is not a readable .npz file ({exc})") from exc


def load_npz(path, module: Module) -> dict:
    """Load parameters saved by :func:`save_npz` into ``module`` in place; returns the meta dict.

    A file whose parameter names, shapes or values do not fit ``module`` raises ValueError naming
    ``path`` (and the mismatch); ``module`` is left unchanged."""
    _check_module(module)
    arrays = read_npz(path)
    meta = {k[len(META_PREFIX):]: v for k, v in arrays.items() if k.startswith(META_PREFIX)}
    state = {k: v for k, v in arrays.items() if not k.startswith(META_PREFIX)}
    try:
        module.load_state_dict(state)
    except ValueError as exc:
        raise ValueError(f"path: {os.fspath(path)!r} does not fit the module: {exc}") from exc
    return meta
