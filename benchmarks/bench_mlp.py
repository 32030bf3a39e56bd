"""One MLP training step in nprefgen and in PyTorch (CPU), side by side in one process.

The step is forward, MSE loss, backward, Adam update, for an MLP 64-256-256-64 with ReLU on a
batch of 256, in float32 and float64. Both networks start from the same weights (nprefgen's,
copied into torch by state_dict name), so the script also checks that a few steps give the same
loss and parameters. Timings are interleaved (one nprefgen step, one torch step, ...) so that
load from other processes hits both alike; the median over repeats after a warm-up is reported,
with the ratio nprefgen / torch (> 1: nprefgen is slower).

Torch gets as many intra-op threads as numpy's BLAS has (read with threadpoolctl), so the two
use the same cores. Without torch, only nprefgen is timed.

    python benchmarks/bench_mlp.py                     # both dtypes, 100 timed steps each
    python benchmarks/bench_mlp.py --repeats 200 --dtypes float64 --threads 1
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

from nprefgen.nn import MLP, Adam, mse_loss  # noqa: E402

IN, HIDDEN, OUT, BATCH = 64, (256, 256), 64, 256


def blas_threads() -> int | None:
    """Threads of numpy's BLAS (threadpoolctl), read before torch loads its own libraries."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [d["num_threads"] for d in threadpool_info() if d.get("user_api") == "blas"]
    return max(counts) if counts else None


def import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def make_problem(dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    net = MLP(IN, list(HIDDEN), OUT, rng=rng, activation="relu", dtype=dtype)
    x = rng.standard_normal((BATCH, IN)).astype(dtype)
    y = rng.standard_normal((BATCH, OUT)).astype(dtype)
    return net, x, y


def nprefgen_stepper(net, x, y, lr: float = 1e-3):
    opt = Adam(net.parameters(), lr=lr)

    def step() -> float:
        opt.zero_grad()
        pred, cache = net.forward(x)
        loss, d_pred = mse_loss(pred, y)
        net.backward(cache, d_pred)
        opt.step()
        return loss
    return step


def torch_stepper(torch, net_np, x, y, lr: float = 1e-3):
    dtype = {np.float32: torch.float32, np.float64: torch.float64}[x.dtype.type]
    layers = []
    widths = [IN, *HIDDEN, OUT]
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1], dtype=dtype))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    # same names, same layouts: nprefgen's state_dict loads straight into torch
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in net_np.state_dict().items()})
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.MSELoss()

    def step() -> float:
        opt.zero_grad()
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        return loss.item()
    return step, net


def agreement(torch, dtype, n_steps: int = 3):
    """Losses and parameters after ``n_steps`` identical steps in both libraries."""
    net_np, x, y = make_problem(dtype)
    step_np = nprefgen_stepper(net_np, x, y)
    step_t, net_t = torch_stepper(torch, net_np, x, y)
    losses = [(step_np(), step_t()) for _ in range(n_steps)]
    state_t = {k: v.detach().numpy() for k, v in net_t.state_dict().items()}
    diff = max(float(np.max(np.abs(p - state_t[k]))) for k, p in net_np.state_dict().items())
    loss_diff = max(abs(a - b) / abs(b) for a, b in losses)
    return loss_diff, diff


def time_steps(steppers: dict, warmup: int, repeats: int) -> dict:
    """``{name: (median, min)}`` seconds per step of each stepper, interleaved."""
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
    ap.add_argument("--repeats", type=int, default=100, help="timed steps per library and dtype")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--no-torch", action="store_true", help="time nprefgen only")
    ap.add_argument("--threads", type=int, default=None,
                    help="limit numpy's BLAS to this many threads (threadpoolctl); torch gets the same")
    args = ap.parse_args(argv)

    if args.threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=args.threads, user_api="blas")
    n_blas = blas_threads()
    torch = None if args.no_torch else import_torch()
    print(f"MLP {IN}-{'-'.join(map(str, HIDDEN))}-{OUT}, ReLU, batch {BATCH}, MSE, Adam; "
          f"median of {args.repeats} steps after {args.warmup} warm-up steps")
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"numpy BLAS threads {n_blas if n_blas is not None else 'unknown (no threadpoolctl)'}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (1 min)")
    if torch is None:
        print(f"torch: {'not used (--no-torch)' if args.no_torch else 'not installed'}, timing nprefgen only")
    else:
        if n_blas is not None:
            torch.set_num_threads(n_blas)
        print(f"torch {torch.__version__}, intra-op threads {torch.get_num_threads()}")
    print()
    print("median (min) milliseconds per training step; ratio of the medians")
    print(f"{'dtype':8s} {'nprefgen ms':>16s} {'torch ms':>16s} {'ratio':>6s}   agreement after 3 steps")
    for name in args.dtypes.split(","):
        dtype = {"float32": np.float32, "float64": np.float64}[name.strip()]
        net_np, x, y = make_problem(dtype)
        steppers = {"nprefgen": nprefgen_stepper(net_np, x, y)}
        check = ""
        if torch is not None:
            steppers["torch"] = torch_stepper(torch, *make_problem(dtype))[0]
            loss_diff, p_diff = agreement(torch, dtype)
            check = f"loss rel. diff {loss_diff:.1e}, max |param diff| {p_diff:.1e}"
        med = time_steps(steppers, args.warmup, args.repeats)
        t_np, m_np = (1e3 * t for t in med["nprefgen"])
        cell_np = f"{t_np:.2f} ({m_np:.2f})"
        if torch is not None:
            t_t, m_t = (1e3 * t for t in med["torch"])
            print(f"{name:8s} {cell_np:>16s} {f'{t_t:.2f} ({m_t:.2f})':>16s} {t_np / t_t:6.2f}   {check}")
        else:
            print(f"{name:8s} {cell_np:>16s} {'-':>16s} {'-':>6s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
