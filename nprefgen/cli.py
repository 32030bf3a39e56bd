"""The ``nprefgen`` command: ``nprefgen tour``, ``nprefgen gradcheck``, ``nprefgen oracle``,
``nprefgen --version``."""
from __future__ import annotations

import argparse
import sys
import textwrap

import nprefgen


def _sections_listing() -> str:
    """One line per tour section: its name and title, in tour order."""
    from nprefgen.tour import section_titles

    rows = section_titles()
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"  {key:{width}s}  {title}" for key, title in rows)


def _tour(args) -> int:
    """Build the report; exit status 1 (after writing it) if any section raised, 2 for unknown
    section names (nothing is run). Flagged diagnostics are listed but do not change the
    status: they describe the models, not a failure of the tour."""
    from nprefgen.tour import build_tour, section_titles

    only = [k.strip() for k in args.sections.split(",") if k.strip()] or None
    if only is not None:
        valid = [k for k, _ in section_titles()]
        unknown = [k for k in only if k not in valid]
        if unknown:
            print(f"nprefgen tour: error: unknown section name(s): {', '.join(unknown)}\n"
                  f"valid sections (pass several as --sections a,b):\n{_sections_listing()}",
                  file=sys.stderr)
            return 2
    try:
        report = build_tour(args.out, seed=args.seed, quick=args.quick, only=only,
                            progress=not args.no_progress)
    except ValueError as exc:          # e.g. a negative seed: nothing was run
        print(f"nprefgen tour: error: {exc}", file=sys.stderr)
        return 2
    print(f"tour written to {report.index_path}")
    flagged = report.flagged
    print(f"{len(report.checks)} checks, {len(flagged)} flagged"
          + (":" if flagged else ""))
    for c in flagged:
        print(f"  FLAGGED {c.section}: {c.name} = {_fmt_value(c.value)} (rule: {c.rule})")
    if report.failures:
        names = ", ".join(key for key, _ in report.failures)
        print(f"nprefgen tour: {len(report.failures)} section(s) raised an error: {names} "
              f"(tracebacks in {report.index_path})", file=sys.stderr)
        for key, trace in report.failures:
            last = trace.strip().splitlines()[-1] if trace.strip() else ""
            print(f"  {key}: {last}", file=sys.stderr)
        return 1
    return 0


def _fmt_value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _gradcheck(args) -> int:
    from nprefgen.testing import DEFAULT_RTOL
    from nprefgen.tour import gradchecks

    groups = [g.strip() for g in args.group.split(",") if g.strip()]
    unknown = [g for g in groups if g not in gradchecks.GROUPS]
    if not groups or unknown:
        print(f"nprefgen gradcheck: error: --group: expected comma-separated names from "
              f"{', '.join(gradchecks.GROUPS)}, got {args.group!r}", file=sys.stderr)
        return 2
    try:
        rows = gradchecks.run_gradchecks(groups, seed=args.seed)
    except ValueError as exc:          # e.g. a negative --seed
        print(f"nprefgen gradcheck: error: {exc}", file=sys.stderr)
        return 2
    w_group = max(len(r[0]) for r in rows)
    w_desc = max(len(r[1]) for r in rows)
    w_name = max(len(r[2]) for r in rows)
    worst = 0.0
    for group, desc, pname, err, ok in rows:
        print(f"{group:{w_group}s}  {desc:{w_desc}s}  {pname:{w_name}s}  {err:9.2e}  "
              f"{'ok' if ok else 'FAIL'}")
        worst = max(worst, err)
    n_bad = sum(not r[4] for r in rows)
    counts = ", ".join(f"{sum(r[0] == g for r in rows)} {g}" for g in groups)
    print(f"{len(rows)} dot-product tests ({counts}) at rtol {DEFAULT_RTOL:.0e}: {n_bad} failed; "
          f"worst relative error {worst:.2e}")
    return 0 if n_bad == 0 else 1


# -- nprefgen oracle: golden files (nprefgen.testing.golden) --------------------------------------
def _oracle_list(args) -> int:
    from nprefgen.testing.golden import iter_cases

    cases = list(iter_cases())
    width = max(len(c.name) for c in cases)
    for c in cases:
        dtypes = "" if len(c.dtypes) > 1 else "  [float64 only]"
        print(f"{c.name:{width}s}  {c.kind:8s}  {c.summary}{dtypes}")
    print(f"{len(cases)} cases; export one with: nprefgen oracle export NAME --out case.npz")
    return 0


