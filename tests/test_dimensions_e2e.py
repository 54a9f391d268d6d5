"""Billing dimensions end to end: the real SDK against the fake server, the span and the series by label.

Token counts come from the server's log (what it billed); the dollars per million tokens are written out from
the published prices (see tests/test_cost_dimensions.py), never computed by the code under test.
"""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from typing import Any

import anthropic
import pytest

import anthropic_otel
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, Otel, ask, make_otel

D = Decimal
M = 1_000_000
REL = D("1e-12")  # float on the span and the series; exact Decimal in totals()
REL_SUM = D("1e-9")
WEB_FETCH_TOOL = {"type": "web_fetch_20250910", "name": "web_fetch"}
CODE_TOOL = {"type": "code_execution_20250825", "name": "code_execution"}


def _create(client: anthropic.Anthropic, stream: bool, **params: Any) -> Any:
    if stream:
        with client.messages.stream(**params) as s:
            return s.get_final_message()
    return client.messages.create(**params)


def _billed(fake: FakeAnthropicServer) -> dict[str, Any]:
    [call] = [c for c in fake.calls if c.path == "/v1/messages"]
    assert call.usage is not None and call.completed
    return call.usage


def _dollars(usage: dict[str, Any], input: str, output: str, read: str = "0") -> Decimal:
    """The bill at these per-MTok rates (5-minute writes at 1.25x input as published)."""
    return (D(usage["input_tokens"]) * D(input) + D(usage["output_tokens"]) * D(output)
            + D(usage["cache_read_input_tokens"]) * D(read)
            + D(usage["cache_creation_input_tokens"]) * D(input) * D("1.25")) / M


def _cost_series(otel: Otel, **labels: Any) -> Decimal:
    return D(str(otel.total("anthropic_otel.cost.usd", **labels)))


@pytest.mark.parametrize("stream", [False, True])
def test_fast_call_on_a_model_with_a_fast_row(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                              stream: bool) -> None:
    _create(client, stream, **ask(model="claude-opus-4-8", speed="fast"))
    usage = _billed(fake)
    assert usage["speed"] == "fast"
    expected = _dollars(usage, "10", "50")  # Opus 4.8 fast: $10 / $50 (standard $5 / $25)
    attrs = otel.span().attributes or {}
    assert attrs["anthropic.response.speed"] == "fast"
    assert D(str(attrs["anthropic_otel.cost.usd"])) == pytest.approx(expected, rel=REL)
    assert _cost_series(otel, anthropic__response__speed="fast") == pytest.approx(expected, rel=REL)
    assert _cost_series(otel, anthropic__response__speed="standard") == 0
    assert otel.total("anthropic_otel.tokens", anthropic__response__speed="fast",
                      anthropic_otel__token__type="output") == usage["output_tokens"]


@pytest.mark.parametrize("stream", [False, True])
def test_us_geo_call_on_a_4_6_model(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                    stream: bool) -> None:
    _create(client, stream, **ask(model="claude-sonnet-4-6", inference_geo="us"))
    usage = _billed(fake)
    expected = _dollars(usage, "3.3", "16.5")  # Sonnet 4.6 $3 / $15 x 1.1
    attrs = otel.span().attributes or {}
    assert attrs["anthropic.response.inference_geo"] == "us"
    assert D(str(attrs["anthropic_otel.cost.usd"])) == pytest.approx(expected, rel=REL)
    assert _cost_series(otel, anthropic__response__inference_geo="us") == pytest.approx(expected, rel=REL)


def test_geo_times_long_context(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer) -> None:
    client.messages.create(**ask("word " * 100_000, model="claude-haiku-5-5", inference_geo="us"))
    usage = _billed(fake)
    assert usage["input_tokens"] > 100_000  # Haiku 5.5's long-context tier: $0.5 / $2.5, x 1.1 for US
    expected = _dollars(usage, "0.55", "2.75")
    attrs = otel.span().attributes or {}
    assert D(str(attrs["anthropic_otel.cost.usd"])) == pytest.approx(expected, rel=REL)
    assert _cost_series(otel, anthropic__response__inference_geo="us",
                        anthropic_otel__token__type="input") == pytest.approx(
        D(usage["input_tokens"]) * D("0.55") / M, rel=REL)


