"""`Budget(per_run=...)`: a tool-runner run is stopped before the call that could take it past its budget.

Each costly answer is 3,000 output tokens of claude-haiku-4-5 ($5/MTok): $0.015 plus a little input; each call
asks `max_tokens=4000`, a worst case of $0.02 plus input. Under a run budget of $0.045 the first two calls go
out ($0 + $0.02, then $0.015 + $0.02) and the third is refused ($0.03 + $0.02 > $0.045), so the server sees two.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import pytest
from anthropic.lib.tools import beta_async_tool, beta_tool
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from anthropic_otel.resilience import Budget, BudgetExceededError, Policy
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, MODEL, Otel

COSTLY = "tool_use:output_tokens=3000"
PER_RUN = 0.045


@beta_tool
def get_weather(location: str) -> str:
    """The weather in a city."""
    return f"sunny in {location}"


@beta_async_tool(name="get_weather")
async def aget_weather(location: str) -> str:
    """The weather in a city."""
    return f"sunny in {location}"


def _params(**kwargs: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 4000,
                              "messages": [{"role": "user", "content": "Weather in Paris, then in Rome?"}]}
    params.update(kwargs)
    return params


def _policy(reader: InMemoryMetricReader | None = None, **budget: Any) -> Policy:
    budget.setdefault("per_run", PER_RUN)
    meter_provider = MeterProvider(metric_readers=[reader]) if reader is not None else None
    return Policy(budget=Budget(**budget), meter_provider=meter_provider)


def _runs(otel: Otel) -> list[ReadableSpan]:
    return [s for s in otel.spans() if (s.attributes or {}).get("gen_ai.operation.name") == "invoke_agent"]


def _chat_cost(otel: Otel) -> Decimal:
    return sum((Decimal(repr((s.attributes or {})["anthropic_otel.cost.usd"])) for s in otel.spans()
                if (s.attributes or {}).get("gen_ai.operation.name") == "chat"), Decimal(0))


def _check_refused(otel: Otel, fake: FakeAnthropicServer, refused: BudgetExceededError, sent: int = 2) -> None:
    assert len(fake.calls) == sent  # the call that would exceed the budget never reached the server
    assert refused.period == "run" and refused.budget == Decimal(str(PER_RUN))
    assert refused.estimate > Decimal("0.02")  # max_tokens=4000 at $5/MTok, plus the input
    # What the run had spent: its calls' exact cost, with nothing left set aside by the calls that ended.
    assert refused.spent == _chat_cost(otel) > 0
    assert refused.spent + refused.estimate > refused.budget
    [run] = _runs(otel)
    attrs = run.attributes or {}
    assert run.status.status_code is StatusCode.ERROR
    assert attrs["anthropic_otel.run.outcome"] == "error"
    assert attrs["error.type"] == "BudgetExceededError"
    assert attrs["anthropic_otel.run.iterations"] == sent
    assert attrs["anthropic_otel.cost.usd"] == float(refused.spent)


def test_a_run_stops_before_the_call_that_could_exceed_its_budget(otel: Otel, fake: FakeAnthropicServer) -> None:
    fake.script(COSTLY, COSTLY, "normal")
    reader = InMemoryMetricReader()
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        client = _policy(reader).wrap(raw)
        runner = client.beta.messages.tool_runner(tools=[get_weather], **_params())
        with pytest.raises(BudgetExceededError) as refused:
            runner.until_done()
    _check_refused(otel, fake, refused.value)
    data = reader.get_metrics_data()
    assert data is not None
    rejected = [(dict(p.attributes or {}), p.value) for r in data.resource_metrics for s in r.scope_metrics
                for m in s.metrics if m.name == "anthropic_otel.resilience.rejected" for p in m.data.data_points]
    assert [(a["anthropic_otel.rejection.reason"], v) for a, v in rejected] == [("budget", 1)]


def test_a_streaming_run_releases_what_each_stream_set_aside(otel: Otel, fake: FakeAnthropicServer) -> None:
    fake.script(COSTLY, COSTLY, "normal")
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        client = _policy().wrap(raw)
        runner = client.beta.messages.tool_runner(tools=[get_weather], stream=True, **_params())
        with pytest.raises(BudgetExceededError) as refused:
            for stream in runner:
                for _ in stream:
                    pass
    _check_refused(otel, fake, refused.value)


async def test_an_async_run_is_stopped_and_the_day_budget_keeps_no_reservation(otel: Otel,
                                                                              fake: FakeAnthropicServer) -> None:
    fake.script(COSTLY, COSTLY, "normal")
    policy = _policy(day=1.0)
    async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        client = policy.wrap(raw)
        runner = client.beta.messages.tool_runner(tools=[aget_weather], **_params())
        with pytest.raises(BudgetExceededError) as refused:
            await runner.until_done()
    _check_refused(otel, fake, refused.value)
    assert policy.spent()["day"] == refused.value.spent  # the refused call reserved nothing against the day


def test_a_tools_own_calls_count_against_its_run(otel: Otel, fake: FakeAnthropicServer) -> None:
    """$0.015 spent by the first call; the tool's own call could add $0.02 more: past $0.03, refused, and so is
    the runner's next call."""
    fake.script(COSTLY, "normal", "normal")
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        client = _policy(per_run=0.03).wrap(raw)

        @beta_tool
        def ask_model(location: str) -> str:
            """Asks the model itself."""
            return str(client.messages.create(**_params()).id)

        runner = client.beta.messages.tool_runner(tools=[ask_model], **_params())
        with pytest.raises(BudgetExceededError) as refused:
            runner.until_done()
    assert len(fake.calls) == 1
    assert refused.value.period == "run" and refused.value.spent == _chat_cost(otel)
    [tool] = [s for s in otel.spans() if s.name == "execute_tool ask_model"]
    assert (tool.attributes or {})["error.type"] == "BudgetExceededError"
    assert (_runs(otel)[0].attributes or {})["anthropic_otel.run.outcome"] == "error"


