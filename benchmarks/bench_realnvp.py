"""One RealNVP training step in nprefgen and in PyTorch (CPU), side by side in one process.

The model is issue 3's: D = 64 (the 8x8 digits), 5 affine couplings with checkerboard masks of
alternating parity, each conditioner an MLP 32-256-256-64 (ReLU) giving (raw_s, t), the scale
bounded by s = 3 tanh(raw_s / 3), a standard normal base. One step = forward through the five
couplings, the mean negative log-likelihood, backward, Adam (lr 1e-3), on a batch of 256
dequantized, logit-transformed digits (derivations/splines.md, SPL.14). The PyTorch model is
written out below with the same parameter names, and starts from nprefgen's weights, so the
script first checks that both give the same loss and parameters after three steps.

Timings are interleaved (one nprefgen step, one torch step, ...) so load from other processes
hits both alike; the median (and min) over the timed steps after a warm-up is reported, and the
ratio nprefgen / torch (issue 3's target: <= 0.7). Torch gets as many intra-op threads as numpy's
BLAS (``--threads 1`` pins both to one; on a shared machine that is the fair comparison).

    python benchmarks/bench_realnvp.py                       # both dtypes, 40 timed steps each
    python benchmarks/bench_realnvp.py --dtypes float64 --repeats 100 --profile
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

from nprefgen.flows import realnvp  # noqa: E402
from nprefgen.nn import Adam  # noqa: E402

DIM, N_COUPLINGS, HIDDEN, BATCH, BOUND, LR = 64, 5, (256, 256), 256, 3.0, 1e-3
LOG_2PI = float(np.log(2.0 * np.pi))


def blas_threads() -> int | None:
    """Threads of numpy's BLAS (threadpoolctl), read before torch loads its own libraries."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [d["num_threads"] for d in threadpool_info() if d.get("user_api") == "blas"]
    return max(counts) if counts else None


def digits_batch(dtype, seed: int = 0) -> np.ndarray:
    """256 training digits, dequantized and logit-transformed (SPL.14), as ``dtype``."""
    from nprefgen.data import load_digits
    from nprefgen.flows.logit import pixels_to_logit

    rng = np.random.default_rng(seed)
    v, _ = load_digits("train", scale="raw")
    y, _ = pixels_to_logit(v[rng.permutation(v.shape[0])[:BATCH]], 17, 0.05, rng=rng)
    return y.astype(dtype)


# -- nprefgen ---------------------------------------------------------------------------------
def make_nprefgen(dtype, seed: int = 0):
    """``nprefgen.flows.realnvp`` with checkerboard masks (last layers randomised slightly)."""
    rng = np.random.default_rng(seed)
    flow = realnvp(DIM, N_COUPLINGS, list(HIDDEN), rng=rng, mask="checkerboard", image_shape=(8, 8),
                   bound=BOUND, standardize=False)
    for b in flow.bijectors:      # start away from the zero-initialised identity
        last = b.net.layers[-1]
        last.params["weight"][...] = 0.01 * rng.standard_normal(last.params["weight"].shape)
    flow.astype(dtype)
    return flow


def nprefgen_stepper(flow, x):
    """One step as Flow.fit takes it: log_prob_and_grad with weights -1/n (FLOW.4), Adam."""
    opt = Adam(flow.parameters(), lr=LR)
    n = x.shape[0]
    weights = np.full(n, -1.0 / n, dtype=x.dtype)

    def step() -> float:
        flow.zero_grad()
        lp, _, _ = flow.log_prob_and_grad(x, weights=weights)
        opt.step()
        return -float(np.mean(lp))
    return step


