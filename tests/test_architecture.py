"""The package layout of docs/architecture.md, enforced: allowed import directions and no import cycle.

Imports are read with `ast` from every module under src/anthropic_otel, wherever they sit: at module level,
inside functions and inside `if TYPE_CHECKING:` blocks (a deferred import is still a dependency).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from _tools import ROOT

SRC = ROOT / "src"
PACKAGE = "anthropic_otel"
TOP = "top level"  # anthropic_otel/__init__, cli, demo: they assemble the packages and may import anything
VERSION = "version"  # anthropic_otel.version: a constant that imports nothing; every layer may read it
# Which of our layers each layer may import (besides itself and `version`). docs/architecture.md says why.
ALLOWED: Mapping[str, frozenset[str]] = {
    "telemetry": frozenset(),
    "cost": frozenset({"telemetry"}),
    "instrumentation": frozenset({"telemetry", "cost"}),
    "ops": frozenset({"telemetry", "cost"}),
    "resilience": frozenset({"instrumentation", "cost", "telemetry"}),
    "agents": frozenset({"instrumentation", "cost", "telemetry"}),
    "testing": frozenset(),
    "reconcile": frozenset({"telemetry", "cost"}),
    VERSION: frozenset(),
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} imports {self.target}"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(root: Path = SRC) -> dict[str, tuple[Path, str]]:
    """Module name -> (path, source) of every module of ours."""
    return {_module_name(path, root): (path, path.read_text(encoding="utf-8"))
            for path in sorted((root / PACKAGE).rglob("*.py"))}


def _edges(module: str, is_package: bool, source: str, path: str, modules: Iterable[str]) -> list[Edge]:
    """Every import of one of our modules in `source`, at any depth of the syntax tree."""
    known = set(modules)
    here = module if is_package else module.rpartition(".")[0]
    edges: list[Edge] = []

    def add(target: str, line: int) -> None:
        while target not in known and "." in target:  # `import a.b.name` of a non-module name
            target = target.rpartition(".")[0]
        if target in known and target != module:
            edges.append(Edge(module, target, path, line))

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            for alias in node.names:  # `from pkg import module` depends on the module, else on pkg itself
                add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base, node.lineno)
    return edges


def _graph(sources: Mapping[str, tuple[Path, str]]) -> list[Edge]:
    edges: list[Edge] = []
    for module, (path, source) in sources.items():
        shown = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        edges += _edges(module, path.name == "__init__.py", source, shown, sources)
    return edges


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("cli", "demo"):
        return TOP
    return parts[1]


def _violations(edges: Iterable[Edge]) -> list[str]:
    out = []
    for edge in edges:
        source, target = _layer(edge.source), _layer(edge.target)
        if source in (TOP, target) or target == VERSION:
            continue
        if target not in ALLOWED.get(source, frozenset()):
            allowed = sorted(ALLOWED.get(source, frozenset())) or ["nothing of ours"]
            out.append(f"{edge} ({source} may import {', '.join(allowed)}; see docs/architecture.md)")
    return out


def _cycles(edges: Iterable[Edge]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _describe(cycles: list[list[str]], edges: list[Edge]) -> str:
    lines = []
    for cycle in cycles:
        members = set(cycle)
        lines.append("cycle: " + ", ".join(cycle))
        lines += dict.fromkeys(f"  {edge}" for edge in edges if edge.source in members and edge.target in members)
    return "\n".join(lines)


# -- the tree -------------------------------------------------------------------------------------

EDGES = _graph(_sources())


def test_every_package_has_a_place_in_the_layering_and_the_document() -> None:
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    packages = sorted(path.name for path in (SRC / PACKAGE).iterdir() if (path / "__init__.py").is_file())
    assert packages, "no packages found under src/anthropic_otel"
    for name in packages:
        assert name in ALLOWED, f"package {name!r} is new: add its allowed imports to ALLOWED here and a paragraph to "\
            "docs/architecture.md"
        assert f"`{PACKAGE}.{name}`" in architecture, f"docs/architecture.md has no paragraph on `{PACKAGE}.{name}`"


def test_imports_follow_the_allowed_directions() -> None:
    assert len(EDGES) > 50, "the import scan found almost nothing"
    violations = _violations(EDGES)
    assert not violations, "imports against the layering:\n" + "\n".join(violations)


def test_no_import_cycle_anywhere() -> None:
    cycles = _cycles(EDGES)
    assert not cycles, _describe(cycles, EDGES)


# -- the checks themselves can fail ---------------------------------------------------------------

def _fake_tree(tmp_path: Path, files: Mapping[str, str]) -> list[Edge]:
    for name, text in files.items():
        path = tmp_path / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return _graph(_sources(tmp_path))


def test_deferred_and_type_checking_imports_count(tmp_path: Path) -> None:
    edges = _fake_tree(tmp_path, {
        "__init__.py": "",
        "version.py": "",
        "telemetry/__init__.py": "",
        "telemetry/names.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..cost import usage\n",
        "telemetry/setup.py": "def f():\n    import anthropic_otel.instrumentation.call\n"
                              "    from ..version import x\n",
        "cost/__init__.py": "",
        "cost/usage.py": "from ..telemetry.names import X\n",
        "instrumentation/__init__.py": "",
        "instrumentation/call.py": "def g():\n    from ..resilience import wrap\n",
        "resilience/__init__.py": "from .engine import Engine\n",
        "resilience/engine.py": "from anthropic_otel.instrumentation import call\n",
    })
    found = {(edge.source, edge.target) for edge in edges}
    assert ("anthropic_otel.resilience.engine", "anthropic_otel.instrumentation.call") in found
    assert ("anthropic_otel.resilience", "anthropic_otel.resilience.engine") in found
    violations = "\n".join(_violations(edges))
    assert "telemetry.names imports anthropic_otel.cost.usage" in violations  # TYPE_CHECKING
    assert "telemetry.setup imports anthropic_otel.instrumentation.call" in violations  # inside a function
    assert "instrumentation.call imports anthropic_otel.resilience " in violations
    assert len(_violations(edges)) == 3, violations  # cost -> telemetry and anything -> version are allowed
    assert _cycles(edges) == [["anthropic_otel.cost.usage", "anthropic_otel.telemetry.names"],
                              ["anthropic_otel.instrumentation.call", "anthropic_otel.resilience",
                               "anthropic_otel.resilience.engine"]]
