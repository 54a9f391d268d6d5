"""Limits and budgets shared through a real `redis-server` (Debian package) on loopback."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anthropic
import pytest

from _tools import tool, tool_env
from anthropic_otel.resilience import Budget, BudgetExceededError, Limits, Policy, wrap
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, ask
from test_resilience import assert_paced

WORKER = Path(__file__).parent / "apps" / "resilience_worker.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = tool("redis-server")
    port = _free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_two_processes_share_one_request_limit(redis_url: str, fake: FakeAnthropicServer) -> None:
    """A sync and an async process, 12 calls each, one limit of 10 requests per second kept in Redis.

    The limiter governs when a call is admitted, not when it reaches the server: whatever happens between the two
    (a worker's first request paying for lazy imports and a new connection, a process descheduled on a busy
    machine) shifts arrivals, so "at most 10 arrivals in any 0.6 s" held only while that gap stayed under 0.4 s
    (it did not, 1 run in 11 idle and most runs under load). What the moving window does guarantee: the limiter
    stamps each admission with a time taken after the start signal, and the k-th admission (0-based, in Redis'
    order) is refused until the (k-10)-th is more than a window old, so it is stamped more than `k // 10` windows
    after the signal; a request reaches the server after its admission. Hence the k-th arrival in the server's
    log comes at least `k // 10` seconds after the signal, however late any request is. With a limit per
    process instead of one shared limit, 20 requests would arrive within the first second.
    """
    window = 1.0  # the worker's Limits(requests_per_minute=600, window_seconds=1): 10 per window
    workers = [subprocess.Popen([sys.executable, str(WORKER), fake.base_url, redis_url, "12", mode],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for mode in ("sync", "async")]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "READY"
        signal = time.monotonic()  # the server's clock; before any worker can read "go"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.read().strip() == "DONE"
            assert worker.wait(timeout=60) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    starts = [c.started for c in fake.calls]
    assert len(starts) == 24 and all(c.status == 200 for c in fake.calls)
    assert_paced(starts, signal, 10, window)  # 20 would arrive in the first second with a limit per process
    assert max(starts) - signal >= 2 * window - 0.01


async def test_budget_is_shared_through_redis(redis_url: str, fake: FakeAnthropicServer) -> None:
    """Two policies (as in two processes) with one Redis: the second sees what the first spent."""
    budget = Budget(day=0.0002, worst_case=False)
    first = Policy(budget=budget, redis_url=redis_url, namespace="shared-budget")
    second = Policy(budget=budget, redis_url=redis_url, namespace="shared-budget")
    other = Policy(budget=budget, redis_url=redis_url, namespace="another-app")
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        wrap(raw, first).messages.create(**ask())
        wrap(raw, first).messages.create(**ask())
    spent = first.spent()["day"]
    assert spent == second.spent()["day"] >= Decimal("0.0002")
    async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw_async:
        with pytest.raises(BudgetExceededError) as refused:
            await wrap(raw_async, second).messages.create(**ask())
        assert refused.value.spent == spent
        assert (await wrap(raw_async, other).messages.create(**ask())).id  # its own namespace, its own budget
    assert len(fake.calls) == 3


async def test_async_limits_in_redis_across_event_loops(redis_url: str, fake: FakeAnthropicServer) -> None:
    """The async Redis storage is per event loop; a policy keeps working when the loop changes."""
    policy = Policy(limits=Limits(requests_per_minute=600, input_tokens_per_minute=60_000, window_seconds=1),
                    redis_url=redis_url, namespace="loops")
    async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        client = wrap(raw, policy)
        assert (await client.messages.create(**ask())).id

    def other_loop() -> None:
        async def again() -> None:
            async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
                assert (await wrap(raw, policy).messages.create(**ask())).id

        asyncio.run(again())

    await asyncio.to_thread(other_loop)
    assert len(fake.calls) == 2
