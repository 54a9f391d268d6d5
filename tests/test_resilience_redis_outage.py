"""Redis outages under the wrapper's `StoreFailure` policy: a real `redis-server` killed while a call is in flight
(the response the API returned still reaches the caller, the span ends once, the cost is settled later), and
calls made while it is down (limits fail open, the budget fails closed, by default; every error the wrapper
raises is a `ResilienceError`, never a raw Redis exception)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import pytest
import redis.exceptions

from _tools import tool, tool_env
from anthropic_otel.cost.pricing import Pricer
from anthropic_otel.cost.usage import Usage
from anthropic_otel.resilience import (
    Budget,
    Limits,
    ResilienceError,
    StoreFailure,
    StoreUnavailableError,
)
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, MODEL, ask
from test_resilience import Probe

LIMITS = Limits(requests_per_minute=6_000, input_tokens_per_minute=600_000, output_tokens_per_minute=600_000,
                window_seconds=1, from_headers=False, output_estimate=1)  # output beyond 1 token is charged after


class RedisServer:
    """A `redis-server` on a fixed loopback port that a test can kill and start again."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [tool("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no"], env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def store() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _killing_client(fake: FakeAnthropicServer, store: RedisServer) -> anthropic.Anthropic:
    """A client whose HTTP layer kills Redis just before the request leaves: after the wrapper reserved the
    budget and took its limits, before the API answers."""
    def kill(request: Any) -> None:
        store.kill()

    http = httpx2.Client(event_hooks={"request": [kill]})
    return anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0, http_client=http)


def _cost(call: Any) -> Decimal:
    cost = Pricer().cost(MODEL, "anthropic", Usage.of(anthropic.types.Usage.model_validate(call.usage)))
    assert cost is not None
    return cost.total


def _store_failures(probe: Probe) -> dict[tuple[str, str], int]:
    return {(a["anthropic_otel.store.component"], a["anthropic_otel.store.stage"]): v
            for a, v in probe.points("anthropic_otel.resilience.store.failures")}


def test_redis_dying_mid_call_still_delivers_the_response(store: RedisServer, fake: FakeAnthropicServer) -> None:
    probe = Probe()
    policy = probe.policy(budget=Budget(day=5), limits=LIMITS, redis_url=store.url, namespace="mid-call")
    with _killing_client(fake, store) as raw:
        message = policy.wrap(raw).messages.create(**ask(max_tokens=2_000, extra_headers={"x-fake-delay-ms": "300"}))
    assert message.content and message.usage.output_tokens > 0  # what the API returned, not a Redis error
    [call] = fake.calls
    assert call.status == 200
    [span] = probe.spans("resilient")  # ended, once, as a success
    assert span.status.is_ok and "error.type" not in (span.attributes or {})
    assert _store_failures(probe)[("budget", "settle")] == 1
    assert _store_failures(probe)[("limits", "settle")] == 1  # the output beyond the estimate could not be charged
    # Redis back (empty: no persistence): the settlement kept in this process reaches it with the next one.
    store.start()
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        policy.wrap(raw).messages.create(**ask())
    # The first call's reservation died with that Redis (a new epoch), so only its real cost is added.
    assert policy.spent()["day"] == _cost(call) + _cost(fake.calls[1])


def test_a_stream_outlives_redis(store: RedisServer, fake: FakeAnthropicServer) -> None:
    probe = Probe()
    policy = probe.policy(budget=Budget(day=5), limits=LIMITS, redis_url=store.url, namespace="stream")
    params = ask(extra_headers={"x-fake-event-delay-ms": "20"})
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw, \
            policy.wrap(raw).messages.stream(**params) as stream:
        first = next(iter(stream))
        store.kill()
        message = stream.get_final_message()
    assert first.type == "message_start" and message.content
    assert len(probe.spans("resilient")) == 1 and probe.spans("resilient")[0].status.is_ok
    assert _store_failures(probe)[("budget", "settle")] == 1


