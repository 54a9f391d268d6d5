"""The exact in-process totals behind the counters, and the bounded label values of every metric.

Only the three histograms are recorded synchronously (about 12 µs each in the OpenTelemetry SDK). The
counters and gauges are observable instruments (see `instruments`) read from totals kept here under one
lock: one cheap update per call, the same Prometheus series, and integer/`Decimal` sums that equal the
per-call values exactly.

Every label is bounded: values are cut to `LABEL_MAX_LENGTH` characters, and each label whose values come
from the application or the server (model, server address, the `metric_attributes`, stop reason, error
type) keeps at most a fixed number of distinct values; later ones become `_other`, with one warning per
label. The span always keeps the raw value. Rate-limit gauges are kept per model and endpoint and are
dropped once no new headers came for `RATELIMIT_TTL_S` (counted from the first collection that saw the last
ones, so no clock is read per call). A child process forked after calls starts these totals from zero
(`os.register_at_fork`), so summing processes never counts the parent's calls twice; the three histograms
are aggregated inside the OpenTelemetry SDK, which keeps the parent's data in a child.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.metrics import Meter

from ..cost.pricing import Cost
from ..cost.usage import Usage
from ..telemetry import names as n
from ..telemetry.faults import Guard
from .instruments import GaugePoint, Point, for_meter

_log = logging.getLogger("anthropic_otel")

# (operation, provider, model, server.address, *metric attribute values)
_RECORD: Final = Guard("histogram record")

CommonKey = tuple[str, ...]
Dimensions = tuple[str, str, str]  # (service tier, speed, inference geo) labels, each from a closed set

_TIERS: Final = frozenset(n.SERVICE_TIERS)
_SPEEDS: Final = frozenset(n.SPEEDS)
_GEOS: Final = frozenset(n.INFERENCE_GEOS)


def _closed(value: Any, allowed: frozenset[str]) -> str:
    if value is None:
        return n.NONE
    return value if type(value) is str and value in allowed else n.OTHER


def dimensions(usage: Usage) -> Dimensions:
    """The billing dimensions of `usage` as label values: a closed set each (`none` absent, `_other` unknown)."""
    return (_closed(usage.service_tier, _TIERS), _closed(usage.speed, _SPEEDS),
            _closed(usage.inference_geo, _GEOS))


def _dimension_attributes(dims: Dimensions) -> tuple[tuple[str, str], ...]:
    return ((n.ANTHROPIC_SERVICE_TIER, dims[0]), (n.ANTHROPIC_SPEED, dims[1]), (n.ANTHROPIC_INFERENCE_GEO, dims[2]))

LABEL_MAX_LENGTH: Final = 128  # characters of a label value; longer values are cut
ENUM_LABEL_LIMIT: Final = 100  # distinct stop reasons / error types (API enumerations; only a bad server exceeds it)
RATELIMIT_TTL_S: Final = 300.0  # a rate-limit gauge is dropped after this long without new headers for it

_RATELIMIT_HEADERS = tuple(
    (resource, f"anthropic-ratelimit-{resource.replace('_', '-')}-limit",
     f"anthropic-ratelimit-{resource.replace('_', '-')}-remaining")
    for resource in n.RATELIMIT_RESOURCES
)


class Label:
    """The distinct values one label has taken, at most `limit`; the caller checks `seen` first (no lock)."""

    __slots__ = ("_lock", "limit", "name", "seen", "warned")

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.seen: set[str] = set()
        self.warned = False
        self._lock = threading.Lock()

    def bound(self, value: str) -> str:
        """`value` cut to `LABEL_MAX_LENGTH`, or `_other` once `limit` other values were seen."""
        if len(value) > LABEL_MAX_LENGTH:
            value = value[:LABEL_MAX_LENGTH]
            if value in self.seen:
                return value
        with self._lock:
            if value in self.seen:
                return value
            if len(self.seen) < self.limit:
                self.seen.add(value)
                return value
            warn, self.warned = not self.warned, True
        if warn:
            _log.warning("anthropic_otel: metric label %s reached %d distinct values; further values are "
                         "reported as %r (spans keep the real value)", self.name, self.limit, n.OTHER)
        return n.OTHER


class Metrics:
    """The instruments and totals of one `instrument()`; thread-safe."""

    def __init__(self, meter: Meter, metric_attributes: Sequence[str], limit: int,
                 budgets: Mapping[str, float] | None = None) -> None:
        self.metric_attributes = tuple(metric_attributes)
        self._limit = limit
        self.budgets = dict(budgets or {})
        self._attrs: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._gauge_attrs: dict[tuple[CommonKey, str], dict[str, Any]] = {}
        self._start()
        instruments = for_meter(meter)
        self.duration = instruments.duration
        self.token_usage = instruments.token_usage
        self.ttfc = instruments.ttfc
        instruments.add(self, meter)
        _LIVE.add(self)

    def _start(self) -> None:
        """Empty totals and label sets, and a fresh lock: at creation and in a forked child."""
        self._lock = threading.Lock()
        self._requests: dict[tuple[CommonKey, str, str, bool], int] = {}
        self._tokens: dict[tuple[CommonKey, str, Dimensions], int] = {}
        self._cost: dict[tuple[CommonKey, str, Dimensions], Decimal] = {}
        self._thinking: dict[tuple[CommonKey, Dimensions], int] = {}
        self._server_tools: dict[tuple[CommonKey, str], int] = {}
        self._containers: dict[CommonKey, int] = {}
        self._unpriced: dict[CommonKey, int] = {}
        self._savings: dict[CommonKey, Decimal] = {}
        self._premium: dict[CommonKey, Decimal] = {}
        self._active: dict[CommonKey, int] = {}
        self._unknown: dict[tuple[CommonKey, str], int] = {}  # (key, reason): calls whose usage never arrived
        self._missed_tokens: dict[tuple[CommonKey, str], int] = {}  # (key, cache miss reason)
        self._missed_usd: dict[tuple[CommonKey, str], Decimal] = {}
        self._miss_reason = Label(n.CACHE_MISS_REASON, ENUM_LABEL_LIMIT)
        self._ratelimit: dict[CommonKey, Mapping[str, str]] = {}
        self._ratelimit_since: dict[CommonKey, tuple[Mapping[str, str], float]] = {}
        self._model = Label(n.GEN_AI_REQUEST_MODEL, self._limit)
        self._address = Label(n.SERVER_ADDRESS, self._limit)
        self._labels = tuple(Label(name, self._limit) for name in self.metric_attributes)
        self._stop_reason = Label(n.ANTHROPIC_STOP_REASON, ENUM_LABEL_LIMIT)
        self._error_type = Label(n.ERROR_TYPE, ENUM_LABEL_LIMIT)
        # The sets themselves, for the per-call membership tests (one attribute read each).
        self._models_seen = self._model.seen
        self._addresses_seen = self._address.seen
        self._stops_seen = self._stop_reason.seen
        self._errors_seen = self._error_type.seen

    # -- keys and attribute sets -------------------------------------------------------------------

    def common_key(self, operation: str, provider: str, model: str, address: str,
                   context: Mapping[str, Any] | None) -> CommonKey:
        if model not in self._models_seen:
            model = self._model.bound(model)
        if address not in self._addresses_seen:
            address = self._address.bound(address)
        if not self.metric_attributes:
            return (operation, provider, model, address)
        values = [operation, provider, model, address]
        for label in self._labels:
            value = context.get(label.name) if context else None
            text = n.NONE if value is None else str(value)
            values.append(text if text in label.seen else label.bound(text))
        return tuple(values)

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
                 ttfc: float | None, context: Context | None = None, container: bool = False) -> None:
        """Everything a finished call adds: three histogram records at most, one locked update.

        `context` holds the call's span, so the latency histograms carry it as an exemplar when it is sampled.
        """
        stop = stop_reason or n.NONE
        if stop not in self._stops_seen:
            stop = self._stop_reason.bound(stop)
        if error_type is not None and error_type not in self._errors_seen:
            error_type = self._error_type.bound(error_type)
        request_key = (key, stop, error_type or n.NONE, stream)
        dims = None if usage is None else dimensions(usage)
        with self._lock:
            active = self._active
            active[key] = active.get(key, 1) - 1  # a call begun before a fork ends in the child at 0
            self._requests[request_key] = self._requests.get(request_key, 0) + 1
            if usage is not None:
                self._add_tokens(key, usage, dims)
            if cost is not None:
                self._add_cost(key, cost, dims)
            if container:
                self._containers[key] = self._containers.get(key, 0) + 1
            if cost is None and not priced:
                self._unpriced[key] = self._unpriced.get(key, 0) + 1
        # Each record is guarded on its own: a histogram whose `record` raises costs that record only
        # (try/except costs nothing in CPython 3.11 until something raises).
        try:
            if error_type is None:
                self.duration.record(duration, self.attributes(key, (n.GEN_AI_REQUEST_STREAM, stream)), context)
            else:
                self.duration.record(duration, self.attributes(
                    key, (n.GEN_AI_REQUEST_STREAM, stream), (n.ERROR_TYPE, error_type)), context)
        except Exception as error:
            _RECORD.fault(error)
        if usage is not None:
            try:
                self.token_usage.record(usage.total_input,
                                        self.attributes(key, (n.GEN_AI_TOKEN_TYPE, n.TOKEN_INPUT)))
            except Exception as error:
                _RECORD.fault(error)
            try:
                self.token_usage.record(usage.output_tokens,
                                        self.attributes(key, (n.GEN_AI_TOKEN_TYPE, n.TOKEN_OUTPUT)))
            except Exception as error:
                _RECORD.fault(error)
        if ttfc is not None:
            try:
                self.ttfc.record(ttfc, self.attributes(key), context)
            except Exception as error:
                _RECORD.fault(error)

    def _add_tokens(self, key: CommonKey, usage: Usage, dims: Dimensions | None = None) -> None:
        """Adds `usage` by token class, its thinking share and server tool requests; the caller holds the lock."""
        if dims is None:
            dims = dimensions(usage)
        tokens = self._tokens
        for token_type, count in (
            (n.TOKEN_INPUT, usage.input_tokens), (n.TOKEN_OUTPUT, usage.output_tokens),
            (n.TOKEN_CACHE_READ, usage.cache_read), (n.TOKEN_CACHE_WRITE, usage.cache_write),
        ):
            token_key = (key, token_type, dims)
            tokens[token_key] = tokens.get(token_key, 0) + count
        if usage.thinking_tokens:
            self._thinking[(key, dims)] = self._thinking.get((key, dims), 0) + usage.thinking_tokens
        if usage.web_search_requests or usage.web_fetch_requests:
            tools = self._server_tools
            for tool, count in ((n.SERVER_TOOL_WEB_SEARCH, usage.web_search_requests),
                                (n.SERVER_TOOL_WEB_FETCH, usage.web_fetch_requests)):
                if count:
                    tools[(key, tool)] = tools.get((key, tool), 0) + count

    def _add_cost(self, key: CommonKey, cost: Cost, dims: Dimensions | None = None) -> None:
        """Adds `cost` by class, and the cache savings and premium; the caller holds the lock."""
        if dims is None:
            dims = (n.NONE, n.NONE, n.NONE)
        costs = self._cost
        for token_type, dollars in cost.parts():
            cost_key = (key, token_type, dims)
            costs[cost_key] = costs.get(cost_key, Decimal(0)) + dollars
        if cost.cache_savings:
            self._savings[key] = self._savings.get(key, Decimal(0)) + cost.cache_savings
        if cost.write_premium:
            self._premium[key] = self._premium.get(key, Decimal(0)) + cost.write_premium

    def batch_result(self, key: CommonKey, usage: Usage, cost: Cost | None) -> None:
        """A message-batch result read by the application: its tokens and cost (no request, no latency)."""
        with self._lock:
            dims = dimensions(usage)
            self._add_tokens(key, usage, dims)
            if cost is not None:
                self._add_cost(key, cost, dims)
            else:
                self._unpriced[key] = self._unpriced.get(key, 0) + 1

    def usage_unknown(self, key: CommonKey, reason: str) -> None:
        """A call whose final usage never arrived (`reason`: one of the fixed `UNKNOWN_*` values)."""
        with self._lock:
            self._unknown[(key, reason)] = self._unknown.get((key, reason), 0) + 1

    def cache_missed(self, key: CommonKey, reason: str, tokens: int, dollars: Decimal | None) -> None:
        """A cache miss the API diagnosed: the input tokens it missed and, when priced, their extra dollars."""
        if reason not in self._miss_reason.seen:
            reason = self._miss_reason.bound(reason)
        miss_key = (key, reason)
        with self._lock:
            self._missed_tokens[miss_key] = self._missed_tokens.get(miss_key, 0) + tokens
            if dollars is not None:
                self._missed_usd[miss_key] = self._missed_usd.get(miss_key, Decimal(0)) + dollars

    def ratelimit_seen(self, key: CommonKey, headers: Mapping[str, str]) -> None:
        """Keeps the last response's headers per model and endpoint; parsed only when the gauges are read."""
        self._ratelimit[key[:4]] = headers

    # -- what the observable instruments read ------------------------------------------------------

    def request_points(self) -> list[Point]:
        with self._lock:
            items = list(self._requests.items())
        return [(self.attributes(key, (n.ANTHROPIC_STOP_REASON, stop_reason), (n.ERROR_TYPE, error_type),
                                 (n.GEN_AI_REQUEST_STREAM, stream)), value)
                for (key, stop_reason, error_type, stream), value in items]

    def token_points(self) -> list[Point]:
        with self._lock:
            items = list(self._tokens.items())
        return [(self.attributes(key, (n.TOKEN_TYPE, token_type), *_dimension_attributes(dims)), value)
                for (key, token_type, dims), value in items]

    def cost_points(self) -> list[Point]:
        with self._lock:
            items = list(self._cost.items())
        return [(self.attributes(key, (n.TOKEN_TYPE, token_type), *_dimension_attributes(dims)), float(value))
                for (key, token_type, dims), value in items]

    def thinking_points(self) -> list[Point]:
        with self._lock:
            items = list(self._thinking.items())
        return [(self.attributes(key, *_dimension_attributes(dims)), value) for (key, dims), value in items]

    def server_tool_points(self) -> list[Point]:
        with self._lock:
            items = list(self._server_tools.items())
        return [(self.attributes(key, (n.SERVER_TOOL_TYPE, tool)), value) for (key, tool), value in items]

    def container_points(self) -> list[Point]:
        return self._keyed_points(self._containers)

    def _reason_points(self, totals: Mapping[tuple[CommonKey, str], int | Decimal], label: str) -> list[Point]:
        with self._lock:
            items = list(totals.items())
        return [(self.attributes(key, (label, reason)), float(value) if isinstance(value, Decimal) else value)
                for (key, reason), value in items]

    def unknown_points(self) -> list[Point]:
        return self._reason_points(self._unknown, n.USAGE_UNKNOWN_REASON)

    def missed_token_points(self) -> list[Point]:
        return self._reason_points(self._missed_tokens, n.CACHE_MISS_REASON)

    def missed_usd_points(self) -> list[Point]:
        return self._reason_points(self._missed_usd, n.CACHE_MISS_REASON)

    def _keyed_points(self, totals: Mapping[CommonKey, int | Decimal]) -> list[Point]:
        with self._lock:
            items = list(totals.items())
        return [(self.attributes(key), float(value) if isinstance(value, Decimal) else value)
                for key, value in items]

    def savings_points(self) -> list[Point]:
        return self._keyed_points(self._savings)

    def premium_points(self) -> list[Point]:
        return self._keyed_points(self._premium)

    def unpriced_points(self) -> list[Point]:
        return self._keyed_points(self._unpriced)

    def active_points(self) -> list[Point]:
        return self._keyed_points(self._active)

    def ratelimit_points(self, index: int, now: float) -> list[GaugePoint]:
        """Header `index` (1 limit, 2 remaining) of each model and endpoint, unless the same headers were
        already there `RATELIMIT_TTL_S` ago (each response brings a new headers object, so no clock per call:
        a gauge expires within one collection interval of the TTL)."""
        points: list[GaugePoint] = []
        with self._lock:
            since = self._ratelimit_since
            for key, headers in list(self._ratelimit.items()):
                found = since.get(key)
                if found is None or found[0] is not headers:
                    found = since[key] = (headers, now)
                seen_at = found[1]
                if now - seen_at > RATELIMIT_TTL_S:
                    continue
                for entry in _RATELIMIT_HEADERS:
                    raw = headers.get(entry[index])
                    if raw is None:
                        continue
                    try:
                        value = float(raw)
                    except ValueError:
                        continue
                    points.append((self._gauge_attributes(key, entry[0]), value, seen_at))
        return points

    def _gauge_attributes(self, key: CommonKey, resource: str) -> dict[str, Any]:
        found = self._gauge_attrs.get((key, resource))
        if found is None:
            found = self._gauge_attrs[(key, resource)] = {
                n.GEN_AI_OPERATION_NAME: key[0], n.GEN_AI_PROVIDER_NAME: key[1], n.GEN_AI_REQUEST_MODEL: key[2],
                n.SERVER_ADDRESS: key[3], n.RATELIMIT_RESOURCE: resource}
        return found

    # -- exact totals, for tests and for applications -----------------------------------------------

    def totals(self) -> dict[str, Any]:
        """Sums over every label: requests, tokens by class, cost (Decimal) by class, unpriced; calls with usage
        unknown by reason, and diagnosed cache misses (tokens, Decimal dollars) by reason."""
        with self._lock:
            tokens: dict[str, int] = {}
            for (_, token_type, _), value in self._tokens.items():
                tokens[token_type] = tokens.get(token_type, 0) + value
            cost: dict[str, Decimal] = {}
            for (_, token_type, _), dollars in self._cost.items():
                cost[token_type] = cost.get(token_type, Decimal(0)) + dollars
            server_tools: dict[str, int] = {}
            for (_, tool), count in self._server_tools.items():
                server_tools[tool] = server_tools.get(tool, 0) + count
            unknown: dict[str, int] = {}
            for (_, reason), count in self._unknown.items():
                unknown[reason] = unknown.get(reason, 0) + count
            missed_tokens: dict[str, int] = {}
            for (_, reason), count in self._missed_tokens.items():
                missed_tokens[reason] = missed_tokens.get(reason, 0) + count
            missed_usd: dict[str, Decimal] = {}
            for (_, reason), dollars in self._missed_usd.items():
                missed_usd[reason] = missed_usd.get(reason, Decimal(0)) + dollars
            return {
                "usage_unknown": unknown,
                "cache_missed_tokens": missed_tokens,
                "cache_missed_usd": missed_usd,
                "requests": sum(self._requests.values()),
                "tokens": tokens,
                "cost": cost,
                "cost_total": sum(cost.values(), Decimal(0)),
                "unpriced": sum(self._unpriced.values()),
                "cache_savings": sum(self._savings.values(), Decimal(0)),
                "cache_write_premium": sum(self._premium.values(), Decimal(0)),
                "active": sum(self._active.values()),
                "thinking_tokens": sum(self._thinking.values()),
                "server_tool_requests": server_tools,
                "container_requests": sum(self._containers.values()),
            }


_LIVE: weakref.WeakSet[Metrics] = weakref.WeakSet()


def _forked() -> None:
    """In a forked child: every `Metrics` starts from zero (the parent reports its own calls)."""
    for metrics in list(_LIVE):
        metrics._start()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
