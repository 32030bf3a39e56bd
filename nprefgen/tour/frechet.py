"""One Frechet-distance table for every image model in the tour (derivations/gan.md, GAN.13).

The GAN, VAE and mixture section, the digits flows section and the score-model section each train
their own models; each reports its samples on the same scale with :func:`frechet_table`: the
squared Frechet distance to the train split in the bundled classifier's feature space, and that
distance over the floor (the test split's own distance to the train split), so the rows of the
three sections can be read side by side.
"""
from __future__ import annotations

import numpy as np

from nprefgen.data import load_digits
from nprefgen.metrics.frechet import frechet_distance, frechet_floor

N_SAMPLES = 360
"""Samples per model: the test split's size, so every row is at the floor's sample size."""

HEADER = ["samples", "Frechet distance to the train split", "/ floor"]


def frechet_rows(sets) -> list[list]:
    """``sets``: ``[(name, samples (n, 64) on the [0, 1] pixel scale), ...]`` -> table rows
    ``[name, distance, distance / floor]``, preceded by the floor's own row (the test split)."""
    train = load_digits("train")[0]
    floor = frechet_floor()
    rows = [["real: test split (the floor)", frechet_distance(load_digits("test")[0], train), None]]
    rows[0][2] = rows[0][1] / floor
    for name, x in sets:
        d = frechet_distance(np.asarray(x, dtype=np.float64), train)
        rows.append([name, d, d / floor])
    return rows


def frechet_table(report, sets, what: str) -> None:
    """Add the table of :func:`frechet_rows` to ``report`` with one caption for every section;
    ``what`` says which models the rows are (e.g. "the flows of this section")."""
    report.table(HEADER, frechet_rows(sets),
                 caption=f"squared Frechet distance (GAN.13) of {what} in the digits classifier's "
                         f"feature space, {N_SAMPLES} samples each against the train split; lower "
                         "is better, 1 x floor is as good as held-out real digits. The same scale "
                         "is used in the GAN, flows and score-model sections.")
