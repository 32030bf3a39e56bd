"""The ``nprefgen`` command: ``nprefgen tour``, ``nprefgen gradcheck``, ``nprefgen --version``."""
from __future__ import annotations

import argparse
import sys

import nprefgen


def _tour(args) -> int:
    """Build the report; exit status 1 (after writing it) if any section raised."""
    from nprefgen.tour import build_tour

    only = [k for k in args.sections.split(",") if k.strip()] or None
    try:
        report = build_tour(args.out, seed=args.seed, quick=args.quick, only=only,
                            progress=not args.no_progress)
    except ValueError as exc:          # unknown section names: nothing was run
        print(f"nprefgen tour: error: {exc}", file=sys.stderr)
        return 2
    print(f"tour written to {report.index_path}")
    if report.failures:
        names = ", ".join(key for key, _ in report.failures)
        print(f"nprefgen tour: {len(report.failures)} section(s) raised an error: {names} "
              f"(tracebacks in {report.index_path})", file=sys.stderr)
        for key, trace in report.failures:
            last = trace.strip().splitlines()[-1] if trace.strip() else ""
            print(f"  {key}: {last}", file=sys.stderr)
        return 1
    return 0


def _gradcheck(args) -> int:
    from nprefgen.testing import DEFAULT_RTOL
    from nprefgen.tour.gradchecks import run_all_layer_checks

    try:
        rows = run_all_layer_checks(seed=args.seed)
    except ValueError as exc:          # e.g. a negative --seed
        print(f"nprefgen gradcheck: error: {exc}", file=sys.stderr)
        return 2
    w_layer = max(len(r[0]) for r in rows)
    w_name = max(len(r[1]) for r in rows)
    worst = 0.0
    for layer, pname, err, ok in rows:
        print(f"{layer:{w_layer}s}  {pname:{w_name}s}  {err:9.2e}  {'ok' if ok else 'FAIL'}")
        worst = max(worst, err)
    n_bad = sum(not r[3] for r in rows)
    print(f"{len(rows)} dot-product tests at rtol {DEFAULT_RTOL:.0e}: {n_bad} failed; "
          f"worst relative error {worst:.2e}")
    return 0 if n_bad == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nprefgen", description=nprefgen.__doc__)
    p.add_argument("--version", action="version", version=f"nprefgen {nprefgen.__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tour", help="write an HTML report of every model on bundled data")
    t.add_argument("--out", default="nprefgen-tour", help="output folder (default: nprefgen-tour)")
    t.add_argument("--seed", type=int, default=0, help="master random seed (default 0)")
    t.add_argument("--quick", action="store_true", help="smaller problem sizes (seconds, not minutes)")
    t.add_argument("--sections", default="", help="comma-separated section names to run (default all)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_tour)
    g = sub.add_parser("gradcheck", help="dot-product test of every nn layer; exit 1 on failure")
    g.add_argument("--seed", type=int, default=0, help="seed of layers, inputs and directions")
    g.set_defaults(func=_gradcheck)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
