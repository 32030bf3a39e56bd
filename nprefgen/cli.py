"""The ``nprefgen`` command: ``nprefgen tour``, ``nprefgen gradcheck``, ``nprefgen --version``."""
from __future__ import annotations

import argparse
import sys

import nprefgen


def _tour(args) -> int:
    from nprefgen.tour import run_tour

    only = args.sections.split(",") if args.sections else None
    path = run_tour(args.out, seed=args.seed, quick=args.quick, only=only, progress=not args.no_progress)
    print(f"tour written to {path}")
    return 0


def _gradcheck(args) -> int:
    from nprefgen.tour.gradchecks import run_all_layer_checks

    rows = run_all_layer_checks(seed=args.seed)
    worst = 0.0
    for layer, pname, err, ok in rows:
        print(f"{layer:32s} {pname:12s} {err:9.2e} {'ok' if ok else 'FAIL'}")
        worst = max(worst, err)
    print(f"worst relative error {worst:.2e}")
    return 0 if all(r[3] for r in rows) else 1


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
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=_gradcheck)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
