"""Tour section: a conditional flow p(pixels | central pixels) on the 8x8 digits."""
from __future__ import annotations

from nprefgen.plots.flows import plot_conditional_samples
from nprefgen.tour import digits_flows as demos

ORDER = 43
TITLE = "Conditional flows: digits given their central 2x2 pixels"


def build(report) -> None:
    rng = report.rng("flows_conditional")
    config = demos.QUICK if report.quick else demos.FULL
    report.text(
        "A conditional spline flow models the 60 outer pixels of a digit given its 2x2 centre "
        "(pixels (3,3), (3,4), (4,3), (4,4)), passed as a context vector v/16 to every coupling's "
        "conditioner (SPL.12). The outer pixels are dequantized and logit-transformed as in the "
        "previous section (SPL.14); scores are per image over the 60 modelled pixels in pixel "
        "units (SPL.15). The Gaussian baselines are the full-covariance Gaussian that ignores the "
        "centre and the same Gaussian conditioned on it in closed form (SPL.18).")
    res = demos.run_conditional(rng=rng, config=config, n_centres=4 if report.quick else 6,
                                n_per_centre=6 if report.quick else 10)
    report.table(demos.SCORE_HEADER, demos.score_rows(res.scores),
                 caption="test log-likelihood of the 60 outer pixels (higher is better)")
    report.figure(plot_conditional_samples(res.samples, res.centres, res.centre_idx,
                                           res.data.side, res.data.levels), "samples",
                  "each row: a centre (left, outlined) and samples of the outer pixels drawn at it. "
                  "First row: an all-zero centre, which only 0s (and some 7s) have - the flow "
                  "should draw mostly rings; the other rows use the centres of random test digits.")
