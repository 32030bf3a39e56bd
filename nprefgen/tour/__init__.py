"""``nprefgen tour``: a report of every model on bundled data.

Sections are discovered in :mod:`nprefgen.tour.sections`: every module there with ``ORDER``,
``TITLE`` and ``build(report)`` becomes one section, sorted by ``ORDER`` (the lecture order:
10s foundations, 20s representation learning, 30s sampling, 40s flows, 50s SBI, 60s score models).
"""
from __future__ import annotations

import importlib
import pkgutil
import time
import traceback

from nprefgen.tour.report import Report


def discover_sections(only=None):
    """``[(key, module)]`` sorted by ORDER; ``only`` restricts to the given keys."""
    import nprefgen.tour.sections as pkg

    found = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        if only is not None and info.name not in only:
            continue
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        found.append((info.name, mod))
    if only is not None:
        missing = sorted(set(only) - {k for k, _ in found})
        if missing:
            raise ValueError(f"sections: expected names from "
                             f"{sorted(i.name for i in pkgutil.iter_modules(pkg.__path__))}, "
                             f"got unknown {missing}")
    return sorted(found, key=lambda kv: (kv[1].ORDER, kv[0]))


def run_tour(outdir, seed: int = 0, quick: bool = False, only=None, progress: bool = True,
             strict: bool = False) -> str:
    """Build every section into ``outdir``; returns the path of ``index.html``.

    A section that raises is reported in the page (with its traceback) instead of aborting the
    tour, unless ``strict`` (used by the tests).
    """
    from tqdm import tqdm

    report = Report(outdir, seed=seed, quick=quick)
    sections = discover_sections(only)
    t_all = time.perf_counter()
    bar = tqdm(sections, desc="nprefgen tour", unit="section", disable=not progress)
    for key, mod in bar:
        bar.set_postfix_str(key)
        report.begin(key, mod.TITLE)
        t0 = time.perf_counter()
        try:
            mod.build(report)
        except Exception:
            if strict:
                raise
            report.html("<pre class='fail'>" + traceback.format_exc().replace("<", "&lt;") + "</pre>")
        report.sections[-1].seconds = time.perf_counter() - t0
    return report.write(time.perf_counter() - t_all)
