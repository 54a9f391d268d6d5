"""One agent run's rollup: what its model calls and tool calls added up to, put on its span and metrics.

A tool-runner run learns its calls through the `CURRENT_RUN` hook (`instrumentation/runs.py`): each chat
call made while the run is current hands it the usage and cost its own span, metrics and the ledger got,
so the run's tokens and cost are their exact sum (integers and `Decimal` dollars). A call made by a tool
while it runs adds its tokens and cost but is not an iteration of the run (`nested`).
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from ..cost.pricing import Cost
from ..cost.usage import Usage
from ..instrumentation.metrics import CommonKey
from ..telemetry import names as n
from ..telemetry.faults import Guard
from .metrics import AgentMetrics

_FINISH = Guard("agent run end")
_ZERO = Decimal(0)


class Run:
    """The totals of one run; `add_call` and `tool_done` are thread-safe, `finish` runs once."""

    def __init__(self, metrics: AgentMetrics, span: trace.Span, key: CommonKey, framework: str) -> None:
        self.metrics = metrics
        self.span = span
        self.key = key
        self.framework = framework
        self._lock = threading.Lock()
        self.iterations = 0
        self.input_tokens = 0  # uncached (Anthropic's meaning)
        self.output_tokens = 0
        self.cache_read = 0
        self.cache_write = 0
        self.cost = _ZERO
        self.priced = False  # at least one call had a price
        self.cache_savings = _ZERO  # net, as on the chat spans
        self.cache_touched = False
        self.unpriced_calls = 0
        self.stop_reason: str | None = None
        self.tool_calls = 0
        self.tool_errors = 0
        self.error_type: str | None = None  # what the run raised, when it did
        self.held = _ZERO  # worst cases of its calls in flight (the resilience wrapper's per-run budget)
        self.ended = False

    def add_call(self, usage: Usage | None, cost: Cost | None, priced: bool, stop_reason: str | None,
                 error_type: str | None) -> None:
        """A model call of the run ended (the `CURRENT_RUN` hook)."""
        self._add(usage, cost, priced, stop_reason, iteration=True)

    def _add(self, usage: Usage | None, cost: Cost | None, priced: bool, stop_reason: str | None,
             iteration: bool) -> None:
        with self._lock:
            if iteration:
                self.iterations += 1
                self.stop_reason = stop_reason
            if usage is not None:
                self.input_tokens += usage.input_tokens
                self.output_tokens += usage.output_tokens
                self.cache_read += usage.cache_read
                self.cache_write += usage.cache_write
            if cost is not None:
                self.cost += cost.total
                self.priced = True
                if cost.cache_savings or cost.write_premium:
                    self.cache_savings += cost.net_cache_savings
                    self.cache_touched = True
            elif not priced:
                self.unpriced_calls += 1

    def hold(self, amount: Decimal, limit: Decimal) -> Decimal | None:
        """Sets a call's worst case aside against the run's budget `limit` (the `RunSink` hook)."""
        with self._lock:
            spent = self.cost + self.held
            if spent >= limit or spent + amount > limit:
                return spent
            self.held += amount
        return None

    def release(self, amount: Decimal) -> None:
        with self._lock:
            self.held -= amount

    def add_usage(self, usage: Usage, cost: Cost | None) -> None:
        """Tokens and cost the run reports itself (the Agent SDK's per-model usage), not a call of ours."""
        self._add(usage, cost, cost is not None, None, iteration=False)

    def nested(self) -> Nested:
        """The sink for calls a tool of this run makes while it runs."""
        return Nested(self)

    def tool_done(self, failed: bool) -> None:
        with self._lock:
            self.tool_calls += 1
            self.tool_errors += failed

    def attributes(self) -> dict[str, Any]:
        """The rolled-up span attributes."""
        with self._lock:
            attributes: dict[str, Any] = {
                n.RUN_ITERATIONS: self.iterations,
                n.RUN_TOOL_CALLS: self.tool_calls,
                n.RUN_TOOL_ERRORS: self.tool_errors,
                n.GEN_AI_USAGE_INPUT_TOKENS: self.input_tokens + self.cache_read + self.cache_write,
                n.GEN_AI_USAGE_OUTPUT_TOKENS: self.output_tokens,
                n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: self.cache_read,
                n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: self.cache_write,
                n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: self.cache_write,
            }
            if self.priced:
                attributes[n.COST_USD] = float(self.cost)
            if self.cache_touched:
                attributes[n.CACHE_SAVINGS_USD] = float(self.cache_savings)
            if self.unpriced_calls:
                attributes[n.RUN_UNPRICED_CALLS] = self.unpriced_calls
            if self.stop_reason is not None:
                attributes[n.GEN_AI_RESPONSE_FINISH_REASONS] = (self.stop_reason,)
        return attributes

    def finish(self, outcome: str, error_type: str | None = None, iterations: int | None = None) -> bool:
        """Puts the rollup on the span (not ended here) and records the run's metrics; False when done already."""
        with self._lock:
            if self.ended:
                return False
            self.ended = True
            if iterations is not None:
                self.iterations = iterations
        with _FINISH:
            if self.span.is_recording():
                attributes = self.attributes()
                attributes[n.RUN_OUTCOME] = outcome
                if error_type is not None:
                    attributes[n.ERROR_TYPE] = error_type
                self.span.set_attributes(attributes)
        with _FINISH:
            self.metrics.run_ended(self.key, outcome, self.iterations, self.cost if self.priced else None)
        return True


class Nested:
    """A tool's own model calls: their tokens and cost are the run's, but they are not its iterations."""

    __slots__ = ("run",)

    def __init__(self, run: Run) -> None:
        self.run = run

    def add_call(self, usage: Usage | None, cost: Cost | None, priced: bool, stop_reason: str | None,
                 error_type: str | None) -> None:
        self.run._add(usage, cost, priced, stop_reason, iteration=False)

    def hold(self, amount: Decimal, limit: Decimal) -> Decimal | None:
        return self.run.hold(amount, limit)

    def release(self, amount: Decimal) -> None:
        self.run.release(amount)


def set_error(span: trace.Span, error_type: str, description: str | None = None) -> None:
    """ERROR status and `error.type` on `span`."""
    span.set_attribute(n.ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, description))
