"""Agent runs: the Anthropic SDK's tool runner and the Claude Agent SDK, as runs with their cost and tools.

`install` is what `instrument()` runs for this package (the top level registers it with the instrumentor):
it patches the tool runner, and the Claude Agent SDK when that package is installed, and returns what
undoes it.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.metrics import Meter

from ..instrumentation.start import Instrumentation
from .metrics import AgentMetrics
from .tool_runner import ToolRunnerPatches

__all__ = ["install"]


def install(tel: Instrumentation, meter: Meter) -> Callable[[], None]:
    """Patches the tool runner (and the Claude Agent SDK when installed); returns the undo."""
    metrics = AgentMetrics(meter, tel.metrics)
    runner = ToolRunnerPatches(tel, metrics)
    runner.apply()
    removers: list[Callable[[], None]] = [runner.remove]

    def remove() -> None:
        for undo in reversed(removers):
            undo()

    return remove