def test_priority_without_an_override_is_standard(otel: Otel, client: anthropic.Anthropic,
                                                  fake: FakeAnthropicServer) -> None:
    client.messages.create(**ask(model="claude-opus-4-8", service_tier="auto"),
                           extra_headers={"x-fake-service-tier": "priority"})
    usage = _billed(fake)
    assert usage["service_tier"] == "priority"
    expected = _dollars(usage, "5", "25")
    attrs = otel.span().attributes or {}
    assert attrs["anthropic.response.service_tier"] == "priority"
    assert D(str(attrs["anthropic_otel.cost.usd"])) == pytest.approx(expected, rel=REL)
    assert _cost_series(otel, anthropic__response__service_tier="priority") == pytest.approx(expected, rel=REL)


def test_priority_with_an_override(fake: FakeAnthropicServer) -> None:
    otel = make_otel(prices={"claude-opus-4-8": {"priority": {"input": 6, "output": 30}}})
    try:
        with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as client:
            client.messages.create(**ask(model="claude-opus-4-8"), extra_headers={"x-fake-service-tier": "priority"})
            client.messages.create(**ask(model="claude-opus-4-8", service_tier="standard_only"),
                                   extra_headers={"x-fake-service-tier": "priority"})
        priority, standard = (c.usage for c in fake.calls)
        assert priority is not None and standard is not None
        assert (priority["service_tier"], standard["service_tier"]) == ("priority", "standard")
        assert _cost_series(otel, anthropic__response__service_tier="priority") == pytest.approx(
            _dollars(priority, "6", "30"), rel=REL)
        assert _cost_series(otel, anthropic__response__service_tier="standard") == pytest.approx(
            _dollars(standard, "5", "25"), rel=REL)
    finally:
        anthropic_otel.uninstrument()


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_tokens_do_not_double_count(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                             stream: bool) -> None:
    _create(client, stream, **ask(model="claude-sonnet-4-6", max_tokens=2_000,
                                  thinking={"type": "enabled", "budget_tokens": 1_024}),
            extra_headers={"x-fake-output-tokens": "40", "x-fake-thinking-tokens": "25"})
    usage = _billed(fake)
    assert (usage["output_tokens"], usage["output_tokens_details"]["thinking_tokens"]) == (40, 25)
    attrs = otel.span().attributes or {}
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 25
    assert attrs["gen_ai.usage.output_tokens"] == 40
    assert otel.total("anthropic_otel.thinking.tokens") == 25
    assert otel.total("anthropic_otel.tokens", anthropic_otel__token__type="output") == 40
    assert otel.total("anthropic_otel.tokens") == usage["input_tokens"] + 40
    assert D(str(attrs["anthropic_otel.cost.usd"])) == pytest.approx(_dollars(usage, "3", "15"), rel=REL)


@pytest.mark.parametrize("stream", [False, True])
def test_web_fetch_counted_and_free(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                    stream: bool) -> None:
    _create(client, stream, **ask(model="claude-sonnet-4-6", tools=[WEB_FETCH_TOOL]),
            extra_headers={"x-fake-web-fetch-requests": "3"})
    usage = _billed(fake)
    assert usage["server_tool_use"] == {"web_search_requests": 0, "web_fetch_requests": 3}
    attrs = otel.span().attributes or {}
    assert attrs["anthropic.usage.server_tool_use.web_fetch_requests"] == 3
    assert otel.total("anthropic_otel.server_tool.requests", anthropic_otel__server_tool__type="web_fetch") == 3
    assert D(str(attrs["anthropic_otel.cost.usd"])) == pytest.approx(_dollars(usage, "3", "15"), rel=REL)
    assert _cost_series(otel, anthropic_otel__token__type="web_fetch") == 0


@pytest.mark.parametrize("stream", [False, True])
def test_code_execution_container(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                  stream: bool) -> None:
    message = _create(client, stream, **ask(model="claude-sonnet-4-6", tools=[CODE_TOOL]))
    assert message.container is not None
    attrs = otel.span().attributes or {}
    assert attrs["anthropic.container.id"] == message.container.id
    assert otel.total("anthropic_otel.container.requests") == 1


def _cached(text: str, **kwargs: Any) -> dict[str, Any]:
    return ask(system=[{"type": "text", "text": text * 400, "cache_control": {"type": "ephemeral"}}], **kwargs)