def test_outside_a_run_the_run_budget_does_nothing(otel: Otel, fake: FakeAnthropicServer) -> None:
    fake.script(*["tool_use:output_tokens=3000"] * 4)
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        client = _policy().wrap(raw)
        for _ in range(4):  # $0.06 in all, past the run budget, but no run is current
            client.messages.create(**_params())
    assert len(fake.calls) == 4 and _chat_cost(otel) > Decimal(str(PER_RUN))


def test_each_run_has_its_own_budget(otel: Otel, fake: FakeAnthropicServer) -> None:
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        client = _policy().wrap(raw)
        for _ in range(2):  # $0.03 each: together past the budget of one run
            fake.script(COSTLY, "normal")
            client.beta.messages.tool_runner(tools=[get_weather], **_params()).until_done()
    assert len(fake.calls) == 4
    assert [(s.attributes or {})["anthropic_otel.run.outcome"] for s in _runs(otel)] == ["completed"] * 2


def test_without_worst_case_a_run_is_refused_only_at_its_budget(otel: Otel, fake: FakeAnthropicServer) -> None:
    """$0.015 per call, $0.04 budget: the third call starts at $0.03 and goes; the fourth, at $0.045, does not."""
    fake.script(COSTLY, COSTLY, COSTLY, "normal")
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        client = _policy(per_run=0.04, worst_case=False).wrap(raw)
        with pytest.raises(BudgetExceededError) as refused:
            client.beta.messages.tool_runner(tools=[get_weather], **_params()).until_done()
    assert len(fake.calls) == 3
    assert refused.value.estimate == 0 and refused.value.spent == _chat_cost(otel) >= Decimal("0.04")


def test_the_runner_sends_through_the_policy(fake: FakeAnthropicServer) -> None:
    fake.script(COSTLY, "normal")
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        policy = Policy(budget=Budget(day=1.0))
        client = policy.wrap(raw)
        client.beta.messages.tool_runner(tools=[get_weather], **_params()).until_done()
        thread = client.beta.messages.thread(model=MODEL, max_tokens=100)
        assert thread._client is client
    assert len(fake.calls) == 2 and policy.spent()["day"] > Decimal("0.015")


def test_a_model_with_no_known_price_is_refused_inside_a_run(otel: Otel, fake: FakeAnthropicServer) -> None:
    """Its cost could not be counted against the run, so the run budget could not hold: refused, nothing sent."""
    fake.script("normal")
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        client = _policy().wrap(raw)
        runner = client.beta.messages.tool_runner(tools=[get_weather], **_params(model="claude-unpriced-run-9"))
        with pytest.raises(BudgetExceededError) as refused:
            runner.until_done()
        assert client.messages.create(**_params(model="claude-unpriced-run-9")).id  # outside a run: sent
    assert refused.value.period == "run" and refused.value.unpriced == "claude-unpriced-run-9"
    assert len(fake.calls) == 1
