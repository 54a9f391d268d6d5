"""Metric instruments and the exact in-process totals behind the counters.

Only the three histograms are recorded synchronously (about 12 µs each in the OpenTelemetry SDK). The
counters and gauges are observable instruments read from totals kept here under one lock: one cheap
update per call, the same Prometheus series, and integer/`Decimal` sums that equal the per-call values
exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from ..cost.pricing import Cost
from ..cost.usage import Usage
from ..telemetry import names as n

# (operation, provider, model, server.address, *metric attribute values)
CommonKey = tuple[str, ...]

_RATELIMIT_HEADERS = tuple(
    (resource, f"anthropic-ratelimit-{resource.replace('_', '-')}-limit",
     f"anthropic-ratelimit-{resource.replace('_', '-')}-remaining")
    for resource in n.RATELIMIT_RESOURCES
)


class Metrics:
    """All instruments of one `instrument()`; thread-safe."""

    def __init__(self, meter: Meter, metric_attributes: Sequence[str], limit: int,
                 budgets: Mapping[str, float] | None = None) -> None:
        self.metric_attributes = tuple(metric_attributes)
        self._limit = limit
        self._seen: dict[str, set[str]] = {name: set() for name in self.metric_attributes}
        self._lock = threading.Lock()
        self._attrs: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._requests: dict[tuple[CommonKey, str, str, bool], int] = {}
        self._tokens: dict[tuple[CommonKey, str], int] = {}
        self._cost: dict[tuple[CommonKey, str], Decimal] = {}
        self._unpriced: dict[CommonKey, int] = {}
        self._savings: dict[CommonKey, Decimal] = {}
        self._premium: dict[CommonKey, Decimal] = {}
        self._active: dict[CommonKey, int] = {}
        self._ratelimit: dict[CommonKey, Mapping[str, str]] = {}
        self._budgets = dict(budgets or {})

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
            n.M_REQUESTS, [self._observe_requests], unit="{request}",
            description="Anthropic API calls, by stop reason and error type.")
        meter.create_observable_counter(
            n.M_TOKENS, [self._observe_tokens], unit="{token}",
            description="Billed tokens by class; input is uncached input (Anthropic's meaning).")
        meter.create_observable_counter(
            n.M_COST, [self._observe_cost], unit="{USD}", description="Cost in US dollars, by token class.")
        meter.create_observable_counter(
            n.M_CACHE_SAVINGS, [self._observe_decimal(self._savings)], unit="{USD}",
            description="Dollars that cache reads saved against the input rate (gross; see the write premium).")
        meter.create_observable_counter(
            n.M_CACHE_WRITE_PREMIUM, [self._observe_decimal(self._premium)], unit="{USD}",
            description="Dollars that cache writes cost over the input rate; net savings = savings - premium.")
        meter.create_observable_counter(
            n.M_UNPRICED, [self._observe_unpriced], unit="{request}",
            description="Calls whose model has no known price.")
        meter.create_observable_up_down_counter(
            n.M_ACTIVE, [self._observe_active], unit="{request}", description="Calls in flight.")
        meter.create_observable_gauge(
            n.M_RATELIMIT_REMAINING, [self._observe_ratelimit(2)], unit="{1}",
            description="Remaining allowance from the last anthropic-ratelimit-*-remaining header.")
        meter.create_observable_gauge(
            n.M_RATELIMIT_LIMIT, [self._observe_ratelimit(1)], unit="{1}",
            description="Limit from the last anthropic-ratelimit-*-limit header.")
        if self._budgets:
            meter.create_observable_gauge(
                n.M_BUDGET, [self._observe_budget], unit="{USD}", description="Configured spend budget.")

    # -- keys and attribute sets -------------------------------------------------------------------

    def common_key(self, operation: str, provider: str, model: str, address: str,
                   context: Mapping[str, Any] | None) -> CommonKey:
        if not self.metric_attributes:
            return (operation, provider, model, address)
        values = [operation, provider, model, address]
        for name in self.metric_attributes:
            value = context.get(name) if context else None
            values.append(self._capped(name, n.NONE if value is None else str(value)))
        return tuple(values)

    def _capped(self, name: str, value: str) -> str:
        seen = self._seen[name]
        if value in seen:
            return value
        with self._lock:
            if len(seen) < self._limit:
                seen.add(value)
                return value
        return n.OTHER

    def attributes(self, key: CommonKey, *extra: tuple[str, Any]) -> dict[str, Any]:
        """The attribute dict for `key` plus `extra`, built once and reused (it must not be mutated)."""
        cache_key = (key, extra) if extra else key
        found = self._attrs.get(cache_key)
        if found is None:
            found = {
                n.GEN_AI_OPERATION_NAME: key[0],
                n.GEN_AI_PROVIDER_NAME: key[1],
                n.GEN_AI_REQUEST_MODEL: key[2],
                n.SERVER_ADDRESS: key[3],
            }
            for name, value in zip(self.metric_attributes, key[4:], strict=True):
                found[name] = value
            for name, value in extra:
                found[name] = value
            self._attrs[cache_key] = found
        return found

    # -- recording ----------------------------------------------------------------------------------

    def started(self, key: CommonKey) -> None:
        with self._lock:
            self._active[key] = self._active.get(key, 0) + 1

    def finished(self, key: CommonKey, *, duration: float, stream: bool, error_type: str | None,
                 stop_reason: str | None, usage: Usage | None, cost: Cost | None, priced: bool,
                 ttfc: float | None) -> None:
        """Everything a finished call adds: three histogram records at most, one locked update."""
        request_key = (key, stop_reason or n.NONE, error_type or n.NONE, stream)
        with self._lock:
            self._active[key] -= 1
            self._requests[request_key] = self._requests.get(request_key, 0) + 1
            if usage is not None:
                self._add_tokens(key, usage)
            if cost is not None:
                self._add_cost(key, cost)
            elif not priced:
                self._unpriced[key] = self._unpriced.get(key, 0) + 1
        if error_type is None:
            self.duration.record(duration, self.attributes(key, (n.GEN_AI_REQUEST_STREAM, stream)))
        else:
            self.duration.record(duration, self.attributes(
                key, (n.GEN_AI_REQUEST_STREAM, stream), (n.ERROR_TYPE, error_type)))
        if usage is not None:
            self.token_usage.record(usage.total_input, self.attributes(key, (n.GEN_AI_TOKEN_TYPE, n.TOKEN_INPUT)))
            self.token_usage.record(usage.output_tokens,
                                    self.attributes(key, (n.GEN_AI_TOKEN_TYPE, n.TOKEN_OUTPUT)))
        if ttfc is not None:
            self.ttfc.record(ttfc, self.attributes(key))

    def _add_tokens(self, key: CommonKey, usage: Usage) -> None:
        """Adds `usage` by token class; the caller holds the lock."""
        tokens = self._tokens
        for token_type, count in (
            (n.TOKEN_INPUT, usage.input_tokens), (n.TOKEN_OUTPUT, usage.output_tokens),
            (n.TOKEN_CACHE_READ, usage.cache_read), (n.TOKEN_CACHE_WRITE, usage.cache_write),
        ):
            token_key = (key, token_type)
            tokens[token_key] = tokens.get(token_key, 0) + count

    def _add_cost(self, key: CommonKey, cost: Cost) -> None:
        """Adds `cost` by class, and the cache savings and premium; the caller holds the lock."""
        costs = self._cost
        for token_type, dollars in cost.parts():
            cost_key = (key, token_type)
            costs[cost_key] = costs.get(cost_key, Decimal(0)) + dollars
        if cost.cache_savings:
            self._savings[key] = self._savings.get(key, Decimal(0)) + cost.cache_savings
        if cost.write_premium:
            self._premium[key] = self._premium.get(key, Decimal(0)) + cost.write_premium

    def batch_result(self, key: CommonKey, usage: Usage, cost: Cost | None) -> None:
        """A message-batch result read by the application: its tokens and cost (no request, no latency)."""
        with self._lock:
            self._add_tokens(key, usage)
            if cost is not None:
                self._add_cost(key, cost)
            else:
                self._unpriced[key] = self._unpriced.get(key, 0) + 1

    def ratelimit_seen(self, key: CommonKey, headers: Mapping[str, str]) -> None:
        """Keeps the last response's headers; they are parsed only when the gauges are read."""
        self._ratelimit[key] = headers

    # -- observable callbacks -----------------------------------------------------------------------

    def _observe_requests(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self._requests.items())
        for (key, stop_reason, error_type, stream), value in items:
            yield Observation(value, self.attributes(
                key, (n.ANTHROPIC_STOP_REASON, stop_reason), (n.ERROR_TYPE, error_type),
                (n.GEN_AI_REQUEST_STREAM, stream)))

    def _observe_tokens(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self._tokens.items())
        for (key, token_type), value in items:
            yield Observation(value, self.attributes(key, (n.TOKEN_TYPE, token_type)))

    def _observe_cost(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self._cost.items())
        for (key, token_type), value in items:
            yield Observation(float(value), self.attributes(key, (n.TOKEN_TYPE, token_type)))

    def _observe_decimal(self, totals: dict[CommonKey, Decimal]) -> Callable[[CallbackOptions],
                                                                             Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                items = list(totals.items())
            for key, value in items:
                yield Observation(float(value), self.attributes(key))
        return observe

    def _observe_unpriced(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self._unpriced.items())
        for key, value in items:
            yield Observation(value, self.attributes(key))

    def _observe_active(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self._active.items())
        for key, value in items:
            yield Observation(value, self.attributes(key))

    def _observe_ratelimit(self, index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            for key, headers in list(self._ratelimit.items()):
                for entry in _RATELIMIT_HEADERS:
                    raw = headers.get(entry[index])
                    if raw is None:
                        continue
                    try:
                        value = float(raw)
                    except ValueError:
                        continue
                    yield Observation(value, self.attributes(key, (n.RATELIMIT_RESOURCE, entry[0])))
        return observe

    def _observe_budget(self, options: CallbackOptions) -> Iterable[Observation]:
        for period, dollars in self._budgets.items():
            yield Observation(dollars, {n.BUDGET_PERIOD: period})

    # -- exact totals, for tests and for applications -----------------------------------------------

    def totals(self) -> dict[str, Any]:
        """Sums over every label: requests, tokens by class, cost (Decimal) by class, unpriced."""
        with self._lock:
            tokens: dict[str, int] = {}
            for (_, token_type), value in self._tokens.items():
                tokens[token_type] = tokens.get(token_type, 0) + value
            cost: dict[str, Decimal] = {}
            for (_, token_type), dollars in self._cost.items():
                cost[token_type] = cost.get(token_type, Decimal(0)) + dollars
            return {
                "requests": sum(self._requests.values()),
                "tokens": tokens,
                "cost": cost,
                "cost_total": sum(cost.values(), Decimal(0)),
                "unpriced": sum(self._unpriced.values()),
                "cache_savings": sum(self._savings.values(), Decimal(0)),
                "cache_write_premium": sum(self._premium.values(), Decimal(0)),
                "active": sum(self._active.values()),
            }
