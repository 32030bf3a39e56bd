"""Files of the fitted models of :mod:`nprefgen.models` (derivations/README.md, "Files").

One convention for every model (the one :class:`nprefgen.flows.Flow` set): ``model.save(path)``
writes one ``.npz``; ``model.load(path)`` loads it into an *identically constructed* model and
returns that model. A file holds

* named arrays: the fitted attributes under their own names (``weights_``, ``means_``, ...) for
  the models without networks, the ``state_dict`` names for networks (``encoder.0.weight``, ...,
  written and read by :func:`nprefgen.nn.io.save_npz` / :func:`~nprefgen.nn.io.load_npz`);
* three metadata strings (keys ``__meta__.class``, ``__meta__.config``, ``__meta__.history``):
  the class name, the constructor's hyper-parameters as JSON, and ``history_`` as JSON.

Saves are atomic (:func:`nprefgen.nn.io.atomic_write`) and refuse an invalid model, so that no
invalid file is written. Loads are all or nothing: every array (names, shapes, dtypes, finite
values, the model's invariants), the class and the configuration are checked before anything is
assigned; a bad file raises ValueError naming ``path`` and the field and leaves the model as it
was. A configuration differing from the model's own in a key both have is refused (a key only one
side has is not compared, as in ``Flow.load``).
"""
from __future__ import annotations

import json
import os

import numpy as np

from nprefgen.nn.io import META_PREFIX, atomic_write, load_npz, read_npz, save_npz
from nprefgen.nn.train import forget_adam

META_KEYS = ("class", "config", "history")


def where_load(path, kind: str) -> str:
    """The prefix of every load error: names ``path`` first (the argument at fault)."""
    return f"path: {os.fspath(path)!r} is not a valid {kind} file"


def where_save(kind: str) -> str:
    """The prefix of a save refused because the model itself is invalid."""
    return f"self: this {kind} cannot be saved"


def meta_entries(kind: str, config: dict, history) -> dict[str, np.ndarray]:
    """``{"class": ..., "config": ..., "history": ...}`` as string arrays (JSON for the last two).

    ``config`` must be JSON-serialisable without NaN; ``history`` may hold NaN/inf losses (a
    diverged run records them), written as JSON's NaN/Infinity extensions."""
    try:
        cfg = json.dumps(config, allow_nan=False, sort_keys=True)
        hist = json.dumps(history)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where_save(kind)}: config/history_: expected JSON-serialisable "
                         f"values ({exc})") from exc
    return {"class": np.array(kind), "config": np.array(cfg), "history": np.array(hist)}


def write_model(path, kind: str, arrays: dict, config: dict, history) -> None:
    """Write ``arrays`` (checked by the caller's validator first) and the metadata, atomically."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path: expected a file path (str or os.PathLike), got "
                         f"{type(path).__name__}")
    entries = {name: np.asarray(a) for name, a in arrays.items()}
    entries.update({META_PREFIX + k: v for k, v in meta_entries(kind, config, history).items()})
    with atomic_write(path) as f:
        np.savez_compressed(f, **entries)


def _string(meta: dict, key: str, where: str) -> str:
    if key not in meta:
        raise ValueError(f"{where}: {META_PREFIX}{key}: missing (expected a file written by save)")
    value = meta[key]
    if value.dtype.kind != "U" or value.shape != ():
        raise ValueError(f"{where}: {META_PREFIX}{key}: expected a string, got an array of "
                         f"shape {value.shape} and dtype {value.dtype}")
    return str(value)


def check_meta(path, kind: str, meta: dict, own_config: dict):
    """Check the class name and the configuration of a file against the model loading it;
    returns the stored ``history_`` (parsed JSON: a dict by the convention, None for an unfitted
    network; a list, as a subclass may keep, is accepted)."""
    where = where_load(path, kind)
    stored_kind = _string(meta, "class", where)
    if stored_kind != kind:
        raise ValueError(f"{where}: {META_PREFIX}class: the file holds a {stored_kind!r}, "
                         f"expected {kind!r}")
    parsed = {}
    for key in ("config", "history"):
        text = _string(meta, key, where)
        try:
            parsed[key] = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{where}: {META_PREFIX}{key}: expected JSON, got {text[:80]!r} "
                             f"({type(exc).__name__})") from None
    config, history = parsed["config"], parsed["history"]
    if not isinstance(config, dict):
        raise ValueError(f"{where}: {META_PREFIX}config: expected a JSON object, got "
                         f"{type(config).__name__}")
    own = json.loads(json.dumps(own_config))
    differ = sorted(k for k in set(config) & set(own) if config[k] != own[k])
    if differ:
        raise ValueError(f"{where}: config[{differ[0]!r}]: the file was saved from a model built "
                         f"with {differ[0]}={config[differ[0]]!r}, this one has "
                         f"{own[differ[0]]!r} (differing keys: {differ}); construct the model "
                         f"with the file's hyper-parameters, then load")
    if history is not None and not isinstance(history, (dict, list)):
        raise ValueError(f"{where}: {META_PREFIX}history: expected a JSON object (or a list, "
                         f"or null), got {type(history).__name__}")
    return history


def read_model(path, kind: str, own_config: dict, required, optional=()) -> tuple[dict, object]:
    """Read a file written by :func:`write_model`: ``(arrays, history)``, the arrays exactly
    ``required`` plus any of ``optional`` (other array names are refused), the metadata checked by
    :func:`check_meta`. Shapes, dtypes and values are the caller's to check (:func:`field`)."""
    arrays = read_npz(path)
    meta = {k[len(META_PREFIX):]: v for k, v in arrays.items() if k.startswith(META_PREFIX)}
    state = {k: v for k, v in arrays.items() if not k.startswith(META_PREFIX)}
    where = where_load(path, kind)
    history = check_meta(path, kind, meta, own_config)          # the class first: a clear error
    missing = sorted(set(required) - set(state))
    unexpected = sorted(set(state) - set(required) - set(optional))
    if missing or unexpected:
        also = f" (and optionally {sorted(optional)})" if optional else ""
        raise ValueError(f"{where}: arrays: expected {sorted(required)}{also}, missing {missing}, "
                         f"unexpected {unexpected}")
    return state, history


