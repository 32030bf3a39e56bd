"""Tour section: a GAN and a VAE on log-normal density fields, judged by the field statistics
(nprefgen.models.gan, nprefgen.models.vae, nprefgen.metrics.field_stats; derivations/gan.md,
derivations/vae.md, derivations/data.md).

The data stand in for the cosmic web: delta = exp(g - var/2) - 1 with g a Gaussian random field of
power spectrum P(k) = 5 k^-2.5 on 32 x 32 pixels (mean 0, a long tail of overdense pixels). Both
models see log(1 + delta), standardised; their samples are mapped back and compared with
held-out maps by the power spectrum, the pixel histogram of log10(1 + delta) and the peak counts,
with the spread between two halves of the real maps as the yardstick.
"""
from __future__ import annotations

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen.data.grf import field_variance, gaussian_random_field, power_law
from nprefgen.metrics.field_stats import peak_counts, pixel_histogram, power_spectrum
from nprefgen.models.gan import conv_gan
from nprefgen.models.vae import conv_vae
from nprefgen.plots.gan import plot_field_maps, plot_field_statistics

ORDER = 37
TITLE = "GAN and VAE on log-normal density fields, judged by field statistics"

N_SIDE = 32
N_BINS = 8


def build(report) -> None:
    with blas_threads(1):                   # small matrices: threads only cost (nprefgen/_threads.py)
        _build(report)


def _stats(fields, hist_edges, peak_edges):
    ps = power_spectrum(fields, n_bins=N_BINS)
    h = pixel_histogram(fields, bins=hist_edges)
    p = peak_counts(fields, bins=peak_edges)
    return ps, (h.centres, h.values), (p.centres, p.values)


