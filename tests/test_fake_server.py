"""The fake Anthropic server, driven by the real SDK over loopback HTTP."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx2
import pytest

from anthropic_otel.testing import (
    FakeAnthropicServer,
    RecordedCall,
    Scenario,
    count_cached_prefix_tokens,
    count_input_tokens,
    output_text,
)

MODEL = "claude-opus-4-5"
KEY = "test-key"
TOOLS = [
    {"name": "lookup", "description": "Look something up.", "input_schema": {"type": "object"}},
    {"name": "other", "description": "Unused.", "input_schema": {"type": "object"}},
]


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as server:
        yield server


@pytest.fixture
def server(_server: FakeAnthropicServer) -> FakeAnthropicServer:
    _server.reset()
    return _server


@pytest.fixture
def client(server: FakeAnthropicServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.base_url, api_key=KEY, max_retries=0) as c:
        yield c


def params(text: str = "What is the weather like in Paris today?", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra}


def usage(
    input_tokens: int,
    output_tokens: int,
    read: int = 0,
    write: int = 0,
    one_hour: bool = False,
    tier: str = "standard",
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0 if one_hour else write,
            "ephemeral_1h_input_tokens": write if one_hour else 0,
        },
        "service_tier": tier,
        "server_tool_use": None,
    }


def raw_request(
    server: FakeAnthropicServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        if chunked and body is not None:
            conn.request(method, path, body=iter([body[:10], body[10:]]), headers=headers or {}, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# -- token counting ----------------------------------------------------------------------------------
def test_count_input_tokens_is_ceil_of_chars_over_four() -> None:
    body = {
        "system": [{"type": "text", "text": "abcde"}],
        "tools": TOOLS,
        "messages": [
            {"role": "user", "content": "hello"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "tool_use", "id": "t", "name": "x", "input": {"a": 1}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "sunny"}]},
        ],
    }
    chars = 5 + len(json.dumps(TOOLS, sort_keys=True)) + 5 + 2 + len(json.dumps({"a": 1})) + 5
    assert count_input_tokens(body) == math.ceil(chars / 4)
    assert count_input_tokens({"messages": []}) == 1
    assert count_cached_prefix_tokens(body) == 0
    # A breakpoint on the first tool caches exactly json.dumps(tools[:1]).
    cached_tool = {**TOOLS[0], "cache_control": {"type": "ephemeral"}}
    body["tools"] = [cached_tool, TOOLS[1]]
    assert count_cached_prefix_tokens(body) == math.ceil(len(json.dumps([cached_tool], sort_keys=True)) / 4)


# -- messages ----------------------------------------------------------------------------------------
def test_create_returns_deterministic_message_and_records_call(
    client: anthropic.Anthropic, server: FakeAnthropicServer
) -> None:
    body = params()
    message = client.messages.create(**body)
    assert message.id.startswith("msg_fake_")
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text == output_text(20) == "".join(f"tok{i} " for i in range(1, 21))
    assert message.usage.to_dict() == usage(count_input_tokens(body), 20)

    (call,) = server.calls
    assert isinstance(call, RecordedCall)
    assert message._request_id == call.request_id
    assert call.request_id.startswith("req_fake_")
    assert (call.method, call.path, call.query, call.status) == ("POST", "/v1/messages", "", 200)
    assert call.body == body
    assert KEY in (
        call.headers.get("x-api-key"),
        call.headers.get("authorization", "").removeprefix("Bearer "),
    )
    assert (call.scenario, call.stream, call.completed, call.model) == ("normal", False, True, MODEL)
    assert call.stop_reason == "end_turn"
    assert call.usage == message.usage.to_dict()
    assert call.started <= call.ended
    assert server.totals() == {
        "input_tokens": count_input_tokens(body),
        "output_tokens": 20,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "ephemeral_5m_input_tokens": 0,
        "ephemeral_1h_input_tokens": 0,
        "requests": 1,
    }


def test_rate_limit_headers_count_down(client: anthropic.Anthropic) -> None:
    first = client.messages.with_raw_response.create(**params())
    second = client.messages.with_raw_response.create(**params())
    assert first.headers["content-type"] == "application/json"
    assert int(first.headers["content-length"]) == len(first.http_response.content)
    assert first.headers["anthropic-ratelimit-requests-limit"] == "1000"
    assert first.headers["anthropic-ratelimit-tokens-limit"] == "1000000"
    assert (
        int(second.headers["anthropic-ratelimit-requests-remaining"])
        == int(first.headers["anthropic-ratelimit-requests-remaining"]) - 1
    )
    assert int(second.headers["anthropic-ratelimit-output-tokens-remaining"]) < int(
        first.headers["anthropic-ratelimit-output-tokens-remaining"]
    )
    assert first.headers["anthropic-ratelimit-input-tokens-reset"].endswith("Z")


def test_streams_match_non_stream(client: anthropic.Anthropic, server: FakeAnthropicServer) -> None:
    plain = client.messages.create(**params())
    events = list(client.messages.create(**params(), stream=True))
    kinds = [e.type for e in events]
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"]  # ping is skipped
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("content_block_delta") == 20
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == plain.content[0].text

    with client.messages.stream(**params()) as stream:
        final = stream.get_final_message()
    assert final.usage.to_dict() == plain.usage.to_dict() == server.calls[-1].usage
    assert final.content[0].text == plain.content[0].text  # type: ignore[union-attr]
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert stream.response.headers["transfer-encoding"] == "chunked"
    call = server.calls[-1]
    assert call.stream and call.completed and call.stop_reason == "end_turn"
    assert server.totals()["requests"] == 3


def test_max_tokens(client: anthropic.Anthropic) -> None:
    forced = client.messages.create(**params(max_tokens=7), extra_headers={"x-fake-scenario": "max_tokens"})
    assert (forced.stop_reason, forced.usage.output_tokens) == ("max_tokens", 7)
    natural = client.messages.create(**params(max_tokens=5), extra_headers={"x-fake-output-tokens": "9"})
    assert (natural.stop_reason, natural.usage.output_tokens) == ("max_tokens", 5)
    short = client.messages.create(**params(), extra_headers={"x-fake-output-tokens": "3"})
    assert (short.stop_reason, short.content[0].text) == ("end_turn", "tok1 tok2 tok3 ")  # type: ignore[union-attr]
    with client.messages.stream(**params(max_tokens=4), extra_headers={"x-fake-scenario": "max_tokens"}) as s:
        assert s.get_final_message().usage.output_tokens == 4


def test_tool_use(client: anthropic.Anthropic, server: FakeAnthropicServer) -> None:
    scenario = {"x-fake-scenario": Scenario.TOOL_USE}
    message = client.messages.create(**params(tools=TOOLS), extra_headers=scenario)
    text, tool = message.content
    assert text.type == "text" and tool.type == "tool_use"
    assert tool.id.startswith("toolu_fake_") and tool.name == "lookup" and tool.input == {"location": "Paris"}
    assert message.stop_reason == "tool_use" and message.usage.output_tokens == 20

    with client.messages.stream(**params(), extra_headers=scenario) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert any(e.type == "content_block_delta" and e.delta.type == "input_json_delta" for e in events)
    streamed_tool = final.content[1]
    assert streamed_tool.type == "tool_use" and streamed_tool.name == "get_weather"
    assert streamed_tool.input == {"location": "Paris"}
    assert final.stop_reason == "tool_use"
    assert final.usage.to_dict() == server.calls[-1].usage


def test_stop_sequence(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        **params(stop_sequences=["###"]), extra_headers={"x-fake-scenario": "stop_sequence"}
    )
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "###")
    default = client.messages.create(**params(), extra_headers={"x-fake-scenario": "stop_sequence"})
    assert default.stop_sequence == "END"


@pytest.mark.parametrize("ttl", ["5m", "1h"])
def test_prompt_cache_write_then_read(client: anthropic.Anthropic, server: FakeAnthropicServer, ttl: str) -> None:
    control = {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": "1h"}
    body = params(system=[{"type": "text", "text": "You are a meteorologist. " * 40, "cache_control": control}])
    total, prefix = count_input_tokens(body), count_cached_prefix_tokens(body)
    assert 0 < prefix < total

    write = client.messages.create(**body)
    assert write.usage.to_dict() == usage(total - prefix, 20, write=prefix, one_hour=ttl == "1h")
    with client.messages.stream(**body) as stream:
        read = stream.get_final_message()
    assert read.usage.to_dict() == usage(total - prefix, 20, read=prefix)
    other_model = client.messages.create(**{**body, "model": "claude-haiku-4-5"})
    assert other_model.usage.cache_creation_input_tokens == prefix  # the key includes the model

    totals = server.totals()
    assert totals["cache_creation_input_tokens"] == 2 * prefix
    assert totals["cache_read_input_tokens"] == prefix
    assert totals["ephemeral_1h_input_tokens" if ttl == "1h" else "ephemeral_5m_input_tokens"] == 2 * prefix
    server.reset()
    again = client.messages.create(**body)
    assert again.usage.cache_read_input_tokens == 0  # reset() forgets the cache


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario", "error", "status"),
    [
        ("rate_limit", anthropic.RateLimitError, 429),
        ("overloaded", anthropic.OverloadedError, 529),
        ("server_error", anthropic.InternalServerError, 500),
        ("bad_request", anthropic.BadRequestError, 400),
        ("auth_error", anthropic.AuthenticationError, 401),
        ("stream_error", anthropic.OverloadedError, 529),  # non-stream request
    ],
)
def test_error_scenarios(
    client: anthropic.Anthropic,
    server: FakeAnthropicServer,
    scenario: str,
    error: type[anthropic.APIStatusError],
    status: int,
) -> None:
    with pytest.raises(error) as info:
        client.messages.create(**params(), extra_headers={"x-fake-scenario": scenario})
    call = server.calls[-1]
    assert info.value.status_code == status
    assert info.value.request_id == call.request_id
    assert info.value.body == {
        "type": "error",
        "error": {"type": info.value.type, "message": info.value.api_message},
        "request_id": call.request_id,
    }
    assert (call.status, call.scenario, call.usage, call.completed) == (status, scenario, None, True)
    headers = info.value.response.headers
    if status in (429, 529):
        assert headers["retry-after"] == "0" and headers["retry-after-ms"] == "1"
    if status == 429:
        assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert server.totals()["requests"] == 0


def test_sdk_retries_scripted_rate_limit(server: FakeAnthropicServer) -> None:
    server.script("rate_limit", "rate_limit:retry_after=0.01", "normal")
    with anthropic.Anthropic(base_url=server.base_url, api_key=KEY, max_retries=2) as client:
        started = time.monotonic()
        message = client.messages.create(**params())
        elapsed = time.monotonic() - started
    assert message.stop_reason == "end_turn"
    calls = server.calls
    assert [c.status for c in calls] == [429, 429, 200]
    assert [c.headers["x-stainless-retry-count"] for c in calls] == ["0", "1", "2"]
    assert elapsed < 0.4  # retry-after-ms was honoured, no 0.5 s backoff
    assert server.totals()["requests"] == 1


def test_script_then_header_then_default(client: anthropic.Anthropic, server: FakeAnthropicServer) -> None:
    server.script("overloaded", "normal:output_tokens=2")
    header = {"x-fake-scenario": "server_error"}
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(**params(), extra_headers=header)
    assert client.messages.create(**params(), extra_headers=header).usage.output_tokens == 2
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(**params(), extra_headers=header)
    client.messages.create(**params())
    assert [c.scenario for c in server.calls] == ["overloaded", "normal", "server_error", "normal"]
    with pytest.raises(ValueError, match="unknown fake scenario"):
        server.script("nope")
    with pytest.raises(anthropic.BadRequestError, match="unknown fake scenario"):
        client.messages.create(**params(), extra_headers={"x-fake-scenario": "nope"})


def test_stream_cut(client: anthropic.Anthropic, server: FakeAnthropicServer) -> None:
    received: list[str] = []
    with pytest.raises((httpx2.HTTPError, anthropic.APIError)):
        for event in client.messages.create(**params(), stream=True, extra_headers={"x-fake-scenario": "stream_cut"}):
            received.append(event.type)
    assert received[0] == "message_start" and received.count("content_block_delta") == 10
    call = server.calls[-1]
    assert (call.status, call.completed, call.stop_reason) == (200, False, None)
    assert call.usage is not None and call.usage["output_tokens"] == 1  # all message_start told the client

    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(**params(), extra_headers={"x-fake-scenario": "stream_cut"})
    call = server.calls[-1]
    assert (call.status, call.completed, call.usage) == (0, False, None)
    assert client.messages.create(**params()).stop_reason == "end_turn"  # server still healthy
    assert server.totals()["requests"] == 1


def test_stream_error_mid_stream(client: anthropic.Anthropic, server: FakeAnthropicServer) -> None:
    received: list[str] = []
    headers = {"x-fake-scenario": "stream_error"}
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(**params(), extra_headers=headers) as s,
    ):
        for event in s:
            received.append(event.type)
    assert "text" in received  # some content arrived before the error
    assert info.value.status_code == 200
    assert info.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    call = server.calls[-1]
    assert (call.status, call.completed, call.scenario) == (200, False, "stream_error")
    assert server.totals()["requests"] == 0


def test_usage_on_delta_only(client: anthropic.Anthropic, server: FakeAnthropicServer) -> None:
    body = params(system=[{"type": "text", "text": "x" * 400, "cache_control": {"type": "ephemeral"}}])
    events = list(client.messages.create(**body, stream=True, extra_headers={"x-fake-scenario": "usage_on_delta_only"}))
    start = events[0]
    assert start.type == "message_start"
    assert (start.message.usage.input_tokens, start.message.usage.output_tokens) == (0, 0)
    server.reset()
    with client.messages.stream(**body, extra_headers={"x-fake-scenario": "usage_on_delta_only"}) as stream:
        final = stream.get_final_message()
    prefix = count_cached_prefix_tokens(body)
    expected = count_input_tokens(body) - prefix
    assert (final.usage.input_tokens, final.usage.output_tokens) == (expected, 20)
    assert final.usage.cache_creation_input_tokens == prefix
    assert final.usage.to_dict() == server.calls[-1].usage
    assert server.totals()["ephemeral_5m_input_tokens"] == prefix  # ground truth keeps the breakdown


def test_slow_first_byte_and_event_delay(client: anthropic.Anthropic, server: FakeAnthropicServer) -> None:
    started = time.monotonic()
    client.messages.create(**params(), extra_headers={"x-fake-scenario": "slow_first_byte", "x-fake-delay-ms": "30"})
    assert time.monotonic() - started >= 0.03
    started = time.monotonic()
    with client.messages.stream(
        **params(), extra_headers={"x-fake-event-delay-ms": "2", "x-fake-output-tokens": "5"}
    ) as stream:
        stream.until_done()
    assert time.monotonic() - started >= 0.02
    assert server.calls[0].scenario == "slow_first_byte"


def test_count_tokens_and_beta_path(client: anthropic.Anthropic, server: FakeAnthropicServer) -> None:
    body = params(tools=TOOLS)
    del body["max_tokens"]
    assert client.messages.count_tokens(**body).input_tokens == count_input_tokens(body)
    beta = client.beta.messages.create(**params(), extra_query={"beta": "true"})
    assert beta.usage.output_tokens == 20
    assert server.calls[-1].path == "/v1/messages" and server.calls[-1].query == "beta=true"
    assert server.totals()["requests"] == 1


def test_bad_requests_and_unknown_paths(server: FakeAnthropicServer) -> None:
    status, headers, raw = raw_request(
        server, "POST", "/v1/messages", b"{not json", {"content-type": "application/json"}
    )
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
    assert headers["request-id"].startswith("req_fake_")
    status, _, raw = raw_request(server, "GET", "/v1/nothing")
    assert status == 404 and json.loads(raw)["error"]["type"] == "not_found_error"
    status, _, raw = raw_request(server, "POST", "/v1/messages", json.dumps({"model": MODEL}).encode())
    assert status == 400
    status, headers, raw = raw_request(server, "POST", "/v1/messages", json.dumps(params()).encode(), chunked=True)
    assert status == 200 and int(headers["content-length"]) == len(raw)
    assert [c.status for c in server.calls] == [400, 404, 400, 200]


def test_enforced_rate_limits() -> None:
    with (
        FakeAnthropicServer(requests_per_minute=2, enforce_rate_limits=True) as server,
        anthropic.Anthropic(base_url=server.base_url, api_key=KEY, max_retries=0) as client,
    ):
        for _ in range(2):
            client.messages.create(**params())
        with pytest.raises(anthropic.RateLimitError) as info:
            client.messages.create(**params())
    headers = info.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert [c.scenario for c in server.calls] == ["normal", "normal", "rate_limit"]


# -- batches -----------------------------------------------------------------------------------------
def test_batches_lifecycle(client: anthropic.Anthropic, server: FakeAnthropicServer) -> None:
    requests = [
        {"custom_id": "a", "params": params()},
        {"custom_id": "b", "params": params("short", max_tokens=3)},
        {"custom_id": "bad", "params": {"model": MODEL, "messages": []}},
    ]
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert batch.processing_status == "ended"
    assert (batch.request_counts.succeeded, batch.request_counts.errored) == (2, 1)
    assert batch.results_url == f"{server.base_url}/v1/messages/batches/{batch.id}/results"
    assert client.messages.batches.retrieve(batch.id) == batch
    second = client.beta.messages.batches.create(requests=requests[:1])  # type: ignore[list-item]
    assert [b.id for b in client.messages.batches.list()] == [second.id, batch.id]
    assert [b.id for b in client.messages.batches.list(limit=1, after_id=second.id)] == [batch.id]

    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["a"].type == "succeeded" and results["b"].type == "succeeded"
    assert results["b"].message.usage.to_dict() == usage(count_input_tokens(requests[1]["params"]), 3, tier="batch")
    assert results["bad"].type == "errored"
    assert client.messages.batches.cancel(batch.id).processing_status == "ended"
    assert client.messages.batches.delete(batch.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)

    assert server.totals()["requests"] == 0
    assert server.totals(include_batches=True)["requests"] == 3
    assert server.totals(include_batches=True)["output_tokens"] == 20 + 3 + 20


# -- concurrency and robustness ----------------------------------------------------------------------
def test_concurrent_threads(server: FakeAnthropicServer) -> None:
    with anthropic.Anthropic(base_url=server.base_url, api_key=KEY, max_retries=0) as client:

        def call(i: int) -> dict[str, Any]:
            body = params(f"question number {i} " * (i % 7 + 1))
            if i % 3:
                return client.messages.create(**body).usage.to_dict()
            with client.messages.stream(**body) as stream:
                return stream.get_final_message().usage.to_dict()

        with ThreadPoolExecutor(max_workers=8) as pool:
            usages = list(pool.map(call, range(200)))
    totals = server.totals()
    assert totals["requests"] == 200 == len(server.calls)
    assert totals["input_tokens"] == sum(u["input_tokens"] for u in usages)
    assert totals["output_tokens"] == sum(u["output_tokens"] for u in usages) == 200 * 20
    assert len({c.request_id for c in server.calls}) == 200


async def test_async_client_concurrency(server: FakeAnthropicServer) -> None:
    async with anthropic.AsyncAnthropic(base_url=server.base_url, api_key=KEY, max_retries=0) as client:

        async def call(i: int) -> int:
            if i % 2:
                message = await client.messages.create(**params(f"async {i}"))
                return message.usage.output_tokens
            async with client.messages.stream(**params(f"async {i}")) as stream:
                return (await stream.get_final_message()).usage.output_tokens

        outputs = await asyncio.gather(*(call(i) for i in range(60)))
        with pytest.raises(anthropic.RateLimitError):
            await client.messages.create(**params(), extra_headers={"x-fake-scenario": "rate_limit"})
    assert sum(outputs) == server.totals()["output_tokens"] == 60 * 20


def test_client_hanging_up_is_silent(server: FakeAnthropicServer, capfd: pytest.CaptureFixture[str]) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    body = json.dumps(params(stream=True)).encode()
    request = (
        f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"x-fake-event-delay-ms: 5\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    for _ in range(3):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(request)
            sock.recv(64)  # read the start, then hang up mid-stream
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    deadline = time.monotonic() + 2
    while len(server.calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [c.completed for c in server.calls] == [False, False, False]
    assert server.totals()["requests"] == 0
    assert "Traceback" not in capfd.readouterr().err


def test_lifecycle() -> None:
    server = FakeAnthropicServer(default_scenario="overloaded")
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with server:
        with (
            anthropic.Anthropic(base_url=server.base_url, api_key=KEY, max_retries=0) as client,
            pytest.raises(anthropic.OverloadedError),
        ):
            client.messages.create(**params())
        with pytest.raises(RuntimeError):
            server.start()
    server.stop()  # idempotent
    with pytest.raises(ValueError):
        FakeAnthropicServer(default_scenario="bogus")


def test_docs_name_every_scenario_knob_and_header() -> None:
    """docs/testing.md is where users look; a scenario or knob added without a line there fails here."""
    from pathlib import Path

    from anthropic_otel.testing._scenarios import KNOB_HEADERS

    docs = (Path(__file__).resolve().parent.parent / "docs" / "testing.md").read_text()
    missing = [f"`{s.value}`" for s in Scenario if f"| `{s.value}` |" not in docs]
    missing += [f"`{knob}` / `{header}`" for knob, header in KNOB_HEADERS.items()
                if f"| `{knob}` | `{header}` |" not in docs]
    assert missing == []
