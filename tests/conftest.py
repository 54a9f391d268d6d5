"""Shared fixtures: the fake Anthropic server on loopback and in-memory OpenTelemetry providers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import anthropic_otel
from anthropic_otel.telemetry import faults as _faults
from anthropic_otel.testing import FakeAnthropicServer

API_KEY = "sk-ant-test-secret-key-0123456789"
MODEL = "claude-haiku-4-5"


@pytest.fixture(scope="session")
def _server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as server:
        yield server


@pytest.fixture
def fake(_server: FakeAnthropicServer) -> FakeAnthropicServer:
    _server.reset()
    return _server


@dataclass
class Otel:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    instrumentor: anthropic_otel.AnthropicInstrumentor

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value) of every point of metric `name`; histograms give the point itself."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        value = getattr(point, "value", point)
                        found.append((dict(point.attributes or {}), value))
        return found

    def total(self, name: str, **match: Any) -> Any:
        total: Any = 0
        for attributes, value in self.points(name):
            if all(attributes.get(k.replace("__", ".")) == v for k, v in match.items()):
                total += value
        return total


def make_otel(**kwargs: Any) -> Otel:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentor = anthropic_otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider,
                                             **kwargs)
    return Otel(exporter, reader, tracer_provider, instrumentor)


@pytest.fixture
def otel() -> Iterator[Otel]:
    _faults.clear()
    result = make_otel()
    yield result
    anthropic_otel.uninstrument()
    assert _faults.counts() == {}, "instrumentation faults were swallowed during the test"


@pytest.fixture
def client(fake: FakeAnthropicServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(fake: FakeAnthropicServer) -> Any:
    async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as c:
        yield c


def ask(text: str = "Hello there, how are you?", **kwargs: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 100,
                              "messages": [{"role": "user", "content": text}]}
    params.update(kwargs)
    return params
