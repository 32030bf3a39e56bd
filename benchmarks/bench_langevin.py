"""Annealed Langevin dynamics (SCORE.12) with an MLP score: nprefgen's numba loop (the network
evaluated inside the loop, kernels/langevin.py), its NumPy twin, and the same loop in PyTorch
(``torch.no_grad``, ``F.linear`` + activation per layer, ``randn_like`` noise), one thread each.

Run: ``python benchmarks/bench_langevin.py [--n 10000] [--levels 10] [--steps 100]
[--hidden 128 128] [--activation relu] [--repeats 3]``.

Default workload (issue 10): 10,000 particles in 2-D, MLP 2 -> 128 -> 128 -> 2, L = 10 levels,
T = 100 steps per level, float64. The three implementations are timed in interleaved rounds (the
machine is shared) after a warm-up; min and median over the rounds, and the ratio nprefgen / torch.
Agreement first: the numba loop, the twin and torch run 2 levels x 3 steps on the same noise and
must agree to 1e-10 relative.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from nprefgen.kernels.langevin import (
    annealed_langevin_mlp, annealed_langevin_mlp_numpy, noise_blocks,
)
from nprefgen.models.ncsn import NCSN, geometric_sigmas


def torch_annealed(torch, params, x0, sigmas, eps, n_steps_each, act, noise=None):
    """Algorithm 1 of Song & Ermon (2019) in PyTorch: x <- x + (alpha/2) f(x)/sigma + sqrt(alpha) z.
    ``noise[i]``: (T, n, D) array for level i, or None for torch's own generator."""
    F = torch.nn.functional
    x = torch.from_numpy(np.array(x0))
    with torch.no_grad():
        for i, sigma in enumerate(sigmas):
            alpha = float(eps * sigma**2 / sigmas[-1] ** 2)
            z_level = None if noise is None else torch.from_numpy(noise[i])
            for t in range(n_steps_each):
                h = x
                for l, (w, b) in enumerate(params):
                    h = F.linear(h, w, b)
                    if l < len(params) - 1:
                        h = act(h)
                z = torch.randn_like(x) if z_level is None else z_level[t]
                x = x + (0.5 * alpha) * (h * (1.0 / sigma)) + np.sqrt(alpha) * z
    return x.numpy()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=10_000, help="particles")
    p.add_argument("--levels", type=int, default=10, help="noise levels L")
    p.add_argument("--steps", type=int, default=100, help="steps per level T")
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    p.add_argument("--activation", default="relu", choices=["relu", "softplus", "tanh", "elu"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-numpy", action="store_true", help="time only numba and torch")
    args = p.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    acts = {"relu": torch.relu, "softplus": torch.nn.functional.softplus, "tanh": torch.tanh,
            "elu": torch.nn.functional.elu}
    act = acts[args.activation]

    d = 2
    model = NCSN(d, hidden=tuple(args.hidden), activation=args.activation, conditioning="scale",
                 sigmas=geometric_sigmas(10.0, 0.1, args.levels), rng=0)
    w, b = model.mlp_arrays()
    params = [(torch.from_numpy(wi), torch.from_numpy(bi)) for wi, bi in zip(w, b)]
    sigmas, eps = model.sigmas, 1e-4
    x0 = np.random.default_rng(1).uniform(-3.0, 3.0, size=(args.n, d))

    # agreement on shared noise: 2 levels x 3 steps
    kw = dict(activation=args.activation, eps=eps, n_steps_each=3)
    x_nb = annealed_langevin_mlp(x0, sigmas[:2], w, b, rng=7, **kw)[0]
    x_np = annealed_langevin_mlp_numpy(x0, sigmas[:2], w, b, rng=7, **kw)[0]
    gen = np.random.default_rng(7)
    noise = [next(noise_blocks(3, args.n, d, rng=gen))[1] for _ in range(2)]
    x_t = torch_annealed(torch, params, x0, sigmas[:2], eps, 3, act, noise)
    scale = np.abs(x_t).max()
    err_nb, err_np = np.abs(x_nb - x_t).max() / scale, np.abs(x_np - x_t).max() / scale
    print(f"agreement after 2 levels x 3 steps: max |numba - torch| / max |x| = {err_nb:.2e}, "
          f"|numpy - torch| {err_np:.2e}, |numba - numpy| {np.abs(x_nb - x_np).max() / scale:.2e}")
    assert err_nb <= 1e-10 and err_np <= 1e-10

    fns = {
        "nprefgen numba loop": lambda: annealed_langevin_mlp(
            x0, sigmas, w, b, activation=args.activation, eps=eps, n_steps_each=args.steps, rng=0),
        "nprefgen NumPy twin": lambda: annealed_langevin_mlp_numpy(
            x0, sigmas, w, b, activation=args.activation, eps=eps, n_steps_each=args.steps, rng=0),
        "torch loop": lambda: torch_annealed(torch, params, x0, sigmas, eps, args.steps, act),
    }
    if args.skip_numpy:
        del fns["nprefgen NumPy twin"]
    annealed_langevin_mlp(x0[:10], sigmas, w, b, activation=args.activation, eps=eps,
                          n_steps_each=2, rng=0)                     # warm-up (cached compile)
    times = {k: [] for k in fns}
    for _ in range(args.repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    ref_min, ref_med = min(times["torch loop"]), float(np.median(times["torch loop"]))
    print(f"\nn={args.n} particles, D={d}, MLP {d}-{'-'.join(map(str, args.hidden))}-{d} "
          f"({args.activation}), L={args.levels}, T={args.steps}, float64, one thread, "
          f"{args.repeats} interleaved rounds; load average {os.getloadavg()[0]:.1f}")
    print(f"torch {torch.__version__}; numpy {np.__version__}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{'implementation':24s} {'min s':>8s} {'median s':>9s} {'min/torch':>10s} {'med/torch':>10s}")
    for k, ts in times.items():
        print(f"{k:24s} {min(ts):8.2f} {np.median(ts):9.2f} {min(ts) / ref_min:10.2f} "
              f"{np.median(ts) / ref_med:10.2f}")
    print(f"torch / numba (min): {ref_min / min(times['nprefgen numba loop']):.2f}x")


if __name__ == "__main__":
    main()
