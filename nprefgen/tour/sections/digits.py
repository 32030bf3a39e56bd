"""Tour section: the bundled 8x8 digits (nprefgen.data.digits)."""
from __future__ import annotations

import numpy as np

from nprefgen.data.digits import load_digits
from nprefgen.plots.data import plot_class_means, plot_digit_grid

ORDER = 11
TITLE = "Data: the bundled 8x8 digits"


def build(report) -> None:
    rng = report.rng("digits")
    report.text(
        "1,797 handwritten digits of 8x8 pixels (UCI optdigits; Alpaydin & Kaynak 1998, "
        "CC BY 4.0), bundled with the package and checked by SHA-256 on load. Pixels count "
        "'on' bits of 4x4 blocks (0..16) and are scaled to [0, 1]. The train/val/test split "
        "is stratified by class and fixed by a constant seed (DATA.17).")
    splits = {s: load_digits(s) for s in ("train", "val", "test")}
    rows = []
    for c in range(10):
        rows.append([str(c)] + [int(np.sum(y == c)) for _, y in splits.values()])
    rows.append(["all"] + [int(y.shape[0]) for _, y in splits.values()])
    report.table(["digit", "train", "val", "test"], rows, caption="images per class and split")
    total = sum(int(y.shape[0]) for _, y in splits.values())
    report.check("the three splits add up to the 1,797 images", total, "train + val + test = 1,797",
                 total == 1797)
    X, y = splits["train"]
    n_show = 30 if report.quick else 60
    pick = np.sort(rng.choice(X.shape[0], n_show, replace=False))
    report.figure(plot_digit_grid(X[pick], y[pick]), "grid",
                  f"{n_show} random training digits with their labels")
    Xa, ya = load_digits("all")
    report.figure(plot_class_means(Xa, ya), "means",
                  "mean image of all 1,797 digits, then of each class")