@pytest.mark.parametrize(("prices", "read_rate"), [
    (None, "0.2"),  # Fable 5.2 reads the cache at $0.2 (0.025x of $8)
    ({"claude-fable-5-2": {"input": 4, "output": 20}}, "0.1"),  # an override: the model's own 0.025x of $4
])
def test_model_specific_cache_read(fake: FakeAnthropicServer, prices: dict[str, Any] | None, read_rate: str) -> None:
    otel = make_otel(prices=prices)
    input_rate, output_rate = ("8", "40") if prices is None else ("4", "20")
    try:
        with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as client:
            client.messages.create(**_cached("Cache me. ", model="claude-fable-5-2"))
            otel.exporter.clear()
            client.messages.create(**_cached("Cache me. ", model="claude-fable-5-2"))
        read = fake.calls[-1].usage
        assert read is not None and read["cache_read_input_tokens"] > 0
        attrs = otel.span().attributes or {}
        assert D(str(attrs["anthropic_otel.cost.usd"])) == pytest.approx(
            _dollars(read, input_rate, output_rate, read_rate), rel=REL)
        assert _cost_series(otel, anthropic_otel__token__type="cache_read") == pytest.approx(
            D(read["cache_read_input_tokens"]) * D(read_rate) / M, rel=REL)
    finally:
        anthropic_otel.uninstrument()


# (model, request parameters, headers, $/MTok input, output, cache read) for the mixed load below
MIX: list[tuple[str, dict[str, Any], dict[str, str], str, str, str]] = [
    ("claude-opus-4-8", {"speed": "fast"}, {}, "10", "50", "1"),
    ("claude-opus-4-8", {}, {"x-fake-service-tier": "priority"}, "5", "25", "0.5"),
    ("claude-sonnet-4-6", {"inference_geo": "us"}, {}, "3.3", "16.5", "0.33"),
    ("claude-sonnet-4-6", {"tools": [WEB_FETCH_TOOL]}, {}, "3", "15", "0.3"),
    ("claude-fable-5-2", {"thinking": {"type": "enabled", "budget_tokens": 1_024}}, {}, "8", "40", "0.2"),
    ("claude-opus-4-5", {"inference_geo": "us"}, {}, "5", "25", "0.5"),
]


def test_totals_under_threads_and_asyncio_equal_the_server_log(otel: Otel, fake: FakeAnthropicServer) -> None:
    per_thread = 6

    def work(index: int) -> None:
        with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as client:
            for i in range(per_thread):
                model, params, headers, *_ = MIX[(index + i) % len(MIX)]
                _create(client, i % 2 == 0, **ask(f"thread {index} call {i}", model=model, **params),
                        extra_headers={**headers, "x-fake-case": str((index + i) % len(MIX))})

    async def many() -> None:
        async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as client:
            async def one(i: int) -> None:
                model, params, headers, *_ = MIX[i % len(MIX)]
                await client.messages.create(**ask(f"async call {i}", model=model, **params),
                                             extra_headers={**headers, "x-fake-case": str(i % len(MIX))})
            await asyncio.gather(*(one(i) for i in range(12)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    asyncio.run(many())
    for thread in threads:
        thread.join()

    expected = D(0)
    calls = [c for c in fake.calls if c.path == "/v1/messages"]
    assert len(calls) == 4 * per_thread + 12
    for call in calls:
        assert call.usage is not None and call.completed
        _, _, _, input_rate, output_rate, read_rate = MIX[int(call.headers["x-fake-case"])]
        expected += _dollars(call.usage, input_rate, output_rate, read_rate)
    totals = otel.instrumentor.telemetry.metrics.totals()  # type: ignore[union-attr]
    assert totals["cost_total"] == expected
    assert _cost_series(otel) == pytest.approx(expected, rel=REL_SUM)
    fast = sum((_dollars(c.usage or {}, "10", "50", "1") for c in calls if (c.usage or {}).get("speed") == "fast"),
               D(0))
    assert _cost_series(otel, anthropic__response__speed="fast") == pytest.approx(fast, rel=REL_SUM)
    assert totals["thinking_tokens"] == sum((c.usage or {}).get("output_tokens_details", {}).get(
        "thinking_tokens", 0) for c in calls)
    assert totals["server_tool_requests"].get("web_fetch") == sum(
        ((c.usage or {}).get("server_tool_use") or {}).get("web_fetch_requests", 0) for c in calls)


def test_dimension_labels_are_a_closed_set(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer) -> None:
    client.messages.create(**ask(model="claude-sonnet-4-6", inference_geo="eu-central-9"))
    client.messages.create(**ask(model="claude-sonnet-4-6"))
    geos = {attrs["anthropic.response.inference_geo"] for attrs, _ in otel.points("anthropic_otel.tokens")}
    assert geos == {"_other", "none"}
    [first, _] = sorted(otel.spans(), key=lambda s: s.start_time or 0)
    assert (first.attributes or {})["anthropic.response.inference_geo"] == "eu-central-9"  # the span keeps it
    usage = fake.calls[0].usage or {}
    assert _cost_series(otel, anthropic__response__inference_geo="_other") == pytest.approx(
        _dollars(usage, "3", "15"), rel=REL)  # not a US call: no 1.1x
