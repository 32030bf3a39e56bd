"""``nprefgen tour``: a report of every model on bundled data.

Sections are discovered in :mod:`nprefgen.tour.sections`: every module there with ``ORDER``,
``TITLE`` and ``build(report)`` becomes one section, sorted by ``ORDER`` (the lecture order:
10s foundations, 20s representation learning, 30s sampling, 40s flows, 50s SBI, 60s score models).
``nprefgen tour --help`` lists them (:func:`section_titles` reads ``ORDER`` and ``TITLE`` from the
sources without importing them). A section states every claim it makes about a number through
``report.check(name, value, rule, passed)`` (:mod:`nprefgen.tour.report`; the shared rules for
diagnostics are in :mod:`nprefgen.tour.rules`), so nothing is marked ok that was not checked and
every flagged diagnostic is listed at the top of the page.

:func:`build_tour` returns the :class:`Report` (``report.failures`` lists the sections that raised,
``report.index_path`` the page); :func:`run_tour` returns just the path of ``index.html``.
"""
from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import time
import traceback
from types import SimpleNamespace

from nprefgen.tour.report import Report

__all__ = ["Report", "build_tour", "discover_sections", "run_tour", "section_titles"]

_UNIMPORTABLE_ORDER = 10**6   # sections that fail to import go last


def _unimportable(key: str, exc: BaseException) -> SimpleNamespace:
    """A stand-in section whose ``build`` re-raises the import error, so the tour reports it."""
    def build(report):
        raise RuntimeError(f"section {key!r} failed to import") from exc
    return SimpleNamespace(ORDER=_UNIMPORTABLE_ORDER, TITLE=f"{key} (failed to import)", build=build)


def _available() -> list[str]:
    import nprefgen.tour.sections as pkg

    return sorted(i.name for i in pkgutil.iter_modules(pkg.__path__) if not i.name.startswith("_"))


def section_titles() -> list[tuple[str, str]]:
    """``[(key, TITLE)]`` of every section in tour order, read from the modules' source without
    importing them (fast enough for ``nprefgen tour --help``); a module whose ``ORDER`` or
    ``TITLE`` is not a literal is listed last with its module docstring's first line."""
    import nprefgen.tour.sections as pkg

    found = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        order, title = _UNIMPORTABLE_ORDER, ""
        path = os.path.join(getattr(info.module_finder, "path", ""), info.name + ".py")
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                        isinstance(node.targets[0], ast.Name) and \
                        isinstance(node.value, ast.Constant):
                    if node.targets[0].id == "ORDER" and isinstance(node.value.value, int):
                        order = node.value.value
                    elif node.targets[0].id == "TITLE" and isinstance(node.value.value, str):
                        title = node.value.value
            if not title:
                title = (ast.get_docstring(tree) or "").strip().splitlines()[0:1]
                title = title[0] if title else ""
        except (OSError, SyntaxError):
            title = "(cannot be read)"
        found.append((order, info.name, title))
    return [(key, title) for _, key, title in sorted(found)]


def discover_sections(only=None):
    """``[(key, module)]`` sorted by ORDER; ``only`` restricts to the given keys.

    A module that fails to import, or lacks ``ORDER``/``TITLE``/``build``, becomes a section that
    raises when built, so one broken section cannot hide the others. Unknown names in ``only``
    raise ValueError.
    """
    import nprefgen.tour.sections as pkg

    available = _available()
    if only is not None:
        if isinstance(only, str):
            only = [only]
        if not isinstance(only, (list, tuple, set)) or not all(isinstance(k, str) for k in only):
            raise ValueError(f"only: expected a list of section names, got {only!r}")
        only = [k.strip() for k in only if k.strip()]
        missing = sorted(set(only) - set(available))
        if missing:
            raise ValueError(f"only: unknown tour section(s) {', '.join(map(repr, missing))}; "
                             f"expected names from: {', '.join(available)}")
    found = []
    for name in available:
        if only is not None and name not in only:
            continue
        try:
            mod = importlib.import_module(f"{pkg.__name__}.{name}")
            lacking = [a for a in ("ORDER", "TITLE", "build") if not hasattr(mod, a)]
            if lacking:
                raise AttributeError(f"section module {mod.__name__} lacks {lacking}")
        except Exception as exc:  # noqa: BLE001 - reported as a failed section
            mod = _unimportable(name, exc)
        found.append((name, mod))
    return sorted(found, key=lambda kv: (kv[1].ORDER, kv[0]))


def build_tour(outdir, seed: int = 0, quick: bool = False, only=None, progress: bool = True,
               strict: bool = False) -> Report:
    """Build every section into ``outdir`` and write ``index.html``; returns the :class:`Report`.

    A section that raises is reported in the page (with its traceback) and listed in
    ``report.failures`` instead of aborting the tour, unless ``strict`` (used by the tests), in
    which case the exception propagates.
    """
    from tqdm import tqdm

    sections = discover_sections(only)          # unknown names raise before anything is written
    report = Report(outdir, seed=seed, quick=quick)
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
            report.fail(key, traceback.format_exc())
        finally:
            report.sections[-1].seconds = time.perf_counter() - t0
    report.write(time.perf_counter() - t_all)
    return report


def run_tour(outdir, seed: int = 0, quick: bool = False, only=None, progress: bool = True,
             strict: bool = False) -> str:
    """:func:`build_tour`, returning the path of ``index.html``."""
    return build_tour(outdir, seed=seed, quick=quick, only=only, progress=progress,
                      strict=strict).index_path
