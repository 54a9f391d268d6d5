"""Wrappers that the SDK cached while instrumented (`with_raw_response`, `with_streaming_response`) go quiet
after `uninstrument()`, and follow a later `instrument()` rather than the first one."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic

import anthropic_otel
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, Otel, ask, make_otel


def use_cached(client: anthropic.Anthropic) -> None:
    """One call through each cached wrapper kind."""
    client.messages.with_raw_response.create(**ask()).parse()
    with client.messages.with_streaming_response.create(**ask()) as response:
        response.parse()
    client.messages.with_raw_response.count_tokens(**{k: v for k, v in ask().items() if k != "max_tokens"})
    client.messages.with_raw_response.batches.list()


def test_cached_raw_and_streaming_wrappers_stop_after_uninstrument(fake: FakeAnthropicServer) -> None:
    first = make_otel()
    try:
        client = anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
        use_cached(client)  # the SDK caches the bound (wrapped) methods now
        assert len(first.spans()) == 4
        anthropic_otel.uninstrument()

        use_cached(client)
        assert len(first.spans()) == 4  # no new span after uninstrument()
        assert len(fake.calls) == 8  # the calls themselves went through

        second: Otel = make_otel()
        use_cached(client)
        assert len(first.spans()) == 4
        assert len(second.spans()) == 4  # the cached wrappers reach the new instrumentation
    finally:
        anthropic_otel.uninstrument()


def test_async_cached_raw_wrapper_stops_after_uninstrument(fake: FakeAnthropicServer) -> None:
    otel = make_otel()

    async def call(client: anthropic.AsyncAnthropic) -> Any:
        return await (await client.messages.with_raw_response.create(**ask())).parse()

    async def main() -> None:
        async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as client:
            await call(client)
            assert len(otel.spans()) == 1
            anthropic_otel.uninstrument()
            message = await call(client)
            assert message.stop_reason == "end_turn"
            assert len(otel.spans()) == 1

    try:
        asyncio.run(main())
    finally:
        anthropic_otel.uninstrument()
