"""Non-streamed calls through the real SDK over loopback HTTP: every contract attribute and metric."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import anthropic
import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from opentelemetry.trace import SpanKind, StatusCode

from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, MODEL, Otel, ask


def expected_cost(usage: dict[str, Any], model: str = MODEL) -> Decimal:
    """The cost genai-prices itself computes for an Anthropic usage record (built explicitly)."""
    cache = usage.get("cache_creation") or {}
    return calc_price(
        PriceUsage(
            input_tokens=usage["input_tokens"] + usage["cache_read_input_tokens"]
            + usage["cache_creation_input_tokens"],
            output_tokens=usage["output_tokens"],
            cache_read_tokens=usage["cache_read_input_tokens"],
            cache_write_tokens=usage["cache_creation_input_tokens"],
            cache_write_1h_tokens=cache.get("ephemeral_1h_input_tokens", 0),
        ),
        model, provider_id="anthropic",
    ).total_price


def test_create_span_has_every_contract_attribute(otel: Otel, client: anthropic.Anthropic,
                                                  fake: FakeAnthropicServer) -> None:
    message = client.messages.create(**ask(stop_sequences=["STOP"], extra_body={"temperature": 0.5,
                                                                                 "top_k": 5}))
    span = otel.span()
    recorded = fake.calls[-1]
    attrs = dict(span.attributes or {})
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.instrumentation_scope.name == "anthropic_otel"
    assert span.status.status_code is StatusCode.UNSET
    port = int(fake.base_url.rsplit(":", 1)[1])
    assert attrs == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": MODEL,
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.stream": False,
        "gen_ai.request.stop_sequences": ("STOP",),
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.top_k": 5.0,
        "server.address": "127.0.0.1",
        "server.port": port,
        "gen_ai.response.id": message.id,
        "gen_ai.response.model": message.model,
        "gen_ai.response.finish_reasons": ("end_turn",),
        "gen_ai.usage.input_tokens": message.usage.input_tokens,
        "gen_ai.usage.output_tokens": message.usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.usage.cache_write.input_tokens": 0,
        "anthropic.request.id": recorded.request_id,
        "anthropic_otel.cost.usd": float(expected_cost(recorded.usage or {})),
        "anthropic.response.service_tier": "standard",  # issue 12: the billing dimensions the response names
    }
    assert message._request_id == recorded.request_id


def test_metrics_of_one_call(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer) -> None:
    message = client.messages.create(**ask())
    usage = message.usage
    common = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
              "gen_ai.request.model": MODEL, "server.address": "127.0.0.1"}
    [(attrs, duration)] = otel.points("gen_ai.client.operation.duration")
    assert attrs == {**common, "gen_ai.request.stream": False}
    assert duration.count == 1 and duration.sum > 0
    tokens = {a["gen_ai.token.type"]: p.sum for a, p in otel.points("gen_ai.client.token.usage")}
    assert tokens == {"input": usage.input_tokens, "output": usage.output_tokens}
    [(attrs, count)] = otel.points("anthropic_otel.requests")
    assert attrs == {**common, "anthropic.stop_reason": "end_turn", "error.type": "none",
                     "gen_ai.request.stream": False}
    assert count == 1
    by_type = {a["anthropic_otel.token.type"]: v for a, v in otel.points("anthropic_otel.tokens")}
    assert by_type == {"input": usage.input_tokens, "output": usage.output_tokens, "cache_read": 0,
                       "cache_write": 0}
    cost = sum(v for _, v in otel.points("anthropic_otel.cost.usd"))
    assert cost == pytest.approx(float(expected_cost(fake.calls[-1].usage or {})), rel=1e-12)
    assert otel.total("anthropic_otel.requests.active") == 0
    remaining = {a["anthropic_otel.ratelimit.resource"]: v for a, v in
                 otel.points("anthropic_otel.ratelimit.remaining")}
    assert set(remaining) == {"requests", "tokens", "input_tokens", "output_tokens"}
    assert otel.points("anthropic_otel.unpriced.requests") == []
    assert otel.points("anthropic_otel.budget.usd") == []


def test_input_tokens_include_cache_and_cache_is_priced_apart(otel: Otel, client: anthropic.Anthropic,
                                                              fake: FakeAnthropicServer) -> None:
    system = [{"type": "text", "text": "You are a careful assistant. " * 200,
               "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    first = client.messages.create(**ask(system=system))
    second = client.messages.create(**ask(system=system))
    assert first.usage.cache_creation_input_tokens and second.usage.cache_read_input_tokens
    spans = otel.spans()
    for span, message in zip(spans, (first, second), strict=True):
        u = message.usage
        attrs = span.attributes or {}
        assert attrs["gen_ai.usage.input_tokens"] == (u.input_tokens + (u.cache_read_input_tokens or 0)
                                                      + (u.cache_creation_input_tokens or 0))
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == (u.cache_read_input_tokens or 0)
        assert attrs["gen_ai.usage.cache_creation.input_tokens"] == (u.cache_creation_input_tokens or 0)
        assert attrs["gen_ai.usage.cache_write.input_tokens"] == (u.cache_creation_input_tokens or 0)
    for span, call in zip(spans, fake.calls, strict=True):
        assert (span.attributes or {})["anthropic_otel.cost.usd"] == float(expected_cost(call.usage or {}))
    by_type = {a["anthropic_otel.token.type"]: v for a, v in otel.points("anthropic_otel.tokens")}
    assert by_type["cache_write"] == first.usage.cache_creation_input_tokens
    assert by_type["cache_read"] == second.usage.cache_read_input_tokens
    assert by_type["input"] == first.usage.input_tokens + second.usage.input_tokens
    parts = {a["anthropic_otel.token.type"]: v for a, v in otel.points("anthropic_otel.cost.usd")}
    assert sum(parts.values()) == pytest.approx(
        sum(float(expected_cost(c.usage or {})) for c in fake.calls), rel=1e-12)
    assert parts["cache_write"] > parts["cache_read"] > 0


@pytest.mark.parametrize(("scenario", "reason"), [("max_tokens", "max_tokens"), ("tool_use", "tool_use"),
                                                  ("stop_sequence", "stop_sequence")])
def test_finish_reasons_are_raw(otel: Otel, client: anthropic.Anthropic, scenario: str, reason: str) -> None:
    message = client.messages.create(**ask(max_tokens=10), extra_headers={"x-fake-scenario": scenario,
                                                                           "x-fake-output-tokens": "50"})
    assert message.stop_reason == reason
    assert (otel.span().attributes or {})["gen_ai.response.finish_reasons"] == (reason,)
    [(attrs, _)] = otel.points("anthropic_otel.requests")
    assert attrs["anthropic.stop_reason"] == reason


@pytest.mark.parametrize(("scenario", "error_class", "error_type"), [
    ("rate_limit", anthropic.RateLimitError, "rate_limit_error"),
    ("overloaded", anthropic.OverloadedError, "overloaded_error"),
    ("bad_request", anthropic.BadRequestError, "invalid_request_error"),
    ("server_error", anthropic.InternalServerError, "api_error"),
])
def test_errors_pass_through_unchanged(otel: Otel, fake: FakeAnthropicServer, scenario: str,
                                       error_class: type[Exception], error_type: str) -> None:
    anthropic_otel_off = _bare_error(fake, scenario)
    client = anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    with pytest.raises(error_class) as caught:
        client.messages.create(**ask(), extra_headers={"x-fake-scenario": scenario})
    assert type(caught.value) is type(anthropic_otel_off)
    assert caught.value.status_code == anthropic_otel_off.status_code  # type: ignore[attr-defined]
    body = {k: v for k, v in caught.value.body.items() if k != "request_id"}  # type: ignore[attr-defined]
    assert body == {k: v for k, v in anthropic_otel_off.body.items() if k != "request_id"}
    span = otel.span()
    attrs = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == error_type
    assert attrs["anthropic.request.id"] == fake.calls[-1].request_id
    assert "gen_ai.usage.input_tokens" not in attrs
    [(attrs, count)] = otel.points("anthropic_otel.requests")
    assert (attrs["error.type"], attrs["anthropic.stop_reason"], count) == (error_type, "none", 1)
    [(attrs, _)] = otel.points("gen_ai.client.operation.duration")
    assert attrs["error.type"] == error_type


def _bare_error(fake: FakeAnthropicServer, scenario: str) -> Any:
    """The same failure with instrumentation off, to compare against."""
    import anthropic_otel

    instrumentor = anthropic_otel.AnthropicInstrumentor()
    telemetry = instrumentor._patcher
    telemetry.remove()
    try:
        client = anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
        try:
            client.messages.create(**ask(), extra_headers={"x-fake-scenario": scenario})
        except anthropic.APIError as error:
            return error
        raise AssertionError("no error")
    finally:
        telemetry.apply()
        fake.reset()


def test_retries_inside_one_call_are_one_span_with_attempt_events(otel: Otel, fake: FakeAnthropicServer) -> None:
    fake.script("rate_limit", "overloaded", "normal")
    client = anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=2)
    client.messages.create(**ask())
    span = otel.span()
    assert (span.attributes or {})["http.request.resend_count"] == 2
    events = [e for e in span.events if e.name == "anthropic_otel.attempt"]
    assert [e.attributes["http.response.status_code"] for e in events] == [429, 529]  # type: ignore[index]
    assert [e.attributes["anthropic.request.id"] for e in events] == [  # type: ignore[index]
        c.request_id for c in fake.calls[:2]]
    assert (span.attributes or {})["anthropic.request.id"] == fake.calls[2].request_id


def test_no_api_key_anywhere(otel: Otel, client: anthropic.Anthropic) -> None:
    client.messages.create(**ask())
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**ask(), extra_headers={"x-fake-scenario": "rate_limit"})
    for span in otel.spans():
        text = repr(dict(span.attributes or {})) + repr([e.attributes for e in span.events])
        assert API_KEY not in text and "x-api-key" not in text


def test_content_is_off_by_default(otel: Otel, client: anthropic.Anthropic) -> None:
    client.messages.create(**ask("secret prompt", system="secret system"))
    attrs = otel.span().attributes or {}
    assert not any(k in attrs for k in ("gen_ai.input.messages", "gen_ai.output.messages",
                                        "gen_ai.system_instructions"))
    assert "secret" not in repr(dict(attrs))


def test_count_tokens_and_async(otel: Otel, client: anthropic.Anthropic) -> None:
    result = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    span = otel.span()
    assert span.name == f"count_tokens {MODEL}"
    assert (span.attributes or {})["gen_ai.operation.name"] == "count_tokens"
    assert result.input_tokens > 0
    assert otel.points("gen_ai.client.token.usage") == []


async def test_async_create(otel: Otel, aclient: anthropic.AsyncAnthropic) -> None:
    message = await aclient.messages.create(**ask())
    attrs = otel.span().attributes or {}
    assert attrs["gen_ai.usage.output_tokens"] == message.usage.output_tokens
    assert attrs["gen_ai.response.finish_reasons"] == ("end_turn",)
    with pytest.raises(anthropic.OverloadedError):
        await aclient.messages.create(**ask(), extra_headers={"x-fake-scenario": "overloaded"})
    assert (otel.spans()[-1].attributes or {})["error.type"] == "overloaded_error"


def test_request_log_record(otel: Otel, client: anthropic.Anthropic, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="anthropic_otel.requests"):
        message = client.messages.create(**ask())
    [record] = [r for r in caplog.records if r.name == "anthropic_otel.requests"]
    fields = record.anthropic_otel  # type: ignore[attr-defined]
    assert fields["request_id"] == message._request_id
    assert fields["output_tokens"] == message.usage.output_tokens
    assert fields["stop_reason"] == "end_turn" and fields["cost_usd"] > 0


def test_beta_and_parse_are_covered(otel: Otel, client: anthropic.Anthropic) -> None:
    client.beta.messages.create(**ask())
    client.messages.parse(**ask())
    assert [s.name for s in otel.spans()] == [f"chat {MODEL}", f"chat {MODEL}"]


def test_batches_have_a_span_per_operation(otel: Otel, client: anthropic.Anthropic) -> None:
    batch = client.messages.batches.create(requests=[{"custom_id": "a", "params": ask()}])  # type: ignore[list-item]
    client.messages.batches.retrieve(batch.id)
    list(client.messages.batches.results(batch.id))
    spans = otel.spans()
    # results() looks the batch up first: that retrieve is a child of the results span.
    assert [s.name for s in spans] == ["create batch", "retrieve batch", "retrieve batch", "results batch"]
    assert spans[2].parent is not None and spans[2].parent.span_id == spans[3].context.span_id
    assert all((s.attributes or {})["anthropic.batch.id"] == batch.id for s in spans)
    assert all((s.attributes or {})["gen_ai.operation.name"] == "batch" for s in spans)
