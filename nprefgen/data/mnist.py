"""MNIST from the four standard IDX files: a strict IDX reader, checksums, optional download.

nprefgen does not bundle MNIST. :func:`load_mnist` reads the files from a folder the user chose
(``train-images-idx3-ubyte.gz`` and friends, gzip-compressed or not) and, with
``download=True``, fetches missing ones from the public mirrors with :mod:`urllib`.

IDX format (LeCun et al.): a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, then ``ndim``
big-endian uint32 sizes, then the values in C order, big-endian. :func:`read_idx` checks every
part and that the file holds exactly ``prod(sizes)`` values: a truncated, padded or corrupted
file raises ``ValueError`` naming the file and what was wrong.

Checksums. ``MNIST_FILES`` records the size in bytes and the SHA-256 of each standard ``.gz``
file: the sizes are those the original site served (9,912,422 / 28,881 / 1,648,877 / 4,542
bytes) and the digests those recorded by common dataset loaders (e.g. torchvision's prototype
MNIST) for the same files on the mirrors below. They could not be re-computed here (no
internet); if a mirror ever serves different bytes, loading fails loudly rather than silently.
An uncompressed copy cannot be checked against these digests; it is checked for the expected
IDX structure instead (dtype, shape, labels 0..9).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import tempfile
import urllib.error
import urllib.request
import zlib

import numpy as np

from nprefgen._validation import check_choice, check_int, check_scalar, check_str

# IDX dtype codes -> big-endian NumPy dtypes
IDX_DTYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

# (split, part) -> file name, size in bytes and SHA-256 of the .gz file, array shape
MNIST_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte.gz", 9912422,
                          "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                          (60000, 28, 28)),
    ("train", "labels"): ("train-labels-idx1-ubyte.gz", 28881,
                          "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                          (60000,)),
    ("test", "images"): ("t10k-images-idx3-ubyte.gz", 1648877,
                         "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                         (10000, 28, 28)),
    ("test", "labels"): ("t10k-labels-idx1-ubyte.gz", 4542,
                         "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                         (10000,)),
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


class MNISTDownloadError(OSError):
    """No mirror delivered a file with the expected size and digest (offline, blocked, moved)."""


class MNISTNotFoundError(FileNotFoundError, ValueError):
    """An MNIST file is missing from ``root`` (and ``download=False``): a FileNotFoundError, and
    a ValueError naming ``root`` like every other bad argument."""


def _check_path(path, name: str = "path") -> pathlib.Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{name}: expected a file path (str or os.PathLike), got "
                         f"{type(path).__name__}")
    return pathlib.Path(os.fspath(path))


def _check_digest(sha256) -> str:
    if not (isinstance(sha256, str) and len(sha256) == 64
            and all(c in "0123456789abcdef" for c in sha256.lower())):
        raise ValueError(f"sha256: expected 64 hexadecimal digits, got {sha256!r}")
    return sha256.lower()


def parse_idx(blob: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file. ``name`` is used in error messages.

    Returns an array of the file's shape in native byte order (uint8 for MNIST).
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise ValueError(f"blob: expected the bytes of an IDX file, got {type(blob).__name__}")
    return _parse_idx(bytes(blob), name, "blob")


def _parse_idx(blob: bytes, name: str, arg: str) -> np.ndarray:
    """:func:`parse_idx`, its errors naming ``arg`` (``blob``, or ``path`` for :func:`read_idx`)."""
    def bad(what: str) -> ValueError:
        return ValueError(f"{arg}: IDX file {name!r} {what}")

    if len(blob) < 4:
        raise bad(f"is too short for the 4-byte magic number ({len(blob)} bytes)")
    if blob[0] != 0 or blob[1] != 0:
        raise bad(f"has a wrong magic number {blob[:4].hex()}: the first two bytes must be zero")
    code, ndim = blob[2], blob[3]
    if code not in IDX_DTYPES:
        raise bad(f"has an unknown dtype code 0x{code:02x} (expected one of "
                  f"{', '.join(f'0x{c:02x}' for c in IDX_DTYPES)})")
    if ndim == 0:
        raise bad("declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise bad(f"is truncated in its header: {ndim} dimensions need {header} bytes, "
                  f"got {len(blob)}")
    dims = tuple(int(d) for d in np.frombuffer(blob, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(blob) < expected:
        raise bad(f"is truncated: shape {dims} of {dtype.name} needs {expected} bytes, "
                  f"got {len(blob)}")
    if len(blob) > expected:
        raise bad(f"has {len(blob) - expected} unexpected trailing bytes after the data of "
                  f"shape {dims} ({expected} bytes expected)")
    data = np.frombuffer(blob, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed (detected from the content, not the name).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    array of the shape and dtype declared in the header (native byte order)

    Raises
    ------
    ValueError
        Naming the file: unreadable, a broken gzip stream, wrong magic number, unknown dtype
        code, truncated header or data, trailing bytes.
    """
    path = _check_path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"path: cannot read IDX file {str(path)!r}: {exc}") from exc
    if blob[:2] == _GZIP_MAGIC:
        try:
            blob = gzip.decompress(blob)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"path: IDX file {str(path)!r} is a corrupted or truncated gzip "
                             f"stream: {exc}") from exc
    return _parse_idx(blob, str(path), "path")


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    path = _check_path(path)
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise ValueError(f"path: cannot read {str(path)!r}: {exc}") from exc
    return h.hexdigest()


