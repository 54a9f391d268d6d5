"""Every call path (`with_raw_response`, `with_streaming_response`, `parse`, `stream`; sync, async, beta) gets
the same usage, cost, stop reason and request id as the plain path, checked against the fake server's log;
what the caller gets back is unchanged, and a response never parsed still ends its span, as usage unknown."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import anthropic
import pytest
from anthropic import AsyncStream, Stream
from anthropic.types import Message

from anthropic_otel.cost.pricing import Pricer
from anthropic_otel.cost.usage import Usage
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, MODEL, Otel, ask

TOKEN_KEYS = {"input": "input_tokens", "output": "output_tokens", "cache_read": "cache_read_input_tokens",
              "cache_write": "cache_creation_input_tokens"}


def totals(otel: Otel) -> dict[str, Any]:
    assert otel.instrumentor.telemetry is not None
    return otel.instrumentor.telemetry.metrics.totals()


def expected_cost(fake: FakeAnthropicServer) -> Decimal:
    """The plain path's cost of what the server answered: the pricer over each recorded usage."""
    pricer = Pricer()
    total = Decimal(0)
    for call in fake.calls:
        if call.usage is not None and call.completed:
            cost = pricer.cost(MODEL, "anthropic", Usage.of(Message.model_validate(
                {"id": "m", "type": "message", "role": "assistant", "model": MODEL, "content": [],
                 "stop_reason": "end_turn", "stop_sequence": None, "usage": call.usage}).usage))
            assert cost is not None
            total += cost.total
    return total


def assert_matches_server(otel: Otel, fake: FakeAnthropicServer, calls: int) -> None:
    server = fake.totals()
    assert server["requests"] == calls
    found = totals(otel)
    assert found["requests"] == calls
    for ours, theirs in TOKEN_KEYS.items():
        assert found["tokens"].get(ours, 0) == server[theirs], ours
    assert found["cost_total"] == expected_cost(fake)
    assert found["usage_unknown"] == {}
    spans = otel.spans()
    assert len(spans) == calls
    by_request = {call.request_id: call for call in fake.calls}
    for span in spans:
        attrs = dict(span.attributes or {})
        call = by_request[attrs["anthropic.request.id"]]
        assert call.usage is not None
        assert attrs["gen_ai.response.finish_reasons"] == (call.stop_reason,)
        assert attrs["gen_ai.usage.output_tokens"] == call.usage["output_tokens"]
        assert "anthropic_otel.usage.unknown.reason" not in attrs


# -- sync paths: each returns what the caller would use, and the test checks it is the SDK's own type ------

def raw_create(client: anthropic.Anthropic) -> None:
    response = client.messages.with_raw_response.create(**ask())
    assert response.headers["request-id"]
    assert isinstance(response.parse(), Message)


def raw_create_unparsed(client: anthropic.Anthropic) -> None:
    client.messages.with_raw_response.create(**ask())  # the body is read already: usage known without parse


def raw_stream(client: anthropic.Anthropic) -> None:
    response = client.messages.with_raw_response.create(**ask(), stream=True)
    stream = response.parse()
    assert isinstance(stream, Stream)
    assert response.parse() is stream  # the parse cache holds what the caller got
    assert [event.type for event in stream][-1] == "message_stop"


def streaming_create(client: anthropic.Anthropic) -> None:
    with client.messages.with_streaming_response.create(**ask()) as response:
        assert isinstance(response.parse(), Message)


def streaming_json(client: anthropic.Anthropic) -> None:
    with client.messages.with_streaming_response.create(**ask()) as response:
        assert response.json()["type"] == "message"  # read another way: a copy is parsed on close


def streaming_stream(client: anthropic.Anthropic) -> None:
    with client.messages.with_streaming_response.create(**ask(), stream=True) as response:
        assert [event.type for event in response.parse()][-1] == "message_stop"


def beta_raw_parse(client: anthropic.Anthropic) -> None:
    response = client.beta.messages.with_raw_response.parse(**ask())
    assert response.parse().usage.output_tokens > 0


def beta_streaming_create(client: anthropic.Anthropic) -> None:  # the SDK has no streaming-response parse
    with client.beta.messages.with_streaming_response.create(**ask()) as response:
        assert response.parse().stop_reason == "end_turn"


def beta_raw_stream(client: anthropic.Anthropic) -> None:
    response = client.beta.messages.with_raw_response.create(**ask(), stream=True)
    for _ in response.parse():
        pass


def plain_stream(client: anthropic.Anthropic) -> None:
    with client.messages.stream(**ask()) as stream:
        assert stream.get_final_message().usage.output_tokens > 0


