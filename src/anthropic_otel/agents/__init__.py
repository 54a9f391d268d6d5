"""Agent runs: the Anthropic SDK's tool runner and the Claude Agent SDK, as runs with their cost and tools.

`install` is what `instrument()` runs for this package (the top level registers it with the instrumentor):
it patches the tool runner, and the Claude Agent SDK when that package is installed, and returns what
undoes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wrapt
from opentelemetry.metrics import Meter

from ..instrumentation.start import Instrumentation
from ..telemetry.faults import Guard
from .metrics import AgentMetrics
from .tool_runner import ToolRunnerPatches

__all__ = ["install"]

_AGENT_SDK = Guard("claude_agent_sdk patches")


def install(tel: Instrumentation, meter: Meter) -> Callable[[], None]:
    """Patches the tool runner (and the Claude Agent SDK when installed); returns the undo."""
    metrics = AgentMetrics(meter, tel.metrics)
    runner = ToolRunnerPatches(tel, metrics)
    runner.apply()
    removers: list[Callable[[], None]] = [runner.remove]
    agent_sdk = _agent_sdk(tel, metrics)
    if agent_sdk is not None:
        removers.append(agent_sdk.remove)

    def remove() -> None:
        for undo in reversed(removers):
            undo()

    return remove


def _agent_sdk(tel: Instrumentation, metrics: AgentMetrics) -> Any:
    """The Claude Agent SDK patches, applied when `claude_agent_sdk` is imported (now, if it is already).

    A post-import hook, so `instrument()` does not import the SDK (and its MCP stack) for applications that
    have it installed but do not use it; after `uninstrument()` a pending hook does nothing.
    """
    from .agent_sdk import AgentSdkPatches

    patches = AgentSdkPatches(tel, metrics)

    def apply(module: Any) -> None:
        if patches.patches.on:
            with _AGENT_SDK:
                patches.apply()

    wrapt.register_post_import_hook(apply, "claude_agent_sdk")
    return patches
