"""The package's layers, read from the import statements (ast) of every module, lazy imports
inside functions included:

- every subpackage imports only from the layers below it (LAYERS, lowest first), so there is no
  import cycle between subpackages, and in particular ``nprefgen.flows`` never imports data,
  models, sbi, tour or plots;
- no module takes a ``_``-prefixed name (or a ``_``-prefixed module) from another subpackage;
  ``nprefgen._validation`` and ``nprefgen._threads`` are the package's shared private helpers
  and are allowed everywhere.

The checker functions are tested on hand-written sources first, so a broken checker cannot pass
silently.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "nprefgen"
SHARED_PRIVATE = {"_validation", "_threads"}

# lowest first: a layer may import from the layers before it (and from SHARED_PRIVATE)
LAYERS = ["kernels", "nn", "flows", "models", "samplers", "metrics", "testing", "interop", "data", "sbi",
          "plots", "tour", "cli", "__main__", "__init__"]
FLOWS_MUST_NOT_IMPORT = {"data", "models", "sbi", "tour", "plots"}


def _unit(relative: pathlib.PurePath) -> str:
    """The layer a module belongs to: its subpackage, or the top-level module's name."""
    parts = relative.parts
    return parts[0] if len(parts) > 1 else parts[0][:-3]


def imports_of(source: str, unit: str):
    """(target unit, imported name or None, module path, line) for every nprefgen import in
    ``source`` (a module of layer ``unit``), relative imports resolved to absolute ones."""
    tree = ast.parse(source)
    aliases = {}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:                        # relative: stays inside this unit
                module = "nprefgen." + unit + ("." + module if module else "")
            if not (module == "nprefgen" or module.startswith("nprefgen.")):
                continue
            parts = module.split(".")[1:]
            for a in node.names:
                target = parts[0] if parts else a.name
                out.append((target, a.name, module, node.lineno))
                aliases[a.asname or a.name] = (target, module + "." + a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("nprefgen."):
                    target = a.name.split(".")[1]
                    out.append((target, None, a.name, node.lineno))
                    if a.asname:
                        aliases[a.asname] = (target, a.name)
    # attribute access of a private name through an imported module: ``mod._name``
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in aliases and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            target, module = aliases[node.value.id]
            out.append((target, node.attr, module, node.lineno))
    return out


def private_violations(source: str, unit: str):
    """Imports of ``_``-names or ``_``-modules from another unit (shared helpers excepted)."""
    bad = []
    for target, name, module, line in imports_of(source, unit):
        if target == unit or target in SHARED_PRIVATE:
            continue
        private_module = [p for p in module.split(".")[1:] if p.startswith("_")
                          and p not in SHARED_PRIVATE and not p.startswith("__")]
        private_name = name is not None and name.startswith("_") and not name.startswith("__") \
            and name not in SHARED_PRIVATE
        if private_module or private_name:
            bad.append(f"line {line}: {module} {name or ''}".strip())
    return bad


def dependency_graph(files):
    """unit -> set of units it imports (other than itself and the shared private helpers)."""
    graph = {}
    for unit, source in files:
        deps = graph.setdefault(unit, set())
        for target, *_ in imports_of(source, unit):
            if target != unit and target not in SHARED_PRIVATE:
                deps.add(target)
    return graph


def find_cycle(graph):
    """One cycle of ``graph`` as a list of nodes, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _package_files():
    for py in sorted(ROOT.rglob("*.py")):
        rel = py.relative_to(ROOT)
        yield _unit(rel), py.read_text(encoding="utf-8"), rel


# -- the checker on hand-written sources ------------------------------------------------------------
def test_checkers_catch_what_they_should():
    """Private names, private modules, attribute access and cycles are all flagged; shared
    helpers, own-unit private names and relative imports inside a unit are not."""
    src = ("from nprefgen.metrics.field_stats import _bins, power_spectrum\n"
           "from nprefgen.kernels._jit import kernel\n"
           "from nprefgen._validation import check_array\n"
           "from nprefgen.flows.coupling import _selector\n"
           "from nprefgen.metrics import field_stats as FS\n"
           "def f():\n"
           "    from ._private import x\n"
           "    return FS._evaluate_power\n")
    bad = private_violations(src, "flows")
    assert len(bad) == 3, bad
    assert any("_bins" in b for b in bad) and any("_jit" in b for b in bad)
    assert any("_evaluate_power" in b for b in bad)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = dependency_graph([("flows", "def g():\n    from nprefgen.data import load_digits\n")])
    assert graph == {"flows": {"data"}}


# -- the package ------------------------------------------------------------------------------------
def test_every_unit_has_a_layer():
    units = {unit for unit, _, _ in _package_files()}
    assert units <= set(LAYERS) | SHARED_PRIVATE, sorted(units - set(LAYERS) - SHARED_PRIVATE)


def test_flows_import_no_higher_layer():
    """The issue's check: nprefgen/flows imports nothing from data, models, sbi, tour, plots."""
    bad = [f"{rel}: {module}" for unit, source, rel in _package_files() if unit == "flows"
           for target, _, module, _ in imports_of(source, unit) if target in FLOWS_MUST_NOT_IMPORT]
    assert not bad, bad


def test_no_private_names_across_subpackages():
    bad = [f"{rel} {v}" for unit, source, rel in _package_files()
           for v in private_violations(source, unit)]
    assert not bad, bad


def test_layers_import_only_downwards_and_no_cycles():
    graph = dependency_graph((unit, source) for unit, source, _ in _package_files())
    assert find_cycle(graph) is None, find_cycle(graph)
    rank = {u: i for i, u in enumerate(LAYERS)}
    upward = sorted(f"{u} -> {t}" for u, deps in graph.items() for t in deps
                    if u in rank and t in rank and rank[t] >= rank[u])
    assert not upward, upward


@pytest.mark.parametrize("unit", ["flows", "nn", "kernels"])
def test_low_layers_never_import_matplotlib(unit):
    """flows/, nn/ and kernels/ hold numerics only: no plotting library, even lazily."""
    bad = []
    for u, source, rel in _package_files():
        if u != unit:
            continue
        for node in ast.walk(ast.parse(source)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{rel}: {n}" for n in names if n.split(".")[0] == "matplotlib"]
    assert not bad, bad