def verify_file(path, size: int, sha256: str) -> None:
    """Raise ``ValueError`` if ``path`` does not have the given size and SHA-256."""
    path = _check_path(path)
    size = check_int(size, "size", low=0)
    sha256 = _check_digest(sha256)
    try:
        actual = os.path.getsize(path)
    except OSError as exc:
        raise ValueError(f"path: cannot read {str(path)!r}: {exc}") from exc
    if actual != size:
        raise ValueError(f"path: {str(path)!r} has {actual} bytes, expected {size} "
                         "(incomplete download or a different file)")
    digest = sha256_file(path)
    if digest != sha256:
        raise ValueError(f"path: {str(path)!r} has SHA-256 {digest}, expected {sha256} "
                         "(corrupted or a different file)")


def download_file(filename: str, root, size: int, sha256: str, mirrors=MNIST_MIRRORS,
                  timeout: float = 10.0) -> pathlib.Path:
    """Fetch ``filename`` from the first mirror that serves the expected bytes.

    Each mirror URL is ``mirror + filename``; the payload must have ``size`` bytes and the
    given SHA-256 before it is written (atomically) to ``root/filename``.

    Raises
    ------
    MNISTDownloadError
        Listing every mirror tried and why it failed, when none delivered the file.
    """
    timeout = check_scalar(timeout, "timeout", low=0.0, low_inclusive=False)
    check_str(filename, "filename")
    if not filename or os.path.basename(filename) != filename or filename in (".", ".."):
        raise ValueError(f"filename: expected a plain file name, got {filename!r}")
    root = _check_path(root, "root")
    size = check_int(size, "size", low=0)
    sha256 = _check_digest(sha256)
    mirrors = _check_mirrors(mirrors)
    failures = []
    for mirror in mirrors:
        url = mirror + filename
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                blob = resp.read(size + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures.append(f"{url}: {exc}")
            continue
        digest = hashlib.sha256(blob).hexdigest()
        if len(blob) != size or digest != sha256:
            failures.append(f"{url}: got {len(blob)} bytes with SHA-256 {digest}, expected "
                            f"{size} bytes with SHA-256 {sha256}")
            continue
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{filename}.")
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, root / filename)
        return root / filename
    raise MNISTDownloadError(
        f"could not download {filename}: no mirror delivered it (is this machine offline?). "
        f"Tried:\n  " + "\n  ".join(failures) +
        f"\nDownload the file by hand into {str(root)!r} and call load_mnist again.")


