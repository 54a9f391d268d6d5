"""The resilience package's modules import one way (issue 11): no cycle, counting imports inside functions and
under `TYPE_CHECKING`, which hide a cycle from the interpreter but not from a reader."""

from __future__ import annotations

import ast
from pathlib import Path

import anthropic_otel.resilience

PACKAGE = Path(anthropic_otel.resilience.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module)
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_resilience_modules_import_one_way() -> None:
    graph = {path.stem: _imports(path) - {path.stem} for path in PACKAGE.glob("*.py")}
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join([*trail, module])}"
        state[module] = "open"
        for dependency in sorted(graph.get(module, ())):
            visit(dependency, [*trail, module])
        state[module] = "done"
        order.append(module)

    for module in sorted(graph):
        visit(module, [])
    assert set(order) == set(graph)
    assert not {"_engine", "_client", "_policy"} & graph["_streams"]  # streams call back, never import up
    assert "_client" not in graph["_engine"]