def load_fitted(model, path, kind: str, config: dict, required, optional=(),
                default_history=None):
    """Load a file written by :func:`write_model` into ``model``, all or nothing: read and check
    the file (:func:`read_model`), validate the arrays with ``model._fitted_state(arrays,
    where)`` (which raises before anything is set), then set every returned attribute and
    ``history_`` (``default_history(state)`` when the file has none). Returns ``model``."""
    arrays, history = read_model(path, kind, config, required, optional)
    state = model._fitted_state(arrays, where_load(path, kind))
    if history is None and default_history is not None:
        history = default_history(state)
    for name, value in state.items():
        setattr(model, name, value)
    model.history_ = history
    return model


def field(arrays: dict, name: str, where: str, *, shape=None, kind: str = "f") -> np.ndarray:
    """One stored array, checked: ``kind`` "f" (a floating array, returned as float64, finite),
    "i" (integers, returned as int64) or "b" (a bool); ``shape`` with ``None`` for any size.
    A failure raises ValueError ``"{where}: {name}: expected ..., got ..."``."""
    a = np.asarray(arrays[name])
    if kind == "f" and a.dtype.kind != "f" or kind == "i" and a.dtype.kind not in "iu" \
            or kind == "b" and a.dtype.kind != "b":
        want = {"f": "a floating", "i": "an integer", "b": "a bool"}[kind]
        raise ValueError(f"{where}: {name}: expected {want} array, got dtype {a.dtype}")
    if shape is not None and (a.ndim != len(shape) or
                              any(s is not None and s != t for s, t in zip(shape, a.shape))):
        want = tuple("any" if s is None else s for s in shape)
        raise ValueError(f"{where}: {name}: expected shape {want}, got {a.shape}")
    if kind == "f":
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{where}: {name}: expected finite values, got "
                             f"{int(np.sum(~np.isfinite(a)))} NaN/inf")
    elif kind == "i":
        if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{where}: {name}: expected values that fit int64")
        a = a.astype(np.int64)
    return a



def save_networks(path, kind: str, networks, config: dict, history) -> None:
    """A model made of networks: their parameters under ``state_dict`` names plus the metadata,
    by :func:`nprefgen.nn.io.save_npz` (atomic; non-finite weights are refused)."""
    save_npz(path, networks, meta=meta_entries(kind, config, history))


def load_networks(model, path, kind: str, networks, config: dict):
    """Load what :func:`save_networks` wrote into ``networks`` (the model's own modules), all or
    nothing: the arrays, the class and the configuration are checked by
    :func:`nprefgen.nn.io.load_npz` before any weight is assigned. Sets ``model.history_`` and
    forgets a kept optimizer (its moments belong to the replaced weights). -> model."""
    got = {}

    def check(meta):
        got["history"] = check_meta(path, kind, meta, config)

    load_npz(path, networks, check_meta=check)
    model.history_ = got["history"]
    forget_adam(model)
    return model
