"""The instruments of one meter, created once per meter however often `instrument()` runs.

The OpenTelemetry SDK keeps the first registration of an instrument name on a meter, callbacks included: the
callbacks of a second `instrument()` on the same meter provider would never be read, and the counters would
stop counting after an `uninstrument()` / `instrument()` cycle. So each meter gets its instruments once, and
their callbacks read every source added to it: the current `Metrics` and those of earlier cycles, whose
calls still count. Equal label sets from several sources are summed (counters) or the freshest wins (gauges).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from operator import methodcaller
from time import monotonic
from typing import Any, Final, Protocol

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from ..telemetry import names as n

Point = tuple[Mapping[str, Any], float]
GaugePoint = tuple[Mapping[str, Any], float, float]  # attributes, value, when it was seen (monotonic seconds)

_REMAINING: Final = 2  # index into each rate-limit header triple: (resource, limit header, remaining header)
_LIMIT: Final = 1


class Source(Protocol):
    """What a callback reads: one `instrument()`'s totals (see `Metrics`)."""

    @property
    def budgets(self) -> Mapping[str, float]: ...

    def request_points(self) -> list[Point]: ...
    def token_points(self) -> list[Point]: ...
    def cost_points(self) -> list[Point]: ...
    def savings_points(self) -> list[Point]: ...
    def premium_points(self) -> list[Point]: ...
    def unpriced_points(self) -> list[Point]: ...
    def active_points(self) -> list[Point]: ...
    def unknown_points(self) -> list[Point]: ...
    def missed_token_points(self) -> list[Point]: ...
    def missed_usd_points(self) -> list[Point]: ...
    def ratelimit_points(self, index: int, now: float) -> list[GaugePoint]: ...
    def thinking_points(self) -> list[Point]: ...
    def server_tool_points(self) -> list[Point]: ...
    def container_points(self) -> list[Point]: ...


Callback = Callable[[CallbackOptions], Iterable[Observation]]


