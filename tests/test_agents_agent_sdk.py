"""Claude Agent SDK runs through a transport replaying recorded CLI streams: spans, attributes, priced usage."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

pytest.importorskip("claude_agent_sdk", reason="pip install -e '.[agents]'")

from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage, query

from _agent_transport import (
    API_ERROR,
    CLI_COST,
    MAX_TURNS,
    SUCCESS,
    TOOL_ERROR,
    ReplayTransport,
)
from conftest import Otel

# Hand-computed from the published prices, USD per million tokens: Sonnet 4.5 input 3, output 15, cache read
# 0.30, cache write (5 minutes) 3.75; Haiku 4.5 input 1, output 5.
SONNET_COST = (Decimal(1200) * 3 + Decimal(340) * 15 + Decimal(15000) * Decimal("0.30")
               + Decimal(2000) * Decimal("3.75")) / 1_000_000
HAIKU_COST = (Decimal(800) * 1 + Decimal(60) * 5) / 1_000_000
RUN_COST = SONNET_COST + HAIKU_COST


async def _query(transport: ReplayTransport, **options: Any) -> list[Any]:
    return [m async for m in query(prompt="List the files", options=ClaudeAgentOptions(**options),
                                   transport=transport)]


def _runs(otel: Otel) -> list[ReadableSpan]:
    return [s for s in otel.spans() if s.name == "invoke_agent"]


def _tools(otel: Otel) -> list[ReadableSpan]:
    return [s for s in otel.spans() if s.name.startswith("execute_tool")]


async def test_success_run(otel: Otel) -> None:
    transport = ReplayTransport(SUCCESS)
    messages = await _query(transport)
    assert isinstance(messages[-1], ResultMessage)
    [run] = _runs(otel)
    attrs = dict(run.attributes or {})
    # The run span was current while the transport connected: the CLI's TRACEPARENT names it.
    assert transport.connected_span is not None
    assert transport.connected_span.get_span_context().span_id == run.context.span_id
    assert transport.traceparent is not None and f"{run.context.span_id:016x}" in transport.traceparent
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["anthropic_otel.run.framework"] == "claude_agent_sdk"
    assert attrs["anthropic_otel.run.outcome"] == "completed"
    assert attrs["anthropic_otel.run.iterations"] == 3
    assert attrs["anthropic_otel.run.terminal_reason"] == "completed"
    assert attrs["anthropic_otel.run.api_duration"] == 4.2
    assert attrs["gen_ai.conversation.id"] == "sess-1"
    assert attrs["gen_ai.request.model"] == "claude-sonnet-4-5-20250929"  # the CLI's model, none was asked for
    assert attrs["anthropic_otel.run.cli_cost.usd"] == CLI_COST
    assert attrs["anthropic_otel.cost.usd"] == float(RUN_COST)
    assert attrs["gen_ai.usage.input_tokens"] == 1200 + 15000 + 2000 + 800
    assert attrs["gen_ai.usage.output_tokens"] == 400
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 15000
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 2000
    assert run.status.status_code is not StatusCode.ERROR
    events = {e.attributes["gen_ai.request.model"]: e.attributes for e in run.events}  # type: ignore[index]
    assert events["claude-sonnet-4-5"]["anthropic_otel.cost.usd"] == float(SONNET_COST)
    assert events["claude-haiku-4-5-20251001"]["anthropic_otel.cost.usd"] == float(HAIKU_COST)

    tools = _tools(otel)
    assert [(s.name, s.attributes["gen_ai.tool.call.id"]) for s in tools] == [  # type: ignore[index]
        ("execute_tool Bash", "toolu_1"), ("execute_tool Read", "toolu_2")]
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in tools)
    assert all(s.status.status_code is not StatusCode.ERROR for s in tools)
    assert attrs["anthropic_otel.run.tool_calls"] == 2

    # The cost is on the same series as every other call, and in spend().
    totals = otel.instrumentor.telemetry.metrics.totals()  # type: ignore[union-attr]
    assert totals["cost_total"] == RUN_COST
    assert totals["requests"] == 0  # no request of this process: the CLI made them
    assert totals["tokens"] == {"input": 2000, "output": 400, "cache_read": 15000, "cache_write": 2000}
    cost_points = otel.points("anthropic_otel.cost.usd")
    assert {a["gen_ai.operation.name"] for a, _ in cost_points} == {"invoke_agent"}
    assert otel.instrumentor.telemetry.ledger.spend().day == RUN_COST  # type: ignore[union-attr]
    [(_, divergence)] = otel.points("anthropic_otel.agent.cost.divergence")
    assert divergence.count == 1
    assert divergence.sum == pytest.approx(abs(float(RUN_COST) - CLI_COST) / float(RUN_COST))
    assert [(a["anthropic_otel.run.outcome"], v) for a, v in otel.points("anthropic_otel.agent.runs")] == [
        ("completed", 1)]
    calls = {(a["gen_ai.tool.name"], a["error.type"]): v for a, v in otel.points("anthropic_otel.agent.tool.calls")}
    assert calls == {("Bash", "none"): 1, ("Read", "none"): 1}


async def test_tool_error(otel: Otel) -> None:
    await _query(ReplayTransport(TOOL_ERROR))
    [run] = _runs(otel)
    [tool] = _tools(otel)
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes["error.type"] == "tool_error"  # type: ignore[index]
    assert run.attributes["anthropic_otel.run.tool_errors"] == 1  # type: ignore[index]
    assert run.attributes["anthropic_otel.run.outcome"] == "completed"  # type: ignore[index]
    calls = {(a["gen_ai.tool.name"], a["error.type"]): v for a, v in otel.points("anthropic_otel.agent.tool.calls")}
    assert calls == {("Bash", "tool_error"): 1}


async def test_max_turns(otel: Otel) -> None:
    await _query(ReplayTransport(MAX_TURNS), model="claude-sonnet-4-5", max_turns=1)
    [run] = _runs(otel)
    attrs = dict(run.attributes or {})
    assert attrs["anthropic_otel.run.outcome"] == "max_turns"
    assert attrs["anthropic_otel.run.terminal_reason"] == "max_turns"
    assert attrs["anthropic_otel.run.iterations"] == 1
    assert attrs["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert attrs["anthropic_otel.cost.usd"] == float(RUN_COST)  # a stopped run still cost what it used
    assert [a["anthropic_otel.run.outcome"] for a, _ in otel.points("anthropic_otel.agent.runs")] == ["max_turns"]


async def test_api_error(otel: Otel) -> None:
    await _query(ReplayTransport(API_ERROR))
    [run] = _runs(otel)
    attrs = dict(run.attributes or {})
    assert run.status.status_code is StatusCode.ERROR
    assert attrs["anthropic_otel.run.outcome"] == "error"
    assert attrs["anthropic_otel.run.api_error_status"] == 529
    assert attrs["error.type"] == "529"
    assert _tools(otel) == []


async def test_client_makes_a_run_per_response(otel: Otel) -> None:
    transport = ReplayTransport(SUCCESS, TOOL_ERROR)
    async with ClaudeSDKClient(transport=transport) as client:
        await client.query("List the files")
        first = [m async for m in client.receive_response()]
        await client.query("Again")
        second = [m async for m in client.receive_response()]
    assert isinstance(first[-1], ResultMessage) and isinstance(second[-1], ResultMessage)
    runs = _runs(otel)
    assert [r.attributes["anthropic_otel.run.tool_calls"] for r in runs] == [2, 1]  # type: ignore[index]
    assert [r.attributes["anthropic_otel.run.iterations"] for r in runs] == [3, 2]  # type: ignore[index]
    tools = _tools(otel)
    assert [t.parent.span_id for t in tools] == [runs[0].context.span_id] * 2 + [  # type: ignore[union-attr]
        runs[1].context.span_id]
    totals = otel.instrumentor.telemetry.metrics.totals()  # type: ignore[union-attr]
    assert totals["cost_total"] == 2 * RUN_COST


def test_instrument_patches_the_sdk_when_it_is_imported_later() -> None:
    """`instrument()` does not import the Agent SDK; importing it afterwards patches it, uninstrument unpatches."""
    import subprocess
    import sys

    code = (
        "import sys, wrapt\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "import anthropic_otel\n"
        "anthropic_otel.instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider())\n"
        "assert 'claude_agent_sdk' not in sys.modules\n"
        "from claude_agent_sdk._internal.client import InternalClient\n"
        "from claude_agent_sdk import ClaudeSDKClient\n"
        "assert isinstance(InternalClient.__dict__['process_query'], wrapt.FunctionWrapper)\n"
        "assert isinstance(ClaudeSDKClient.__dict__['receive_messages'], wrapt.FunctionWrapper)\n"
        "anthropic_otel.uninstrument()\n"
        "assert not isinstance(InternalClient.__dict__['process_query'], wrapt.FunctionWrapper)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
