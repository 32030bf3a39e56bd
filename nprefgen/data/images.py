"""Integer-valued image data sets for density estimation: the bundled 8x8 digits or MNIST, split
into train / validation / test, and the indices of an image's central block (derivations/
splines.md, SPL.14-SPL.18, where the digits flows use them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nprefgen._validation import check_choice, check_int


@dataclass
class ImageData:
    """Integer images, flattened row-major: ``train``, ``val``, ``test``: (n, side*side) float
    arrays of integers in [0, levels - 1]."""

    name: str
    side: int
    levels: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def dim(self) -> int:
        return self.side * self.side


def load_image_data(dataset: str = "digits", *, mnist_root=None, max_train: int | None = None,
                    max_test: int | None = None) -> ImageData:
    """The bundled digits (fixed 1,078 / 359 / 360 split, 17 levels) or MNIST from its IDX files.

    Parameters
    ----------
    dataset : "digits" or "mnist"
    mnist_root : folder with the MNIST IDX files (required for "mnist"; never downloaded here).
        MNIST's last 10,000 training images are the validation split.
    max_train, max_test : keep only the first so many training / test (and validation) images.
    """
    check_choice(dataset, "dataset", ("digits", "mnist"))
    if dataset == "digits":
        from nprefgen.data.digits import load_digits

        parts = [load_digits(s, scale="raw")[0] for s in ("train", "val", "test")]
        side, levels = 8, 17
    else:
        from nprefgen.data.mnist import load_mnist

        if mnist_root is None:
            raise ValueError("mnist_root: expected the folder holding the MNIST IDX files, got None")
        train, _ = load_mnist(mnist_root, "train", scale="raw")
        test, _ = load_mnist(mnist_root, "test", scale="raw")
        parts = [train[:-10_000], train[-10_000:], test]
        side, levels = 28, 256
    if max_train is not None:
        parts[0] = parts[0][: check_int(max_train, "max_train", low=2)]
    if max_test is not None:
        m = check_int(max_test, "max_test", low=2)
        parts[1], parts[2] = parts[1][:m], parts[2][:m]
    return ImageData(dataset, side, levels, *(np.asarray(p, dtype=np.float64) for p in parts))


def central_indices(side: int, size: int = 2) -> np.ndarray:
    """Row-major indices of the central ``size x size`` block of a ``side x side`` image.

    For the 8x8 digits and size 2: pixels (3,3), (3,4), (4,3), (4,4) -> [27, 28, 35, 36].
    """
    side = check_int(side, "side", low=2)
    size = check_int(size, "size", low=1, high=side - 1)
    lo = (side - size) // 2
    rows = np.arange(lo, lo + size)
    return (rows[:, None] * side + rows[None, :]).reshape(-1)
