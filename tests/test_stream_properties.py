"""Arbitrary valid event sequences through the stream proxy: never raises into the caller, never double-counts."""

from __future__ import annotations

from typing import Any

import anthropic
from anthropic._models import construct_type
from anthropic.types import RawMessageStreamEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import anthropic_otel
from anthropic_otel.instrumentation.streams import StreamProxy
from anthropic_otel.telemetry import faults as _faults
from conftest import make_otel

counts = st.integers(min_value=0, max_value=2_000_000)
maybe = st.one_of(st.none(), counts)
STOPS = st.sampled_from(["end_turn", "max_tokens", "tool_use", "stop_sequence", "pause_turn", "refusal"])


@st.composite
def sequences(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, int], str | None, bool, bool]:
    start = {"input_tokens": draw(counts), "output_tokens": draw(counts),
             "cache_read_input_tokens": draw(maybe), "cache_creation_input_tokens": draw(maybe)}
    expected = {k: (v or 0) for k, v in start.items()}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": start}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
    for _ in range(draw(st.integers(0, 5))):
        events.append({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}})
    stop = None
    for _ in range(draw(st.integers(0, 3))):
        delta_usage = {"output_tokens": draw(counts), "input_tokens": draw(maybe),
                       "cache_read_input_tokens": draw(maybe), "cache_creation_input_tokens": draw(maybe)}
        for key, value in delta_usage.items():
            if value is not None:
                expected[key] = value
        stop = draw(st.one_of(st.none(), STOPS))
        events.append({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                       "usage": delta_usage})
    complete = draw(st.booleans())
    if complete:
        events.append({"type": "message_stop"})
    fail = draw(st.booleans()) and not complete
    return events, expected, stop, complete, fail


class Boom(Exception):
    pass


def feed(events: list[Any], fail: bool) -> Any:
    yield from events
    if fail:
        raise Boom


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=sequences(), close_early=st.booleans())
def test_any_event_sequence(case: tuple[list[dict[str, Any]], dict[str, int], str | None, bool, bool],
                            close_early: bool) -> None:
    raw, expected, _, complete, fail = case
    events = [construct_type(type_=RawMessageStreamEvent, value=e) for e in raw]
    _faults.clear()
    otel = make_otel()
    try:
        client = anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:9")
        call = otel.instrumentor.telemetry.begin(client.messages, {"model": "claude-haiku-4-5"}, "chat", True)
        proxy = StreamProxy(feed(events, fail), call)
        seen: list[Any] = []
        try:
            for event in proxy:
                seen.append(event)
                if close_early and len(seen) == 2:
                    break
        except Boom:
            assert fail
        if close_early or not complete:
            call.stream_closed()
        call.stream_closed()
        del proxy
        if not close_early:
            assert [id(e) for e in seen] == [id(e) for e in events]
        span = otel.span()
        assert otel.total("anthropic_otel.requests") == 1
        attrs = span.attributes or {}
        if not close_early:
            total_input = (expected["input_tokens"] + expected["cache_read_input_tokens"]
                           + expected["cache_creation_input_tokens"])
            assert attrs["gen_ai.usage.input_tokens"] == total_input
            assert attrs["gen_ai.usage.output_tokens"] == expected["output_tokens"]
            assert otel.total("anthropic_otel.tokens", anthropic_otel__token__type="output") == expected[
                "output_tokens"]
        assert _faults.counts() == {}
    finally:
        anthropic_otel.uninstrument()