def _oracle_export(args) -> int:
    from nprefgen.testing.golden import export_case

    try:
        arrays = export_case(args.name, args.out, seed=args.seed, dtype=args.dtype,
                             batch=args.batch)
    except (ValueError, OSError) as exc:   # unknown name, dtype the case lacks, no such folder
        print(f"nprefgen oracle export: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {args.name}, {len(arrays) - 1} arrays "
          f"(seed {args.seed}, {args.dtype}); read it with "
          f"nprefgen.testing.golden_reader.load_golden")
    return 0


def _oracle_compare(args) -> int:
    """Exit 0 when every quantity is within rtol, 1 when one is not, 2 for unusable files."""
    from nprefgen.testing.golden_reader import compare_golden, format_comparison

    try:
        result = compare_golden(args.golden, args.theirs, rtol=args.rtol)
    except ValueError as exc:
        print(f"nprefgen oracle compare: error: {exc}", file=sys.stderr)
        return 2
    print(format_comparison(result))
    return 0 if result["ok"] else 1


def _add_oracle_parser(sub) -> None:
    o = sub.add_parser("oracle", help="golden files of values and gradients for other "
                                      "implementations (list, export, compare)",
                       description="Golden files: nprefgen's parameters (PyTorch state_dict names), "
                                   "inputs, outputs and gradients for one case, as .npz.")
    osub = o.add_subparsers(dest="oracle_command", required=True)
    ls = osub.add_parser("list", help="the names of the golden cases")
    ls.set_defaults(func=_oracle_list)
    ex = osub.add_parser("export", help="write one golden case to an .npz")
    ex.add_argument("name", help="a case name from 'nprefgen oracle list'")
    ex.add_argument("--out", required=True, help="the .npz file to write (atomically)")
    ex.add_argument("--seed", type=int, default=0, help="seed of weights and inputs (default 0)")
    ex.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ex.add_argument("--batch", type=int, default=None, help="rows of the inputs (default: the "
                                                            "case's own)")
    ex.set_defaults(func=_oracle_export)
    cp = osub.add_parser("compare", help="relative error of your outputs per quantity; exit 1 "
                                         "above --rtol")
    cp.add_argument("golden", help="the golden .npz")
    cp.add_argument("theirs", help=".npz of your values under the golden file's keys "
                                   "(output.*, grad.input.*, grad.param.*)")
    cp.add_argument("--rtol", type=float, default=None,
                    help="bound on each relative error (default 1e-10 for float64 files, 1e-4 "
                         "for float32)")
    cp.set_defaults(func=_oracle_compare)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nprefgen", description=nprefgen.__doc__)
    p.add_argument("--version", action="version", version=f"nprefgen {nprefgen.__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tour", help="write an HTML report of every model on bundled data",
                       description=textwrap.fill(
                           "Write an HTML report (index.html and PNG figures) of every model on "
                           "bundled data. Each section records its checks; diagnostics that miss "
                           "their rule are FLAGGED in the section and listed at the top of the "
                           "page and on the terminal.", 78),
                       epilog="sections, in tour order:\n" + _sections_listing(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--out", default="nprefgen-tour", help="output folder (default: nprefgen-tour)")
    t.add_argument("--seed", type=int, default=0, help="master random seed (default 0)")
    t.add_argument("--quick", action="store_true", help="smaller problem sizes (seconds, not minutes)")
    t.add_argument("--sections", default="", help="comma-separated section names to run "
                                                  "(default all; listed below)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_tour)
    g = sub.add_parser("gradcheck", help="dot-product test of every layer, loss, bijector and "
                                         "kernel gradient; exit 1 on failure",
                       description="Dot-product tests <u, J^T v> = <v, J u> (NN.18) of every "
                                   "hand-written gradient, float64, random directions.")
    g.add_argument("--seed", type=int, default=0, help="seed of layers, inputs and directions")
    g.add_argument("--group", default="layers,losses,bijectors,kernels",
                   help="comma-separated groups to check: layers, losses, bijectors, kernels "
                        "(default all)")
    g.set_defaults(func=_gradcheck)
    _add_oracle_parser(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
