"""The tour's HTML report: sections of text, tables and PNG figures in one folder.

A section module in :mod:`nprefgen.tour.sections` defines ``ORDER`` (an int: where it goes),
``TITLE`` (a str) and ``build(report)``; ``build`` writes through the :class:`Report` methods and
draws all randomness from ``report.rng(...)``. ``report.quick`` asks for a smaller run (used by the
tests); the full tour must still finish in a few minutes on 2 cores.

Checks
------
Whatever a section claims about a number (a diagnostic within its bar, an integral equal to one,
a gradient within its tolerance) it records with :meth:`Report.check`: the check's name, the value
measured, the rule it must satisfy, and whether it did. A check renders as ``ok`` or ``FLAGGED``
(never a bare "ok": the rule is always shown next to it), and every flagged check is listed in a
summary at the top of the page with a link to where it is shown. A table shows checks in its
``status_col``, whose cells must be :class:`Check` objects (``show=False`` when recording them) or
``None`` for rows where nothing was checked ("not checked"); checks neither shown inline nor
placed in a table are listed at the end of their section. ``report.flagged`` lists the checks that
failed their rule; the ``nprefgen tour`` command prints them.
"""
from __future__ import annotations

import html
import os
import time
from dataclasses import dataclass, field

import numpy as np

from nprefgen._validation import check_int, check_scalar, check_str
from nprefgen.nn.io import atomic_write

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2.2em; border-bottom: 1px solid #bbb; }
figure { display: inline-block; margin: 0.6em; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; max-width: 520px; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
.fail { color: #b00; font-weight: bold; } .ok { color: #070; } .na { color: #888; }
.check { margin: 0.3em 0; } .rule { color: #555; font-size: 0.9em; } .good { color: #070; }
.summary { border: 1px solid #ccc; background: #fafafa; padding: 0.4em 1em; margin: 1em 0; }
.summary li { margin: 0.15em 0; }
nav a { margin-right: 1em; } .meta { color: #777; font-size: 0.85em; }
"""


def _fmt(value) -> str:
    """A value as shown in tables and checks: floats with 4 significant digits."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


@dataclass
class Check:
    """One named check of a section: the value measured, the rule it must satisfy, and whether
    it did (``passed``). ``anchor`` is the HTML id where the check is shown."""
    section: str
    title: str              # the section's title, for the summary
    name: str
    value: object
    rule: str
    passed: bool
    anchor: str
    shown: bool = False     # rendered inline or in a table (else listed at the section's end)

    @property
    def status(self) -> str:
        return "ok" if self.passed else "FLAGGED"

    def _cell(self) -> str:
        """The ``<td>`` of a table's status column: ok / FLAGGED, the rule as a tooltip."""
        cls = "ok" if self.passed else "fail"
        tip = html.escape(f"{self.name} = {_fmt(self.value)}; rule: {self.rule}", quote=True)
        return f'<td class="{cls}" id="{self.anchor}" title="{tip}">{self.status}</td>'

    def _line(self) -> str:
        """A one-line rendering: status, name, value and rule."""
        cls = "ok" if self.passed else "fail"
        return (f'<p class="check" id="{self.anchor}"><span class="{cls}">{self.status}</span> '
                f"{html.escape(self.name)} = {html.escape(_fmt(self.value))} "
                f'<span class="rule">(rule: {html.escape(self.rule)})</span></p>')


@dataclass
class _Section:
    key: str
    title: str
    parts: list = field(default_factory=list)
    seconds: float = 0.0
    checks: list = field(default_factory=list)


class Report:
    """Collects sections and writes ``index.html`` plus PNG figures into ``outdir``.

    Parameters
    ----------
    outdir : path of the folder to write (created if needed).
    seed : int, the master seed; ``rng(name)`` derives one independent generator per name.
    quick : bool, smaller problem sizes (tests).
    """

    def __init__(self, outdir, seed: int = 0, quick: bool = False) -> None:
        if not isinstance(outdir, (str, os.PathLike)):
            raise ValueError(f"outdir: expected a folder path (str or os.PathLike), got "
                             f"{type(outdir).__name__}")
        self.seed = check_int(seed, "seed", low=0)
        self.outdir = os.fspath(outdir)
        os.makedirs(self.outdir, exist_ok=True)
        self.quick = bool(quick)
        self.sections: list[_Section] = []
        self._current: _Section | None = None
        self.failures: list[tuple[str, str]] = []   # (section key, traceback) of sections that raised
        self.index_path: str | None = None

    # -- used by the tour driver ---------------------------------------------------------------
    def begin(self, key: str, title: str) -> None:
        self._current = _Section(check_str(key, "key"), check_str(title, "title"))
        self.sections.append(self._current)

    def fail(self, key: str, trace: str) -> None:
        """Record that section ``key`` raised; its traceback is shown in place of the rest."""
        self.failures.append((check_str(key, "key"), check_str(trace, "trace")))
        self._current.parts.append("<pre class='fail'>" + html.escape(trace) + "</pre>")

    @property
    def checks(self) -> list[Check]:
        """Every check recorded so far, in page order."""
        return [c for s in self.sections for c in s.checks]

    @property
    def flagged(self) -> list[Check]:
        """The checks that failed their rule."""
        return [c for c in self.checks if not c.passed]

    # -- used by sections ----------------------------------------------------------------------
    def check(self, name: str, value, rule: str, passed, *, show: bool = True) -> Check:
        """Record a named check: ``value`` (a number or a short string) measured against ``rule``
        (a sentence such as ``"R-hat < 1.01 (Vehtari et al. 2021)"``); ``passed`` (a bool) says
        whether the value satisfies the rule. Shown at once as a line ``ok``/``FLAGGED`` unless
        ``show=False``, in which case pass the returned :class:`Check` to a table's status column
        (or it is listed at the end of the section). Flagged checks are listed at the top of the
        page. Returns the :class:`Check`."""
        check_str(name, "name")
        check_str(rule, "rule")
        if not name.strip() or not rule.strip():
            raise ValueError(f"name, rule: expected non-empty strings, got {name!r}, {rule!r}")
        if not isinstance(passed, (bool, np.bool_)):
            raise ValueError(f"passed: expected a bool (did the value satisfy the rule?), got "
                             f"{type(passed).__name__}")
        if self._current is None:
            raise ValueError("check: no section has begun (call begin(key, title) first)")
        sec = self._current
        c = Check(sec.key, sec.title, name, value, rule, bool(passed),
                  f"{sec.key}-check-{len(sec.checks) + 1}")
        sec.checks.append(c)
        if show:
            c.shown = True
            sec.parts.append(c._line())
        return c

    def rng(self, name: str) -> np.random.Generator:
        """An independent generator for ``name``, fixed by the master seed."""
        check_str(name, "name")
        words = [int.from_bytes(name.encode()[i:i + 4].ljust(4, b"\0"), "little")
                 for i in range(0, max(len(name.encode()), 1), 4)]
        return np.random.default_rng([self.seed, *words])

    def text(self, paragraph: str) -> None:
        """A paragraph of plain text (escaped)."""
        self._current.parts.append(f"<p>{html.escape(check_str(paragraph, 'paragraph'))}</p>")

    def html(self, fragment: str) -> None:
        """Raw HTML (the caller escapes)."""
        self._current.parts.append(check_str(fragment, "fragment"))

    def table(self, header, rows, caption: str | None = None, status_col=None) -> None:
        """A table; numbers are formatted with 4 significant digits. Every row has one cell per
        header entry. A :class:`Check` cell (from ``report.check(..., show=False)``) shows as
        ok / FLAGGED with its rule as a tooltip. ``status_col`` (an int or a list of ints) marks
        columns that hold only checks, or ``None`` where nothing was checked ("not checked");
        anything else there (a bare bool, say) raises ValueError."""
        header, rows = list(header), [list(row) for row in rows]
        if not header:
            raise ValueError("header: expected at least one column name, got none")
        bad = [i for i, row in enumerate(rows) if len(row) != len(header)]
        if bad:
            raise ValueError(f"rows: expected {len(header)} cells per row (one per header "
                             f"entry), got {len(rows[bad[0]])} in row {bad[0]}")
        if status_col is None:
            status = set()
        elif isinstance(status_col, (list, tuple)):
            status = {check_int(j, "status_col", low=0, high=len(header) - 1) for j in status_col}
        else:
            status = {check_int(status_col, "status_col", low=0, high=len(header) - 1)}
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if j in status and v is not None and not isinstance(v, Check):
                    raise ValueError(f"rows[{i}][{j}]: expected a Check from "
                                     f"report.check(..., show=False) or None (not checked) in "
                                     f"a status column, got {type(v).__name__}")
                if isinstance(v, Check):
                    v.shown = True
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{html.escape(caption)}</caption>")
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
        for row in rows:
            cells = []
            for j, v in enumerate(row):
                if isinstance(v, Check):
                    cells.append(v._cell())
                elif j in status:
                    cells.append('<td class="na">not checked</td>')
                else:
                    cells.append(f"<td>{html.escape(_fmt(v))}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        self._current.parts.append("\n".join(out))

    def figure(self, fig, name: str, caption: str = "") -> str:
        """Save a matplotlib figure as ``<section>-<name>.png`` and show it; closes the figure."""
        import matplotlib.pyplot as plt

        if not callable(getattr(fig, "savefig", None)):
            raise ValueError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
        check_str(name, "name")
        if not name or os.sep in name or "/" in name:
            raise ValueError(f"name: expected a plain file-name stem, got {name!r}")
        fname = f"{self._current.key}-{name}.png"
        with atomic_write(os.path.join(self.outdir, fname)) as f:    # all or nothing
            fig.savefig(f, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        self._current.parts.append(
            f'<figure><img src="{fname}" alt="{html.escape(caption or name)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        return fname

    # -- output --------------------------------------------------------------------------------
    def write(self, total_seconds: float | None = None) -> str:
        """Write ``index.html``; returns its path."""
        if total_seconds is not None:
            total_seconds = check_scalar(total_seconds, "total_seconds", low=0.0)
        nav = " ".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>'
                       + (f' <span class="fail">({sum(not c.passed for c in s.checks)} flagged)'
                          f'</span>' if any(not c.passed for c in s.checks) else "")
                       for s in self.sections)
        if self.failures:
            names = ", ".join(k for k, _ in self.failures)
            nav = (f"<p class='fail'>{len(self.failures)} section(s) raised an error: "
                   f"{html.escape(names)} (tracebacks below)</p>{nav}")
        body = []
        for s in self.sections:
            n_bad = sum(not c.passed for c in s.checks)
            badge = f' <span class="fail">({n_bad} flagged)</span>' if n_bad else ""
            body.append(f'<h2 id="{s.key}">{html.escape(s.title)}{badge}</h2>')
            body.extend(s.parts)
            rest = [c for c in s.checks if not c.shown]
            if rest:
                body.append("<p>Further checks of this section:</p>")
                body.extend(c._line() for c in rest)
            body.append(f'<p class="meta">section time {s.seconds:.1f} s</p>')
        stamp = time.strftime("%Y-%m-%d %H:%M")
        total = f", {total_seconds:.0f} s in all" if total_seconds is not None else ""
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>nprefgen tour</title>"
                f"<style>{_CSS}</style></head><body><h1>nprefgen tour</h1>"
                f"<p class='meta'>seed {self.seed}{', quick mode' if self.quick else ''}; "
                f"written {stamp}{total}</p>{self._summary()}<nav>{nav}</nav>{''.join(body)}"
                f"</body></html>")
        path = os.path.join(self.outdir, "index.html")
        with atomic_write(path) as f:         # a failed write leaves the previous page intact
            f.write(page.encode("utf-8"))
        self.index_path = path
        return path

    def _summary(self) -> str:
        """The box at the top: how many checks ran, and every flagged one with a link to it."""
        checks, flagged = self.checks, self.flagged
        n_sec = sum(1 for s in self.sections if s.checks)
        head = (f"<b>Checks:</b> {len(checks)} recorded in {n_sec} of {len(self.sections)} "
                f"section(s); ")
        if not flagged:
            return f'<div class="summary">{head}<span class="good">none flagged</span>.</div>'
        items = []
        for s in self.sections:                      # grouped by section, in page order
            bad = [c for c in s.checks if not c.passed]
            if bad:
                inner = "".join(
                    f'<li><a href="#{c.anchor}">{html.escape(c.name)}</a> = '
                    f'{html.escape(_fmt(c.value))} <span class="rule">(rule: '
                    f"{html.escape(c.rule)})</span></li>" for c in bad)
                items.append(f'<li><a href="#{s.key}">{html.escape(s.title)}</a>: {len(bad)} '
                             f"flagged<ul>{inner}</ul></li>")
        items = "".join(items)
        note = (" Quick mode trains on small budgets, so some diagnostics are expected to miss "
                "their bars." if self.quick else "")
        return (f'<div class="summary">{head}<span class="fail">{len(flagged)} flagged</span>.'
                f"{note}<ul>{items}</ul></div>")
