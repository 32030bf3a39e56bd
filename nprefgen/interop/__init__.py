"""Adapters for public flow libraries: build the nprefgen flow with exactly the parameters of a
zuko or nflows flow, and compare the two transform by transform (:func:`check_against`).

torch, zuko and nflows are imported lazily, inside the adapters: ``import nprefgen.interop``
works without them, and a call that needs one raises ImportError saying which.

>>> import zuko, torch                                      # doctest: +SKIP
>>> from nprefgen.interop import check_against               # doctest: +SKIP
>>> report = check_against(zuko.flows.MAF(3, 2), x, context)  # doctest: +SKIP
>>> print(report); assert report.ok(1e-10)                   # doctest: +SKIP

What maps and what does not: the docstrings of :mod:`nprefgen.interop.zuko` and
:mod:`nprefgen.interop.nflows`, and the table in benchmarks/RESULTS.md.
"""
from nprefgen.interop.check import CheckReport, Row, adapt, check_against
from nprefgen.interop.mapping import Adapted, ParamLink, Stage


def from_zuko(flow):
    """See :func:`nprefgen.interop.zuko.from_zuko` (imported lazily)."""
    from nprefgen.interop.zuko import from_zuko as _from_zuko
    return _from_zuko(flow)


def from_nflows(flow):
    """See :func:`nprefgen.interop.nflows.from_nflows` (imported lazily)."""
    from nprefgen.interop.nflows import from_nflows as _from_nflows
    return _from_nflows(flow)


__all__ = ["check_against", "adapt", "from_zuko", "from_nflows", "CheckReport", "Row",
           "Adapted", "ParamLink", "Stage"]
