"""Exemplars: the latency histograms point at the trace of the call that made them (the OpenTelemetry SDK's
trace_based exemplar filter, its default), so a dashboard spike leads to the span.

The histograms are recorded when a call ends, after its span stopped being current (instrumentation/call.py,
`Call._record` -> `metrics.finished`, run after `Call.deactivate`): with no span of the application's around the
call there is no current span, so no exemplar; with one, the exemplar names the application's span, not the
call's. The fix is one change: record in the call's span context (`context=trace.set_span_in_context(span)`
passed from `_record` through `metrics.finished` to the histograms' `record()`). Until then the tests that need it
are strict expected failures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler

import anthropic_otel
from anthropic_otel.telemetry import faults as _faults
from anthropic_otel.testing import FakeAnthropicServer
from conftest import ask

DURATION = "gen_ai.client.operation.duration"
TTFC = "gen_ai.client.operation.time_to_first_chunk"


class Setup:
    def __init__(self, sampler: Sampler) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(sampler=sampler)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        # the SDK's default exemplar filter (OTEL_METRICS_EXEMPLAR_FILTER unset): trace_based
        anthropic_otel.instrument(tracer_provider=self.tracer_provider,
                                  meter_provider=MeterProvider(metric_readers=[self.reader]))

    def call_spans(self) -> list[ReadableSpan]:
        return [span for span in self.spans.get_finished_spans() if span.name.startswith("chat ")]

    def exemplars(self) -> dict[str, list[Any]]:
        """Histogram name -> its exemplars, from one collection (the SDK hands an exemplar out once)."""
        data = self.reader.get_metrics_data()
        assert data is not None
        found: dict[str, list[Any]] = {DURATION: [], TTFC: []}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name in found:
                        found[metric.name].extend(e for point in metric.data.data_points for e in point.exemplars)
        return found


def _setup(monkeypatch: pytest.MonkeyPatch, sampler: Sampler) -> Iterator[Setup]:
    monkeypatch.delenv("OTEL_METRICS_EXEMPLAR_FILTER", raising=False)
    _faults.clear()
    setup = Setup(sampler)
    yield setup
    anthropic_otel.uninstrument()
    assert _faults.counts() == {}


@pytest.fixture
def sampled(monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    yield from _setup(monkeypatch, ALWAYS_ON)


@pytest.fixture
def unsampled(monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    yield from _setup(monkeypatch, ALWAYS_OFF)


def _ids(exemplar: Any) -> tuple[int, int]:
    return exemplar.trace_id, exemplar.span_id


def _span_ids(span: ReadableSpan) -> tuple[int, int]:
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def test_duration_exemplar_names_the_calls_span(sampled: Setup, client: anthropic.Anthropic,
                                                fake: FakeAnthropicServer) -> None:
    client.messages.create(**ask())
    assert len(fake.calls) == 1
    (span,) = sampled.call_spans()
    assert [_ids(exemplar) for exemplar in sampled.exemplars()[DURATION]] == [_span_ids(span)]


def test_stream_exemplars_name_the_calls_span_on_both_histograms(sampled: Setup, client: anthropic.Anthropic,
                                                                 fake: FakeAnthropicServer) -> None:
    with client.messages.stream(**ask()) as stream:
        stream.until_done()
    (span,) = sampled.call_spans()
    exemplars = sampled.exemplars()
    assert [_ids(exemplar) for exemplar in exemplars[DURATION]] == [_span_ids(span)]
    assert [_ids(exemplar) for exemplar in exemplars[TTFC]] == [_span_ids(span)]


def test_exemplar_names_the_call_not_the_applications_span_around_it(sampled: Setup,
                                                                     client: anthropic.Anthropic) -> None:
    tracer = sampled.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as parent:
        client.messages.create(**ask())
    (span,) = sampled.call_spans()
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert [_ids(exemplar) for exemplar in sampled.exemplars()[DURATION]] == [_span_ids(span)]


def test_an_unsampled_call_leaves_no_exemplar(unsampled: Setup, client: anthropic.Anthropic,
                                              fake: FakeAnthropicServer) -> None:
    client.messages.create(**ask())
    with client.messages.stream(**ask()) as stream:
        stream.until_done()
    assert len(fake.calls) == 2
    assert unsampled.exemplars() == {DURATION: [], TTFC: []}
    data = unsampled.reader.get_metrics_data()
    assert data is not None
    counts = [point.count for resource in data.resource_metrics for scope in resource.scope_metrics
              for metric in scope.metrics if metric.name == DURATION for point in metric.data.data_points]
    assert sum(counts) == 2  # recorded, only without exemplars
