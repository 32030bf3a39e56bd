"""One VAE training step in nprefgen and in PyTorch (CPU, float64), side by side in one process.

The step is: encoder forward, reparameterisation with given noise, decoder forward, Bernoulli
log-likelihood from logits plus the analytic KL (the negative ELBO, VAE.2-VAE.7), backward
through both networks, Adam update. Architectures are the same in both libraries: a dense VAE
D-h1-h2-2d / d-h2-h1-D with ReLU, started from the same weights (nprefgen's, copied into torch
by state_dict name) and fed the same noise, so the script first checks that a few steps give the
same loss and parameters. Timings are interleaved and the median over repeats after a warm-up
is reported with the ratio nprefgen / torch (> 1: nprefgen is slower). One thread for both by
default (``--threads``).

``--quality`` instead trains the digits VAE (64-128-64-8, Bernoulli) in both libraries with the
same budget (epochs, batch size, Adam lr, initial weights) and reports the test ELBO and the
IWAE bound L_k of each; the PyTorch model's weights are loaded back into an nprefgen VAE (same
state_dict names) so that both bounds are computed by the same code.

    python benchmarks/bench_vae.py                       # digits (64-128-64-8) and MNIST sizes
    python benchmarks/bench_vae.py --repeats 200 --threads 2
    python benchmarks/bench_vae.py --quality --epochs 150 --k 5000
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nprefgen.models.vae import dense_vae  # noqa: E402
from nprefgen.nn import Adam  # noqa: E402

# (name, D, hidden, latent, batch)
PROBLEMS = [("digits 8x8", 64, (128, 64), 8, 64),
            ("MNIST-sized (Kingma & Welling)", 784, (400,), 20, 128)]


def make_problem(D, hidden, d, batch, seed=0):
    rng = np.random.default_rng(seed)
    vae = dense_vae(D, d, hidden=hidden, rng=rng)
    x = (rng.random((batch, D)) < 0.3).astype(np.float64)
    eps = rng.standard_normal((batch, d))
    return vae, x, eps


def nprefgen_stepper(vae, x, eps, lr=1e-3):
    opt = Adam(vae.parameters(), lr=lr)
    w = np.full(x.shape[0], -1.0 / x.shape[0])          # mean negative ELBO

    def step() -> float:
        vae.zero_grad()
        elbo, _ = vae.elbo_and_grad(x, eps, weights=w)
        opt.step()
        return -float(np.mean(elbo))
    return step


def torch_stepper(torch, vae_np, x, eps, lr=1e-3):
    nn = torch.nn

    def mlp(widths):
        layers = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1], dtype=torch.float64))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    D, d = vae_np.in_features, vae_np.latent_dim
    hidden = [m.params["weight"].shape[0] for m in vae_np.encoder.layers[:-1] if "weight" in m.params]
    net = nn.Module()
    net.encoder = mlp([D, *hidden, 2 * d])
    net.decoder = mlp([d, *hidden[::-1], D])
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in vae_np.nets.state_dict().items()})
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xt, et = torch.from_numpy(x), torch.from_numpy(eps)

    def step() -> float:
        opt.zero_grad()
        h = net.encoder(xt)
        mu, log_var = h[:, :d], h[:, d:]
        z = mu + torch.exp(0.5 * log_var) * et
        logits = net.decoder(z)
        rec = nn.functional.binary_cross_entropy_with_logits(logits, xt, reduction="none").sum(1)
        kl = 0.5 * (mu ** 2 + torch.expm1(log_var) - log_var).sum(1)
        loss = (rec + kl).mean()
        loss.backward()
        opt.step()
        return loss.item()
    return step, net


def agreement(torch, problem, n_steps=3):
    """Relative loss difference and largest parameter difference after identical steps."""
    vae, x, eps = make_problem(*problem[1:])
    step_np = nprefgen_stepper(vae, x, eps)
    step_t, net = torch_stepper(torch, vae, x, eps)
    losses = [(step_np(), step_t()) for _ in range(n_steps)]
    state_t = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    diff = max(float(np.max(np.abs(p - state_t[k]))) for k, p in vae.nets.state_dict().items())
    return max(abs(a - b) / abs(b) for a, b in losses), diff


def quality(torch, epochs: int, k: int, seed: int = 0):
    """Test ELBO and L_k (nats per image) of the digits VAE trained by nprefgen and by torch."""
    from nprefgen.data import load_digits

    X, _ = load_digits("train")
    X_test, _ = load_digits("test")
    batch, lr, d = 64, 2e-3, 8
    vae = dense_vae(64, d, hidden=(128, 64), rng=seed)
    init = vae.nets.state_dict()
    t0 = time.perf_counter()
    vae.fit(X, rng=seed, epochs=epochs, batch_size=batch, lr=lr, progress=False)
    t_np = time.perf_counter() - t0
    rows = {"nprefgen": (vae, t_np)}
    if torch is not None:
        twin = dense_vae(64, d, hidden=(128, 64), rng=seed)
        twin.nets.load_state_dict(init)
        _, net = torch_stepper(torch, twin, X[:1], np.zeros((1, d)))
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        xt = torch.from_numpy(X)
        t0 = time.perf_counter()
        for _ in range(epochs):
            for idx in torch.randperm(len(X), generator=gen).split(batch):
                xb = xt[idx]
                opt.zero_grad()
                h = net.encoder(xb)
                mu, log_var = h[:, :d], h[:, d:]
                z = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=gen,
                                                                 dtype=torch.float64)
                rec = torch.nn.functional.binary_cross_entropy_with_logits(
                    net.decoder(z), xb, reduction="none").sum(1)
                kl = 0.5 * (mu ** 2 + torch.expm1(log_var) - log_var).sum(1)
                (rec + kl).mean().backward()
                opt.step()
        t_t = time.perf_counter() - t0
        twin.nets.load_state_dict({n: v.detach().numpy().copy()
                                   for n, v in net.state_dict().items()})
        rows["torch"] = (twin, t_t)
    for name, (model, secs) in rows.items():
        elbo = model.elbo(X_test, rng=1, n_samples=10).mean()
        lk = model.log_prob_iwae(X_test, k, rng=2).mean()
        print(f"  {name:8s} trained in {secs:6.1f} s: test ELBO {elbo:.3f}, L_{k} {lk:.3f} nats/image")


def time_steps(steppers, warmup, repeats):
    for _ in range(warmup):
        for step in steppers.values():
            step()
    times = {k: [] for k in steppers}
    for _ in range(repeats):
        for k, step in steppers.items():
            t0 = time.perf_counter()
            step()
            times[k].append(time.perf_counter() - t0)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads for numpy and torch")
    ap.add_argument("--quality", action="store_true",
                    help="train the digits VAE in both libraries; report test ELBO and L_k")
    ap.add_argument("--epochs", type=int, default=150, help="training epochs for --quality")
    ap.add_argument("--k", type=int, default=5000, help="importance samples for --quality")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=args.threads, user_api="blas")
    try:
        import torch
    except ImportError:
        torch = None
    print(f"VAE training step (Bernoulli decoder, analytic KL, Adam), float64, "
          f"{args.threads} thread(s); median of {args.repeats} steps after {args.warmup} warm-up")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    if torch is not None:
        torch.set_num_threads(args.threads)
        print(f"torch {torch.__version__}")
    print()
    if args.quality:
        if torch is not None:
            torch.manual_seed(0)
        print(f"digits VAE 64-128-64-16 / 8-64-128-64, Bernoulli, {args.epochs} epochs, batch 64, "
              f"Adam lr 2e-3, same initial weights; 360 test digits")
        quality(torch, args.epochs, args.k)
        return 0
    for problem in PROBLEMS:
        name, D, hidden, d, batch = problem
        arch = f"{D}-{'-'.join(map(str, hidden))}-{2 * d} / {d}-{'-'.join(map(str, hidden[::-1]))}-{D}"
        print(f"{name}: {arch}, batch {batch}")
        vae, x, eps = make_problem(D, hidden, d, batch)
        steppers = {"nprefgen": nprefgen_stepper(vae, x, eps)}
        if torch is not None:
            rel, diff = agreement(torch, problem)
            print(f"  agreement after 3 steps: loss rel. diff {rel:.1e}, max |param diff| {diff:.1e}")
            steppers["torch"] = torch_stepper(torch, vae, x, eps)[0]
        res = time_steps(steppers, args.warmup, args.repeats)
        line = "  " + ", ".join(f"{k} {1e3 * m:.3f} ms (min {1e3 * lo:.3f})" for k, (m, lo) in res.items())
        if torch is not None:
            line += f"; ratio nprefgen / torch {res['nprefgen'][0] / res['torch'][0]:.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
