"""Probe accuracies on the digits test split for several seeds: the SimCLR encoder trained as in
the tour section "contrastive" vs the same architecture at random initialisation vs PCA
features of the same dimension vs raw pixels.

Run: ``python benchmarks/probe_accuracies.py [--seeds 3] [--epochs 150]`` (about 20 s per seed
on one core). Prints one table per seed and the mean and standard deviation over seeds.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from nprefgen.tour.sections.contrastive import compare_representations


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=150)
    args = p.parse_args(argv)
    acc: dict[str, list[tuple[float, float]]] = {}
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        rows, *_ = compare_representations(rng=np.random.default_rng(seed), epochs=args.epochs)
        print(f"seed {seed} ({time.perf_counter() - t0:.1f} s)")
        for name, dim, lin, knn in rows:
            print(f"  {name:40s} dim {dim:3d}  linear probe {lin:.4f}  5-NN {knn:.4f}")
            acc.setdefault(f"{name} [{dim}]", []).append((lin, knn))
    print(f"\nmean (sd) over {args.seeds} seeds, test split of 360 digits:")
    print(f"| features | linear probe | 5-NN |\n|---|---|---|")
    for name, vals in acc.items():
        v = np.array(vals)
        print(f"| {name} | {v[:, 0].mean():.4f} ({v[:, 0].std(ddof=1) if len(v) > 1 else 0:.4f}) "
              f"| {v[:, 1].mean():.4f} ({v[:, 1].std(ddof=1) if len(v) > 1 else 0:.4f}) |")


if __name__ == "__main__":
    main()
