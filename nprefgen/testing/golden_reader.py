"""Read and compare nprefgen golden files with numpy alone (copy this file into your project).

A golden file is an ``.npz`` written by ``nprefgen oracle export NAME --out case.npz`` (or
:func:`nprefgen.testing.golden.export_case`): one case of one layer, loss, bijector, flow or model
with deterministic weights and inputs, and what nprefgen computes from them. This module imports
only ``numpy`` and the standard library (``json``, ``os``, ``zipfile``); nothing is unpickled (``allow_pickle=False``).

Keys of the ``.npz`` (flat names ``group.name``; names after the group are PyTorch
``state_dict`` names for parameters, e.g. ``param.0.weight``):

========================  ======================================================================
``meta``                  a 0-d string array holding one JSON object (fields below)
``param.<name>``          parameters in PyTorch ``state_dict`` names and layouts (``Linear.weight``
                          is ``(out_features, in_features)``, conv weights ``(out, in, kh, kw)``,
                          ``ConvTranspose2d`` ``(in, out, kh, kw)``), float of ``meta.dtype``
``buffer.<name>``         fixed arrays that define the object but are not trained: MADE /
                          MaskedLinear masks ``(out, in)``, coupling masks ``(D,)``, permutations,
                          MADE input orders (1..D), Standardize mean/std, NCSN noise levels
``input.<name>``          inputs: ``x`` (and ``context``), a loss's ``pred``/``target``/``logits``,
                          fixed noise (a VAE's ``eps``, a DSM loss's ``z`` and integer ``levels``),
                          ``z`` (the point where the bijector's inverse is evaluated)
``cotangent.<name>``      fixed weights that turn vector outputs into the scalar ``meta.objective``
                          (e.g. ``objective = sum(cotangent.y * output.y)``)
``output.<name>``         values: ``y``, ``z`` and ``log_det`` (forward), ``inverse.x`` and
                          ``inverse.log_det`` (inverse at ``input.z``), ``log_prob``, ``loss``, ...
``grad.input.<name>``     d objective / d ``input.<name>``, same shape as the input
``grad.param.<name>``     d objective / d ``param.<name>``, same shape as the parameter
========================  ======================================================================

Fields of ``meta``:

``format`` (``"nprefgen-golden"``), ``format_version`` (int, 1), ``name`` (the case, e.g.
``"flows.AffineCoupling"``), ``kind`` (``layer``, ``loss``, ``bijector``, ``flow``, ``model``),
``summary`` (one line), ``constructor`` (the nprefgen call that built the object), ``nprefgen_version``,
``labels`` (equation labels in nprefgen's ``derivations/*.md``, e.g. ``["FLOW.5", "FLOW.9"]``),
``dtype`` (``"float64"`` or ``"float32"``), ``seed`` and ``batch`` (ints), ``shapes`` (``{key:
shape}`` for every array), ``variant`` (the exact formula variant: e.g. ``{"scale": "s = b
tanh(raw/b)", "bound": 2.0}``, a spline's tail bound and bin minimums, parameter order), and
``objective`` (the scalar whose gradients the ``grad.*`` arrays hold).

:func:`load_golden` returns ``{"meta": dict, "params": {...}, "buffers": {...}, "inputs": {...},
"cotangents": {...}, "outputs": {...}, "grads": {"inputs": {...}, "params": {...}}, "arrays":
{flat key: array}}``. :func:`compare_golden` compares your values (a dict or an ``.npz`` keyed like
the golden file, e.g. ``{"output.y": ..., "grad.param.0.weight": ...}``) and returns per-quantity
relative errors; :func:`format_comparison` prints them as a table.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

FORMAT = "nprefgen-golden"
FORMAT_VERSION = 1
GROUPS = ("param", "buffer", "input", "cotangent", "output", "grad.input", "grad.param")
_NESTED = {"param": "params", "buffer": "buffers", "input": "inputs", "cotangent": "cotangents",
           "output": "outputs"}
DTYPES = ("float64", "float32")
DEFAULT_RTOL = {"float64": 1e-10, "float32": 1e-4}
_META_FIELDS = {"format": str, "format_version": int, "name": str, "kind": str, "summary": str,
                "constructor": str, "nprefgen_version": str, "labels": list, "dtype": str,
                "seed": int, "batch": int, "shapes": dict, "variant": dict, "objective": str}


def split_key(key: str) -> tuple[str, str]:
    """``"grad.param.0.weight"`` -> ``("grad.param", "0.weight")``; ValueError for another group."""
    for group in sorted(GROUPS, key=len, reverse=True):       # grad.input before input
        if key.startswith(group + ".") and len(key) > len(group) + 1:
            return group, key[len(group) + 1:]
    raise ValueError(f"{key}: expected a key 'group.name' with group one of {list(GROUPS)} "
                     f"(or 'meta'), got {key!r}")


def _read(path) -> dict:
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path: expected a file path, got {type(path).__name__}")
    if not os.path.isfile(path):
        raise ValueError(f"path: expected an existing golden .npz file, got {os.fspath(path)!r}")
    try:
        with zipfile.ZipFile(path) as zf:          # every member's CRC, before numpy parses it
            bad = zf.testzip()
        if bad is not None:
            raise ValueError(f"member {bad!r} fails its CRC check")
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a plain .npy array, not an .npz archive")
            return {k: f[k] for k in f.files}
    except Exception as exc:     # BadZipFile, zlib.error, ValueError (pickled objects), OSError
        raise ValueError(f"path: {os.fspath(path)!r} is not a readable golden .npz file "
                         f"({type(exc).__name__}: {exc})"[:500]) from exc


def parse_meta(value) -> dict:
    """The ``meta`` entry (a 0-d or 1-element string array of JSON) -> dict, fields checked."""
    arr = np.asarray(value)
    if arr.dtype.kind != "U" or arr.size != 1:
        raise ValueError(f"meta: expected one JSON string, got a {arr.dtype} array of shape "
                         f"{arr.shape}")
    try:
        meta = json.loads(str(arr.reshape(())[()]))
    except json.JSONDecodeError as exc:
        raise ValueError(f"meta: expected valid JSON, got a parse error ({exc})") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"meta: expected a JSON object, got {type(meta).__name__}")
    for name, kind in _META_FIELDS.items():
        if name not in meta:
            raise ValueError(f"meta.{name}: expected the field, got none (fields: {sorted(meta)})")
        if not isinstance(meta[name], kind) or (kind is int and isinstance(meta[name], bool)):
            raise ValueError(f"meta.{name}: expected a {kind.__name__}, got "
                             f"{type(meta[name]).__name__} {meta[name]!r}"[:300])
    if meta["format"] != FORMAT:
        raise ValueError(f"meta.format: expected {FORMAT!r}, got {meta['format']!r}")
    if meta["format_version"] != FORMAT_VERSION:
        raise ValueError(f"meta.format_version: expected {FORMAT_VERSION} (this reader), got "
                         f"{meta['format_version']}")
    if meta["dtype"] not in DTYPES:
        raise ValueError(f"meta.dtype: expected one of {list(DTYPES)}, got {meta['dtype']!r}")
    if not all(isinstance(lab, str) for lab in meta["labels"]):
        raise ValueError(f"meta.labels: expected a list of strings, got {meta['labels']!r}"[:300])
    return meta


def check_golden(arrays: dict) -> dict:
    """Validate the flat ``{key: array}`` of a golden file (as read from the ``.npz``) and return
    the nested dict :func:`load_golden` documents. Every error is a ValueError naming the field."""
    if "meta" not in arrays:
        raise ValueError(f"meta: expected a 'meta' entry, got keys {sorted(arrays)}"[:300])
    meta = parse_meta(arrays["meta"])
    data = {k: v for k, v in arrays.items() if k != "meta"}
    out: dict = {"meta": meta, **{v: {} for v in _NESTED.values()},
                 "grads": {"inputs": {}, "params": {}}, "arrays": data}
    shapes = meta["shapes"]
    missing = sorted(set(shapes) - set(data))
    if missing:
        raise ValueError(f"{missing[0]}: listed in meta.shapes but missing from the file")
    for key, value in data.items():
        group, name = split_key(key)
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{key}: expected a numeric array, got dtype {value.dtype}")
        if key not in shapes:
            raise ValueError(f"{key}: expected an entry in meta.shapes, got none")
        if list(value.shape) != list(shapes[key]):
            raise ValueError(f"{key}: expected shape {tuple(shapes[key])} (meta.shapes), got "
                             f"{value.shape}")
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ValueError(f"{key}: expected finite values, got NaN or inf")
        if group == "param" and value.dtype != np.dtype(meta["dtype"]):
            raise ValueError(f"{key}: expected dtype {meta['dtype']} (meta.dtype), got "
                             f"{value.dtype}")
        if group.startswith("grad."):
            source = group[len("grad."):] + "." + name
            if source not in data:
                raise ValueError(f"{key}: expected a matching {source!r} entry, got none")
            if np.shape(data[source]) != value.shape:
                raise ValueError(f"{key}: expected the shape of {source} "
                                 f"{np.shape(data[source])}, got {value.shape}")
            out["grads"][group[len("grad."):] + "s"][name] = value
        else:
            out[_NESTED[group]][name] = value
    if not out["outputs"]:
        raise ValueError("output: expected at least one 'output.*' entry, got none")
    return out


def load_golden(path) -> dict:
    """Read a golden ``.npz`` (numpy only, never unpickling) and validate it.

    path : str or os.PathLike -> ``{"meta", "params", "buffers", "inputs", "cotangents",
    "outputs", "grads": {"inputs", "params"}, "arrays"}`` (see the module docstring). A corrupt,
    truncated or inconsistent file (shapes that disagree with ``meta.shapes``, a gradient without
    its input or parameter, a wrong format version, ...) raises ValueError naming the field.
    """
    return check_golden(_read(path))


def _as_golden(golden) -> dict:
    if isinstance(golden, dict) and "meta" in golden and "arrays" in golden:
        return golden
    if isinstance(golden, dict):
        return check_golden(golden)
    return load_golden(golden)


def _as_theirs(theirs) -> dict:
    if isinstance(theirs, dict):
        return {str(k): v for k, v in theirs.items()}
    return {k: v for k, v in _read(theirs).items()}


def relative_error(theirs, golden) -> tuple[float, float]:
    """``(max |theirs - golden|, that / max |golden|)``; the denominator is 1 where golden is all
    zeros (then the error is absolute). Non-finite values in ``theirs`` give inf."""
    t = np.asarray(theirs, dtype=np.float64)
    g = np.asarray(golden, dtype=np.float64)
    if t.size == 0:
        return 0.0, 0.0
    if not np.all(np.isfinite(t)):
        return float("inf"), float("inf")
    abs_err = float(np.max(np.abs(t - g)))
    scale = float(np.max(np.abs(g)))
    return abs_err, abs_err / (scale if scale > 0 else 1.0)


def compare_golden(golden, theirs, *, rtol: float | None = None) -> dict:
    """Compare another implementation's values with a golden file, quantity by quantity.

    golden : a path or what :func:`load_golden` returned.
    theirs : a path to an ``.npz`` or a dict ``{key: array}`` with keys of the golden file
        (``output.*``, ``grad.input.*``, ``grad.param.*``; ``param.*``/``input.*`` are compared too
        if given). Torch tensors: pass ``t.detach().numpy()``.
    rtol : the bound on each quantity's relative error :func:`relative_error`; default 1e-10 for a
        float64 file and 1e-4 for a float32 one.

    Returns ``{"rows": [{"quantity", "shape", "abs_error", "rel_error", "ok"}], "missing": [golden
    outputs and gradients not given], "rtol": float, "ok": bool}``; ``ok`` is False when any
    quantity exceeds ``rtol``. A key the golden file does not have, a shape mismatch or a
    non-numeric array raises ValueError naming the key (``theirs[...]``).
    """
    g = _as_golden(golden)
    t = _as_theirs(theirs)
    if rtol is None:
        rtol = DEFAULT_RTOL[g["meta"]["dtype"]]
    if not isinstance(rtol, (int, float)) or isinstance(rtol, bool) or not rtol > 0:
        raise ValueError(f"rtol: expected a positive number, got {rtol!r}")
    known = g["arrays"]
    unknown = sorted(set(t) - set(known))
    if unknown:
        raise ValueError(f"theirs[{unknown[0]!r}]: expected a key of the golden file "
                         f"{g['meta']['name']!r} (e.g. {sorted(k for k in known if k.startswith('output.'))}), "
                         f"got unknown keys {unknown}"[:500])
    if not t:
        raise ValueError("theirs: expected at least one quantity to compare, got none")
    rows = []
    for key in sorted(t, key=lambda k: (list(known).index(k), k)):
        value = np.asarray(t[key])
        if value.dtype.kind not in "biuf":
            raise ValueError(f"theirs[{key!r}]: expected a numeric array, got dtype {value.dtype}")
        if value.shape != known[key].shape:
            raise ValueError(f"theirs[{key!r}]: expected shape {known[key].shape}, got {value.shape}")
        abs_err, rel_err = relative_error(value, known[key])
        rows.append({"quantity": key, "shape": tuple(value.shape), "abs_error": abs_err,
                     "rel_error": rel_err, "ok": bool(rel_err <= rtol)})
    missing = [k for k in known if k.split(".")[0] in ("output", "grad") and k not in t]
    return {"rows": rows, "missing": missing, "rtol": float(rtol), "ok": all(r["ok"] for r in rows)}


def format_comparison(result: dict) -> str:
    """The table of :func:`compare_golden`'s result: one line per quantity, then a summary."""
    rows = result["rows"]
    width = max([len("quantity")] + [len(r["quantity"]) for r in rows])
    lines = [f"{'quantity':{width}s}  {'shape':14s}  {'max |diff|':>10s}  {'rel. error':>10s}  status"]
    for r in rows:
        lines.append(f"{r['quantity']:{width}s}  {str(r['shape']):14s}  {r['abs_error']:10.2e}  "
                     f"{r['rel_error']:10.2e}  {'ok' if r['ok'] else 'FAIL'}")
    n_bad = sum(not r["ok"] for r in rows)
    lines.append(f"{len(rows)} quantities compared at rtol {result['rtol']:.0e}: {n_bad} above; "
                 f"worst relative error {max((r['rel_error'] for r in rows), default=0.0):.2e}")
    if result["missing"]:
        lines.append(f"not given (not compared): {', '.join(result['missing'])}"[:1000])
    return "\n".join(lines)