async def test_redis_dying_mid_call_async(store: RedisServer, fake: FakeAnthropicServer) -> None:
    probe = Probe()
    policy = probe.policy(budget=Budget(day=5), limits=LIMITS, redis_url=store.url, namespace="mid-call-async")

    async def kill(request: Any) -> None:
        store.kill()

    http = httpx2.AsyncClient(event_hooks={"request": [kill]})
    async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0,
                                        http_client=http) as raw:
        message = await policy.wrap(raw).messages.create(**ask(extra_headers={"x-fake-delay-ms": "300"}))
    assert message.content and fake.calls[0].status == 200
    [span] = probe.spans("resilient")
    assert span.status.is_ok
    assert _store_failures(probe)[("budget", "settle")] == 1


def test_while_redis_is_down_the_defaults_are_limits_open_budget_closed(store: RedisServer,
                                                                        fake: FakeAnthropicServer) -> None:
    probe = Probe()
    limited = probe.policy(limits=LIMITS, redis_url=store.url, namespace="down")
    budgeted = probe.policy(budget=Budget(day=5), redis_url=store.url, namespace="down")
    store.kill()
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        assert limited.wrap(raw).messages.create(**ask()).content  # fails open: sent without the rate limits
        with pytest.raises(StoreUnavailableError) as refused:
            budgeted.wrap(raw).messages.create(**ask())
        with pytest.raises(StoreUnavailableError):
            budgeted.spent()
    assert len(fake.calls) == 1  # the budgeted call was not sent
    assert isinstance(refused.value, ResilienceError) and refused.value.component == "budget"
    assert isinstance(refused.value.__cause__, redis.exceptions.RedisError)
    assert _store_failures(probe) == {("limits", "acquire"): 1, ("budget", "reserve"): 1}
    rejected = probe.points("anthropic_otel.resilience.rejected")
    assert [(a["anthropic_otel.rejection.reason"], v) for a, v in rejected] == [("store_unavailable", 1)]
    assert [s.attributes["error.type"] for s in probe.spans("resilient") if not s.status.is_ok] == [
        "StoreUnavailableError"]


def test_the_outage_policy_is_configurable(store: RedisServer, fake: FakeAnthropicServer) -> None:
    """`StoreFailure(limits="closed")` refuses instead; `budget="open"` sends and settles the real cost once Redis
    is back."""
    strict = StoreFailure(limits="closed", budget="closed")
    lenient = StoreFailure(limits="open", budget="open")
    limited = Probe().policy(limits=LIMITS, redis_url=store.url, namespace="cfg", store_failure=strict)
    budgeted = Probe().policy(budget=Budget(day=5), redis_url=store.url, namespace="cfg", store_failure=lenient)
    store.kill()
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        with pytest.raises(StoreUnavailableError) as refused:
            limited.wrap(raw).messages.create(**ask())
        assert refused.value.component == "limits" and not fake.calls
        assert budgeted.wrap(raw).messages.create(**ask()).content
        store.start()
        assert budgeted.wrap(raw).messages.create(**ask()).content
    assert len(fake.calls) == 2
    assert budgeted.spent()["day"] == _cost(fake.calls[0]) + _cost(fake.calls[1])


async def test_while_redis_is_down_async_errors_are_resilience_errors(store: RedisServer,
                                                                      fake: FakeAnthropicServer) -> None:
    policy = Probe().policy(budget=Budget(day=5), limits=LIMITS, redis_url=store.url, namespace="down-async")
    store.kill()
    escaped: list[BaseException] = []
    async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
        client = policy.wrap(raw)
        try:
            await client.messages.create(**ask())
        except Exception as error:  # the point: whatever escapes
            escaped.append(error)
        try:
            async with client.messages.stream(**ask()) as stream:
                await stream.get_final_message()
        except Exception as error:
            escaped.append(error)
        counted = await client.messages.count_tokens(model=MODEL, messages=ask()["messages"])
    assert counted.input_tokens > 0  # count_tokens takes no budget and no limits: it went through
    assert [type(error) for error in escaped] == [StoreUnavailableError, StoreUnavailableError]
    assert len(fake.calls) == 1
