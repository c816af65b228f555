"""The layout's rules, checked on the source: no module imports one that imports it back (at any
depth, late imports included), `pipeline/` imports nothing of `actors/` or `jobs/`, `actors/`
nothing of `jobs/` (docs/architecture.md, "Where each concern lives")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("pipeline", "actors", "jobs")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imported(name: str, path: Path) -> set[str]:
    """The project's modules that `name` imports, anywhere in it (a late import in a function too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])])
            # `from pipeline.quality import flow` imports the module pipeline.quality.flow.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in MODULES and target != name}
    return found


GRAPH = {name: imported(name, path) for name, path in MODULES.items()}


def cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            if component:
                found.append(sorted([node, *component]))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_one_that_imports_it_back():
    assert cycles() == []


@pytest.mark.parametrize(("layer", "forbidden"), [("pipeline", ("actors", "jobs")), ("actors", ("jobs",))])
def test_a_layer_imports_nothing_above_it(layer: str, forbidden: tuple[str, ...]):
    above = {
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name.split(".")[0] == layer
        for target in targets
        if target.split(".")[0] in forbidden
    }
    assert not above


def test_the_checker_sees_a_cycle_and_a_late_import(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(GRAPH, "pipeline.config", GRAPH["pipeline.config"] | {"pipeline.plan"})
    assert ["pipeline.config", "pipeline.plan"] in cycles()
    assert "jobs.run.job" in GRAPH["jobs.cli.run"]  # imported inside the command function
