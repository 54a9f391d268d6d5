"""The SDK's tool runner as one `invoke_agent` run: rollup equal to its chat children, tool spans, metrics."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import pytest
from anthropic.lib.tools import beta_async_tool, beta_tool
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import anthropic_otel
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, MODEL, Otel

# get_time (the second tool; it raises), then get_weather, then done. Only the first request of a runner's
# thread carries the tool definitions; later tool_use answers name the fake server's default, get_weather.
SCRIPT = ("tool_use:tool_index=1", "tool_use", "normal")
TOOLS = ("get_time", "get_weather")


@beta_tool
def get_weather(location: str) -> str:
    """The weather in a city."""
    return f"sunny in {location}"


@beta_tool
def get_time(location: str) -> str:
    """The local time in a city."""
    raise ValueError("clock is broken")


@beta_async_tool(name="get_weather")
async def aget_weather(location: str) -> str:
    """The weather in a city."""
    return f"sunny in {location}"


@beta_async_tool(name="get_time")
async def aget_time(location: str) -> str:
    """The local time in a city."""
    raise ValueError("clock is broken")


def _params(**kwargs: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 100,
                              "messages": [{"role": "user", "content": "Weather and time in Paris?"}]}
    params.update(kwargs)
    return params


def _client(fake: FakeAnthropicServer, otel: Otel, sdk_tracing: bool) -> anthropic.Anthropic:
    option: Any = {"tracer_provider": otel.tracer_provider} if sdk_tracing else {"traces": False}
    return anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0, open_telemetry=option)


def _aclient(fake: FakeAnthropicServer, otel: Otel, sdk_tracing: bool) -> anthropic.AsyncAnthropic:
    option: Any = {"tracer_provider": otel.tracer_provider} if sdk_tracing else {"traces": False}
    return anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0, open_telemetry=option)


def _by_operation(otel: Otel, operation: str) -> list[ReadableSpan]:
    return [s for s in otel.spans() if (s.attributes or {}).get("gen_ai.operation.name") == operation]


def _check_run(otel: Otel, fake: FakeAnthropicServer, *, iterations: int = 3, tools: tuple[str, ...] = TOOLS,
               outcome: str = "completed") -> ReadableSpan:
    spans = otel.spans()
    assert not [s.name for s in spans if s.name.startswith("anthropic.")], "the SDK's own spans duplicate ours"
    runs = _by_operation(otel, "invoke_agent")
    assert len(runs) == 1, [s.name for s in spans]
    run = runs[0]
    attrs = dict(run.attributes or {})
    chats = _by_operation(otel, "chat")
    assert len(chats) == iterations == len(fake.calls)
    assert all(c.parent is not None and c.parent.span_id == run.context.span_id for c in chats)
    assert all(c.context.trace_id == run.context.trace_id for c in chats)

    # The rollup is the exact sum of the chat children (and of what the metrics counted).
    for name in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
                 "gen_ai.usage.cache_creation.input_tokens"):
        assert attrs[name] == sum(int(c.attributes[name]) for c in chats), name  # type: ignore[index]
    assert attrs["gen_ai.usage.input_tokens"] == sum(
        int(c["input_tokens"]) + int(c["cache_read_input_tokens"]) + int(c["cache_creation_input_tokens"])
        for c in (call.usage for call in fake.calls) if c)
    children_cost = sum((Decimal(repr(c.attributes["anthropic_otel.cost.usd"])) for c in chats),  # type: ignore[index]
                        Decimal(0))
    assert attrs["anthropic_otel.cost.usd"] == float(children_cost)
    totals = otel.instrumentor.telemetry.metrics.totals()  # type: ignore[union-attr]
    assert attrs["anthropic_otel.cost.usd"] == float(totals["cost_total"])
    assert attrs["anthropic_otel.run.iterations"] == iterations
    assert attrs["anthropic_otel.run.outcome"] == outcome
    assert attrs["gen_ai.request.model"] == MODEL
    assert attrs["anthropic_otel.run.framework"] == "tool_runner"

    executed = _by_operation(otel, "execute_tool")
    assert [s.name for s in executed] == [f"execute_tool {t}" for t in tools]
    answered = [block["tool_use_id"] for call in fake.calls[1:] if call.body
                for block in call.body["messages"][-1]["content"] if isinstance(block, dict)
                and block.get("type") == "tool_result"]
    ids = [s.attributes["gen_ai.tool.call.id"] for s in executed]  # type: ignore[index]
    # Every call id is one the model asked for; at max_iterations the last result is never sent.
    assert ids[:len(answered)] == answered and len(answered) >= len(tools) - (outcome == "max_iterations")
    for span in executed:
        assert span.parent is not None and span.parent.span_id == run.context.span_id
        assert span.attributes["gen_ai.tool.type"] == "function"  # type: ignore[index]
    assert attrs["anthropic_otel.run.tool_calls"] == len(tools)
    failed = [s for s in executed if s.status.status_code is StatusCode.ERROR]
    assert attrs["anthropic_otel.run.tool_errors"] == len(failed)
    return run


def _check_tool_error(otel: Otel) -> None:
    executed = {s.name: s for s in _by_operation(otel, "execute_tool")}
    ok, bad = executed["execute_tool get_weather"], executed["execute_tool get_time"]
    assert ok.status.status_code is not StatusCode.ERROR and "error.type" not in (ok.attributes or {})
    assert bad.status.status_code is StatusCode.ERROR
    assert bad.attributes["error.type"] == "ValueError"  # type: ignore[index]


def _check_metrics(otel: Otel, run: ReadableSpan, outcome: str = "completed") -> None:
    runs = otel.points("anthropic_otel.agent.runs")
    assert [(a["anthropic_otel.run.outcome"], v) for a, v in runs] == [(outcome, 1)]
    assert runs[0][0]["gen_ai.operation.name"] == "invoke_agent"
    assert runs[0][0]["gen_ai.request.model"] == MODEL
    [(_, iterations)] = otel.points("anthropic_otel.agent.run.iterations")
    assert iterations.sum == run.attributes["anthropic_otel.run.iterations"]  # type: ignore[index]
    [(_, cost)] = otel.points("anthropic_otel.agent.run.cost.usd")
    assert cost.count == 1 and cost.sum == run.attributes["anthropic_otel.cost.usd"]  # type: ignore[index]
    calls = {(a["gen_ai.tool.name"], a["error.type"]): v for a, v in otel.points("anthropic_otel.agent.tool.calls")}
    assert calls == {("get_weather", "none"): 1, ("get_time", "ValueError"): 1}
    durations = {a["gen_ai.tool.name"]: p.count for a, p in otel.points("anthropic_otel.agent.tool.duration")}
    assert durations == {"get_weather": 1, "get_time": 1}


@pytest.mark.parametrize("sdk_tracing", [False, True])
def test_sync_runner_is_one_run(otel: Otel, fake: FakeAnthropicServer, sdk_tracing: bool) -> None:
    fake.script(*SCRIPT)
    with _client(fake, otel, sdk_tracing) as client:
        runner = client.beta.messages.tool_runner(tools=[get_weather, get_time], **_params())
        final = runner.until_done()
    assert final.stop_reason == "end_turn"
    run = _check_run(otel, fake)
    assert run.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)  # type: ignore[index]
    _check_tool_error(otel)
    _check_metrics(otel, run)


@pytest.mark.parametrize("sdk_tracing", [False, True])
def test_streaming_runner_is_one_run(otel: Otel, fake: FakeAnthropicServer, sdk_tracing: bool) -> None:
    fake.script(*SCRIPT)
    with _client(fake, otel, sdk_tracing) as client:
        runner = client.beta.messages.tool_runner(tools=[get_weather, get_time], stream=True, **_params())
        for stream in runner:
            for _ in stream:
                pass
    run = _check_run(otel, fake)
    assert all(c.attributes["gen_ai.request.stream"] for c in _by_operation(otel, "chat"))  # type: ignore[index]
    _check_tool_error(otel)
    _check_metrics(otel, run)


@pytest.mark.parametrize("sdk_tracing", [False, True])
async def test_async_runner_is_one_run(otel: Otel, fake: FakeAnthropicServer, sdk_tracing: bool) -> None:
    fake.script(*SCRIPT)
    async with _aclient(fake, otel, sdk_tracing) as client:
        runner = client.beta.messages.tool_runner(tools=[aget_weather, aget_time], **_params())
        final = await runner.until_done()
    assert final.stop_reason == "end_turn"
    _check_run(otel, fake)


async def test_async_streaming_runner_is_one_run(otel: Otel, fake: FakeAnthropicServer) -> None:
    fake.script(*SCRIPT)
    async with _aclient(fake, otel, True) as client:
        runner = client.beta.messages.tool_runner(tools=[aget_weather, aget_time], stream=True, **_params())
        async for stream in runner:
            async for _ in stream:
                pass
    _check_run(otel, fake)
    executed = {s.name: s for s in _by_operation(otel, "execute_tool")}
    assert executed["execute_tool get_time"].attributes["error.type"] == "ValueError"  # type: ignore[index]


def test_max_iterations_outcome(otel: Otel, fake: FakeAnthropicServer) -> None:
    fake.script("tool_use", "tool_use")
    with _client(fake, otel, False) as client:
        runner = client.beta.messages.tool_runner(tools=[get_weather], max_iterations=2, **_params())
        runner.until_done()
    run = _check_run(otel, fake, iterations=2, tools=("get_weather", "get_weather"), outcome="max_iterations")
    assert run.attributes["gen_ai.response.finish_reasons"] == ("tool_use",)  # type: ignore[index]
    assert [a["anthropic_otel.run.outcome"] for a, _ in otel.points("anthropic_otel.agent.runs")] == [
        "max_iterations"]


def test_failed_call_fails_the_run(otel: Otel, fake: FakeAnthropicServer) -> None:
    fake.script("tool_use", "rate_limit")
    with _client(fake, otel, False) as client:
        runner = client.beta.messages.tool_runner(tools=[get_weather], **_params())
        with pytest.raises(anthropic.RateLimitError):
            runner.until_done()
    [run] = _by_operation(otel, "invoke_agent")
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["anthropic_otel.run.outcome"] == "error"  # type: ignore[index]
    assert run.attributes["anthropic_otel.run.iterations"] == 2  # type: ignore[index]
    chats = _by_operation(otel, "chat")
    assert run.attributes["anthropic_otel.cost.usd"] == chats[0].attributes["anthropic_otel.cost.usd"]  # type: ignore[index]


def test_closed_runner_is_a_closed_run(otel: Otel, fake: FakeAnthropicServer) -> None:
    fake.script("tool_use", "normal")
    with _client(fake, otel, False) as client:
        runner = client.beta.messages.tool_runner(tools=[get_weather], **_params())
        next(iter(runner))
        runner.close()
    [run] = _by_operation(otel, "invoke_agent")
    assert run.attributes["anthropic_otel.run.outcome"] == "closed"  # type: ignore[index]
    assert run.attributes["anthropic_otel.run.iterations"] == 1  # type: ignore[index]
    assert len(fake.calls) == 1


def test_a_tools_own_calls_cost_the_run_but_are_not_iterations(otel: Otel, fake: FakeAnthropicServer) -> None:
    fake.script("tool_use", "normal", "normal")
    with _client(fake, otel, False) as client:
        @beta_tool
        def ask_model(location: str) -> str:
            """Asks the model itself."""
            reply = client.messages.create(model=MODEL, max_tokens=50,
                                           messages=[{"role": "user", "content": location}])
            return str(reply.id)

        runner = client.beta.messages.tool_runner(tools=[ask_model], **_params())
        runner.until_done()
    [run] = _by_operation(otel, "invoke_agent")
    assert run.attributes["anthropic_otel.run.iterations"] == 2  # type: ignore[index]
    chats = _by_operation(otel, "chat")
    assert len(chats) == 3
    total = sum((Decimal(repr(c.attributes["anthropic_otel.cost.usd"])) for c in chats), Decimal(0))  # type: ignore[index]
    assert run.attributes["anthropic_otel.cost.usd"] == float(total)  # type: ignore[index]


def test_uninstrument_gives_the_runner_back(otel: Otel, fake: FakeAnthropicServer) -> None:
    anthropic_otel.uninstrument()
    fake.script("tool_use", "normal")
    with _client(fake, otel, True) as client:
        client.beta.messages.tool_runner(tools=[get_weather], **_params()).until_done()
    names = {s.name for s in otel.spans()}
    assert "anthropic.messages.tool_runner" in names and "anthropic.custom_tool_use get_weather" in names
    assert "invoke_agent" not in names and "execute_tool get_weather" not in names
    assert otel.points("anthropic_otel.agent.runs") == []


def test_run_error_type_is_named_as_on_the_chat_span(otel: Otel) -> None:
    with anthropic.Anthropic(base_url="http://127.0.0.1:9", api_key=API_KEY, max_retries=0,
                             open_telemetry={"tracer_provider": otel.tracer_provider}) as client:
        runner = client.beta.messages.tool_runner(tools=[get_weather], **_params())
        with pytest.raises(anthropic.APIConnectionError):
            runner.until_done()
    [run] = _by_operation(otel, "invoke_agent")
    [chat] = _by_operation(otel, "chat")
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["error.type"] == chat.attributes["error.type"] == "APIConnectionError"  # type: ignore[index]
    assert run.attributes["anthropic_otel.run.outcome"] == "error"  # type: ignore[index]
