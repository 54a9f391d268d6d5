"""Every way an application consumes a stream ends our span exactly once and leaves the stream intact."""

from __future__ import annotations

import gc
import json
from typing import Any

import anthropic
import pytest
from anthropic.lib.streaming import AsyncMessageStream, MessageStream
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import anthropic_otel
from anthropic_otel.testing import FakeAnthropicServer
from conftest import Otel, ask, make_otel

CUT = {"x-fake-scenario": "stream_cut"}


def assert_one_complete_span(otel: Otel, message: Any) -> dict[str, Any]:
    span = otel.span()
    attrs = dict(span.attributes or {})
    usage = message.usage
    assert span.status.status_code is StatusCode.UNSET
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.id"] == message.id
    assert attrs["gen_ai.response.finish_reasons"] == (message.stop_reason,)
    assert attrs["gen_ai.usage.input_tokens"] == (usage.input_tokens + (usage.cache_read_input_tokens or 0)
                                                  + (usage.cache_creation_input_tokens or 0))
    assert attrs["gen_ai.usage.output_tokens"] == usage.output_tokens
    assert 0 < attrs["gen_ai.response.time_to_first_chunk"] <= (span.end_time - span.start_time) / 1e9
    assert attrs["anthropic_otel.cost.usd"] > 0
    assert otel.total("anthropic_otel.requests") == 1
    assert otel.total("anthropic_otel.tokens", anthropic_otel__token__type="output") == usage.output_tokens
    [(_, ttfc)] = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert ttfc.count == 1
    return attrs


def server_usage(fake: FakeAnthropicServer) -> dict[str, Any]:
    usage = fake.calls[-1].usage
    assert usage is not None
    return usage