class MeterInstruments:
    """The histograms, counters and gauges of one meter, and the sources their callbacks read."""

    def __init__(self, meter: Meter) -> None:
        self._sources: tuple[Source, ...] = ()
        self._budget_gauge = False
        self.duration = meter.create_histogram(
            n.M_OPERATION_DURATION, unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(n.DURATION_BUCKETS))
        self.token_usage = meter.create_histogram(
            n.M_TOKEN_USAGE, unit="{token}", description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(n.TOKEN_BUCKETS))
        self.ttfc = meter.create_histogram(
            n.M_TIME_TO_FIRST_CHUNK, unit="s", description="Time to receive the first chunk of a stream.",
            explicit_bucket_boundaries_advisory=list(n.DURATION_BUCKETS))
        meter.create_observable_counter(
            n.M_REQUESTS, [self._summed("request_points")], unit="{request}",
            description="Anthropic API calls, by stop reason and error type.")
        meter.create_observable_counter(
            n.M_TOKENS, [self._summed("token_points")], unit="{token}",
            description="Billed tokens by class; input is uncached input (Anthropic's meaning).")
        meter.create_observable_counter(
            n.M_COST, [self._summed("cost_points")], unit="{USD}", description="Cost in US dollars, by token class.")
        meter.create_observable_counter(
            n.M_CACHE_SAVINGS, [self._summed("savings_points")], unit="{USD}",
            description="Dollars that cache reads saved against the input rate (gross; see the write premium).")
        meter.create_observable_counter(
            n.M_CACHE_WRITE_PREMIUM, [self._summed("premium_points")], unit="{USD}",
            description="Dollars that cache writes cost over the input rate; net savings = savings - premium.")
        meter.create_observable_counter(
            n.M_UNPRICED, [self._summed("unpriced_points")], unit="{request}",
            description="Calls whose model has no known price.")
        meter.create_observable_counter(
            n.M_USAGE_UNKNOWN, [self._summed("unknown_points")], unit="{request}",
            description="Calls whose final usage never arrived (their cost is not counted), by reason.")
        meter.create_observable_counter(
            n.M_CACHE_MISSED_TOKENS, [self._summed("missed_token_points")], unit="{token}",
            description="Input tokens the prompt cache missed, by the reason the API diagnosed.")
        meter.create_observable_counter(
            n.M_CACHE_MISSED_USD, [self._summed("missed_usd_points")], unit="{USD}",
            description="Dollars those misses cost over cache reads: tokens x (input rate - cache-read rate).")
        meter.create_observable_up_down_counter(
            n.M_ACTIVE, [self._summed("active_points")], unit="{request}", description="Calls in flight.")
        meter.create_observable_gauge(
            n.M_RATELIMIT_REMAINING, [self._freshest(_REMAINING)], unit="{1}",
            description="Remaining allowance from the last anthropic-ratelimit-*-remaining header.")
        meter.create_observable_gauge(
            n.M_RATELIMIT_LIMIT, [self._freshest(_LIMIT)], unit="{1}",
            description="Limit from the last anthropic-ratelimit-*-limit header.")
        meter.create_observable_counter(
            n.M_THINKING_TOKENS, [self._summed("thinking_points")], unit="{token}",
            description="Thinking tokens: the reasoning share of output tokens (already counted in output).")
        meter.create_observable_counter(
            n.M_SERVER_TOOL_REQUESTS, [self._summed("server_tool_points")], unit="{request}",
            description="Server tool requests (web search, web fetch), by tool.")
        meter.create_observable_counter(
            n.M_CONTAINER_REQUESTS, [self._summed("container_points")], unit="{request}",
            description="Calls whose response carried a code-execution container.")

    def add(self, source: Source, meter: Meter) -> None:
        """Makes `source` read by the callbacks (the newest one's budgets are the ones reported)."""
        with _LOCK:
            self._sources = (*self._sources, source)
            register_budget = bool(source.budgets) and not self._budget_gauge
            self._budget_gauge = self._budget_gauge or register_budget
        if register_budget:
            meter.create_observable_gauge(
                n.M_BUDGET, [self._observe_budget], unit="{USD}", description="Configured spend budget.")

    def _summed(self, method: str) -> Callback:
        read = methodcaller(method)

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            sources = self._sources
            if len(sources) == 1:
                return [Observation(value, attributes) for attributes, value in read(sources[0])]
            merged: dict[frozenset[tuple[str, Any]], tuple[Mapping[str, Any], float]] = {}
            for source in sources:
                for attributes, value in read(source):
                    key = frozenset(attributes.items())
                    found = merged.get(key)
                    merged[key] = (attributes, value if found is None else found[1] + value)
            return [Observation(value, attributes) for attributes, value in merged.values()]
        return observe

    def _freshest(self, index: int) -> Callback:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            now = monotonic()
            merged: dict[frozenset[tuple[str, Any]], GaugePoint] = {}
            for source in self._sources:
                for point in source.ratelimit_points(index, now):
                    key = frozenset(point[0].items())
                    found = merged.get(key)
                    if found is None or found[2] <= point[2]:
                        merged[key] = point
            return [Observation(value, attributes) for attributes, value, _ in merged.values()]
        return observe

    def _observe_budget(self, options: CallbackOptions) -> Iterable[Observation]:
        sources = self._sources
        budgets = sources[-1].budgets if sources else {}
        return [Observation(dollars, {n.BUDGET_PERIOD: period}) for period, dollars in budgets.items()]


_LOCK = threading.Lock()
_BY_METER: weakref.WeakKeyDictionary[Meter, MeterInstruments] = weakref.WeakKeyDictionary()


def for_meter(meter: Meter) -> MeterInstruments:
    """The instruments of `meter`, created on first use (the meter is held weakly)."""
    with _LOCK:
        try:
            found = _BY_METER.get(meter)
        except TypeError:  # a meter that cannot be weakly referenced: instruments of its own each time
            return MeterInstruments(meter)
        if found is None:
            found = _BY_METER[meter] = MeterInstruments(meter)
        return found
