"""The tour's HTML report: sections of text, tables and PNG figures in one folder.

A section module in :mod:`nprefgen.tour.sections` defines ``ORDER`` (an int: where it goes),
``TITLE`` (a str) and ``build(report)``; ``build`` writes through the :class:`Report` methods and
draws all randomness from ``report.rng(...)``. ``report.quick`` asks for a smaller run (used by the
tests); the full tour must still finish in a few minutes on 2 cores.
"""
from __future__ import annotations

import html
import os
import time
from dataclasses import dataclass, field

import numpy as np

from nprefgen._validation import check_int, check_scalar, check_str

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
.fail { color: #b00; font-weight: bold; } .ok { color: #070; }
nav a { margin-right: 1em; } .meta { color: #777; font-size: 0.85em; }
"""


@dataclass
class _Section:
    key: str
    title: str
    parts: list = field(default_factory=list)
    seconds: float = 0.0


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

    # -- used by sections ----------------------------------------------------------------------
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

    def table(self, header, rows, caption: str | None = None, status_col: int | None = None) -> None:
        """A table; numbers are formatted with 4 significant digits. ``status_col`` marks a
        column of booleans shown as ok / FAIL. Every row has one cell per header entry."""
        header, rows = list(header), [list(row) for row in rows]
        if not header:
            raise ValueError("header: expected at least one column name, got none")
        bad = [i for i, row in enumerate(rows) if len(row) != len(header)]
        if bad:
            raise ValueError(f"rows: expected {len(header)} cells per row (one per header "
                             f"entry), got {len(rows[bad[0]])} in row {bad[0]}")
        if status_col is not None:
            check_int(status_col, "status_col", low=0, high=len(header) - 1)
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{html.escape(caption)}</caption>")
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
        for row in rows:
            cells = []
            for j, v in enumerate(row):
                if status_col is not None and j == status_col:
                    cells.append('<td class="ok">ok</td>' if v else '<td class="fail">FAIL</td>')
                elif isinstance(v, (float, np.floating)):
                    cells.append(f"<td>{v:.4g}</td>")
                else:
                    cells.append(f"<td>{html.escape(str(v))}</td>")
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
        fig.savefig(os.path.join(self.outdir, fname), dpi=90, bbox_inches="tight")
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
        nav = " ".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in self.sections)
        if self.failures:
            names = ", ".join(k for k, _ in self.failures)
            nav = (f"<p class='fail'>{len(self.failures)} section(s) raised an error: "
                   f"{html.escape(names)} (tracebacks below)</p>{nav}")
        body = []
        for s in self.sections:
            body.append(f'<h2 id="{s.key}">{html.escape(s.title)}</h2>')
            body.extend(s.parts)
            body.append(f'<p class="meta">section time {s.seconds:.1f} s</p>')
        stamp = time.strftime("%Y-%m-%d %H:%M")
        total = f", {total_seconds:.0f} s in all" if total_seconds is not None else ""
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>nprefgen tour</title>"
                f"<style>{_CSS}</style></head><body><h1>nprefgen tour</h1>"
                f"<p class='meta'>seed {self.seed}{', quick mode' if self.quick else ''}; "
                f"written {stamp}{total}</p><nav>{nav}</nav>{''.join(body)}</body></html>")
        path = os.path.join(self.outdir, "index.html")
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
        self.index_path = path
        return path
