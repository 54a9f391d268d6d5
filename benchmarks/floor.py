"""The OpenTelemetry floor: the same span and histogram records as anthropic-otel, written by hand around the SDK.

A variant of `overhead.py` (issue 11): what any instrumentation that emits anthropic-otel's telemetry must pay to
the OpenTelemetry SDK, with as little Python of its own as possible. Around the bare SDK call it

- starts a span with the same name, kind and start attributes as ours, makes it current while the request is sent
  (as ours does, so HTTP-level children would nest under it), and sets the same end attributes before ending it;
- records the same histograms with the same attribute sets: operation duration, token usage (input, output) and,
  for streams, time to first chunk, on instruments of the same names, units and buckets, from the same providers.

What it leaves out is what anthropic-otel adds beyond that: pricing (the cost attributes carry a constant taken
from one of our spans), the in-process totals behind the observable counters, the per-attempt hook, error
handling, content capture, the stream proxy. The difference `ours - floor` is therefore our own Python per call.
Its clients have the SDK's own tracing off (`open_telemetry=False`): anthropic-otel turns that span off for its
calls too (its `_tracer` patch), so both pay the same bare SDK.

Streams read their events inline in the consuming loop (no generator, no proxy): per event the floor does one
attribute read and one comparison. `check()` proves, on throwaway providers, that the floor's span and metric
attribute sets equal ours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind

from anthropic_otel.telemetry import names as n

SCOPE = "benchmark.floor"
# per scenario: the cost attributes our span carried for the same response (set by `check`)
COSTS: dict[str, dict[str, float]] = {}


class Floor:
    """The instruments of the floor, on the given providers (None: the global ones)."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self.tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            n.M_OPERATION_DURATION, unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(n.DURATION_BUCKETS))
        self.token_usage = meter.create_histogram(
            n.M_TOKEN_USAGE, unit="{token}", description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(n.TOKEN_BUCKETS))
        self.ttfc = meter.create_histogram(
            n.M_TIME_TO_FIRST_CHUNK, unit="s", description="Time to receive the first chunk of a stream.",
            explicit_bucket_boundaries_advisory=list(n.DURATION_BUCKETS))


