"""`uninstrument()` / `instrument()` cycles on the same meter provider keep every counter counting exactly."""

from __future__ import annotations

import anthropic
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import anthropic_otel
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, Otel, ask

CYCLES = 4


def test_counters_count_every_call_across_cycles(fake: FakeAnthropicServer) -> None:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider()
    points = Otel(None, reader, tracer_provider, anthropic_otel.AnthropicInstrumentor())  # type: ignore[arg-type]
    client = anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    settings: list[dict[str, object]] = [{}, {"metric_attributes": ["app.feature"]}, {"budgets": {"day": 5}}, {}]
    for cycle in range(CYCLES):
        anthropic_otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider,
                                  **settings[cycle])  # type: ignore[arg-type]
        try:
            with anthropic_otel.attributes(**{"app.feature": "f"}):
                client.messages.create(**ask())
                with client.messages.stream(**ask()) as stream:
                    stream.get_final_message()
            assert points.total("anthropic_otel.requests") == 2 * (cycle + 1), cycle
            budgets = {a["anthropic_otel.budget.period"]: v for a, v in points.points("anthropic_otel.budget.usd")}
            assert budgets == ({"day": 5.0} if settings[cycle].get("budgets") else {}), cycle
        finally:
            anthropic_otel.uninstrument()

    truth = fake.totals()
    assert truth["requests"] == 2 * CYCLES
    assert points.total("anthropic_otel.requests") == 2 * CYCLES
    assert points.total("anthropic_otel.tokens", anthropic_otel__token__type="input") == truth["input_tokens"]
    assert points.total("anthropic_otel.tokens", anthropic_otel__token__type="output") == truth["output_tokens"]
    assert points.total("anthropic_otel.requests.active") == 0
    # The cycle with a feature label has its own series; the others share theirs.
    by_feature = {a.get("app.feature"): v for a, v in points.points("anthropic_otel.requests")
                  if a["gen_ai.request.stream"] is False}
    assert by_feature == {None: CYCLES - 1, "f": 1}
    assert sum(p.count for _, p in points.points("gen_ai.client.operation.duration")) == 2 * CYCLES
