"""Saving and loading parameters as ``.npz`` (never pickle), atomically and all or nothing.

File layout: one array per parameter, keyed by its PyTorch ``state_dict`` name, e.g. an
``MLP(2, [64], 1)`` saves ``0.weight (64, 2)``, ``0.bias (64,)``, ``2.weight (1, 64)``,
``2.bias (1,)``. A PyTorch user converts with
``{k: v.detach().numpy() for k, v in torch_module.state_dict().items()}`` and back with
``torch.from_numpy``; names and layouts match one-to-one for Linear, Sequential, Conv2d and
ConvTranspose2d. Extra metadata (model hyper-parameters) can be stored under keys starting with
``__meta__.`` as plain numeric or string arrays.

Files survive failures:

* every writer goes through :func:`atomic_write`: the bytes go to a temporary file in the target's
  folder, which is flushed, fsynced and renamed over the target (``os.replace``) only when
  complete, so a save that fails midway (disk full, Ctrl-C, an entry that cannot be written)
  leaves the previous file byte-identical and no temporary behind;
* :func:`read_npz` parses every member's ``.npy`` header and checks it against the member's size
  (and ``max_bytes``) before it allocates anything; a truncated, tampered or mislabelled file
  gives a ValueError naming ``path`` and the member, never another exception type;
* :func:`load_npz` validates every entry (names, shapes, floating dtypes, finite values) before it
  assigns any.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np

from nprefgen._validation import check_array, check_int
from nprefgen.nn.base import Module

META_PREFIX = "__meta__."
MAX_BYTES = 1 << 30          # default bound on the decompressed size of one file (1 GiB)
META_BYTES = 1 << 24         # what load_npz allows beyond the parameters (metadata, buffers)
_MAX_RATIO = 1100            # deflate expands at most ~1032:1; a larger claim is a tampered size
_CHUNK = 1 << 22             # bytes decompressed per read
_KINDS = "biufU"             # bool, int, uint, float, unicode: what a checkpoint may hold


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path: expected a file path (str or os.PathLike), got "
                         f"{type(path).__name__}")
    return path


def _check_module(module) -> Module:
    if not isinstance(module, Module):
        raise ValueError(f"module: expected an nprefgen.nn.Module, got {type(module).__name__}")
    return module


# -- writing ------------------------------------------------------------------------------------
def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: str) -> None:
    try:                                   # make the rename itself durable (POSIX)
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path):
    """Open a binary file that replaces ``path`` only if the ``with`` block completes.

    The file object is a temporary file in the target's folder (same file system, so the final
    ``os.replace`` is atomic); on success it is flushed, fsynced and renamed over ``path`` (with
    the old file's permissions, or the default ones for a new file). On any exception, including
    KeyboardInterrupt, the temporary is removed and ``path`` is left byte-identical::

        with atomic_write("model.npz") as f:
            np.savez_compressed(f, **arrays)
    """
    target = os.path.realpath(os.fspath(_check_path(path)))     # through symlinks
    folder, base = os.path.split(target)
    if os.path.isdir(target):
        raise ValueError(f"path: expected a file path, got the folder {os.fspath(path)!r}")
    try:
        mode = os.stat(target).st_mode & 0o7777
    except OSError:
        mode = _new_file_mode()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def save_npz(path, module: Module, meta: dict | None = None) -> None:
    """Write ``module.state_dict()`` (plus ``meta`` entries) to a compressed ``.npz`` at exactly
    ``path`` (numpy.savez would append ``.npz`` to a name without it, which ``load_npz(path)``
    then could not find), atomically (:func:`atomic_write`).

    Non-finite parameters are refused (``load_npz`` would refuse them anyway)."""
    _check_path(path)
    arrays = {name: check_array(p, f"module: parameter {name!r}", allow_empty=True)
              for name, p in _check_module(module).state_dict().items()}
    if meta is not None and not isinstance(meta, dict):
        raise ValueError(f"meta: expected a dict of numeric or string values, got "
                         f"{type(meta).__name__}")
    for key, value in (meta or {}).items():
        if not isinstance(key, str):
            raise ValueError(f"meta: expected str keys, got {type(key).__name__} {key!r}")
        arr = np.asarray(value)
        if arr.dtype.kind not in _KINDS:
            raise ValueError(f"meta[{key!r}]: expected a numeric or string value, got dtype "
                             f"{arr.dtype}")
        arrays[META_PREFIX + key] = arr
    _write_npz(path, arrays)


def _write_npz(path, arrays: dict) -> None:
    """Write ``{name: array}`` to a compressed ``.npz`` at exactly ``path``, atomically."""
    with atomic_write(path) as f:
        np.savez_compressed(f, **arrays)


# -- reading ------------------------------------------------------------------------------------
class _Member:
    """One ``.npy`` member of an ``.npz``, its header parsed and checked against its size."""

    def __init__(self, info: zipfile.ZipInfo, shape, fortran: bool, dtype: np.dtype,
                 header_len: int) -> None:
        self.info, self.shape, self.fortran, self.dtype = info, shape, fortran, dtype
        self.header_len = header_len
        self.nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize


def _bad(path, what: str, exc: BaseException | None = None) -> ValueError:
    detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return ValueError(f"path: {os.fspath(path)!r} is not a readable .npz file: {what}{detail}"[:600])


def _parse_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path) -> _Member:
    field = f"member {info.filename!r}"
    if info.flag_bits & 0x1:
        raise _bad(path, f"{field} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _bad(path, f"{field} uses compression method {info.compress_type} (expected "
                         f"stored or deflated)")
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size or \
            info.file_size > _MAX_RATIO * info.compress_size + (1 << 16):
        raise _bad(path, f"{field} claims {info.file_size} bytes from {info.compress_size} "
                         f"stored bytes (more than deflate can expand)")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise _bad(path, f"{field} has .npy format version {version} (expected 1.0 or 2.0)")
        header_len = f.tell()
    if dtype.kind not in _KINDS or dtype.hasobject or dtype.fields is not None \
            or dtype.subdtype is not None:
        raise _bad(path, f"{field} has dtype {dtype} (expected a plain numeric or string dtype; "
                         f"pickled objects are never loaded)")
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise _bad(path, f"{field} has an invalid shape {shape!r}")
    member = _Member(info, shape, fortran, dtype, header_len)
    if member.header_len + member.nbytes != info.file_size:         # before allocating anything
        raise _bad(path, f"{field} claims shape {shape} of {dtype} ({member.nbytes} bytes) but "
                         f"holds {info.file_size - header_len} data bytes")
    return member


def _read_member(zf: zipfile.ZipFile, m: _Member) -> np.ndarray:
    count = int(np.prod(m.shape, dtype=object))
    flat = np.empty(count, m.dtype)                  # m.nbytes, bounded by read_npz
    with zf.open(m.info) as f:
        f.seek(m.header_len)
        if m.nbytes:
            view = memoryview(flat.view(np.uint8))
            got = 0
            while got < m.nbytes:                    # chunks: no second full-size buffer
                chunk = f.read(min(_CHUNK, m.nbytes - got))
                if not chunk:
                    raise EOFError(f"expected {m.nbytes} data bytes, got {got}")
                view[got:got + len(chunk)] = chunk
                got += len(chunk)
        f.read(1)                                    # reach the end: zipfile checks the CRC
    return flat.reshape(m.shape, order="F" if m.fortran else "C")


def _open_members(path):
    _check_path(path)
    if not os.path.exists(path):
        raise ValueError(f"path: expected an existing .npz file, got {os.fspath(path)!r}")
    if os.path.isdir(path):
        raise ValueError(f"path: expected an .npz file, got the folder {os.fspath(path)!r}")
    try:
        with open(path, "rb") as fh:
            data = fh.read(4)
        if data != b"PK\x03\x04" and data != b"PK\x05\x06":
            kind = "a plain .npy array" if data == b"\x93NUM" else "no zip archive"
            raise _bad(path, f"{kind} (an .npz starts with a zip header)")
        zf = zipfile.ZipFile(path)
    except ValueError:
        raise
    except Exception as exc:                 # BadZipFile, OSError, NotImplementedError, ...
        raise _bad(path, "the zip directory cannot be read", exc) from exc
    members: dict[str, _Member] = {}
    try:
        for info in zf.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise _bad(path, f"member {name!r} is not an .npy array")
            key = name[:-4]
            if key in members:
                raise _bad(path, f"member {name!r} appears twice")
            try:
                members[key] = _parse_member(zf, info, path)
            except ValueError as exc:
                if str(exc).startswith("path:"):
                    raise
                raise _bad(path, f"member {name!r} has a corrupt .npy header", exc) from exc
            except Exception as exc:
                raise _bad(path, f"member {name!r} has a corrupt .npy header", exc) from exc
    except BaseException:
        zf.close()
        raise
    return zf, members


def read_npz(path, *, expected: dict | None = None, keys=None, max_bytes: int = MAX_BYTES
             ) -> dict[str, np.ndarray]:
    """Read the arrays of an ``.npz``, never unpickling; corrupt files raise ValueError.

    Every member's ``.npy`` header is parsed and checked against the member's size, and the total
    against ``max_bytes``, before any array is allocated. ``expected``: optional
    ``{name: shape}``; a listed member with another shape is refused from its header alone (the
    keys need not cover the file). ``keys``: read only these members (missing ones are left
    out). Returns ``{name: array}``.
    """
    max_bytes = check_int(max_bytes, "max_bytes", low=0)
    zf, members = _open_members(path)
    with zf:
        for key, shape in (expected or {}).items():
            if key in members and members[key].shape != tuple(shape):
                raise ValueError(f"path: {os.fspath(path)!r} does not fit: state[{key!r}]: "
                                 f"expected shape {tuple(shape)}, got {members[key].shape}")
        wanted = members if keys is None else {k: members[k] for k in keys if k in members}
        total = sum(m.nbytes for m in wanted.values())
        if total > max_bytes:                        # from the headers: nothing allocated yet
            raise _bad(path, f"its arrays hold {total} bytes, more than max_bytes={max_bytes}; "
                             f"pass a larger max_bytes to read it")
        out = {}
        for key, m in wanted.items():
            try:
                out[key] = _read_member(zf, m)
            except Exception as exc:         # zlib.error, BadZipFile (CRC), EOFError, ...
                raise _bad(path, f"member {m.info.filename!r} cannot be decompressed", exc) from exc
        return out


def read_json_object(value, where: str) -> dict:
    """A JSON object stored as a 0-d string array (how nprefgen keeps configurations in ``.npz``
    meta entries) -> dict with str keys; a ValueError starting with ``where`` (e.g.
    ``"path: 'f.npz': flow_config"``) when it is not a string, not JSON or not an object."""
    value = np.asarray(value)
    if value.dtype.kind != "U" or value.ndim != 0:
        raise ValueError(f"{where}: expected a JSON string, got an array of dtype {value.dtype} "
                         f"and shape {value.shape}")
    try:
        config = json.loads(str(value))
    except (ValueError, RecursionError) as exc:      # JSONDecodeError is a ValueError
        raise ValueError(f"{where}: expected valid JSON ({exc})") from exc
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ValueError(f"{where}: expected a JSON object, got {type(config).__name__}")
    return config


def _split_meta(arrays: dict) -> tuple[dict, dict]:
    """``read_npz`` output -> (state, meta): meta keys without their ``__meta__.`` prefix."""
    meta = {k[len(META_PREFIX):]: v for k, v in arrays.items() if k.startswith(META_PREFIX)}
    state = {k: v for k, v in arrays.items() if not k.startswith(META_PREFIX)}
    return state, meta


def _check_state(path, module: Module, state: dict) -> dict[str, np.ndarray]:
    """Validate ``state`` against ``module``'s parameters without assigning anything: the same
    names, the same shapes, floating dtypes, finite values. -> ``{name: array}`` ready to copy."""
    own = {name: p for name, p, _ in module.named_parameters()}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    where = f"path: {os.fspath(path)!r} does not fit the module"
    if missing or unexpected:
        raise ValueError(f"{where}: state: expected parameter names {sorted(own)}, "
                         f"missing {missing}, unexpected {unexpected}")
    values = {}
    for name, p in own.items():
        value = np.asarray(state[name])
        if value.dtype.kind != "f":
            raise ValueError(f"{where}: state[{name!r}]: expected a floating array, got dtype "
                             f"{value.dtype}")
        if value.shape != p.shape:
            raise ValueError(f"{where}: state[{name!r}]: expected shape {p.shape}, got "
                             f"{value.shape}")
        try:
            values[name] = check_array(value, f"state[{name!r}]", allow_empty=True)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
    return values


def load_npz(path, module: Module, *, check_meta=None, max_bytes: int | None = None) -> dict:
    """Load parameters saved by :func:`save_npz` into ``module`` in place; returns the meta dict.

    A file whose parameter names, shapes, dtypes or values do not fit ``module`` raises
    ValueError naming ``path`` (and the mismatch); ``module`` is then left unchanged.
    ``check_meta``: optional callable ``meta -> None`` that raises ValueError on bad metadata; it
    runs after the parameters are checked and before any is assigned (all or nothing: e.g.
    :meth:`nprefgen.flows.Flow.load` checks its buffers and configuration there).
    ``max_bytes``: bound on the file's decompressed arrays, by default what the module's
    parameters take in float64 plus 16 MiB of metadata (a larger claim is refused from the
    headers, before anything is allocated).
    """
    _check_module(module)
    if check_meta is not None and not callable(check_meta):
        raise ValueError(f"check_meta: expected None or a callable, got {type(check_meta).__name__}")
    shapes = {name: p.shape for name, p, _ in module.named_parameters()}
    if max_bytes is None:
        max_bytes = 8 * module.num_parameters() + META_BYTES
    state, meta = _split_meta(read_npz(path, expected=shapes, max_bytes=max_bytes))
    values = _check_state(path, module, state)
    if check_meta is not None:
        check_meta(meta)
    for name, p, _ in module.named_parameters():        # everything checked: now copy
        p[...] = values[name]
    return meta