def _check_mirrors(mirrors) -> tuple[str, ...]:
    if isinstance(mirrors, str) or not isinstance(mirrors, (tuple, list)) or not mirrors or \
            not all(isinstance(m, str) for m in mirrors):
        raise ValueError(f"mirrors: expected a non-empty list of base URLs, got {mirrors!r}")
    return tuple(mirrors)


def _find(root: pathlib.Path, gz_name: str) -> pathlib.Path | None:
    for candidate in (root / gz_name, root / gz_name[:-3]):
        if candidate.is_file():
            return candidate
    return None


def load_mnist(root, split: str = "train", download: bool = False, scale: str = "unit",
               flatten: bool = True, dtype=np.float64, verify: bool = True,
               mirrors=MNIST_MIRRORS, timeout: float = 10.0):
    """Load MNIST's train (60,000) or test (10,000) split from the IDX files in ``root``.

    Parameters
    ----------
    root : path-like, the folder holding ``train-images-idx3-ubyte.gz`` etc. (or the
        uncompressed files of the same names without ``.gz``)
    split : {"train", "test"}
    download : bool, fetch missing files from ``mirrors`` (needs internet)
    scale : {"unit", "raw"}, pixels / 255 in [0, 1], or the raw values 0..255
    flatten : bool, X as (n, 784) if True, else (n, 28, 28)
    dtype : float64 (default) or float32; the train split is 376 MB in float64
    verify : bool, check the size and SHA-256 of ``.gz`` files (``MNIST_FILES``) and the shapes
        of uncompressed ones. ``False`` reads any consistent pair of IDX files (tests).
    mirrors : sequence of base URLs, tried in order
    timeout : float, seconds per connection attempt

    Returns
    -------
    X : (n, 784) or (n, 28, 28) of ``dtype``
    y : (n,) int64
    """
    check_choice(split, "split", ("train", "test"))
    check_choice(scale, "scale", ("unit", "raw"))
    if np.dtype(dtype) not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype: expected float64 or float32, got {np.dtype(dtype)}")
    if not isinstance(flatten, (bool, np.bool_)):
        raise ValueError(f"flatten: expected True or False, got {flatten!r}")
    root = _check_path(root, "root")
    if download:
        check_scalar(timeout, "timeout", low=0.0, low_inclusive=False)
        _check_mirrors(mirrors)
    arrays = {}
    for part in ("images", "labels"):
        name, size, digest, shape = MNIST_FILES[(split, part)]
        path = _find(root, name)
        if path is None:
            if not download:
                raise MNISTNotFoundError(
                    f"root: {name} (or {name[:-3]}) not found in {str(root)!r}; pass "
                    "download=True to fetch it, or copy the MNIST IDX files there")
            path = download_file(name, root, size, digest, mirrors=mirrors, timeout=timeout)
        try:
            if verify and path.name.endswith(".gz"):
                verify_file(path, size, digest)
            arr = read_idx(path)
        except ValueError as exc:          # a corrupt or different file in root
            raise ValueError(f"root: {exc}") from exc
        if verify and (arr.shape != shape or arr.dtype != np.uint8):
            raise ValueError(f"root: {str(path)!r} holds {arr.dtype} of shape {arr.shape}, "
                             f"expected uint8 of shape {shape}")
        arrays[part] = arr
    images, labels = arrays["images"], arrays["labels"]
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"root: images of shape {images.shape} and labels of shape "
                         f"{labels.shape} do not pair up")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"root: labels outside 0..9 in the {split} split")
    X = images.astype(dtype)
    if scale == "unit":
        X /= 255.0                       # in place: keeps the dtype
    if flatten:
        X = X.reshape(X.shape[0], -1)
    return X, labels.astype(np.int64)
