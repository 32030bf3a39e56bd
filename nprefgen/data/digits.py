"""The bundled 8x8 handwritten digits (UCI optdigits, 1,797 images) and their fixed split.

The file ``digits.npz`` ships inside the package (attribution, licence and digest: DIGITS.md;
how it was made: ``_make_digits.py``), so :func:`load_digits` works offline. Its SHA-256 is
checked on every load.

The train/val/test split is stratified by class and fixed once and for all (DATA.17): within each
class the images are ordered by a key drawn from the PCG64 *bit generator* seeded with
``SPLIT_SEED``. Bit-generator output is stable across NumPy versions (unlike ``Generator``
methods such as ``permutation``), so the split never changes under the user's feet. This is a
property of the data set, not randomness a caller controls, hence no ``rng`` argument.
"""
from __future__ import annotations

import hashlib
import io
import os
import pathlib

import numpy as np

from nprefgen._validation import check_choice, check_int

DIGITS_PATH = pathlib.Path(__file__).resolve().parent / "digits.npz"
DIGITS_SHA256 = "aa64e930663d6e9271e1566601d65e70236553f73ec6cb041a4ab37167cf1d04"
SPLIT_SEED = 20_180_701          # a constant: the split is part of the data set's definition
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
N_DIGITS = 1797
MAX_PIXEL = 16                   # pixels count "on" bits in a 4x4 block: 0..16

_SPLITS = ("train", "val", "test", "all")
_SCALES = ("unit", "raw")


def read_digits_file(path=None) -> tuple[np.ndarray, np.ndarray]:
    """Read ``digits.npz`` after checking its SHA-256.

    Parameters
    ----------
    path : path-like, optional
        Defaults to the copy bundled with the package. Only the exact bundled bytes are accepted.

    Returns
    -------
    images : (1797, 8, 8) uint8, values 0..16
    labels : (1797,) uint8, values 0..9

    Raises
    ------
    ValueError
        If the file is missing, its digest differs from ``DIGITS_SHA256`` (corrupted or
        replaced), or its arrays do not have the documented shapes.
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path: expected a file path (str or os.PathLike), got "
                         f"{type(path).__name__}")
    path = DIGITS_PATH if path is None else pathlib.Path(os.fspath(path))
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"path: cannot read the digits file {str(path)!r}: {exc}") from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != DIGITS_SHA256:
        raise ValueError(
            f"path: the digits file {str(path)!r} is corrupted or not the bundled file: "
            f"expected SHA-256 {DIGITS_SHA256}, got {digest} ({len(blob)} bytes); "
            "reinstall nprefgen or re-create it with nprefgen/data/_make_digits.py")
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        images, labels = npz["images"], npz["labels"]
    if images.shape != (N_DIGITS, 8, 8) or labels.shape != (N_DIGITS,):
        raise ValueError(f"path: unexpected shapes {images.shape}, {labels.shape} in {path}")
    return images, labels


def split_indices(labels: np.ndarray, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """The stratified 60/20/20 split (DATA.17) as sorted index arrays.

    Parameters
    ----------
    labels : (n,) int, class of each image
    seed : int, seeds the PCG64 bit generator whose raw 64-bit words order each class

    Returns
    -------
    dict with keys ``"train"``, ``"val"``, ``"test"``: disjoint sorted (n_split,) int64 arrays
    whose union is ``arange(n)``. Per class c with n_c images: round(0.6 n_c) go to train,
    round(0.2 n_c) to val, the rest to test (round half up).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected a non-empty 1-D array of integer class labels, got "
                         f"{labels.dtype} array of shape {labels.shape}")
    seed = check_int(seed, "seed", low=0)
    keys = np.random.PCG64(seed).random_raw(labels.shape[0])   # (n,) uint64, version-stable
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[np.argsort(keys[idx], kind="stable")]           # class c in key order
        n_c = idx.shape[0]
        n_train = int(np.floor(SPLIT_FRACTIONS["train"] * n_c + 0.5))   # (DATA.17)
        n_val = int(np.floor(SPLIT_FRACTIONS["val"] * n_c + 0.5))
        parts["train"].append(idx[:n_train])
        parts["val"].append(idx[n_train:n_train + n_val])
        parts["test"].append(idx[n_train + n_val:])
    return {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}


def load_digits(split: str = "train", scale: str = "unit", flatten: bool = True, path=None):
    """Load the bundled 8x8 digits, offline.

    Parameters
    ----------
    split : {"train", "val", "test", "all"}
        The fixed stratified split (DATA.17): 1,078 / 359 / 360 of the 1,797 images.
    scale : {"unit", "raw"}
        ``"unit"`` divides the counts 0..16 by 16 so that X lies in [0, 1] (DATA.17);
        ``"raw"`` keeps the counts (as float64).
    flatten : bool
        Return X as (n, 64) (row-major pixels) if True, else as (n, 8, 8) images.
    path : path-like, optional
        Another copy of ``digits.npz``; it must be byte-identical to the bundled one.

    Returns
    -------
    X : (n, 64) or (n, 8, 8) float64
    y : (n,) int64, the digit 0..9

    Examples
    --------
    >>> X, y = load_digits("train")
    >>> X.shape, y.shape
    ((1078, 64), (1078,))
    """
    check_choice(split, "split", _SPLITS)
    check_choice(scale, "scale", _SCALES)
    if not isinstance(flatten, (bool, np.bool_)):
        raise ValueError(f"flatten: expected True or False, got {flatten!r}")
    images, labels = read_digits_file(path)
    if split == "all":
        idx = np.arange(N_DIGITS)
    else:
        idx = split_indices(labels)[split]
    X = images[idx].astype(np.float64)                  # (n, 8, 8)
    if scale == "unit":
        X /= MAX_PIXEL                                   # (DATA.17) x = count / 16
    if flatten:
        X = X.reshape(X.shape[0], 64)
    return X, labels[idx].astype(np.int64)
