"""instrument()/uninstrument(), the SDK's own span, existing clients, and faults that must not escape."""

from __future__ import annotations

import anthropic
import pytest
from anthropic.lib.bedrock import _beta_messages as bedrock_beta
from anthropic.lib.vertex import _beta_messages as vertex_beta
from anthropic.resources.messages import batches, messages
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import anthropic_otel
from anthropic_otel.cost.pricing import Pricer
from anthropic_otel.telemetry import faults as _faults
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, Otel, ask, make_otel

PATCHED = [(messages.Messages, "create"), (messages.Messages, "stream"), (messages.AsyncMessages, "create"),
           (messages.Messages, "count_tokens"), (batches.Batches, "results"),
           (bedrock_beta.Messages, "create"), (vertex_beta.AsyncMessages, "stream")]


def test_uninstrument_restores_every_original_and_spans_stop(fake: FakeAnthropicServer) -> None:
    originals = {(cls, name): cls.__dict__[name] for cls, name in PATCHED}
    client = anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY)  # made before instrument()
    otel = make_otel()
    assert anthropic_otel.instrument() is otel.instrumentor  # idempotent
    for cls, name in PATCHED:
        assert cls.__dict__[name] is not originals[(cls, name)]
    client.messages.create(**ask())
    assert len(otel.spans()) == 1
    anthropic_otel.uninstrument()
    for cls, name in PATCHED:
        assert cls.__dict__[name] is originals[(cls, name)]
    client.messages.create(**ask())
    assert len(otel.spans()) == 1


def _sdk_traced_client(fake: FakeAnthropicServer, exporter: InMemorySpanExporter) -> anthropic.Anthropic:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY,
                               open_telemetry={"tracer_provider": provider})


def test_sdk_span_is_not_duplicated(fake: FakeAnthropicServer) -> None:
    sdk_spans = InMemorySpanExporter()
    before = _sdk_traced_client(fake, sdk_spans)
    otel = make_otel()
    try:
        after = _sdk_traced_client(fake, sdk_spans)
        for client in (before, after):
            client.messages.create(**ask())
            with client.messages.stream(**ask()) as stream:
                stream.get_final_message()
        assert sdk_spans.get_finished_spans() == ()
        assert len(otel.spans()) == 4
        with pytest.raises(anthropic.NotFoundError):  # the fake has no /v1/models; the SDK's span stays
            before.models.list()
        assert [s.name for s in sdk_spans.get_finished_spans()] == ["anthropic.models.list"]
    finally:
        anthropic_otel.uninstrument()
    client = _sdk_traced_client(fake, sdk_spans)
    client.messages.create(**ask())
    assert "anthropic.messages.create" in [s.name for s in sdk_spans.get_finished_spans()]


def test_keep_sdk_spans_makes_it_a_child(fake: FakeAnthropicServer) -> None:
    otel = make_otel(keep_sdk_spans=True)
    try:
        client = anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY,
                                     open_telemetry={"tracer_provider": otel.tracer_provider})
        client.messages.create(**ask())
        spans = {s.name: s for s in otel.spans()}
        sdk, ours = spans["anthropic.messages.create"], spans["chat claude-haiku-4-5"]
        assert sdk.parent is not None and sdk.parent.span_id == ours.context.span_id
    finally:
        anthropic_otel.uninstrument()


def test_attributes_context_on_span_and_capped_metric_labels(fake: FakeAnthropicServer) -> None:
    otel = make_otel(metric_attributes=["app.feature"], metric_attribute_limit=2)
    try:
        client = anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY)
        for feature in ("a", "b", "c", "a"):
            with anthropic_otel.attributes(**{"app.feature": feature, "enduser.id": "u-1"}):
                client.messages.create(**ask())
        assert [(s.attributes or {})["app.feature"] for s in otel.spans()] == ["a", "b", "c", "a"]
        assert all((s.attributes or {})["enduser.id"] == "u-1" for s in otel.spans())
        labels = {a["app.feature"]: v for a, v in otel.points("anthropic_otel.requests")}
        assert labels == {"a": 2, "b": 1, "_other": 1}
        assert all("enduser.id" not in a for a, _ in otel.points("anthropic_otel.requests"))
    finally:
        anthropic_otel.uninstrument()


def test_unknown_model_has_no_cost_and_is_counted(otel: Otel, client: anthropic.Anthropic,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    client.messages.create(**ask(model="claude-imaginary-9"))
    client.messages.create(**ask(model="claude-imaginary-9"))
    assert all("anthropic_otel.cost.usd" not in (s.attributes or {}) for s in otel.spans())
    assert otel.total("anthropic_otel.unpriced.requests") == 2
    assert [r for r in caplog.records if "claude-imaginary-9" in r.getMessage()].__len__() == 1


def test_budgets_gauge_and_bad_values(fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="positive"):
        anthropic_otel.instrument(budgets={"day": -5})
    with pytest.raises(ValueError, match="period"):
        anthropic_otel.instrument(budgets={"week": 5})
    monkeypatch.setenv("ANTHROPIC_OTEL_BUDGET_MONTH_USD", "1000")
    otel = make_otel(budgets={"day": 50})
    try:
        assert {a["anthropic_otel.budget.period"]: v for a, v in otel.points("anthropic_otel.budget.usd")} == {
            "day": 50.0, "month": 1000.0}
    finally:
        anthropic_otel.uninstrument()


def test_faults_never_reach_the_caller(otel: Otel, client: anthropic.Anthropic,
                                       monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("pricing exploded")

    monkeypatch.setattr(Pricer, "cost", broken)
    first = client.messages.create(**ask())
    with client.messages.stream(**ask()) as stream:
        text = stream.get_final_text()
    client.messages.create(**ask())
    assert first.content and text
    assert len(otel.spans()) == 3  # the spans still end
    assert sum(_faults.counts().values()) == 3
    assert len([r for r in caplog.records if "instrumentation fault" in r.getMessage()]) == 1
    _faults.clear()
