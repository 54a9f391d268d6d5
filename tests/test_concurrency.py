"""Threads and asyncio together: metric totals equal the fake server's ground truth, to the token and cent."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from typing import Any

import anthropic

from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, Otel, ask
from test_messages import expected_cost

THREADS, PER_THREAD, TASKS, PER_TASK = 6, 120, 24, 30
SYSTEM = [{"type": "text", "text": "Shared instructions. " * 120, "cache_control": {"type": "ephemeral"}}]


def one_call(client: anthropic.Anthropic, i: int) -> None:
    kind = i % 6
    headers = {"x-fake-output-tokens": str(5 + i % 17)}
    try:
        if kind == 0:
            client.messages.create(**ask(f"question {i}"), extra_headers=headers)
        elif kind == 1:
            for _ in client.messages.create(**ask(f"stream {i}"), stream=True, extra_headers=headers):
                pass
        elif kind == 2:
            with client.messages.stream(**ask(f"helper {i}", system=SYSTEM), extra_headers=headers) as s:
                s.get_final_message()
        elif kind == 3:
            client.messages.create(**ask(f"cut {i}", max_tokens=8), extra_headers=headers)
        elif kind == 4:
            client.messages.create(**ask(f"cached {i}", system=SYSTEM), extra_headers=headers)
        else:
            client.messages.create(**ask(f"limited {i}"), extra_headers={"x-fake-scenario": "rate_limit"})
    except anthropic.RateLimitError:
        pass


async def one_async_call(client: anthropic.AsyncAnthropic, i: int) -> None:
    headers = {"x-fake-output-tokens": str(3 + i % 11)}
    if i % 3 == 0:
        async with client.messages.stream(**ask(f"a{i}", system=SYSTEM), extra_headers=headers) as s:
            await s.get_final_message()
    elif i % 3 == 1:
        async for _ in await client.messages.create(**ask(f"a{i}"), stream=True, extra_headers=headers):
            pass
    else:
        await client.messages.create(**ask(f"a{i}"), extra_headers=headers)


async def async_load(base_url: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key=API_KEY, max_retries=0) as client:
        async def task(t: int) -> None:
            for j in range(PER_TASK):
                await one_async_call(client, t * PER_TASK + j)
        await asyncio.gather(*(task(t) for t in range(TASKS)))


def test_totals_equal_ground_truth_under_threads_and_asyncio(otel: Otel, fake: FakeAnthropicServer) -> None:
    client = anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for j in range(PER_THREAD):
                one_call(client, t * PER_THREAD + j)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    asyncio.run(async_load(fake.base_url))
    for thread in threads:
        thread.join()
    assert errors == []

    calls = [c for c in fake.calls if c.path == "/v1/messages"]
    total_calls = THREADS * PER_THREAD + TASKS * PER_TASK
    assert len(calls) == total_calls
    truth = fake.totals()
    totals: dict[str, Any] = otel.instrumentor.telemetry.metrics.totals()
    assert totals["requests"] == total_calls
    assert totals["tokens"] == {
        "input": truth["input_tokens"], "output": truth["output_tokens"],
        "cache_read": truth["cache_read_input_tokens"], "cache_write": truth["cache_creation_input_tokens"]}
    assert truth["cache_read_input_tokens"] > 0 and truth["cache_creation_input_tokens"] > 0
    exact = sum((expected_cost(c.usage) for c in calls if c.usage is not None and c.status == 200), Decimal(0))
    assert totals["cost_total"] == exact
    assert totals["active"] == 0

    # What an exporter sees is the same, and each span's cost sums to the counter's.
    exported = otel.total("anthropic_otel.tokens", anthropic_otel__token__type="output")
    assert exported == truth["output_tokens"]
    spans = otel.spans()
    assert len(spans) == total_calls
    span_cost = sum(Decimal(str((s.attributes or {}).get("anthropic_otel.cost.usd", 0))) for s in spans)
    assert abs(span_cost - exact) < Decimal("1e-9")
    assert otel.total("anthropic_otel.requests", error__type="rate_limit_error") == THREADS * PER_THREAD // 6
