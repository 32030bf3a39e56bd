"""Agreement of nprefgen.interop with zuko and nflows: the max relative errors of check_against
over random flows of every supported family (several seeds, weights perturbed after the library's
initialisation, inputs spread beyond the spline bounds), per quantity, and the time per check.

    python benchmarks/bench_interop.py --seeds 5 --n 64

Quantities: per transform the output, inverse and log-det (fed the library's input to that
transform); for the whole flow log p and the gradients of sum log p w.r.t. x, the context and
every library parameter (pooled as "grad params"). The relative error is normwise per array
(max |ours - theirs| / max |theirs|). A row above 1e-10 passes only within its rounding bound
2 m floor (floor: the library's own change under one-ulp perturbations of every input and weight;
m: the largest fan-in), see nprefgen/interop/check.py; the last columns count those rows and
give the largest rel / bound.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def zuko_families(torch, zuko):
    from functools import partial

    from zuko.distributions import DiagNormal
    from zuko.flows import (
        Flow, MaskedAutoregressiveTransform, UnconditionalDistribution, UnconditionalTransform,
    )
    from zuko.transforms import MonotonicRQSTransform, PermutationTransform

    def base(d):
        return UnconditionalDistribution(DiagNormal, torch.zeros(d), torch.ones(d), buffer=True)

    def permuted(d, c):
        return Flow([MaskedAutoregressiveTransform(d, c, hidden_features=[32]),
                     UnconditionalTransform(PermutationTransform, torch.randperm(d), buffer=True),
                     MaskedAutoregressiveTransform(d, c, hidden_features=[32])], base(d))

    def spline(d, c):
        return Flow([MaskedAutoregressiveTransform(
            d, c, univariate=partial(MonotonicRQSTransform, bound=2.0, slope=1e-2),
            shapes=[(6,), (6,), (5,)], hidden_features=[32, 32])], base(d))

    return {
        "MAF (affine, MonotonicAffine)": (lambda: zuko.flows.MAF(5, 3, transforms=3, hidden_features=[64, 64]), 5, 3),
        "MAF passes=2 (coupling masks)": (lambda: zuko.flows.MAF(6, 0, transforms=2, passes=2,
                                                                 randperm=True, hidden_features=[32]), 6, 0),
        "NSF (autoregressive RQS)": (lambda: zuko.flows.NSF(4, 2, transforms=3, bins=8, hidden_features=[64, 64]), 4, 2),
        "NSF passes=2": (lambda: zuko.flows.NSF(6, 2, transforms=2, bins=8, passes=2, hidden_features=[32]), 6, 2),
        "RQS B=2, slope 1e-2 (hand-built)": (lambda: spline(3, 1), 3, 1),
        "NICE/RealNVP (coupling)": (lambda: zuko.flows.RealNVP(6, 2, transforms=4, hidden_features=[64, 64],
                                                               activation=torch.nn.ELU), 6, 2),
        "MAF + PermutationTransform": (lambda: permuted(4, 2), 4, 2),
    }


def nflows_families(torch):
    from nflows import transforms as T
    from nflows.distributions import StandardNormal
    from nflows.flows.base import Flow
    from nflows.nn.nets import ResidualNet

    def flow(ts, d):
        return Flow(T.CompositeTransform(ts), StandardNormal([d]))

    def rn(c, h=32):
        return lambda i, o: ResidualNet(i, o, hidden_features=h, context_features=c, num_blocks=2)

    def rqs_coupling(d):
        f = flow([T.PiecewiseRationalQuadraticCouplingTransform(torch.arange(d) % 2, rn(None), num_bins=8,
                                                                tails="linear", tail_bound=3.0),
                  T.ActNorm(d),
                  T.PiecewiseRationalQuadraticCouplingTransform(1 - torch.arange(d) % 2, rn(None), num_bins=8,
                                                                tails="linear", tail_bound=3.0)], d)
        f.train()
        with torch.no_grad():
            f.log_prob(torch.randn(32, d))          # ActNorm initialises on its first batch
        return f

    return {
        "MaskedAffineAutoregressive (residual MADE)": (lambda: flow(
            [T.MaskedAffineAutoregressiveTransform(5, 32, context_features=3), T.ReversePermutation(5),
             T.MaskedAffineAutoregressiveTransform(5, 32, context_features=3)], 5), 5, 3),
        "MaskedAffineAutoregressive (feed-forward, random masks)": (lambda: flow(
            [T.MaskedAffineAutoregressiveTransform(5, 32, use_residual_blocks=False, random_mask=True),
             T.RandomPermutation(5),
             T.MaskedAffineAutoregressiveTransform(5, 32, use_residual_blocks=False)], 5), 5, 0),
        "MaskedPiecewiseRQAutoregressive (linear tails)": (lambda: flow(
            [T.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(4, 32, context_features=2, num_bins=8,
                                                                       tails="linear", tail_bound=3.0),
             T.RandomPermutation(4),
             T.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(4, 32, context_features=2, num_bins=8,
                                                                       tails="linear", tail_bound=3.0,
                                                                       use_residual_blocks=False)], 4), 4, 2),
        "AffineCoupling + ResidualNet": (lambda: flow(
            [T.AffineCouplingTransform(torch.arange(6) % 2, rn(2)),
             T.AffineCouplingTransform(1 - torch.arange(6) % 2, rn(2))], 6), 6, 2),
        "PiecewiseRQCoupling + ResidualNet + ActNorm": (lambda: rqs_coupling(6), 6, 0),
        "RQ autoregressive + coupling, tails=None (on [0, 1])": (lambda: flow(
            [T.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(4, 32, context_features=2, num_bins=8),
             T.PiecewiseRationalQuadraticCouplingTransform(torch.arange(4) % 2, rn(2), num_bins=8)], 4),
            4, 2, "unit"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="random flows per family")
    ap.add_argument("--n", type=int, default=64, help="points per check")
    ap.add_argument("--spread", type=float, default=2.0, help="std of the points (beyond the bounds)")
    ap.add_argument("--perturb", type=float, default=0.3, help="std added to every weight")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to compare")
        return 0
    torch.set_num_threads(1)
    from nprefgen.interop import check_against

    libraries = []
    try:
        import zuko
        libraries.append(("zuko", zuko_families(torch, zuko)))
    except ImportError:
        print("zuko not installed: skipped")
    try:
        import nflows  # noqa: F401
        libraries.append(("nflows", nflows_families(torch)))
    except ImportError:
        print("nflows not installed: skipped")
    cols = ["output", "inverse", "log_det", "log_prob", "grad x", "grad context", "grad params"]
    print(f"| library | family | {' | '.join(cols)} | rows > 1e-10 | max rel/bound | s/check |")
    print("|---|---|" + "---|" * (len(cols) + 3))
    failed = 0
    worst = 0.0
    for lib, families in libraries:
        for name, (make, d, c, *unit) in families.items():
            errs = {k: 0.0 for k in cols}
            above, ratio = 0, 0.0
            t0 = time.perf_counter()
            for seed in range(args.seeds):
                torch.manual_seed(seed)
                flow = make()
                with torch.no_grad():
                    for p in flow.parameters():
                        p.add_(args.perturb * torch.randn_like(p))
                rng = np.random.default_rng(seed)
                x = rng.uniform(0.01, 0.99, (args.n, d)) if unit else \
                    args.spread * rng.standard_normal((args.n, d))
                ctx = rng.standard_normal((args.n, c)) if c else None
                report = check_against(flow, x, ctx, rng=seed)
                for k, v in report.by_quantity().items():
                    errs[k] = max(errs[k], v)
                above += sum(r.rel_err > 1e-10 for r in report.rows)
                ratio = max(ratio, max(r.rel_err / report.bound(r) for r in report.rows))
                failed += not report.ok(1e-10)
            dt = (time.perf_counter() - t0) / args.seeds
            worst = max(worst, max(errs.values()))
            cells = " | ".join(f"{errs[k]:.1e}" if (k != "grad context" or c) else "-" for k in cols)
            print(f"| {lib} | {name} | {cells} | {above} | {ratio:.2f} | {dt:.2f} |", flush=True)
    print(f"\nworst relative error {worst:.2e}; checks failing max(1e-10, 2 m floor): {failed}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
