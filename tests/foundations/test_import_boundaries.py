"""The import boundaries, kept by a machine: the engines stay framework-free and nothing imports in a circle.

The list of engines is the source list of the import-linter contract in pyproject.toml (``lint-imports``
checks the same boundary through indirect imports; this test also runs where only ``make test`` does). The
graph is grimp's, import-linter's own library: every ``import`` statement counts, including those inside
functions; only those under ``if TYPE_CHECKING:`` do not, since they never run.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = ("relay", "apikeys", "sessions", "sequrity_site")


def _engine_contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["id"] == "engines-framework-free")


ENGINES: tuple[str, ...] = tuple(_engine_contract()["source_modules"])
FORBIDDEN_ROOTS = frozenset(_engine_contract()["forbidden_modules"])


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        *OUR_PACKAGES, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None
    )


def _is_engine(module: str) -> bool:
    return any(module == e or module.startswith(e + ".") for e in ENGINES)


def _where(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    lines = sorted({d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)})
    return f"{importer} -> {imported} (line {', '.join(map(str, lines)) or '?'})"


def test_every_engine_exists(graph):
    missing = [e for e in ENGINES if e not in graph.modules]
    assert not missing, f"engines listed in pyproject.toml that no longer exist (renamed?): {missing}"


def test_engines_import_only_engines_and_no_framework(graph):
    """An engine may import other engines, the standard library and third-party libraries, but nothing of
    the Django side: not Django, DRF or Celery, not our Django apps, and not the relay's glue modules (any
    relay module that is not an engine)."""
    wrong = []
    for module in sorted(m for m in graph.modules if _is_engine(m)):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            root = imported.split(".")[0]
            if root in FORBIDDEN_ROOTS or (root == "relay" and not _is_engine(imported)):
                wrong.append(_where(graph, module, imported))
    assert not wrong, "engines importing outside the engines:\n  " + "\n  ".join(wrong)


def _strongly_connected(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is deep enough to exhaust Python's recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _shortest_cycle(start: str, members: set[str], edges: dict[str, set[str]]) -> list[str]:
    """The shortest path from ``start`` back to itself inside one strongly connected component."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start]


def test_there_are_no_import_cycles(graph):
    ours = sorted(m for m in graph.modules if m.split(".")[0] in OUR_PACKAGES)
    edges = {
        m: {
            i
            for i in graph.find_modules_directly_imported_by(m)
            if i.split(".")[0] in OUR_PACKAGES and i != m
        }
        for m in ours
    }
    cycles = [c for c in _strongly_connected(ours, edges) if len(c) > 1]
    report = []
    for component in cycles:
        cycle = _shortest_cycle(component[0], set(component), edges)
        steps = "\n      ".join(_where(graph, a, b) for a, b in zip(cycle, cycle[1:], strict=False))
        report.append(f"{len(component)} modules import each other: {', '.join(component)}\n    e.g. {steps}")
    assert not cycles, f"{len(cycles)} import cycle(s):\n  " + "\n  ".join(report)
