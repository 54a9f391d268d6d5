"""A failing telemetry pipeline never changes a result and never stops the call's other telemetry.

Each sink is broken in turn (a span processor's `on_start` or `on_end`, a tracer's `start_span`, a histogram's
`record`) while the real SDK calls the fake server: the caller gets the same result or exception, and the
exact totals, `anthropic_otel.spend()` and the in-flight gauge still count the call, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import anthropic_otel
from anthropic_otel.telemetry import faults as _faults
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, ask


class Fault(RuntimeError):
    pass


class Raising(SpanProcessor):
    def __init__(self, where: str) -> None:
        self.where = where

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.where == "on_start":
            raise Fault("on_start")

    def on_end(self, span: ReadableSpan) -> None:
        if self.where == "on_end":
            raise Fault("on_end")


class Ends(SpanProcessor):
    """Counts `on_end` per span."""

    def __init__(self) -> None:
        self.ended: Counter[int] = Counter()

    def on_end(self, span: ReadableSpan) -> None:
        self.ended[span.context.span_id] += 1  # type: ignore[union-attr]


class BrokenTracer(trace.Tracer):
    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        raise Fault("start_span")

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        raise Fault("start_as_current_span")


class BrokenTracerProvider(trace.TracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return BrokenTracer()


class _RaisingHistogram:
    def record(self, *args: Any, **kwargs: Any) -> None:
        raise Fault("record")


class _Meter:
    """The SDK's meter, except that its histograms raise on `record`."""

    def __init__(self, meter: Any) -> None:
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._meter, name)

    def create_histogram(self, *args: Any, **kwargs: Any) -> Any:
        return _RaisingHistogram()


class BrokenHistograms(MeterProvider):
    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        return _Meter(super().get_meter(*args, **kwargs))


class Pipeline:
    def __init__(self, fault: str) -> None:
        self.exporter = InMemorySpanExporter()
        self.ends = Ends()
        self.reader = InMemoryMetricReader()
        tracer_provider: Any
        if fault == "start_span":
            tracer_provider = BrokenTracerProvider()
        else:
            tracer_provider = TracerProvider()
            tracer_provider.add_span_processor(self.ends)
            tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
            tracer_provider.add_span_processor(Raising(fault))
        meter_type = BrokenHistograms if fault == "record" else MeterProvider
        instrumentor = anthropic_otel.instrument(tracer_provider=tracer_provider,
                                                 meter_provider=meter_type(metric_readers=[self.reader]))
        self.instrumentation: Any = instrumentor.telemetry  # kept: readable after `uninstrument()`

    def totals(self) -> dict[str, Any]:
        return self.instrumentation.metrics.totals()  # type: ignore[no-any-return]

    def spent(self) -> Any:
        return self.instrumentation.ledger.spend().total


FAULTS = ["on_start", "on_end", "start_span", "record"]