def _build(report) -> None:
    rng = report.rng("gan_fields")
    # children of rng (spawning draws nothing, so the training stream is the one before the
    # checkpoint selection came in): further held-out maps, the validation maps for the
    # selection, and the samples drawn to judge each checkpoint
    more_rng, val_rng, sel_rng = rng.spawn(3)
    quick = report.quick
    n_train, n_test = (300, 200) if quick else (3000, 1000)
    n_more, n_val, n_sel, every = (0, 200, 200, 20) if quick else (3000, 2000, 2000, 100)
    # full-mode budget sized for CI (the whole tour runs there; ~115 s CPU). The GAN, as measured
    # in benchmarks/RESULTS.md ("Field GAN: what closes the power gap", "... checkpoint
    # selection", "... a spectral feature for D meets the power bar"; benchmarks/probe_field_gan.py):
    # a two-layer head on D (d_hidden; a Flatten -> Linear head only sums patch features, GAN.15,
    # and left the lowest k-bins at 0.4-0.8 of the real power), the minibatch-std feature (GAN.16)
    # against under-dispersion, Adam with beta1 = 0 (beta1 0.5 swung the power by factors of
    # 10-2000 mid-run), 3000 steps, the last quarter with a linearly falling lr (GAN.18), latent
    # 128. The power orbits by +-20-40 % over 500-1000 steps, so the section keeps the checkpoint
    # that is best on separate validation maps (early stopping as on FID). That still left bins
    # 3-4 (|k| / k_f 2-4) at ~0.88 (worst 0.119 here); D's head now also gets each map's log band
    # power in the 8 shells of the statistic (d_spectrum=8, GAN.21-GAN.22), which removes that
    # shape error: probe seeds 0-3 give 0.047, 0.044, 0.043, 0.024 (before 0.118, 0.060, 0.163,
    # 0.120), this section 0.069. Periodic convolutions (padding="circular") did not add to it.
    gan_steps = 60 if quick else 3000
    vae_epochs = 1 if quick else 10
    P = power_law(5.0, 2.5)
    var = field_variance(P, N_SIDE)
    g = gaussian_random_field(N_SIDE, P, rng=rng, n_fields=n_train + n_test)
    delta = np.exp(g - 0.5 * var) - 1.0                        # log-normal: <delta> = 0
    real_train, real_test = delta[:n_train], delta[n_train:]
    if n_more:                                                 # a finer yardstick: 4000 maps
        g_more = gaussian_random_field(N_SIDE, P, rng=more_rng, n_fields=n_more)
        real_test = np.concatenate([real_test, np.exp(g_more - 0.5 * var) - 1.0])
        n_test = real_test.shape[0]
    real_val = np.exp(gaussian_random_field(N_SIDE, P, rng=val_rng, n_fields=n_val)
                      - 0.5 * var) - 1.0                       # only for checkpoint selection
    y = np.log1p(real_train)
    mu, sd = float(y.mean()), float(y.std())
    X = ((y - mu) / sd).reshape(n_train, -1)                   # (n, 1024) standardised log maps

    def to_delta(rows):
        return np.expm1(rows.reshape(-1, N_SIDE, N_SIDE) * sd + mu)

    report.text(
        f"{n_train} training and {n_test} held-out maps of a log-normal field delta = "
        f"exp(g - var/2) - 1, g a Gaussian random field with P(k) = 5 k^-2.5 on {N_SIDE} x "
        f"{N_SIDE} pixels (pixel variance of g: {var:.2f}). A DCGAN-style pair (conv_gan: "
        "latent 128, Linear -> two stride-2 transposed convolutions for G; for D two stride-2 "
        "convolutions -> minibatch standard deviation, side by side with the map's log power in "
        "the 8 |k| shells of the power spectrum below (GAN.21), -> Linear(64) -> Linear(1); "
        "channels 32/16, "
        f"LeakyReLU) is trained for {gan_steps} steps (Adam lr 1e-3, beta1 0, beta2 0.99, "
        "batches of 32, lr falling linearly to 0 over the last quarter; D's two-layer head, "
        "the band powers and the batch-spread feature let it see the largest scales, the "
        "spectrum's shape and under-dispersion); a "
        "convolutional VAE with a learned Gaussian variance (conv_vae, latent 32) for "
        f"{vae_epochs} epochs. Both model log(1 + delta), standardised. Checkpoint selection "
        f"(as early stopping on FID): every {every} GAN steps, {n_sel} samples are compared with "
        f"{n_val} further real maps drawn only for this (validation maps, never the held-out "
        "ones) by the worst power ratio below half Nyquist; the generator of the best "
        "checkpoint is kept and only it is judged on the held-out maps below.")
    gan = conv_gan((1, N_SIDE, N_SIDE), latent_dim=128, channels=(32, 16), rng=rng,
                   minibatch_std=True, d_hidden=64, d_spectrum=N_BINS)
    k_half = 0.5 * np.pi * N_SIDE                               # half the Nyquist wavenumber, L = 1
    val_ps = power_spectrum(real_val, n_bins=N_BINS)
    val_below = val_ps.k < k_half
    g_params = [p for p, _ in gan.generator.parameters()]
    best = {"worst": np.inf, "step": None, "params": None, "trace": []}

    def select(step, model):
        """Every ``every`` steps: the worst power ratio of n_sel samples against the validation
        maps (never the test maps); keep the generator of the best checkpoint so far."""
        if (step + 1) % every:
            return
        ps = power_spectrum(to_delta(model.sample(n_sel, rng=sel_rng)), n_bins=N_BINS)
        w = float(np.max(np.abs(ps.power[val_below] / val_ps.power[val_below] - 1.0)))
        best["trace"].append((step + 1, w))
        if w <= best["worst"]:                                  # ties: the later checkpoint
            best.update(worst=w, step=step + 1, params=[p.copy() for p in g_params])

    gan.fit(X, rng=rng, steps=gan_steps, batch_size=32, lr=1e-3, betas=(0.0, 0.99),
            lr_decay=0.25, progress=False, callback=select)
    for p, kept in zip(g_params, best["params"] or []):        # none kept: the last generator
        p[...] = kept
    trace = ", ".join(f"{st}: {w:.2f}" for st, w in best["trace"])
    report.text(f"Validation worst power ratio |P_G / P_val - 1| per checkpoint (step: value): "
                f"{trace}. Kept: step {best['step']} ({best['worst']:.3f}).")
    vae = conv_vae((1, N_SIDE, N_SIDE), 32, channels=(16, 32), rng=rng, likelihood="gaussian")
    vae.fit(X, rng=rng, epochs=vae_epochs, batch_size=64, lr=1e-3, progress=False)
    fake_gan = to_delta(gan.sample(n_test, rng=rng))
    fake_vae = to_delta(vae.sample(n_test, rng=rng))           # decoder means: the usual VAE figure

    report.figure(plot_field_maps({"real (held out)": real_test, "GAN": fake_gan,
                                   "VAE (decoder mean)": fake_vae}), "maps",
                  "log10(1 + delta) of held-out real maps and of samples, one colour scale")
    lo, hi = np.percentile(np.log10(1.0 + real_test), [0.1, 99.9])
    hist_edges = np.linspace(lo, hi, 30)
    peak_edges = np.linspace(0.0, float(np.percentile(real_test, 99.9)), 16)
    ref_ps, ref_h, ref_p = _stats(real_test, hist_edges, peak_edges)
    half = n_test // 2
    a_ps = _stats(real_test[:half], hist_edges, peak_edges)[0]
    b_ps = _stats(real_test[half:], hist_edges, peak_edges)[0]
    halves = a_ps.power / b_ps.power
    spread = np.abs(halves - 1.0)
    stats = {}
    for name, fields in (("GAN", fake_gan), ("VAE", fake_vae)):
        ps, h, p = _stats(fields, hist_edges, peak_edges)
        stats[name] = (ps.k, ps.power / ref_ps.power, h, p)
    report.figure(plot_field_statistics(
        {"real (held out)": (ref_ps.k, np.ones_like(ref_ps.k), ref_h, ref_p), **stats},
        band=(ref_ps.k, 1.0 - spread, 1.0 + spread), k_half=k_half), "statistics",
        "power spectrum ratio to the held-out maps (grey: the ratio between two halves of the "
        "real maps; green: within 10 %; dotted: half the Nyquist wavenumber), pixel histogram "
        "of log10(1 + delta) and peak counts (5 x 5 local maxima)")
    rows = []
    for i, k in enumerate(ref_ps.k):
        rows.append([float(k), stats["GAN"][1][i], stats["VAE"][1][i], float(halves[i])])
    report.table(["k", "P_GAN / P_real", "P_VAE / P_real", "real half A / half B"], rows,
                 caption=f"per k-bin; the issue's bar for the GAN: within 10 % below half the "
                         f"Nyquist wavenumber, k < {k_half:.0f}")
    below = ref_ps.k < k_half
    worst = float(np.max(np.abs(stats["GAN"][1][below] - 1.0)))
    report.check("GAN power spectrum, largest |ratio - 1| below half Nyquist", round(worst, 3),
                 f"<= 0.10 at every k-bin (issue 9); {n_test} samples vs {n_test} held-out "
                 f"maps, from the generator of step {best['step']}, the checkpoint chosen every "
                 f"{every} steps on {n_val} separate validation maps", bool(worst <= 0.10))
    def l1(a, b):
        return float(np.sum(np.abs(a - b)) / max(np.sum(np.abs(b)), 1e-300))
    a_h, a_p = _stats(real_test[:half], hist_edges, peak_edges)[1:]
    b_h, b_p = _stats(real_test[half:], hist_edges, peak_edges)[1:]
    rows = [[name, l1(s[2][1], ref_h[1]), l1(s[3][1], ref_p[1])] for name, s in stats.items()]
    a_all, a_b = [l1(a_h[1], ref_h[1]), l1(a_p[1], ref_p[1])], [l1(a_h[1], b_h[1]),
                                                               l1(a_p[1], b_p[1])]
    report.text(
        "What the power-spectrum bar does and does not show: D's head is handed each map's band "
        "power in the same 8 |k| shells the bar judges (of the standardised log(1 + delta) maps "
        "D sees, not of delta itself), so the GAN was trained against that statistic and the bar "
        "is not an independent test of it. The pixel histogram and the peak counts are not "
        "handed to D (its convolutions see only pixels): they are the independent check. GAN "
        f"vs held-out: histogram {rows[0][1]:.3f}, peaks {rows[0][2]:.3f} relative L1, against "
        f"the real maps' own {a_b[0]:.3f} and {a_b[1]:.3f} (half A vs half B) and {a_all[0]:.3f} "
        f"and {a_all[1]:.3f} (half A vs all held-out maps): {rows[0][1] / a_b[0]:.1f}-"
        f"{rows[0][1] / a_all[0]:.1f}x and {rows[0][2] / a_b[1]:.1f}-{rows[0][2] / a_all[1]:.1f}x "
        "the sampling noise; the issue sets no bar for them.")
    report.table(["samples", "pixel histogram: L1 distance / L1 norm", "peak counts: same"],
                 rows + [["real half A vs held-out", *a_all], ["real half A vs half B", *a_b]],
                 caption="relative L1 distance of each histogram to the held-out maps' (the "
                         "last row: half A's to half B's). The real rows are sampling noise "
                         "alone; half A against all held-out maps is exactly half of half A "
                         "against half B (all = (A + B) / 2), and the noise of "
                         f"{n_test} independent samples against the {n_test} held-out maps lies "
                         "between the two (about 1.4x the first, 0.7x the second)")
