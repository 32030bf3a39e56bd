"""Convert the UCI 8x8 digits CSV into ``nprefgen/data/digits.npz`` (run once, by hand).

This script is documentation of how the bundled file was made; nothing imports it. The source is
the copy of the UCI "Optical Recognition of Handwritten Digits" test set (``optdigits.tes``: 1,797
images of 8x8 pixels, integer values 0..16, 65 comma-separated columns: 64 pixels in row-major
order, then the label) that scikit-learn ships as ``sklearn/datasets/data/digits.csv.gz``. It was
taken from the scikit-learn 1.9.1 wheel; scikit-learn itself is not needed, only the CSV::

    unzip -o scikit_learn-1.9.1-*.whl sklearn/datasets/data/digits.csv.gz -d /tmp/src
    python -m nprefgen.data._make_digits /tmp/src/sklearn/datasets/data/digits.csv.gz

The output is written reproducibly (fixed zip timestamps, fixed member order), so running the
script again on the same CSV (with the same zlib) gives a byte-identical ``digits.npz`` whose
SHA-256 matches
``nprefgen.data.digits.DIGITS_SHA256`` and DIGITS.md. Attribution and licence: DIGITS.md.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import pathlib
import sys
import zipfile

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent / "digits.npz"


def read_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """Parse the CSV. Returns images: (1797, 8, 8) uint8 and labels: (1797,) uint8."""
    with gzip.open(path, "rt", encoding="ascii") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65):
        raise ValueError(f"{path}: expected 1797 rows of 65 integers, got shape {table.shape}")
    if table[:, :64].min() < 0 or table[:, :64].max() > 16:
        raise ValueError(f"{path}: pixel values outside 0..16")
    if set(np.unique(table[:, 64])) != set(range(10)):
        raise ValueError(f"{path}: labels are not the digits 0..9")
    images = table[:, :64].reshape(-1, 8, 8).astype(np.uint8)
    labels = table[:, 64].astype(np.uint8)
    return images, labels


def write_npz(path, arrays: dict) -> str:
    """Write a compressed ``.npz`` byte-reproducibly; returns its SHA-256 hex digest.

    ``np.savez_compressed`` stamps each member with the current time, so the same arrays give a
    different file (and digest) on every run. Here each member gets a fixed timestamp instead;
    ``np.load`` reads the result like any other ``.npz``.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__)
        return 2
    images, labels = read_csv(argv[0])
    digest = write_npz(OUT, {"images": images, "labels": labels})
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes), sha256 {digest}")
    print("class counts:", np.bincount(labels, minlength=10).tolist())
    return 0


if __name__ == "__main__":
    sys.exit(main())
