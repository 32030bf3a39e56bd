"""Denoising score matching loss + parameter gradients (SCORE.5-SCORE.7): nprefgen's NCSN
(hand-written backward, the DSM kernel of kernels/dsm.py) against PyTorch autograd on the same
network, batch, noise and levels, one thread each.

Run: ``python benchmarks/bench_dsm.py [--batch 1024] [--hidden 128 128] [--activation softplus]
[--repeats 30]``. Agreement first (loss to 1e-12, every gradient to 1e-10 of its largest entry),
then interleaved rounds; min and median per call and the ratio nprefgen / torch.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from nprefgen.models.ncsn import NCSN, geometric_sigmas


def torch_dsm(torch, params, x, z, sigma, act, concat):
    """The same loss by autograd: x~ = x + sigma z, s = f([x~, log sigma]) / sigma,
    mean of sigma^2/2 ||s + z/sigma||^2; returns the loss and the parameter gradients."""
    for p in params:
        p.grad = None
    xt = x + sigma * z
    h = torch.cat([xt, torch.log(sigma)], dim=1) if concat else xt
    for i in range(0, len(params), 2):
        h = torch.nn.functional.linear(h, params[i], params[i + 1])
        if i + 2 < len(params):
            h = act(h)
    s = h / sigma
    loss = (0.5 * sigma**2 * ((s + z / sigma) ** 2).sum(1, keepdim=True)).mean()
    loss.backward()
    return loss.item(), [p.grad for p in params]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--dim", type=int, default=2)
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    p.add_argument("--activation", default="softplus", choices=["relu", "softplus", "tanh"])
    p.add_argument("--conditioning", default="concat", choices=["concat", "scale"])
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    act = {"relu": torch.relu, "softplus": torch.nn.functional.softplus, "tanh": torch.tanh}[args.activation]
    rng = np.random.default_rng(0)
    model = NCSN(args.dim, hidden=tuple(args.hidden), activation=args.activation,
                 conditioning=args.conditioning, sigmas=geometric_sigmas(10.0, 0.01, 10), rng=0)
    x = rng.standard_normal((args.batch, args.dim))
    z, levels = model.draw_noise(args.batch, rng=rng)
    named = list(model.net.named_parameters())
    params = [torch.tensor(p_, requires_grad=True) for _, p_, _ in named]
    xt_, zt_ = torch.tensor(x), torch.tensor(z)
    sig = torch.tensor(model.sigmas[levels])[:, None]
    concat = args.conditioning == "concat"

    def ours():
        model.zero_grad()
        return model.dsm_loss_and_grad(x, z, levels)

    loss = ours()
    loss_t, grads_t = torch_dsm(torch, params, xt_, zt_, sig, act, concat)
    errs = [np.abs(g - gt.numpy()).max() / np.abs(gt.numpy()).max() for (_, _, g), gt in zip(named, grads_t)]
    print(f"loss: nprefgen {loss:.15g}  torch {loss_t:.15g}; worst gradient difference "
          f"{max(errs):.2e} of the largest entry")
    assert abs(loss - loss_t) <= 1e-12 * abs(loss_t) and max(errs) <= 1e-10

    fns = {"nprefgen dsm_loss_and_grad": ours,
           "torch autograd": lambda: torch_dsm(torch, params, xt_, zt_, sig, act, concat)}
    times = {k: [] for k in fns}
    for _ in range(args.repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    ref_min, ref_med = min(times["torch autograd"]), float(np.median(times["torch autograd"]))
    print(f"\nbatch {args.batch}, MLP {args.dim + concat}-{'-'.join(map(str, args.hidden))}-{args.dim} "
          f"({args.activation}, {args.conditioning}), float64, one thread, {args.repeats} interleaved "
          f"rounds; load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}")
    print(f"{'implementation':28s} {'min ms':>8s} {'median ms':>10s} {'min/torch':>10s} {'med/torch':>10s}")
    for k, ts in times.items():
        print(f"{k:28s} {1e3 * min(ts):8.2f} {1e3 * np.median(ts):10.2f} {min(ts) / ref_min:10.2f} "
              f"{np.median(ts) / ref_med:10.2f}")


if __name__ == "__main__":
    main()