SYNC_PATHS: list[Callable[[anthropic.Anthropic], None]] = [
    raw_create, raw_create_unparsed, raw_stream, streaming_create, streaming_json, streaming_stream,
    beta_raw_parse, beta_streaming_create, beta_raw_stream, plain_stream]


@pytest.mark.parametrize("path", SYNC_PATHS, ids=lambda path: path.__name__)
def test_each_sync_path_matches_the_server(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                           path: Callable[[anthropic.Anthropic], None]) -> None:
    path(client)
    assert_matches_server(otel, fake, 1)


def test_every_sync_path_under_threads(otel: Otel, fake: FakeAnthropicServer) -> None:
    rounds = 3
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as client, \
            ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(path, client) for _ in range(rounds) for path in SYNC_PATHS]
        for future in futures:
            future.result()
    assert_matches_server(otel, fake, rounds * len(SYNC_PATHS))


# -- async paths --------------------------------------------------------------------------------------

async def araw_create(client: anthropic.AsyncAnthropic) -> None:
    response = await client.messages.with_raw_response.create(**ask())
    assert isinstance(await response.parse(), Message)


async def araw_stream(client: anthropic.AsyncAnthropic) -> None:
    response = await client.messages.with_raw_response.create(**ask(), stream=True)
    stream = await response.parse()
    assert isinstance(stream, AsyncStream)
    assert [event.type async for event in stream][-1] == "message_stop"


async def astreaming_create(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.with_streaming_response.create(**ask()) as response:
        assert isinstance(await response.parse(), Message)


async def astreaming_stream(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.with_streaming_response.create(**ask(), stream=True) as response:
        async for _ in await response.parse():
            pass


async def astreaming_text(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.with_streaming_response.create(**ask()) as response:
        assert "message" in await response.text()


async def abeta_raw_parse(client: anthropic.AsyncAnthropic) -> None:
    response = await client.beta.messages.with_raw_response.parse(**ask())
    assert (await response.parse()).usage.output_tokens > 0


async def aplain_stream(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(**ask()) as stream:
        await stream.get_final_message()


ASYNC_PATHS = [araw_create, araw_stream, astreaming_create, astreaming_stream, astreaming_text, abeta_raw_parse,
               aplain_stream]


async def test_every_async_path_under_asyncio(otel: Otel, aclient: anthropic.AsyncAnthropic,
                                              fake: FakeAnthropicServer) -> None:
    rounds = 3
    await asyncio.gather(*(path(aclient) for _ in range(rounds) for path in ASYNC_PATHS))
    assert_matches_server(otel, fake, rounds * len(ASYNC_PATHS))


# -- never parsed: the span still ends once, as usage unknown ---------------------------------------------

def test_streaming_response_closed_unparsed_is_usage_unknown(otel: Otel, client: anthropic.Anthropic,
                                                             fake: FakeAnthropicServer) -> None:
    with client.messages.with_streaming_response.create(**ask()) as response:
        assert response.status_code == 200
    attrs = dict(otel.span().attributes or {})
    assert attrs["anthropic_otel.usage.unknown.reason"] == "not_parsed"
    assert attrs["anthropic.request.id"] == fake.calls[-1].request_id
    assert totals(otel)["usage_unknown"] == {"not_parsed": 1}
    assert otel.total("anthropic_otel.usage.unknown", anthropic_otel__usage__unknown__reason="not_parsed") == 1


def test_raw_stream_dropped_unparsed_ends_once(otel: Otel, client: anthropic.Anthropic,
                                               fake: FakeAnthropicServer) -> None:
    response = client.messages.with_raw_response.create(**ask(), stream=True)
    response.close()
    del response
    gc.collect()
    attrs = dict(otel.span().attributes or {})
    assert attrs["anthropic_otel.usage.unknown.reason"] == "not_parsed"
    assert totals(otel)["requests"] == 1


def test_raw_stream_garbage_collected_unparsed_ends_once(otel: Otel, client: anthropic.Anthropic) -> None:
    client.messages.with_raw_response.create(**ask(), stream=True)
    gc.collect()
    assert dict(otel.span().attributes or {})["anthropic_otel.usage.unknown.reason"] == "not_parsed"


def test_raw_count_tokens_keeps_its_request_id(otel: Otel, client: anthropic.Anthropic,
                                               fake: FakeAnthropicServer) -> None:
    response = client.messages.with_raw_response.count_tokens(model=MODEL, messages=ask()["messages"])
    assert response.parse().input_tokens > 0
    attrs = dict(otel.span().attributes or {})
    assert attrs["anthropic.request.id"] == fake.calls[-1].request_id
    assert totals(otel)["usage_unknown"] == {}
