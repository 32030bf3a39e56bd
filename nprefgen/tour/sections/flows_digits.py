"""Tour section: unconditional flows on the bundled 8x8 digits (nprefgen.tour.digits_flows)."""
from __future__ import annotations

import numpy as np

from nprefgen.flows.logit import logit_to_pixels
from nprefgen.plots.flows import plot_sample_grids
from nprefgen.tour import digits_flows as demos
from nprefgen.tour.frechet import N_SAMPLES, frechet_table

ORDER = 42
TITLE = "Flows on the 8x8 digits: test log-likelihood and samples"


def _curves(histories):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for name, h in histories.items():
        if h is None:
            continue
        ep = np.arange(1, len(h["train_loss"]) + 1)
        line, = ax.plot(ep, h["train_loss"], lw=1, alpha=0.6)
        ax.plot(ep, h["val_loss"], lw=1.8, color=line.get_color(), label=name)
        ax.plot(h["best_epoch"] + 1, h["val_loss"][h["best_epoch"]], "o", color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL, logit space (nats/image)")
    ax.set_title("training (thin) and validation (thick)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def build(report) -> None:
    rng = report.rng("flows_digits")
    config = demos.QUICK if report.quick else demos.FULL
    report.text(
        "Density estimation by maximum likelihood on the 1,078 training digits, early stopping on "
        "the 359 validation digits, scores on the 360 test digits. Pixels (0..16) are dequantized "
        "with uniform noise, squeezed by lambda = 0.05 and mapped to logit space (SPL.14); every "
        "model is fitted there and its density is moved back to the dequantized pixels in pixel "
        "units (SPL.15), so the numbers below are comparable across models and are a lower bound "
        "on the log-probability of the integer images. A model that knew nothing but the pixel "
        "range would score 64 log 17 = -181.3 nats (log2 17 = 4.09 bits/dim). Fresh noise is drawn "
        "every epoch; the test set is dequantized once with a fixed seed.")
    res = demos.run_unconditional(rng=rng, config=config, n_samples=16 if report.quick else 32)
    report.table(demos.SCORE_HEADER, demos.score_rows(res.scores),
                 caption="test log-likelihood of the dequantized digits (higher is better); "
                         "the Gaussian is the maximum-likelihood full-covariance Gaussian in logit "
                         "space (SPL.17)")
    layers = ", ".join(f"{k} {v} layers" for k, v in config.n_layers.items())
    report.text(
        f"Sizes: {layers}; conditioners with two hidden layers of {config.hidden} ReLU units; "
        f"spline flows with {config.n_bins} bins on [-{config.bound}, {config.bound}]; Adam "
        f"lr {config.lr}, batch {config.batch_size}, at most {config.epochs} epochs, patience "
        f"{config.patience}. The MAF paper (Papamakarios et al. 2017, Table 1/2) orders the models "
        "Gaussian < RealNVP <= MAF on MNIST; spline couplings (Durkan et al. 2019) bend each "
        "coordinate with a monotone rational-quadratic function instead of an affine map.")
    data = res.data
    pick = rng.choice(data.test.shape[0], res.samples["gaussian"].shape[0], replace=False)
    grids = {"test images": data.test[pick], **res.samples}
    report.figure(plot_sample_grids(grids, data.side, data.levels), "samples",
                  "test digits, then samples of every model (integer pixels after inverting the "
                  "logit transform and flooring)")
    if data.dim == 64 and data.levels == 17:        # the bundled digits (the classifier's input)
        # (GAN.13) the flows on the GAN section's scale: fresh samples at the test split's size,
        # integer pixels 0..16 mapped to [0, 1] like the classifier's inputs
        sets = [(f"{name} (logit space)", logit_to_pixels(model.sample(N_SAMPLES, rng=rng),
                                                          data.levels, demos.LAMBDA) / 16.0)
                for name, model in res.models.items()]
        frechet_table(report, sets, "samples of this section's models (integer pixels / 16)")
    report.figure(_curves(res.histories), "curves",
                  "mean negative log-likelihood per epoch in logit space; dots: the restored best epoch")
