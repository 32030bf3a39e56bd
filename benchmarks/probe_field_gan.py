"""Probe: what makes the field GAN's power spectrum match the real maps' (issue 9's bar).

The data and networks are those of the tour section ``gan_fields`` (3000 standardised maps of
log(1 + delta), a log-normal field with P(k) = 5 k^-2.5 on 32 x 32 pixels; 1000 held-out maps).
Each configuration trains a conv GAN with its own alternating loop (so the learning rates of D and
G, a linear decay of both at the end, an EMA of G's weights and n_critic can be varied without
touching ``GAN.fit``) and prints, every ``--every`` steps, the worst |P_GAN / P_real - 1| over the
k-bins below half the Nyquist wavenumber (the section's check), with the training CPU time
(time.process_time, evaluation excluded)::

    python benchmarks/probe_field_gan.py --config base mbstd --seeds 0 1 2 --steps 2000

``--config`` names entries of CONFIGS below; the last column of every line is the per-bin ratio.

Checkpoint selection (``--n-val N``, N > 0): N further real maps from their own seed (never the
test maps) serve as a validation set; at every evaluation the worst ratio of ``--n-gen`` fresh
samples against the validation maps is printed beside the test one, and at the end the line
``selected`` names the checkpoint with the smallest validation worst ratio and gives its *test*
worst ratio (the tour section keeps that checkpoint's generator). ``--n-test`` / ``--n-gen`` set
the number of held-out maps and of generated maps per evaluation (1000 each by default). The
line ``judged`` then gives what the section reports for that generator: the worst ratio and the
per-bin ratios of ``--n-test`` fresh samples against the held-out maps, and the relative L1
distances of the pixel histogram and of the peak counts to the held-out maps' (real half A vs
all held-out maps beside them; since "all" is the mean of halves A and B, that is half the
half-A-vs-half-B distance, the sampling-noise yardstick the tour shows)::

    python benchmarks/probe_field_gan.py --config head_b0_mbstd_decay --seeds 0 1 2 \
        --steps 3000 --n-val 2000 --n-test 4000 --n-gen 2000
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nprefgen.data.grf import field_variance, gaussian_random_field, power_law  # noqa: E402
from nprefgen.metrics.field_stats import peak_counts, pixel_histogram, power_spectrum  # noqa: E402
from nprefgen.models.gan import GAN, conv_gan  # noqa: E402
from nprefgen.nn import Adam  # noqa: E402

N_SIDE, N_BINS = 32, 8

# name -> options: latent, channels, mbstd (minibatch-std feature in D), lr_g, lr_d, decay
# (fraction of the steps at the end over which both lrs fall linearly to 0), ema (beta or None),
# n_critic, r1 (gamma), batch
BASE = dict(latent=32, channels=(32, 16), mbstd=False, lr_g=1e-3, lr_d=1e-3, decay=0.0, ema=None,
            n_critic=1, r1=0.0, batch=32, head=None,
            betas=(0.5, 0.999), padding="zeros", spectrum=None)
CONFIGS = {
    "base": {},
    "mbstd": dict(mbstd=True),
    "decay": dict(decay=0.25),
    "mbstd_decay": dict(mbstd=True, decay=0.25),
    "ttur": dict(lr_g=5e-4, lr_d=1e-3),
    "mbstd_ttur": dict(mbstd=True, lr_g=5e-4, lr_d=1e-3),
    "latent128": dict(latent=128),
    "mbstd_latent128": dict(mbstd=True, latent=128),
    "mbstd_ema": dict(mbstd=True, ema=0.99),
    "head": dict(head=64),
    "head_mbstd": dict(head=64, mbstd=True),
    "head_r1": dict(head=64, r1=1.0),
    "head_decay": dict(head=64, decay=0.5),
    "head_mbstd_decay": dict(head=64, mbstd=True, decay=0.5),
    "head_ema": dict(head=64, ema=0.99),
    "head_r1_decay": dict(head=64, r1=1.0, decay=0.5),
    "head_b0": dict(head=64, betas=(0.0, 0.99)),
    "head_b0_r1": dict(head=64, betas=(0.0, 0.99), r1=1.0),
    "head_decay_ema": dict(head=64, decay=0.5, ema=0.99),
    "head_b0_decay": dict(head=64, betas=(0.0, 0.99), decay=0.5),
    "head_b0_mbstd": dict(head=64, betas=(0.0, 0.99), mbstd=True),
    "head_b0_mbstd_ema": dict(head=64, betas=(0.0, 0.99), mbstd=True, ema=0.995),
    "head_b0_mbstd_ttur": dict(head=64, betas=(0.0, 0.99), mbstd=True, lr_g=4e-4, lr_d=1e-3),
    "head_b0_mbstd_nc2_decay": dict(head=64, betas=(0.0, 0.99), mbstd=True, n_critic=2,
                                    decay=0.25),
    "head_b0_mbstd_decay_z128": dict(head=64, betas=(0.0, 0.99), mbstd=True, decay=0.25,
                                     latent=128),
    "head_b0_mbstd_decay50_z128": dict(head=64, betas=(0.0, 0.99), mbstd=True, decay=0.5,
                                       latent=128),
    # the tour section's setting:
    "head_b0_mbstd_decay": dict(head=64, betas=(0.0, 0.99), mbstd=True, decay=0.25),
    "head_b0_mbstd_decay25_ema": dict(head=64, betas=(0.0, 0.99), mbstd=True, decay=0.25,
                                      ema=0.995),
    "head_b0_mbstd_decay_ema": dict(head=64, betas=(0.0, 0.99), mbstd=True, decay=0.5, ema=0.995),
    # periodic convolutions in G and D (GAN.19-GAN.20), on the section's setting (latent 128)
    "z128_circular": dict(head=64, betas=(0.0, 0.99), mbstd=True, decay=0.25, latent=128,
                          padding="circular"),
    # D's head also sees the per-sample log band power in 8 shells (GAN.21-GAN.22)
    "z128_spec": dict(head=64, betas=(0.0, 0.99), mbstd=True, decay=0.25, latent=128,
                      spectrum=8),
    "z128_circ_spec": dict(head=64, betas=(0.0, 0.99), mbstd=True, decay=0.25, latent=128,
                           padding="circular", spectrum=8),
}


def make_data(rng, n_train=3000, n_test=1000, n_val=0):
    """The section's maps: (X: (n_train, 1024) standardised log maps, to_delta, real_test,
    real_val); real_val (n_val maps, None for 0) from a child of rng, so the rest is unchanged."""
    P = power_law(5.0, 2.5)
    var = field_variance(P, N_SIDE)
    g = gaussian_random_field(N_SIDE, P, rng=rng, n_fields=n_train + n_test)
    delta = np.exp(g - 0.5 * var) - 1.0
    y = np.log1p(delta[:n_train])
    mu, sd = float(y.mean()), float(y.std())
    X = ((y - mu) / sd).reshape(n_train, -1)

    def to_delta(rows):
        return np.expm1(rows.reshape(-1, N_SIDE, N_SIDE) * sd + mu)

    val = None
    if n_val:
        g_val = gaussian_random_field(N_SIDE, P, rng=rng.spawn(1)[0], n_fields=n_val)
        val = np.exp(g_val - 0.5 * var) - 1.0
    return X, to_delta, delta[n_train:], val


def build(opts, rng) -> GAN:
    gan = conv_gan((1, N_SIDE, N_SIDE), latent_dim=opts["latent"], channels=opts["channels"],
                   rng=rng, minibatch_std=opts["mbstd"], d_hidden=opts["head"],
                   padding=opts["padding"], d_spectrum=opts["spectrum"])
    return gan


def power_ratio(gan, to_delta, ref_power, below, rng, n_gen=1000):
    fake = to_delta(gan.sample(n_gen, rng=rng))
    return power_spectrum(fake, n_bins=N_BINS).power[below] / ref_power


def histogram_distances(fake, real):
    """The section's relative L1 distances (pixel histogram of log10(1 + delta), peak counts) of
    fake maps to the real (held-out) maps, with its bin edges."""
    lo, hi = np.percentile(np.log10(1.0 + real), [0.1, 99.9])
    h_edges = np.linspace(lo, hi, 30)
    p_edges = np.linspace(0.0, float(np.percentile(real, 99.9)), 16)

    def l1(a, b):
        return float(np.sum(np.abs(a - b)) / max(np.sum(np.abs(b)), 1e-300))

    return (l1(pixel_histogram(fake, bins=h_edges).values, pixel_histogram(real, bins=h_edges).values),
            l1(peak_counts(fake, bins=p_edges).values, peak_counts(real, bins=p_edges).values))


def train(gan, X, opts, steps, rng, every, evaluate):
    """The alternating loop of GAN.fit with separate lrs, a final linear decay and an EMA."""
    opt_d = Adam(gan.discriminator.parameters(), lr=opts["lr_d"], betas=opts["betas"])
    opt_g = Adam(gan.generator.parameters(), lr=opts["lr_g"], betas=opts["betas"])
    g_params = [p for p, _ in gan.generator.parameters()]
    avg = [p.copy() for p in g_params] if opts["ema"] else None
    n, m = X.shape[0], opts["batch"]
    start = int((1.0 - opts["decay"]) * steps)
    cpu = 0.0
    for step in range(steps):
        t0 = time.process_time()
        f = 1.0 if step < start else (steps - step) / (steps - start)
        opt_d.lr, opt_g.lr = f * opts["lr_d"], f * opts["lr_g"]
        for _ in range(opts["n_critic"]):
            xb = X[rng.integers(0, n, m)]
            z = rng.standard_normal((m, gan.latent_dim))
            gan.nets.zero_grad()
            gan.discriminator_loss_and_grad(xb, z, r1_gamma=opts["r1"])
            opt_d.step()
        gan.nets.zero_grad()
        gan.generator_loss_and_grad(rng.standard_normal((m, gan.latent_dim)))
        opt_g.step()
        if avg is not None:
            for a, p in zip(avg, g_params):
                a *= opts["ema"]
                a += (1.0 - opts["ema"]) * p
        cpu += time.process_time() - t0
        if (step + 1) % every == 0 or step + 1 == steps:
            if avg is not None:
                raw = [p.copy() for p in g_params]
                for a, p in zip(avg, g_params):
                    p[...] = a
            evaluate(step + 1, cpu)
            if avg is not None:
                for r, p in zip(raw, g_params):
                    p[...] = r
    return cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", nargs="+", default=["base"], choices=sorted(CONFIGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--n-gen", type=int, default=1000)
    ap.add_argument("--n-val", type=int, default=0)
    args = ap.parse_args(argv)
    X, to_delta, real, val = make_data(np.random.default_rng(12345), n_test=args.n_test,
                                       n_val=args.n_val)
    ref = power_spectrum(real, n_bins=N_BINS)
    val_power = None if val is None else power_spectrum(val, n_bins=N_BINS).power
    below = ref.k < 0.5 * np.pi * N_SIDE
    half = real.shape[0] // 2
    halves = (power_spectrum(real[:half], n_bins=N_BINS).power
              / power_spectrum(real[half:], n_bins=N_BINS).power)[below]
    real_h, real_p = histogram_distances(real[:half], real)
    print(f"real half A / half B below half Nyquist: {np.round(halves, 3).tolist()}  "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    for name in args.config:
        opts = {**BASE, **CONFIGS[name]}
        for seed in args.seeds:
            rng = np.random.default_rng(seed)
            gan = build(opts, rng)
            eval_rng = np.random.default_rng(1000 + seed)
            checkpoints = []                         # (validation worst, step, test worst)

            def evaluate(step, cpu):
                t0 = time.process_time()
                v = ""
                if val_power is not None:
                    rv = power_ratio(gan, to_delta, val_power[below], below, eval_rng,
                                     args.n_gen)
                    wv = float(np.max(np.abs(rv - 1)))
                    v = f"val {wv:.3f} "
                r = power_ratio(gan, to_delta, ref.power[below], below, eval_rng, args.n_gen)
                w = float(np.max(np.abs(r - 1)))
                if val_power is not None:
                    checkpoints.append((wv, step, w, r,
                                        [p.copy() for p, _ in gan.generator.parameters()]))
                print(f"{name:16s} seed {seed} step {step:5d} cpu {cpu:6.1f} s {v}worst "
                      f"{w:.3f}  {np.round(r, 2).tolist()}  (eval "
                      f"{time.process_time() - t0:.1f} s)", flush=True)

            cpu = train(gan, X, opts, args.steps, rng, args.every, evaluate)
            if checkpoints:
                wv, step, w, r, kept = min(checkpoints, key=lambda c: (c[0], -c[1]))
                print(f"{name:16s} seed {seed} selected step {step} (val {wv:.3f}): test worst "
                      f"{w:.3f}  {np.round(r, 2).tolist()}; last step: test worst "
                      f"{checkpoints[-1][2]:.3f}", flush=True)
                for (p, _), k in zip(gan.generator.parameters(), kept):
                    p[...] = k
                fake = to_delta(gan.sample(real.shape[0], rng=eval_rng))
                rj = power_spectrum(fake, n_bins=N_BINS).power[below] / ref.power[below]
                dh, dp = histogram_distances(fake, real)
                print(f"{name:16s} seed {seed} judged step {step}: {real.shape[0]} samples vs "
                      f"{real.shape[0]} held-out maps: worst {np.max(np.abs(rj - 1)):.3f}  "
                      f"{np.round(rj, 3).tolist()}  histogram L1 {dh:.3f}  peaks L1 {dp:.3f}  "
                      f"(real half: {real_h:.3f} / {real_p:.3f})  training cpu {cpu:.1f} s",
                      flush=True)
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
