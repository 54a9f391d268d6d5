"""The agent-run instruments (created once per meter) and their bounded labels.

Runs and tool calls are rare next to chat calls, so they are recorded synchronously. Every instrument
carries the common attributes of the run (`Metrics.attributes`: operation `invoke_agent`, provider, model,
server address, the `metric_attributes`); tool names and error types are bounded like every other label.
"""

from __future__ import annotations

import threading
import weakref
from decimal import Decimal
from typing import Any

from opentelemetry.metrics import Meter

from ..instrumentation.config import DEFAULT_METRIC_ATTRIBUTE_LIMIT
from ..instrumentation.metrics import ENUM_LABEL_LIMIT, CommonKey, Label, Metrics
from ..telemetry import names as n
from ..telemetry.faults import Guard

_RECORD = Guard("agent metrics")


class _Instruments:
    """The agent instruments of one meter."""

    def __init__(self, meter: Meter) -> None:
        self.runs = meter.create_counter(n.M_AGENT_RUNS, unit="{run}", description="Agent runs, by outcome.")
        self.run_cost = meter.create_histogram(
            n.M_AGENT_RUN_COST, unit="{USD}", description="Cost of one agent run in US dollars (priced runs).",
            explicit_bucket_boundaries_advisory=list(n.RUN_COST_BUCKETS))
        self.run_iterations = meter.create_histogram(
            n.M_AGENT_RUN_ITERATIONS, unit="{iteration}",
            description="Model calls (tool runner) or turns (Agent SDK) of one agent run.",
            explicit_bucket_boundaries_advisory=[float(b) for b in n.RUN_ITERATION_BUCKETS])
        self.tool_calls = meter.create_counter(
            n.M_AGENT_TOOL_CALLS, unit="{call}", description="Tool calls of agent runs, by tool and error type.")
        self.tool_duration = meter.create_histogram(
            n.M_AGENT_TOOL_DURATION, unit="s", description="Duration of one tool call of an agent run.",
            explicit_bucket_boundaries_advisory=list(n.TOOL_DURATION_BUCKETS))
        self.divergence = meter.create_histogram(
            n.M_AGENT_COST_DIVERGENCE, unit="{1}",
            description="How far the Claude Agent SDK's own cost of a run is from this package's: |ours - its| / ours.",
            explicit_bucket_boundaries_advisory=list(n.COST_DIVERGENCE_BUCKETS))


_LOCK = threading.Lock()
_BY_METER: weakref.WeakKeyDictionary[Meter, _Instruments] = weakref.WeakKeyDictionary()


def _for_meter(meter: Meter) -> _Instruments:
    with _LOCK:
        try:
            found = _BY_METER.get(meter)
        except TypeError:
            return _Instruments(meter)
        if found is None:
            found = _BY_METER[meter] = _Instruments(meter)
        return found


class AgentMetrics:
    """Records runs and tool calls of one `instrument()`; labels on top of its `Metrics`' common ones."""

    def __init__(self, meter: Meter, metrics: Metrics) -> None:
        self._instruments = _for_meter(meter)
        self.metrics = metrics
        limit = getattr(metrics, "_limit", DEFAULT_METRIC_ATTRIBUTE_LIMIT)
        self._tools = Label(n.GEN_AI_TOOL_NAME, limit)
        self._errors = Label(n.ERROR_TYPE, ENUM_LABEL_LIMIT)

    def _attributes(self, key: CommonKey, *extra: tuple[str, Any]) -> dict[str, Any]:
        return self.metrics.attributes(key, *extra)

    def run_ended(self, key: CommonKey, outcome: str, iterations: int, cost: Decimal | None) -> None:
        """One run: its outcome, iterations and (when priced) cost."""
        if outcome not in n.RUN_OUTCOMES:
            outcome = n.OTHER
        instruments = self._instruments
        with _RECORD:
            instruments.runs.add(1, self._attributes(key, (n.RUN_OUTCOME, outcome)))
        with _RECORD:
            instruments.run_iterations.record(iterations, self._attributes(key))
        if cost is not None:
            with _RECORD:
                instruments.run_cost.record(float(cost), self._attributes(key))

    def tool_called(self, key: CommonKey, tool: str, error_type: str | None, duration: float) -> None:
        """One tool call: counted and timed by tool name and error type (`none` when it succeeded)."""
        if tool not in self._tools.seen:
            tool = self._tools.bound(tool)
        error = n.NONE if error_type is None else error_type
        if error not in self._errors.seen:
            error = self._errors.bound(error)
        attributes = self._attributes(key, (n.GEN_AI_TOOL_NAME, tool), (n.ERROR_TYPE, error))
        with _RECORD:
            self._instruments.tool_calls.add(1, attributes)
        with _RECORD:
            self._instruments.tool_duration.record(duration, attributes)

    def cost_divergence(self, key: CommonKey, ratio: float) -> None:
        with _RECORD:
            self._instruments.divergence.record(ratio, self._attributes(key))
