"""One GAN training step (a discriminator step and a generator step) in nprefgen and in PyTorch
(CPU, float64), side by side in one process.

The step is: D on a real and a generated batch, binary cross-entropy from logits (GAN.3), Adam
update of D; then G through D with the non-saturating loss (GAN.5), Adam update of G, with DCGAN's
Adam (lr 2e-4, beta1 0.5). Both libraries start from the same weights (nprefgen's, copied into
torch by state_dict name) and get the same batches and noise, so the script first checks that
a few steps give the same losses and parameters. Timings are interleaved; the median over
repeats after a warm-up is reported with the ratio nprefgen / torch (> 1: nprefgen is slower).

    python benchmarks/bench_gan.py                       # 8-Gaussians MLP GAN and a digits MLP GAN
    python benchmarks/bench_gan.py --repeats 200 --threads 2
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

from nprefgen.models.gan import mlp_gan  # noqa: E402
from nprefgen.nn import Adam  # noqa: E402

# (name, data_dim, latent_dim, hidden, batch)
PROBLEMS = [("8 Gaussians", 2, 2, (128, 128), 256), ("digits-sized", 64, 16, (256, 256), 128)]


def make_problem(D, d, hidden, batch, seed=0):
    rng = np.random.default_rng(seed)
    gan = mlp_gan(D, d, hidden=hidden, rng=rng)
    return gan, rng.standard_normal((batch, D)), rng.standard_normal((batch, d)), \
        rng.standard_normal((batch, d))


def nprefgen_stepper(gan, x, z_d, z_g, lr=2e-4):
    opt_d = Adam(gan.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_g = Adam(gan.generator.parameters(), lr=lr, betas=(0.5, 0.999))

    def step():
        gan.nets.zero_grad()
        d_loss = gan.discriminator_loss_and_grad(x, z_d)
        opt_d.step()
        gan.nets.zero_grad()
        g_loss, _ = gan.generator_loss_and_grad(z_g)
        opt_g.step()
        return d_loss, g_loss
    return step


def torch_stepper(torch, gan_np, x, z_d, z_g, lr=2e-4):
    nn, F = torch.nn, torch.nn.functional

    def mlp(widths):
        layers = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1], dtype=torch.float64))
            if i < len(widths) - 2:
                layers.append(nn.LeakyReLU(0.01))
        return nn.Sequential(*layers)

    hidden = [m.params["weight"].shape[0] for m in gan_np.generator.layers[:-1]
              if "weight" in m.params]
    net = nn.Module()
    net.generator = mlp([gan_np.latent_dim, *hidden, gan_np.data_dim])
    net.discriminator = mlp([gan_np.data_dim, *hidden, 1])
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in gan_np.nets.state_dict().items()})
    opt_d = torch.optim.Adam(net.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net.generator.parameters(), lr=lr, betas=(0.5, 0.999))
    xt, zd, zg = (torch.from_numpy(a) for a in (x, z_d, z_g))

    def step():
        opt_d.zero_grad()
        with torch.no_grad():
            fake = net.generator(zd)
        d_loss = F.softplus(-net.discriminator(xt)).mean() + F.softplus(net.discriminator(fake)).mean()
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = F.softplus(-net.discriminator(net.generator(zg))).mean()
        g_loss.backward()
        opt_g.step()
        return d_loss.item(), g_loss.item()
    return step, net


def agreement(torch, problem, n_steps=3):
    gan, x, z_d, z_g = make_problem(*problem[1:])
    step_np = nprefgen_stepper(gan, x, z_d, z_g)
    step_t, net = torch_stepper(torch, gan, x, z_d, z_g)
    losses = [(step_np(), step_t()) for _ in range(n_steps)]
    state_t = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    diff = max(float(np.max(np.abs(p - state_t[k]))) for k, p in gan.nets.state_dict().items())
    rel = max(abs(a - b) / abs(b) for (a2, b2) in losses for a, b in zip(a2, b2))
    return rel, diff


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads for numpy and torch")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=args.threads, user_api="blas")
    try:
        import torch
    except ImportError:
        torch = None
    print(f"GAN step (D step + G step, Adam lr 2e-4 beta1 0.5), MLPs with LeakyReLU, float64, "
          f"{args.threads} thread(s); median of {args.repeats} steps after {args.warmup} warm-up")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    if torch is not None:
        torch.set_num_threads(args.threads)
        print(f"torch {torch.__version__}")
    print()
    for problem in PROBLEMS:
        name, D, d, hidden, batch = problem
        print(f"{name}: G {d}-{'-'.join(map(str, hidden))}-{D}, D {D}-{'-'.join(map(str, hidden))}-1, "
              f"batch {batch}")
        gan, x, z_d, z_g = make_problem(D, d, hidden, batch)
        steppers = {"nprefgen": nprefgen_stepper(gan, x, z_d, z_g)}
        if torch is not None:
            rel, diff = agreement(torch, problem)
            print(f"  agreement after 3 steps: loss rel. diff {rel:.1e}, max |param diff| {diff:.1e}")
            steppers["torch"] = torch_stepper(torch, gan, x, z_d, z_g)[0]
        for _ in range(args.warmup):
            for s in steppers.values():
                s()
        times = {k: [] for k in steppers}
        for _ in range(args.repeats):
            for k, s in steppers.items():
                t0 = time.perf_counter()
                s()
                times[k].append(time.perf_counter() - t0)
        res = {k: (statistics.median(v), min(v)) for k, v in times.items()}
        line = "  " + ", ".join(f"{k} {1e3 * m:.3f} ms (min {1e3 * lo:.3f})" for k, (m, lo) in res.items())
        if torch is not None:
            line += f"; ratio nprefgen / torch {res['nprefgen'][0] / res['torch'][0]:.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
