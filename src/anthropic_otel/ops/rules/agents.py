"""The agent-run alerts: runaway runs (iterations or dollars per run above a bound) and failing tools.

A run above a bound is counted from its histogram: runs in the window minus those in the bucket at the
bound, so the bound must be one of the histogram's bucket bounds (checked here, with the bounds named).
The series exist only where agent runs happen, so elsewhere these alerts stay silent.
"""

from __future__ import annotations

from ...telemetry import names as n
from ...telemetry.series import AGENT_RUN_COST, AGENT_RUN_ITERATIONS, AGENT_TOOL_CALLS, ERROR_TYPE, MODEL, TOOL_NAME
from .config import RulesConfig
from .promql import agg, counted, label, matches, ne, number, select, value
from .rule import MODEL_LABEL as _M
from .rule import Group, alert


def _le(bound: float, bounds: tuple[float, ...], key: str) -> str:
    """The `le` matcher of the bucket at `bound` (`20` from the Collector, `20.0` from the Python exporter)."""
    if float(bound) not in {float(b) for b in bounds}:
        raise ValueError(f"agents.{key}: {number(bound)} is not a bucket bound of the histogram; use one of "
                         + " ".join(number(b) for b in bounds))
    text = number(bound).replace(".", "\\\\.")
    return matches("le", f"{text}(\\\\.0+)?" if float(bound).is_integer() else text)


def _runs_above(config: RulesConfig, histogram: str, bound: float, bounds: tuple[float, ...], key: str,
                window: str) -> str:
    """Runs per model within `window` whose value was above `bound`."""
    every = counted(config, [MODEL], f"{histogram}_count", "", window)
    within = counted(config, [MODEL], f"{histogram}_bucket", _le(bound, bounds, key), window)
    return f"(\n{every}\n)\n-\n(\n{within}\n)"


def agent_alerts(config: RulesConfig) -> Group:
    """Runaway runs and a tool error ratio."""
    a = config.agents
    it, cost, tools = a.runaway_iterations, a.runaway_cost, a.tool_errors
    tool = label(TOOL_NAME)
    by_tool = [MODEL, TOOL_NAME]
    failed = agg(config, "sum", by_tool,
                 f"increase({select(AGENT_TOOL_CALLS, ne(ERROR_TYPE, n.NONE))}[{tools.window}])")
    every = agg(config, "sum", by_tool, f"increase({AGENT_TOOL_CALLS}[{tools.window}])")
    long_runs = _runs_above(config, AGENT_RUN_ITERATIONS, it.iterations, n.RUN_ITERATION_BUCKETS,
                            "runaway_iterations.iterations", it.window)
    costly_runs = _runs_above(config, AGENT_RUN_COST, cost.usd, n.RUN_COST_BUCKETS, "runaway_cost.usd", cost.window)
    return {"name": "anthropic-otel.agents", "rules": [
        alert(config, "AnthropicAgentRunawayIterations",
              f"{long_runs}\n> 0",
              it.for_, it.severity,
              f"Agent runs on {_M} take more than {number(it.iterations)} iterations.",
              f"{value('humanize')} agent run(s) on {_M} took more than {number(it.iterations)} model calls or turns "
              f"in the last {it.window}: a loop that does not converge burns tokens on every iteration."),
        alert(config, "AnthropicAgentRunawayCost",
              f"{costly_runs}\n> 0",
              cost.for_, cost.severity,
              f"Agent runs on {_M} cost more than ${number(cost.usd)} each.",
              f"{value('humanize')} agent run(s) on {_M} cost more than ${number(cost.usd)} each in the last "
              f"{cost.window}."),
        alert(config, "AnthropicAgentToolErrorRatioHigh",
              f"(\n  {failed}\n  /\n  {every}\n) > {number(tools.ratio)}\nand\n{every} >= {number(tools.min_calls)}",
              tools.for_, tools.severity,
              f"The agent tool {tool} fails often.",
              f"{value('humanizePercentage')} of the calls of the tool {tool} (runs on {_M}) failed in the last "
              f"{tools.window} (threshold {number(tools.ratio)}): the model retries or works around it, "
              "which costs iterations."),
    ]}