@pytest.fixture(params=FAULTS)
def pipeline(request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    _faults.clear()
    made = Pipeline(request.param)
    yield made
    anthropic_otel.uninstrument()


def bare(fake: FakeAnthropicServer, how: str, **kwargs: Any) -> Any:
    """The same call without instrumentation: what the caller must see."""
    anthropic_otel.uninstrument()
    try:
        with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as client:
            return run(client, how, **kwargs)
    finally:
        fake.reset()


def run(client: anthropic.Anthropic, how: str, **kwargs: Any) -> Any:
    if how == "create":
        return client.messages.create(**ask(), **kwargs)
    if how == "stream":
        return [event.type for event in client.messages.create(**ask(), stream=True, **kwargs)]
    if how == "helper":
        with client.messages.stream(**ask(), **kwargs) as stream:
            return stream.get_final_message()
    raise AssertionError(how)


def without_ids(value: Any) -> Any:
    if isinstance(value, anthropic.types.Message):
        return value.model_dump(exclude={"id"})
    return value


@pytest.mark.parametrize("how", ["create", "stream", "helper"])
def test_a_broken_sink_costs_that_sink_only(pipeline: Pipeline, fake: FakeAnthropicServer,
                                            client: anthropic.Anthropic, how: str) -> None:
    result = run(client, how)

    totals = pipeline.totals()
    truth = fake.totals()
    assert totals["requests"] == truth["requests"] == 1
    assert totals["tokens"]["output"] == truth["output_tokens"] > 0
    assert totals["active"] == 0
    assert totals["cost_total"] > 0
    assert anthropic_otel.spend().total == totals["cost_total"]
    assert _faults.counts()  # the fault was seen and reported, not raised
    if pipeline.ends.ended:
        assert set(pipeline.ends.ended.values()) == {1}  # the span ended exactly once
    expected = bare(fake, how)
    assert without_ids(result) == without_ids(expected)


def test_a_broken_sink_keeps_the_callers_exception(pipeline: Pipeline, fake: FakeAnthropicServer,
                                                   client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        run(client, "create", extra_headers={"x-fake-scenario": "rate_limit"})
    totals = pipeline.totals()
    assert (totals["requests"], totals["active"]) == (1, 0)
    with pytest.raises(anthropic.RateLimitError) as expected:
        bare(fake, "create", extra_headers={"x-fake-scenario": "rate_limit"})
    assert caught.value.status_code == expected.value.status_code
    assert caught.value.body["error"] == expected.value.body["error"]  # type: ignore[index]


def test_span_ends_once_when_on_end_raises(fake: FakeAnthropicServer, client: anthropic.Anthropic,
                                           caplog: pytest.LogCaptureFixture) -> None:
    _faults.clear()
    pipeline = Pipeline("on_end")
    try:
        caplog.set_level(logging.WARNING)
        run(client, "create")
        with client.messages.create(**ask(), stream=True) as stream:
            next(iter(stream))  # closed early: a second way to end
        run(client, "helper")
    finally:
        anthropic_otel.uninstrument()
    assert len(pipeline.ends.ended) == 3 and set(pipeline.ends.ended.values()) == {1}
    assert not [r for r in caplog.records if "ended span" in r.getMessage()]
    assert pipeline.totals()["requests"] == 3


def test_async_call_survives_a_broken_tracer(fake: FakeAnthropicServer) -> None:
    _faults.clear()
    pipeline = Pipeline("start_span")

    async def main() -> Any:
        async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as client:
            message = await client.messages.create(**ask())
            events = [event.type async for event in await client.messages.create(**ask(), stream=True)]
            return message, events

    try:
        message, events = asyncio.run(main())
    finally:
        anthropic_otel.uninstrument()
    assert message.usage.output_tokens > 0 and events[-1] == "message_stop"
    totals = pipeline.totals()
    assert (totals["requests"], totals["active"]) == (2, 0)
    assert pipeline.spent() == totals["cost_total"] > 0


class _DurationRaises(MeterProvider):
    """The SDK's meter, except that the duration histogram raises on `record`: the others must still record."""

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        meter = super().get_meter(*args, **kwargs)

        class Meter(_Meter):
            def create_histogram(self, name: str, *a: Any, **k: Any) -> Any:
                if name == "gen_ai.client.operation.duration":
                    return _RaisingHistogram()
                return meter.create_histogram(name, *a, **k)
        return Meter(meter)


def test_one_raising_histogram_costs_that_record_only(fake: FakeAnthropicServer,
                                                      client: anthropic.Anthropic) -> None:
    _faults.clear()
    reader = InMemoryMetricReader()
    anthropic_otel.instrument(tracer_provider=TracerProvider(), meter_provider=_DurationRaises(metric_readers=[reader]))
    try:
        run(client, "create")
    finally:
        anthropic_otel.uninstrument()
    data = reader.get_metrics_data()
    assert data is not None
    names = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert "gen_ai.client.operation.duration" not in names
    points = names["gen_ai.client.token.usage"].data.data_points
    assert sorted(p.attributes["gen_ai.token.type"] for p in points) == ["input", "output"]
    assert _faults.counts()
