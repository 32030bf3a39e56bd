"""NT-Xent loss + gradient (N=512 pairs, d=128): nprefgen (numba + BLAS, and the NumPy twin)
against PyTorch autograd, side by side in one process.

Run: ``python benchmarks/bench_ntxent.py [--n 512] [--d 128] [--tau 0.5] [--repeats 30]``.
The three implementations are timed in interleaved rounds (the machine is shared), and the
minimum and median over the rounds are reported, with the ratio nprefgen / torch. The values are
checked against each other first (loss to 1e-12, gradient to 1e-10 relative).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from nprefgen.kernels.ntxent import ntxent, ntxent_numpy


def torch_ntxent(torch, h_t, tau, targets, eye):
    """Loss and gradient by autograd: the usual SimCLR implementation (normalize, cosine / tau,
    the diagonal masked out, cross-entropy against the positive's index)."""
    h_t.grad = None
    z = torch.nn.functional.normalize(h_t, dim=1)
    logits = (z @ z.T / tau).masked_fill(eye, float("-inf"))
    loss = torch.nn.functional.cross_entropy(logits, targets)
    loss.backward()
    return loss.item(), h_t.grad


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=512, help="pairs N (2N views)")
    p.add_argument("--d", type=int, default=128, help="embedding dimension")
    p.add_argument("--tau", type=float, default=0.5)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=0,
                   help="limit torch and the BLAS under numpy to this many threads (0: defaults)")
    args = p.parse_args(argv)

    import torch

    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)

    rng = np.random.default_rng(0)
    n2 = 2 * args.n
    h = rng.standard_normal((n2, args.d))
    h_t = torch.tensor(h, dtype=torch.float64, requires_grad=True)
    targets = (torch.arange(n2) + args.n) % n2
    eye = torch.eye(n2, dtype=torch.bool)

    # agreement first
    l_np, g_np = ntxent_numpy(h, args.tau)
    l_nb, g_nb = ntxent(h, args.tau)
    l_t, g_t = torch_ntxent(torch, h_t, args.tau, targets, eye)
    g_t = g_t.numpy()
    scale = np.abs(g_t).max()
    print(f"loss: numba {l_nb:.15g}  numpy {l_np:.15g}  torch {l_t:.15g}")
    print(f"max |grad difference| / max |grad|: numba-torch {np.abs(g_nb - g_t).max() / scale:.2e}, "
          f"numpy-torch {np.abs(g_np - g_t).max() / scale:.2e}")
    assert abs(l_nb - l_t) <= 1e-12 * abs(l_t) and np.abs(g_nb - g_t).max() <= 1e-10 * scale

    fns = {
        "nprefgen ntxent (numba+BLAS)": lambda: ntxent(h, args.tau),
        "nprefgen ntxent_numpy": lambda: ntxent_numpy(h, args.tau),
        "torch autograd": lambda: torch_ntxent(torch, h_t, args.tau, targets, eye),
    }
    times = {k: [] for k in fns}
    for f in fns.values():            # warm-up (numba compile is cached on disk)
        f()
    for _ in range(args.repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    ref_min = min(times["torch autograd"])
    ref_med = float(np.median(times["torch autograd"]))
    print(f"\nN={args.n} pairs (2N={n2} views), d={args.d}, tau={args.tau}, float64, "
          f"{args.repeats} interleaved rounds")
    from threadpoolctl import threadpool_info

    blas_threads = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"torch {torch.__version__} threads {torch.get_num_threads()}; numpy {np.__version__} "
          f"BLAS threads {blas_threads}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{'implementation':32s} {'min ms':>9s} {'median ms':>10s} {'min/torch':>10s} {'med/torch':>10s}")
    for k, ts in times.items():
        print(f"{k:32s} {1e3 * min(ts):9.2f} {1e3 * np.median(ts):10.2f} "
              f"{min(ts) / ref_min:10.2f} {np.median(ts) / ref_med:10.2f}")


if __name__ == "__main__":
    main()
