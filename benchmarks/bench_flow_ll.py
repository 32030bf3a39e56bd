"""Test log-likelihood on the bundled digits: nprefgen's flows vs a MAF from zuko, same budget.

Every model is trained on the 1,078 training digits, stopped early on the 359 validation digits
and scored on the 360 test digits, after the same preprocessing (derivations/splines.md, SPL.14):
dequantize with fresh uniform noise every epoch, squeeze by lambda = 0.05, logit. Scores are mean
log-densities of the (once, fixed-seed) dequantized test images in pixel units (SPL.15), in nats per
image and bits/dim; the standard error is over test images.

Models (issue 3): the full-covariance Gaussian in logit space, nprefgen's RealNVP (5 checkerboard
couplings, as the tour; "realnvp-alt": the same with the MAF paper's vector masks, alternating
coordinates), MAF (5 MADE layers, random orders) and, with ``--spline``, its spline flow (4 spline
couplings, 8 bins); zuko's ``MAF`` with the same size (5 transforms, MADE hidden (128, 128), ReLU,
random orders). Both libraries use the same training budget: Adam lr 1e-3, batch 128, gradient-norm
clip 5, at most 50 epochs, patience 10, best validation weights restored.

Targets: |zuko MAF - nprefgen MAF| <= 1 nat/image, and Gaussian < RealNVP <= MAF (MAF paper,
Table 1 ordering). Paired differences over the same test images are printed with their standard
errors, since the models' scores are strongly correlated across images. One seed per run;
``--seeds 0,1,2`` repeats (each run ~1-2 min on 2 idle cores).

    python benchmarks/bench_flow_ll.py                  # gaussian, realnvp, maf, zuko maf
    python benchmarks/bench_flow_ll.py --spline --seeds 0,1
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nprefgen.data.images import load_image_data  # noqa: E402
from nprefgen.flows.logit import pixel_log_likelihood  # noqa: E402
from nprefgen.tour import digits_flows as demos  # noqa: E402

CONFIG = demos.FULL


def zuko_maf_score(data, seed: int, config=CONFIG):
    """Train zuko's MAF with the loop of demos.fit_dequantized, written for torch."""
    import torch
    import zuko

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    flow = zuko.flows.MAF(data.dim, 0, transforms=config.n_layers["maf"], randperm=True,
                          hidden_features=(config.hidden, config.hidden)).double()
    opt = torch.optim.Adam(flow.parameters(), lr=config.lr)
    y_val, _ = demos.preprocess(data.val, data.levels,
                                rng=np.random.default_rng(demos.TEST_NOISE_SEED + 1))
    y_val = torch.from_numpy(y_val)
    best, best_state, since, epochs = np.inf, copy.deepcopy(flow.state_dict()), 0, 0
    t0 = time.perf_counter()
    n = data.train.shape[0]
    for epoch in range(config.epochs):
        y_train, _ = demos.preprocess(data.train, data.levels, rng=rng)
        y_train = torch.from_numpy(y_train)
        perm = rng.permutation(n)
        for s in range(0, n, config.batch_size):
            idx = torch.from_numpy(perm[s:s + config.batch_size])
            loss = -flow().log_prob(y_train[idx]).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), config.clip)
            opt.step()
        with torch.no_grad():
            val = -flow().log_prob(y_val).mean().item()
        epochs = epoch + 1
        if val < best:
            best, best_state, since = val, copy.deepcopy(flow.state_dict()), 0
        else:
            since += 1
            if since >= config.patience:
                break
    flow.load_state_dict(best_state)
    seconds = time.perf_counter() - t0
    y_test, jac = demos.preprocess(data.test, data.levels,
                                   rng=np.random.default_rng(demos.TEST_NOISE_SEED))
    with torch.no_grad():
        log_q = flow().log_prob(torch.from_numpy(y_test)).numpy()
    n_params = sum(p.numel() for p in flow.parameters())
    score = demos.score("zuko maf", log_q, jac, data.dim, data.levels, n_params, seconds, epochs)
    return score, pixel_log_likelihood(log_q, jac)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, one full run each")
    ap.add_argument("--spline", action="store_true", help="also train nprefgen's spline flow")
    ap.add_argument("--no-torch", action="store_true", help="skip zuko")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads for nprefgen and intra-op threads for torch (default 1, "
                         "the tour's setting; see nprefgen._threads.blas_threads)")
    args = ap.parse_args(argv)
    try:
        if args.no_torch:
            raise ImportError
        import torch
        import zuko
        torch.set_num_threads(args.threads)
        peer = f"torch {torch.__version__} ({torch.get_num_threads()} threads), zuko {zuko.__version__}"
    except ImportError:
        torch = None
        peer = "zuko/torch not available"
    print(f"digits 8x8 (1,078 train / 359 val / 360 test), lambda {demos.LAMBDA}; python "
          f"{platform.python_version()}, numpy {np.__version__}, {peer}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; {args.threads} thread(s) each")
    data = load_image_data()
    models = ["gaussian", "realnvp", "maf"] + (["spline"] if args.spline else [])
    header = (f"{'seed':>4s}  {'model':11s} {'params':>8s} {'test nats/image':>18s} "
              f"{'bits/dim':>9s} {'epochs':>6s} {'s':>6s}")
    print(header)
    y_test, jac = demos.preprocess(data.test, data.levels,
                                   rng=np.random.default_rng(demos.TEST_NOISE_SEED))
    for seed in (int(s) for s in args.seeds.split(",")):
        rng = np.random.default_rng(seed)
        res = demos.run_unconditional(data, rng=rng, config=CONFIG, models=models, n_samples=1,
                                      n_blas_threads=args.threads)
        scores = list(res.scores)
        per_image = {name: pixel_log_likelihood(m.log_prob(y_test), jac)
                     for name, m in res.models.items()}
        # RealNVP with the MAF paper's vector masks (alternating coordinates) instead of checkerboards
        t0 = time.perf_counter()
        flow = demos.digits_flow("realnvp", data.dim, rng=rng, config=CONFIG)
        hist = demos.fit_dequantized(flow, data.train, data.val, data.levels, rng=rng, config=CONFIG,
                                     n_blas_threads=args.threads)
        lq = flow.log_prob(y_test)
        scores.append(demos.score("realnvp-alt", lq, jac, data.dim, data.levels, flow.num_parameters(),
                                   time.perf_counter() - t0, hist["epochs"]))
        per_image["realnvp-alt"] = pixel_log_likelihood(lq, jac)
        if torch is not None:
            score, lp = zuko_maf_score(data, seed)
            scores.append(score)
            per_image["zuko maf"] = lp
        for s in scores:
            print(f"{seed:4d}  {s.name:11s} {s.n_params:8d} {s.test_nats:10.2f} +- {s.test_se:4.2f} "
                  f"{s.bits_per_dim:9.3f} {s.epochs:6d} {s.seconds:6.1f}")
        by = {s.name: s.test_nats for s in scores}
        order = by["gaussian"] < by["realnvp"] <= by["maf"]
        print(f"      ordering gaussian < realnvp <= maf: {'yes' if order else 'NO'} (checkerboard "
              f"RealNVP); with vector masks: "
              f"{'yes' if by['gaussian'] < by['realnvp-alt'] <= by['maf'] else 'NO'}")

        def paired(a, b):
            d = per_image[a] - per_image[b]
            return f"{a} - {b} = {d.mean():+.2f} +- {d.std() / np.sqrt(d.size):.2f}"

        pairs = [("maf", "realnvp"), ("maf", "realnvp-alt"), ("realnvp", "gaussian")]
        if "zuko maf" in per_image:
            pairs.append(("maf", "zuko maf"))
        print("      paired differences (nats/image, +- s.e. over test images): "
              + "; ".join(paired(a, b) for a, b in pairs))
        if "zuko maf" in by:
            gap = by["maf"] - by["zuko maf"]
            print(f"      nprefgen maf - zuko maf = {gap:+.2f} nats "
                  f"({'within' if abs(gap) <= 1 else 'OUTSIDE'} the 1-nat target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
