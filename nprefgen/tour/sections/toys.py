"""Tour section: the 2-D toy densities (nprefgen.data.toys)."""
from __future__ import annotations

import numpy as np

from nprefgen.data.toys import TOYS
from nprefgen.plots.data import plot_toys

ORDER = 12
TITLE = "Data: 2-D toy densities"


def _grid_integral(toy, h: float) -> float:
    """Midpoint-rule integral of exp(log_prob) over the toy's bounds (should be 1)."""
    (x0, x1), (y0, y1) = toy.bounds
    gx = np.arange(x0 + h / 2, x1, h)
    gy = np.arange(y0 + h / 2, y1, h)
    X, Y = np.meshgrid(gx, gy)
    return float(np.exp(toy.log_prob(np.stack([X.ravel(), Y.ravel()], axis=1))).sum() * h * h)


def build(report) -> None:
    rng = report.rng("toys")
    n = 1000 if report.quick else 4000
    report.text(
        "Five planar densities used to test density estimators, flows and score models. "
        "Rings, checkerboard and 8 Gaussians have closed-form log-densities (DATA.2, DATA.5, "
        "DATA.6), drawn as contours of log p; two moons and the pinwheel are defined by their "
        "samplers only (DATA.1, DATA.7).")
    samples = {name: toy.sample(n, rng=rng) for name, toy in TOYS.items()}
    log_probs = {name: toy.log_prob for name, toy in TOYS.items() if toy.has_log_prob}
    bounds = {name: toy.bounds for name, toy in TOYS.items()}
    report.figure(plot_toys(samples, log_probs, bounds, n_grid=80 if report.quick else 200),
                  "samples", f"{n} samples of each toy; shading: log p down to 10 nats below "
                  "its maximum")
    rows = []
    h = 0.02 if report.quick else 0.005
    for name, toy in TOYS.items():
        x = samples[name]
        if toy.has_log_prob:
            lp = toy.log_prob(x)
            integral = _grid_integral(toy, h)
            ok = report.check(f"{name}: integral of p", integral, "|integral - 1| < 1e-3",
                              bool(abs(integral - 1) < 1e-3), show=False)
            rows.append([name, "yes", integral, float(lp.mean()), float(lp.std() / np.sqrt(n)), ok])
        else:                                   # no density to integrate: nothing is checked
            rows.append([name, "no", "-", "-", "-", None])
    report.table(["toy", "closed-form log p", "integral of p on a grid", "mean log p(samples)",
                  "its std. error", "integral = 1"], rows, status_col=5,
                 caption=f"the densities integrate to one (midpoint rule, h = {h}); the mean "
                         "log p of samples estimates minus the entropy")