def runner(name: str, floor: Floor, client: Any, request: Mapping[str, Any]) -> Callable[[], None]:
    """One call of scenario `name` (`create`, `streamN`, `helperN`) with the floor's telemetry around it.

    Like `late`, it looks the SDK method up on every call: it must run on the unpatched SDK, whenever it was made.
    """
    messages = client.messages
    url = client.base_url
    host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
    model = request["model"]
    max_tokens = request["max_tokens"]
    span_name = f"{n.OP_CHAT} {model}"
    start_span, duration, token_usage, ttfc_histogram = (
        floor.tracer.start_span, floor.duration.record, floor.token_usage.record, floor.ttfc.record)
    attach, detach, set_span_in_context = otel_context.attach, otel_context.detach, trace.set_span_in_context
    common = {n.GEN_AI_OPERATION_NAME: n.OP_CHAT, n.GEN_AI_PROVIDER_NAME: n.PROVIDER_ANTHROPIC,
              n.GEN_AI_REQUEST_MODEL: model, n.SERVER_ADDRESS: host}
    stream = name != "create"
    # attribute sets of the histogram records, built once (anthropic-otel caches them too)
    duration_attrs = {**common, n.GEN_AI_REQUEST_STREAM: stream}
    input_attrs = {**common, n.GEN_AI_TOKEN_TYPE: n.TOKEN_INPUT}
    output_attrs = {**common, n.GEN_AI_TOKEN_TYPE: n.TOKEN_OUTPUT}
    cost = COSTS.get(name, {n.COST_USD: 0.0015, n.CACHE_SAVINGS_USD: 0.002625})
    cost_usd, savings_usd = cost[n.COST_USD], cost[n.CACHE_SAVINGS_USD]

    def begin() -> Any:
        return start_span(span_name, kind=SpanKind.CLIENT, attributes={
            n.GEN_AI_OPERATION_NAME: n.OP_CHAT, n.GEN_AI_PROVIDER_NAME: n.PROVIDER_ANTHROPIC,
            n.GEN_AI_REQUEST_MODEL: model, n.SERVER_ADDRESS: host, n.SERVER_PORT: port,
            n.GEN_AI_REQUEST_STREAM: stream, n.GEN_AI_REQUEST_MAX_TOKENS: max_tokens})

    def end(span: Any, start: float, first: float | None, response_id: str, response_model: str, stop: str,
            usage: Any, output_tokens: int, request_id: str | None) -> None:
        cache_write = usage.cache_creation_input_tokens or 0
        cache_read = usage.cache_read_input_tokens or 0
        total_input = usage.input_tokens + cache_read + cache_write
        attributes: dict[str, Any] = {
            n.GEN_AI_RESPONSE_ID: response_id, n.GEN_AI_RESPONSE_MODEL: response_model,
            n.GEN_AI_RESPONSE_FINISH_REASONS: (stop,), n.GEN_AI_USAGE_INPUT_TOKENS: total_input,
            n.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens, n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cache_read,
            n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: cache_write,
            n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: cache_write}
        if first is not None:
            attributes[n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = first - start
        tier = getattr(usage, "service_tier", None)
        if tier is not None:
            attributes[n.ANTHROPIC_SERVICE_TIER] = tier
        if request_id:
            attributes[n.ANTHROPIC_REQUEST_ID] = request_id
        attributes[n.COST_USD] = cost_usd
        attributes[n.CACHE_SAVINGS_USD] = savings_usd
        span.set_attributes(attributes)
        span.end()
        context = set_span_in_context(span)  # the latency records carry the span as an exemplar, as ours do
        duration(perf_counter() - start, duration_attrs, context)
        token_usage(total_input, input_attrs)
        token_usage(output_tokens, output_attrs)
        if first is not None:
            ttfc_histogram(first - start, common, context)

    if name == "create":
        def run_create() -> None:
            start = perf_counter()
            span = begin()
            token = attach(set_span_in_context(span))
            try:
                message = messages.create(**request)
            finally:
                detach(token)
            usage = message.usage
            end(span, start, None, message.id, message.model, message.stop_reason, usage, usage.output_tokens,
                message._request_id)
        return run_create

    if name.startswith("stream"):
        def run_stream() -> None:
            start = perf_counter()
            span = begin()
            token = attach(set_span_in_context(span))
            try:
                events = messages.create(stream=True, **request)
            finally:
                detach(token)
            request_id = events.response.headers.get("request-id")
            first = None
            message: Any = None
            delta: Any = None
            for event in events:  # the application's loop, with the floor's one read and compare per event
                kind = event.type
                if kind == "content_block_delta":
                    if first is None:
                        first = perf_counter()
                elif kind == "message_start":
                    message = event.message
                elif kind == "message_delta":
                    delta = event
            end(span, start, first, message.id, message.model, delta.delta.stop_reason, message.usage,
                delta.usage.output_tokens, request_id)
        return run_stream

    def run_helper() -> None:
        start = perf_counter()
        span = begin()
        token = attach(set_span_in_context(span))
        manager = messages.stream(**request)
        try:
            helper = manager.__enter__()  # sends the request
        finally:
            detach(token)
        try:
            first = None
            for _ in helper.text_stream:
                if first is None:
                    first = perf_counter()
            message = helper.get_final_message()
        finally:
            manager.__exit__(None, None, None)
        usage = message.usage
        end(span, start, first, message.id, message.model, message.stop_reason, usage, usage.output_tokens,
            helper.response.headers.get("request-id"))
    return run_helper


def check(scenarios: list[str], client_for: Callable[..., Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """Ours and the floor on throwaway in-memory providers, one call per scenario: the same span and metric sets?

    Also fills `COSTS` with the cost attributes of our span for each scenario. Leaves anthropic-otel uninstrumented.
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import anthropic_otel

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    floor = Floor(tracer_provider, meter_provider)
    problems: list[str] = []
    compared = 0
    for name in scenarios:
        anthropic_otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        try:
            late(name, client_for(name), request)()
        finally:
            anthropic_otel.uninstrument()
        ours = [s for s in spans.get_finished_spans()
                if s.instrumentation_scope is not None and s.instrumentation_scope.name == n.SCOPE]
        spans.clear()
        if len(ours) != 1:
            problems.append(f"{name}: {len(ours)} spans of ours")
            continue
        attributes = ours[0].attributes or {}
        COSTS[name] = {key: float(str(attributes.get(key, 0.0))) for key in (n.COST_USD, n.CACHE_SAVINGS_USD)}
        runner(name, floor, client_for(name, False), request)()
        mine = spans.get_finished_spans()
        spans.clear()
        if len(mine) != 1:
            problems.append(f"{name}: {len(mine)} floor spans")
            continue
        a, b = ours[0], mine[0]
        if (a.name, a.kind) != (b.name, b.kind):
            problems.append(f"{name}: span {a.name!r} {a.kind} vs floor {b.name!r} {b.kind}")
        a_attrs, b_attrs = dict(a.attributes or {}), dict(b.attributes or {})
        if set(a_attrs) != set(b_attrs):
            problems.append(f"{name}: span attributes differ: ours only {sorted(set(a_attrs) - set(b_attrs))}, "
                            f"floor only {sorted(set(b_attrs) - set(a_attrs))}")
        for key in set(a_attrs) & set(b_attrs):
            if key != n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK and a_attrs[key] != b_attrs[key]:
                problems.append(f"{name}: {key} = {a_attrs[key]!r} vs floor {b_attrs[key]!r}")
        compared += 1
    data = reader.get_metrics_data()
    sets: dict[str, set[tuple[str, frozenset[tuple[str, Any]]]]] = {n.SCOPE: set(), SCOPE: set()}
    histograms = {n.M_OPERATION_DURATION, n.M_TOKEN_USAGE, n.M_TIME_TO_FIRST_CHUNK}
    records: dict[str, int] = {n.SCOPE: 0, SCOPE: 0}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            if scope.scope.name not in sets:
                continue
            for metric in scope.metrics:
                if metric.name in histograms:
                    for point in metric.data.data_points:
                        sets[scope.scope.name].add((metric.name, frozenset((point.attributes or {}).items())))
                        records[scope.scope.name] += point.count  # type: ignore[union-attr]
    if sets[n.SCOPE] != sets[SCOPE]:
        problems.append(f"histogram attribute sets differ: ours only {sets[n.SCOPE] - sets[SCOPE]}, "
                        f"floor only {sets[SCOPE] - sets[n.SCOPE]}")
    if records[n.SCOPE] != records[SCOPE]:
        problems.append(f"histogram records: ours {records[n.SCOPE]}, floor {records[SCOPE]}")
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return {"compared": compared, "histogram_sets": len(sets[SCOPE]), "histogram_records": records[SCOPE],
            "problems": problems}


def late(name: str, client: Any, request: Mapping[str, Any]) -> Callable[[], None]:
    """One call of scenario `name` that looks the SDK method up on every call, so it sees patches come and go."""
    messages = client.messages
    if name == "create":
        def run() -> None:
            messages.create(**request)
        return run
    if name.startswith("stream"):
        def run_stream() -> None:
            for _ in messages.create(stream=True, **request):
                pass
        return run_stream

    def run_helper() -> None:
        with messages.stream(**request) as s:
            for _ in s.text_stream:
                pass
            s.get_final_message()
    return run_helper