def test_create_stream_iterated_to_the_end(otel: Otel, client: anthropic.Anthropic,
                                           fake: FakeAnthropicServer) -> None:
    stream = client.messages.create(**ask(), stream=True)
    assert isinstance(stream, anthropic.Stream)
    assert stream.response.headers["request-id"] == fake.calls[-1].request_id
    events = list(stream)
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    usage = server_usage(fake)
    attrs = otel.span().attributes or {}
    assert attrs["gen_ai.usage.output_tokens"] == usage["output_tokens"]
    assert attrs["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert attrs["anthropic.request.id"] == fake.calls[-1].request_id
    stream.close()
    assert len(otel.spans()) == 1 and otel.total("anthropic_otel.requests") == 1


def test_create_stream_with_next_and_context_manager(otel: Otel, client: anthropic.Anthropic) -> None:
    with client.messages.create(**ask(), stream=True) as stream:
        first = next(stream)
        assert first.type == "message_start"
        rest = list(stream)
    assert rest[-1].type == "message_stop"
    assert len(otel.spans()) == 1


def test_break_then_close_ends_span_once(otel: Otel, client: anthropic.Anthropic) -> None:
    stream = client.messages.create(**ask(), stream=True, extra_headers={"x-fake-output-tokens": "50"})
    for event in stream:
        if event.type == "content_block_delta":
            break
    assert otel.spans() == []
    stream.close()
    stream.close()
    span = otel.span()
    attrs = span.attributes or {}
    assert attrs["anthropic_otel.stream.closed_early"] is True
    assert attrs["gen_ai.response.finish_reasons"] == ("error",)
    assert span.status.status_code is StatusCode.UNSET
    assert attrs["gen_ai.usage.input_tokens"] > 0
    [(labels, count)] = otel.points("anthropic_otel.requests")
    assert (labels["anthropic.stop_reason"], labels["error.type"], count) == ("none", "none", 1)


def test_caller_exception_inside_with_ends_span(otel: Otel, client: anthropic.Anthropic) -> None:
    with pytest.raises(KeyError), client.messages.stream(**ask()) as stream:
        for _ in stream.text_stream:
            raise KeyError("the application's own error")
    assert len(otel.spans()) == 1
    assert otel.total("anthropic_otel.requests.active") == 0


def test_server_cut_is_an_error(otel: Otel, client: anthropic.Anthropic) -> None:
    stream = client.messages.create(**ask(), stream=True, extra_headers=CUT)
    with pytest.raises(Exception) as caught:
        list(stream)
    span = otel.span()
    attrs = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == type(caught.value).__name__
    assert attrs["gen_ai.response.finish_reasons"] == ("error",)


def test_error_event_mid_stream(otel: Otel, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError), client.messages.stream(
            **ask(), extra_headers={"x-fake-scenario": "stream_error"}) as stream:
        stream.get_final_message()
    attrs = otel.span().attributes or {}
    assert attrs["error.type"] == "overloaded_error"
    assert attrs["gen_ai.response.finish_reasons"] == ("error",)


def test_unconsumed_stream_garbage_collected(otel: Otel, client: anthropic.Anthropic) -> None:
    stream = client.messages.create(**ask(), stream=True)
    del stream
    gc.collect()
    assert len(otel.spans()) == 1
    with client.messages.stream(**ask()) as helper:
        next(iter(helper))
    del helper
    gc.collect()
    assert len(otel.spans()) == 2
    assert otel.total("anthropic_otel.requests.active") == 0


@pytest.mark.parametrize("how", ["text_stream", "get_final_message", "get_final_text", "until_done", "iterate"])
def test_stream_helper_every_consumption(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                         how: str) -> None:
    with client.messages.stream(**ask()) as stream:
        assert isinstance(stream, MessageStream)
        assert stream.request_id == fake.calls[-1].request_id
        if how == "text_stream":
            text = "".join(stream.text_stream)
            assert text == stream.get_final_text()
        elif how == "get_final_message":
            stream.get_final_message()
        elif how == "get_final_text":
            assert stream.get_final_text()
        elif how == "until_done":
            stream.until_done()
        else:
            types = [event.type for event in stream]
            assert "text" in types and types[-1] == "message_stop"
        message = stream.get_final_message()
        assert stream.current_message_snapshot is message
    assert message.usage.output_tokens == server_usage(fake)["output_tokens"]
    assert_one_complete_span(otel, message)


def test_text_stream_then_final_message_counts_once(otel: Otel, client: anthropic.Anthropic) -> None:
    with client.messages.stream(**ask()) as stream:
        for _ in stream.text_stream:
            pass
        message = stream.get_final_message()
    assert_one_complete_span(otel, message)
    assert otel.points("gen_ai.client.token.usage")[0][1].count == 1


def test_usage_only_on_message_delta(otel: Otel, client: anthropic.Anthropic, fake: FakeAnthropicServer) -> None:
    with client.messages.stream(**ask(), extra_headers={"x-fake-scenario": "usage_on_delta_only"}) as stream:
        message = stream.get_final_message()
    attrs = assert_one_complete_span(otel, message)
    usage = server_usage(fake)
    assert attrs["gen_ai.usage.input_tokens"] == usage["input_tokens"] + usage["cache_read_input_tokens"] + \
        usage["cache_creation_input_tokens"]


def test_rate_limit_inside_stream_helper_leaves_no_current_span(otel: Otel, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError), client.messages.stream(
            **ask(), extra_headers={"x-fake-scenario": "rate_limit"}):
        pass
    assert (otel.span().attributes or {})["error.type"] == "rate_limit_error"
    assert not trace.get_current_span().get_span_context().is_valid
    client.messages.create(**ask())
    first, second = otel.spans()
    assert second.parent is None and second.context.trace_id != first.context.trace_id


async def test_async_create_stream(otel: Otel, aclient: anthropic.AsyncAnthropic,
                                   fake: FakeAnthropicServer) -> None:
    stream = await aclient.messages.create(**ask(), stream=True)
    assert isinstance(stream, anthropic.AsyncStream)
    events = [event async for event in stream]
    assert events[-1].type == "message_stop"
    attrs = otel.span().attributes or {}
    assert attrs["gen_ai.usage.output_tokens"] == server_usage(fake)["output_tokens"]
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0


async def test_async_break_and_close(otel: Otel, aclient: anthropic.AsyncAnthropic) -> None:
    async with await aclient.messages.create(**ask(), stream=True) as stream:
        async for _ in stream:
            break
    assert len(otel.spans()) == 1
    assert (otel.span().attributes or {})["anthropic_otel.stream.closed_early"] is True


@pytest.mark.parametrize("how", ["text_stream", "get_final_message", "get_final_text", "until_done", "iterate"])
async def test_async_stream_helper(otel: Otel, aclient: anthropic.AsyncAnthropic, how: str) -> None:
    async with aclient.messages.stream(**ask()) as stream:
        assert isinstance(stream, AsyncMessageStream)
        if how == "text_stream":
            text = "".join([t async for t in stream.text_stream])
            assert text == await stream.get_final_text()
        elif how == "get_final_message":
            await stream.get_final_message()
        elif how == "get_final_text":
            assert await stream.get_final_text()
        elif how == "until_done":
            await stream.until_done()
        else:
            types = [event.type async for event in stream]
            assert types[-1] == "message_stop"
        message = await stream.get_final_message()
    assert_one_complete_span(otel, message)


async def test_async_server_cut(otel: Otel, aclient: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises for a cut body
        async with aclient.messages.stream(**ask(), extra_headers=CUT) as stream:
            await stream.get_final_message()
    assert otel.span().status.status_code is StatusCode.ERROR


def test_tool_use_stream_and_content_capture(client: anthropic.Anthropic) -> None:
    otel = make_otel(capture_content=True)
    try:
        tools = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}]
        with client.messages.stream(**ask("What is the weather?", tools=tools, system="Be brief."),
                                    extra_headers={"x-fake-scenario": "tool_use"}) as stream:
            message = stream.get_final_message()
        attrs = otel.span().attributes or {}
        assert attrs["gen_ai.response.finish_reasons"] == ("tool_use",)
        output = json.loads(str(attrs["gen_ai.output.messages"]))
        assert output[0]["finish_reason"] == "tool_call"
        calls = [p for p in output[0]["parts"] if p["type"] == "tool_call"]
        assert calls == [{"type": "tool_call", "id": message.content[-1].id, "name": "get_weather",  # type: ignore[union-attr]
                          "arguments": {"location": "Paris"}}]
        inputs = json.loads(str(attrs["gen_ai.input.messages"]))
        assert inputs == [{"role": "user", "parts": [{"type": "text", "content": "What is the weather?"}]}]
        assert json.loads(str(attrs["gen_ai.system_instructions"])) == [{"type": "text", "content": "Be brief."}]
        assert json.loads(str(attrs["gen_ai.tool.definitions"]))[0]["name"] == "get_weather"
    finally:
        anthropic_otel.uninstrument()


def test_content_capture_non_stream(client: anthropic.Anthropic) -> None:
    otel = make_otel(capture_content="SPAN_AND_EVENT")
    try:
        message = client.messages.create(**ask("hello"))
        span = otel.span()
        output = json.loads(str((span.attributes or {})["gen_ai.output.messages"]))
        assert output[0]["parts"][0]["content"] == message.content[0].text  # type: ignore[union-attr]
        assert [e.name for e in span.events] == ["gen_ai.client.inference.operation.details"]
    finally:
        anthropic_otel.uninstrument()
