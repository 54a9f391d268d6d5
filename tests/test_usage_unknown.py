"""Calls whose final usage never arrived are counted by reason; answered calls and HTTP errors are not."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import anthropic
import pytest

from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, Otel, ask

REASON = "anthropic_otel.usage.unknown.reason"


def unknown(otel: Otel) -> dict[str, int]:
    assert otel.instrumentor.telemetry is not None
    found: dict[str, int] = otel.instrumentor.telemetry.metrics.totals()["usage_unknown"]
    exported = {attrs[REASON]: value for attrs, value in otel.points("anthropic_otel.usage.unknown")}
    assert exported == found
    return found


def span_reason(otel: Otel) -> Any:
    return dict(otel.span().attributes or {}).get(REASON)


def test_a_stream_cut_after_message_start(otel: Otel, client: anthropic.Anthropic) -> None:
    stream = client.messages.create(**ask(), stream=True, extra_headers={"x-fake-scenario": "stream_cut"})
    with suppress(Exception):  # httpx may or may not notice the cut; the stream ends without message_stop
        for _ in stream:
            pass
    assert span_reason(otel) == "stream_cut"
    assert unknown(otel) == {"stream_cut": 1}


def test_a_stream_error_event_mid_stream(otel: Otel, client: anthropic.Anthropic) -> None:
    stream = client.messages.create(**ask(), stream=True, extra_headers={"x-fake-scenario": "stream_error"})
    with pytest.raises(anthropic.APIStatusError):
        for _ in stream:
            pass
    assert unknown(otel) == {"stream_cut": 1}


def test_a_stream_closed_before_its_message_delta(otel: Otel, client: anthropic.Anthropic) -> None:
    with client.messages.create(**ask(), stream=True) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    assert span_reason(otel) == "closed_early"
    assert unknown(otel) == {"closed_early": 1}


def test_a_stream_closed_after_its_message_delta_is_known(otel: Otel, client: anthropic.Anthropic) -> None:
    with client.messages.create(**ask(), stream=True) as stream:
        for event in stream:
            if event.type == "message_delta":
                break
    assert span_reason(otel) is None
    assert unknown(otel) == {}


def test_a_timeout_after_the_request_was_sent(otel: Otel, fake: FakeAnthropicServer) -> None:
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=0.2) as client, \
            pytest.raises(anthropic.APITimeoutError):
        client.messages.create(**ask(), extra_headers={"x-fake-delay-ms": "1500"})
    assert span_reason(otel) == "timeout"
    assert unknown(otel) == {"timeout": 1}


async def test_async_stream_cut_and_closed_early(otel: Otel, aclient: anthropic.AsyncAnthropic) -> None:
    stream = await aclient.messages.create(**ask(), stream=True, extra_headers={"x-fake-scenario": "stream_error"})
    with pytest.raises(anthropic.APIStatusError):
        async for _ in stream:
            pass
    stream = await aclient.messages.create(**ask(), stream=True)
    async for event in stream:
        if event.type == "message_start":
            break
    await stream.close()
    assert unknown(otel) == {"stream_cut": 1, "closed_early": 1}


def test_answered_calls_and_http_errors_are_not_unknown(otel: Otel, client: anthropic.Anthropic) -> None:
    client.messages.create(**ask())
    for _ in client.messages.create(**ask(), stream=True):
        pass
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**ask(), extra_headers={"x-fake-scenario": "rate_limit"})
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**ask(), stream=True, extra_headers={"x-fake-scenario": "rate_limit"})
    client.messages.count_tokens(model=ask()["model"], messages=ask()["messages"])
    assert unknown(otel) == {}