# -- PyTorch, the same architecture -------------------------------------------------------------
def make_torch(torch, flow_np, dtype):
    nn = torch.nn

    class Coupling(nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", torch.as_tensor(mask))
            self.idx_a = torch.nonzero(self.mask == 1).flatten()
            self.idx_b = torch.nonzero(self.mask == 0).flatten()
            d_a, d_b = len(self.idx_a), len(self.idx_b)
            widths = [d_a, *HIDDEN, 2 * d_b]
            layers = []
            for i in range(len(widths) - 1):
                layers.append(nn.Linear(widths[i], widths[i + 1], dtype=dtype))
                if i < len(widths) - 2:
                    layers.append(nn.ReLU())
            self.net = nn.Sequential(*layers)

        def forward(self, x):
            h = self.net(x[:, self.idx_a])
            d_b = len(self.idx_b)
            s = BOUND * torch.tanh(h[:, :d_b] / BOUND)
            z = x.clone()
            z[:, self.idx_b] = x[:, self.idx_b] * torch.exp(s) + h[:, d_b:]
            return z, s.sum(dim=1)

    class RealNVP(nn.Module):
        def __init__(self):
            super().__init__()
            self.couplings = nn.ModuleList([Coupling(b.mask.copy()) for b in flow_np.bijectors])

        def log_prob(self, x):
            log_det = torch.zeros(x.shape[0], dtype=x.dtype)
            for c in self.couplings:
                x, ld = c(x)
                log_det = log_det + ld
            return -0.5 * (x * x).sum(dim=1) - 0.5 * x.shape[1] * LOG_2PI + log_det

    model = RealNVP()
    with torch.no_grad():
        for c_t, c_np in zip(model.couplings, flow_np.bijectors):
            c_t.net.load_state_dict({k: torch.from_numpy(v.copy())
                                     for k, v in c_np.net.state_dict().items()})
    return model


def torch_stepper(torch, model, x):
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    xt = torch.from_numpy(x)

    def step() -> float:
        opt.zero_grad()
        loss = -model.log_prob(xt).mean()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def agreement(torch, dtype, n_steps: int = 3):
    """Relative loss difference and max |parameter difference| after n identical steps."""
    x = digits_batch(dtype)
    flow = make_nprefgen(dtype)
    model = make_torch(torch, flow, {np.float32: torch.float32, np.float64: torch.float64}[dtype])
    s_np, s_t = nprefgen_stepper(flow, x), torch_stepper(torch, model, x)
    losses = [(s_np(), s_t()) for _ in range(n_steps)]
    diff = 0.0
    for c_t, c_np in zip(model.couplings, flow.bijectors):
        state = {k: v.detach().numpy() for k, v in c_t.net.state_dict().items()}
        diff = max(diff, max(float(np.max(np.abs(p - state[k])))
                             for k, p in c_np.net.state_dict().items()))
    return max(abs(a - b) / abs(b) for a, b in losses), diff


def time_steps(steppers: dict, warmup: int, repeats: int) -> dict:
    """(median, min) seconds per step of each stepper, interleaved."""
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


def profile_nprefgen(dtype, repeats: int) -> None:
    """Where an nprefgen step spends its time (cProfile, sorted by own time)."""
    import cProfile
    import pstats

    step = nprefgen_stepper(make_nprefgen(dtype), digits_batch(dtype))
    step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(repeats):
        step()
    prof.disable()
    print(f"\ncProfile of {repeats} nprefgen steps ({np.dtype(dtype).name}), by own time:")
    pstats.Stats(prof).sort_stats("tottime").print_stats(14)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=40, help="timed steps per library and dtype")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--no-torch", action="store_true", help="time nprefgen only")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of nprefgen")
    ap.add_argument("--threads", type=int, default=None,
                    help="limit numpy's BLAS to this many threads; torch gets the same")
    args = ap.parse_args(argv)

    if args.threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=args.threads, user_api="blas")
    n_blas = blas_threads()
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            pass
    print(f"RealNVP D={DIM}, {N_COUPLINGS} affine couplings (checkerboard), conditioner "
          f"{DIM // 2}-{'-'.join(map(str, HIDDEN))}-{DIM} ReLU, tanh-bounded scale, batch {BATCH}, "
          f"NLL, Adam; median of {args.repeats} steps after {args.warmup} warm-up steps")
    print(f"python {platform.python_version()}, numpy {np.__version__}, numpy BLAS threads "
          f"{n_blas if n_blas is not None else 'unknown'}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} (1 min)")
    if torch is None:
        print("torch: not available, timing nprefgen only")
    else:
        if n_blas is not None:
            torch.set_num_threads(n_blas)
        print(f"torch {torch.__version__}, intra-op threads {torch.get_num_threads()}")
    print()
    print(f"{'dtype':8s} {'nprefgen ms (min)':>18s} {'torch ms (min)':>16s} {'ratio':>6s} {'min':>5s}"
          f"   agreement after 3 steps")
    for name in args.dtypes.split(","):
        dtype = {"float32": np.float32, "float64": np.float64}[name.strip()]
        x = digits_batch(dtype)
        flow = make_nprefgen(dtype)
        steppers = {"nprefgen": nprefgen_stepper(flow, x)}
        check = ""
        if torch is not None:
            tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
            steppers["torch"] = torch_stepper(torch, make_torch(torch, make_nprefgen(dtype), tdtype), x)
            loss_diff, p_diff = agreement(torch, dtype)
            check = f"loss rel. diff {loss_diff:.1e}, max |param diff| {p_diff:.1e}"
        med = time_steps(steppers, args.warmup, args.repeats)
        t_np, m_np = (1e3 * v for v in med["nprefgen"])
        if torch is not None:
            t_t, m_t = (1e3 * v for v in med["torch"])
            print(f"{name:8s} {t_np:9.2f} ({m_np:6.2f}) {t_t:8.2f} ({m_t:6.2f}) {t_np / t_t:6.2f} "
                  f"{m_np / m_t:5.2f}   {check}")
        else:
            print(f"{name:8s} {t_np:9.2f} ({m_np:6.2f})")
    if args.profile:
        for name in args.dtypes.split(","):
            profile_nprefgen({"float32": np.float32, "float64": np.float64}[name.strip()], args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
