"""The resilience wrapper against the fake server over real HTTP: retries, breaker, limits, budget, fallback.

Rates and concurrency are measured on the server's own log (`fake.calls`), never on the wrapper's timers, with
margins for a loaded 2-core machine.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from anthropic_otel.resilience import (
    Breaker,
    Budget,
    BudgetExceededError,
    CircuitOpenError,
    Limits,
    LimitTimeoutError,
    Policy,
    Retry,
    wrap,
)
from anthropic_otel.testing import FakeAnthropicServer, RecordedCall
from conftest import API_KEY, MODEL, Otel, ask

FALLBACK = "claude-sonnet-4-5"


@dataclass
class Probe:
    """In-memory tracer and meter providers handed to a policy (not global)."""

    exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)
    tracer_provider: TracerProvider | None = None

    def __post_init__(self) -> None:
        if self.tracer_provider is None:
            self.tracer_provider = TracerProvider()
            self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def policy(self, **options: Any) -> Policy:
        return Policy(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options)

    def spans(self, prefix: str = "") -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name.startswith(prefix)]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        found: list[tuple[dict[str, Any], Any]] = []
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes or {}), getattr(p, "value", p)) for p in metric.data.data_points]
        return found

    def total(self, name: str, **match: Any) -> Any:
        return sum(value for attrs, value in self.points(name)
                   if all(attrs.get(k.replace("__", ".")) == v for k, v in match.items()))


@pytest.fixture
def probe() -> Probe:
    return Probe()


def messages_calls(fake: FakeAnthropicServer) -> list[RecordedCall]:
    return [c for c in fake.calls if c.path == "/v1/messages"]


def assert_paced(starts: list[float], signal: float, per_window: int, window: float) -> None:
    """The server's log against a moving-window request limit that started empty at `signal` (monotonic).

    The limiter stamps each admission (wall clock, taken after `signal`) and refuses the k-th (0-based, in its own
    order) until the (k - per_window)-th is more than a window old; a request reaches the server after its
    admission. So the k-th arrival comes at least `k // per_window` windows after `signal`, however late any
    request is (lazy imports, a descheduled thread), which no bound on arrivals in a short window can say.
    10 ms of slack: wall and monotonic clocks differ in rate only by NTP slewing (at most 0.05 %).
    """
    starts = sorted(starts)
    early = [(k, round(start - signal, 3)) for k, start in enumerate(starts)
             if start - signal < (k // per_window) * window - 0.01]
    assert not early, f"(k, seconds after the signal) of arrivals ahead of the limit: {early}"


def most_overlapping(calls: list[RecordedCall]) -> int:
    edges = sorted([(c.started, 1) for c in calls] + [(c.ended, -1) for c in calls])
    best = level = 0
    for _, step in edges:
        level += step
        best = max(best, level)
    return best


# -- retries ---------------------------------------------------------------------------------------------------


def test_429_storm_with_retry_after_is_ridden_out_within_the_deadline(otel: Otel, client: anthropic.Anthropic,
                                                                        fake: FakeAnthropicServer) -> None:
    """With `instrument()` on, every attempt is its own `chat` span under one `resilient chat` span."""
    probe = Probe(tracer_provider=otel.tracer_provider, exporter=otel.exporter)
    resilient = wrap(client, probe.policy(retry=Retry(max_attempts=8, deadline=5.0)))
    fake.script(*["rate_limit:retry_after=0.15"] * 4)
    began = time.monotonic()
    message = resilient.messages.create(**ask())
    elapsed = time.monotonic() - began

    calls = messages_calls(fake)
    assert [c.status for c in calls] == [429, 429, 429, 429, 200]
    gaps = [b.started - a.ended for a, b in itertools.pairwise(calls)]
    assert min(gaps) >= 0.14, gaps  # retry-after-ms: 150 honoured
    assert elapsed < 5.0
    assert message.stop_reason == "end_turn"

    [parent] = probe.spans("resilient")
    attempts = probe.spans("chat")
    assert parent.name == f"resilient chat {MODEL}" and parent.kind is SpanKind.INTERNAL
    assert len(attempts) == 5 and all(s.parent is not None and s.parent.span_id == parent.context.span_id
                                      for s in attempts)
    assert [s.attributes.get("error.type") for s in attempts] == ["rate_limit_error"] * 4 + [None]
    attrs = dict(parent.attributes or {})
    assert attrs["anthropic_otel.resilience.attempts"] == 5 and parent.status.status_code is StatusCode.UNSET
    events = [e for e in parent.events if e.name == "anthropic_otel.resilience.retry"]
    assert [e.attributes["anthropic_otel.retry.attempt"] for e in events] == [1, 2, 3, 4]
    assert {e.attributes["anthropic_otel.retry.reason"] for e in events} == {"rate_limit_error"}
    assert all(e.attributes["anthropic_otel.retry.delay"] == pytest.approx(0.15) for e in events)
    assert probe.total("anthropic_otel.resilience.retries", anthropic_otel__retry__reason="rate_limit_error") == 4
    # Each 429 attempt is counted by the instrumentation too (the 429-burst alert sees them).
    assert otel.total("anthropic_otel.requests", error__type="rate_limit_error") == 4


async def test_a_storm_longer_than_the_deadline_stops_before_it(aclient: anthropic.AsyncAnthropic,
                                                                 fake: FakeAnthropicServer, probe: Probe) -> None:
    resilient = wrap(aclient, probe.policy(retry=Retry(max_attempts=20, deadline=1.0)))
    fake.script(*["rate_limit:retry_after=0.4"] * 10)
    began = time.monotonic()
    with pytest.raises(anthropic.RateLimitError):
        await resilient.messages.create(**ask())
    elapsed = time.monotonic() - began
    calls = messages_calls(fake)
    assert 2 <= len(calls) <= 3, [c.status for c in calls]
    assert elapsed < 1.0 + 0.5  # never sleeps past the deadline: the last attempt starts before it
    [parent] = probe.spans("resilient")
    assert parent.status.status_code is StatusCode.ERROR
    assert parent.attributes["error.type"] == "rate_limit_error"
    # What the deadline guarantees, whatever the machine's load: a retry is planned only when "now + its wait"
    # ends before the deadline, and every earlier wait lasted at least its delay, so the waits before the last
    # attempt add up to less than the deadline (without the stop: 19 waits of 0.4 s). When that attempt reaches
    # the server depends on scheduling, hence the generous bound on its arrival.
    delays = [e.attributes["anthropic_otel.retry.delay"] for e in parent.events]
    assert len(delays) == len(calls) - 1 and sum(delays) < 1.0, delays
    assert calls[-1].started - began < 1.0 + 0.5


@pytest.mark.parametrize("scenario,error,status", [("bad_request", anthropic.BadRequestError, 400),
                                                   ("auth_error", anthropic.AuthenticationError, 401)])
def test_4xx_is_never_retried(client: anthropic.Anthropic, fake: FakeAnthropicServer, probe: Probe, scenario: str,
                              error: type[Exception], status: int) -> None:
    resilient = wrap(client, probe.policy(retry=Retry(max_attempts=5, initial_delay=0.01)))
    for _ in range(3):
        fake.script(scenario)
        with pytest.raises(error):
            resilient.messages.create(**ask())
    assert [c.status for c in messages_calls(fake)] == [status] * 3  # one request each
    assert probe.points("anthropic_otel.resilience.retries") == []


async def test_400_is_never_retried_async(aclient: anthropic.AsyncAnthropic, fake: FakeAnthropicServer) -> None:
    resilient = wrap(aclient, retry=Retry(max_attempts=5, initial_delay=0.01))
    fake.script("bad_request", "bad_request")
    for _ in range(2):
        with pytest.raises(anthropic.BadRequestError):
            await resilient.messages.create(**ask())
    assert [c.status for c in messages_calls(fake)] == [400, 400]


async def test_5xx_and_529_are_retried_with_backoff_async(aclient: anthropic.AsyncAnthropic,
                                                          fake: FakeAnthropicServer, probe: Probe) -> None:
    resilient = wrap(aclient, probe.policy(retry=Retry(max_attempts=4, initial_delay=0.01, max_delay=0.05)))
    fake.script("server_error", "overloaded", "normal")
    message = await resilient.messages.create(**ask())
    assert message.stop_reason == "end_turn"
    assert [c.status for c in messages_calls(fake)] == [500, 529, 200]
    reasons = {a["anthropic_otel.retry.reason"]: v for a, v in probe.points("anthropic_otel.resilience.retries")}
    assert reasons == {"api_error": 1, "overloaded_error": 1}


def test_the_sdk_does_not_retry_underneath(fake: FakeAnthropicServer) -> None:
    """The SDK's own max_retries (2 by default) is replaced, not stacked: 2 wrapper attempts = 2 requests."""
    with anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY) as sdk_client:  # default max_retries=2
        resilient = wrap(sdk_client, retry=Retry(max_attempts=2, initial_delay=0.01))
        fake.script("server_error", "server_error", "server_error")
        with pytest.raises(anthropic.InternalServerError):
            resilient.messages.create(**ask())
        assert len(messages_calls(fake)) == 2
        fake.reset()
        fake.script("overloaded", "overloaded")
        assert sdk_client.messages.create(**ask()).id  # the original client keeps its own retries
        assert len(messages_calls(fake)) == 3


# -- circuit breaker -------------------------------------------------------------------------------------------


def test_breaker_opens_rejects_without_the_server_probes_and_closes(client: anthropic.Anthropic,
                                                                     fake: FakeAnthropicServer,
                                                                     probe: Probe) -> None:
    policy = probe.policy(breaker=Breaker(failure_threshold=3, recovery_timeout=0.4))
    resilient = wrap(client, policy)
    fake.script("rate_limit", "rate_limit", "rate_limit")  # 429s are not a health signal
    for _ in range(3):
        with pytest.raises(anthropic.RateLimitError):
            resilient.messages.create(**ask())
    assert policy.circuit_state(MODEL) == "closed"

    fake.script("server_error", "overloaded", "server_error")
    for _ in range(3):
        with pytest.raises(anthropic.InternalServerError):
            resilient.messages.create(**ask())
    assert policy.circuit_state(MODEL) == "open"
    sent = len(fake.calls)
    opened = time.monotonic()
    with pytest.raises(CircuitOpenError) as refused:
        resilient.messages.create(**ask())
    assert len(fake.calls) == sent  # rejected without touching the server
    assert refused.value.state == "open" and refused.value.model == MODEL
    assert 0 < refused.value.retry_in <= 0.4
    assert "open" in str(refused.value) and "next probe in" in str(refused.value)
    [(attrs, value)] = probe.points("anthropic_otel.resilience.circuit.state")
    assert value == 2 and attrs == {"gen_ai.request.model": MODEL}

    time.sleep(max(0.0, opened + 0.45 - time.monotonic()))
    assert policy.circuit_state(MODEL) == "half_open"
    assert resilient.messages.create(**ask()).id  # the probe
    assert len(fake.calls) == sent + 1
    assert policy.circuit_state(MODEL) == "closed"
    transitions = {a["anthropic_otel.circuit.state"]: v
                   for a, v in probe.points("anthropic_otel.resilience.circuit.transitions")}
    assert transitions == {"open": 1, "half_open": 1, "closed": 1}
    assert probe.total("anthropic_otel.resilience.rejected", anthropic_otel__rejection__reason="circuit_open") == 1
    assert probe.points("anthropic_otel.resilience.circuit.state")[0][1] == 0


async def test_breaker_is_shared_by_sync_and_async_and_limits_half_open_probes(
        client: anthropic.Anthropic, aclient: anthropic.AsyncAnthropic, fake: FakeAnthropicServer) -> None:
    policy = Policy(breaker=Breaker(failure_threshold=2, recovery_timeout=0.3, half_open_probes=1))
    sync_client, async_client = wrap(client, policy), wrap(aclient, policy)
    fake.script("server_error", "server_error")
    for _ in range(2):
        with pytest.raises(anthropic.InternalServerError):
            await asyncio.to_thread(sync_client.messages.create, **ask())
    with pytest.raises(CircuitOpenError):  # opened by the sync caller, seen by the async one
        await async_client.messages.create(**ask())
    await asyncio.sleep(0.35)
    fake.script("normal:delay_ms=300")
    probe_call = asyncio.create_task(async_client.messages.create(**ask()))
    await asyncio.sleep(0.1)
    with pytest.raises(CircuitOpenError) as refused:  # one probe at a time
        await async_client.messages.create(**ask())
    assert refused.value.state == "half_open"
    assert (await probe_call).id
    assert policy.circuit_state(MODEL) == "closed"
    assert sync_client.messages.create(**ask()).id
    assert len(messages_calls(fake)) == 4


def test_fallback_on_529_and_on_an_open_breaker(client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                                 probe: Probe) -> None:
    policy = probe.policy(retry=Retry(max_attempts=3, initial_delay=0.01),
                          breaker=Breaker(failure_threshold=2, recovery_timeout=30), fallback_model=FALLBACK)
    resilient = wrap(client, policy)
    fake.script("overloaded")
    message = resilient.messages.create(**ask())
    assert message.model == FALLBACK
    assert [(c.model, c.status) for c in messages_calls(fake)] == [(MODEL, 529), (FALLBACK, 200)]
    [span] = probe.spans("resilient")
    assert span.attributes["anthropic_otel.fallback.model"] == FALLBACK
    assert span.attributes["anthropic_otel.fallback.reason"] == "overloaded"
    assert span.attributes["anthropic_otel.resilience.attempts"] == 2

    assert resilient.messages.create(**ask()).model == MODEL  # a success resets the failure count
    sent = len(fake.calls)
    fake.script("server_error", "server_error")  # retried on the primary until its breaker opens
    assert resilient.messages.create(**ask()).model == FALLBACK
    assert [(c.model, c.status) for c in fake.calls[sent:]] == [(MODEL, 500), (MODEL, 500), (FALLBACK, 200)]
    assert policy.circuit_state(MODEL) == "open"
    sent = len(fake.calls)
    assert resilient.messages.create(**ask()).model == FALLBACK  # the primary is not touched
    assert [c.model for c in fake.calls[sent:]] == [FALLBACK]
    fallbacks = {a["anthropic_otel.fallback.reason"]: v for a, v in probe.points("anthropic_otel.resilience.fallbacks")}
    assert fallbacks == {"overloaded": 1, "circuit_open": 2}


# -- limits ----------------------------------------------------------------------------------------------------


def test_requests_per_minute_hold_on_the_server_log(client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                                     probe: Probe) -> None:
    """600 per minute over a 1 s window: at most 10 requests in any second, 25 requests take >= 2 s."""
    resilient = wrap(client, probe.policy(limits=Limits(requests_per_minute=600, window_seconds=1, max_wait=10)))
    threads = [threading.Thread(target=lambda: [resilient.messages.create(**ask()) for _ in range(5)])
               for _ in range(5)]
    signal = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts = [c.started for c in messages_calls(fake)]
    assert len(starts) == 25
    assert_paced(starts, signal, 10, 1.0)  # at most 10 a second; the 21st waits two full windows
    waits = probe.points("anthropic_otel.resilience.limiter.wait")
    assert waits and {a["anthropic_otel.limiter.resource"] for a, _ in waits} == {"requests"}


async def test_requests_per_minute_async(aclient: anthropic.AsyncAnthropic, fake: FakeAnthropicServer) -> None:
    resilient = wrap(aclient, limits=Limits(requests_per_minute=480, window_seconds=1))
    signal = time.monotonic()
    await asyncio.gather(*(resilient.messages.create(**ask()) for _ in range(16)))
    starts = [c.started for c in messages_calls(fake)]
    assert len(starts) == 16
    assert_paced(starts, signal, 8, 1.0)  # at most 8 a second: the 9th waits a full window


def test_concurrency_is_one_limit_for_sync_and_async_callers(client: anthropic.Anthropic,
                                                             fake: FakeAnthropicServer) -> None:
    policy = Policy(limits=Limits(concurrency=3))
    sync_client = wrap(client, policy)

    def run_async_callers() -> None:
        async def main() -> None:
            async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0) as raw:
                async_client = wrap(raw, policy)
                await asyncio.gather(*(async_client.messages.create(**ask(extra_headers={
                    "x-fake-delay-ms": "100"})) for _ in range(6)))
        asyncio.run(main())

    threads = [threading.Thread(target=run_async_callers)] + [
        threading.Thread(target=lambda: sync_client.messages.create(**ask(extra_headers={"x-fake-delay-ms": "100"})))
        for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = messages_calls(fake)
    assert len(calls) == 12 and all(c.status == 200 for c in calls)
    assert 2 <= most_overlapping(calls) <= 3


def test_concurrency_wait_is_bounded(client: anthropic.Anthropic, fake: FakeAnthropicServer, probe: Probe) -> None:
    resilient = wrap(client, probe.policy(limits=Limits(concurrency=1, max_wait=0.2)))
    slow = threading.Thread(target=lambda: resilient.messages.create(**ask(extra_headers={"x-fake-delay-ms": "800"})))
    slow.start()
    time.sleep(0.2)
    began = time.monotonic()
    with pytest.raises(LimitTimeoutError) as refused:
        resilient.messages.create(**ask())
    assert 0.15 <= time.monotonic() - began < 0.7
    slow.join()
    assert refused.value.resource == "concurrency"
    assert len(messages_calls(fake)) == 1
    assert probe.total("anthropic_otel.resilience.rejected", anthropic_otel__rejection__reason="limit_timeout") == 1


def test_output_tokens_per_minute_reserve_max_tokens(client: anthropic.Anthropic, fake: FakeAnthropicServer) -> None:
    """OTPM 1,200 over 1 s = 20 per second; each call reserves its max_tokens (20): one call per window."""
    resilient = wrap(client, limits=Limits(output_tokens_per_minute=1200, window_seconds=1, from_headers=False))
    for _ in range(2):
        resilient.messages.create(**ask(max_tokens=20))
    starts = [c.started for c in messages_calls(fake)]
    assert starts[1] - starts[0] >= 0.9  # the second waits until the first has left the sliding window


def test_per_key_limits_from_context_attributes(client: anthropic.Anthropic, fake: FakeAnthropicServer) -> None:
    import anthropic_otel

    resilient = wrap(client, limits=Limits(requests_per_minute=2, per_key="enduser.id", max_wait=0.1))
    with anthropic_otel.attributes(**{"enduser.id": "u-1"}):
        resilient.messages.create(**ask())
        resilient.messages.create(**ask())
        with pytest.raises(LimitTimeoutError) as refused:
            resilient.messages.create(**ask())
    assert refused.value.key == "u-1" and refused.value.resource == "requests"
    with anthropic_otel.attributes(**{"enduser.id": "u-2"}):
        resilient.messages.create(**ask())  # another user has their own limit
    assert len(messages_calls(fake)) == 3


def test_slows_down_from_ratelimit_headers_before_a_429() -> None:
    """The fake enforces 3 requests per minute; after 3 calls its headers say none are left, so the 4th call is
    refused by the wrapper (the refill would take 20 s) instead of being sent into a 429."""
    with FakeAnthropicServer(requests_per_minute=3, enforce_rate_limits=True) as server, \
            anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY, max_retries=0) as raw:
        resilient = wrap(raw, limits=Limits(max_wait=0.5))
        for _ in range(3):
            resilient.messages.create(**ask())
        with pytest.raises(LimitTimeoutError) as refused:
            resilient.messages.create(**ask())
        assert refused.value.resource == "headers:requests"
        assert [c.status for c in server.calls] == [200, 200, 200]
        with pytest.raises(anthropic.RateLimitError):  # what the call would have met
            raw.messages.create(**ask())


def test_waits_for_the_headers_refill(client: anthropic.Anthropic, fake: FakeAnthropicServer, probe: Probe) -> None:
    """Output tokens left after a call: 1,000,000 - 20. A call reserving max_tokens=1,000,000 lacks 20, which the
    API refills in 20 * 60 / 1,000,000 s; a call wanting 12,000 more waits 0.72 s."""
    resilient = wrap(client, probe.policy(limits=Limits(max_wait=5)))
    resilient.messages.create(**ask())
    began = time.monotonic()
    resilient.messages.create(**ask(max_tokens=1_000_000 + 12_000 - 20 - 1, timeout=10))
    assert time.monotonic() - began >= 0.6
    [(attrs, point)] = probe.points("anthropic_otel.resilience.limiter.wait")
    assert attrs["anthropic_otel.limiter.resource"] == "headers" and point.sum == pytest.approx(0.72, abs=0.05)


# -- budget ----------------------------------------------------------------------------------------------------


def test_budget_refuses_before_sending(client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                       probe: Probe) -> None:
    policy = probe.policy(budget=Budget(day=0.0002, worst_case=False))
    resilient = wrap(client, policy)
    resilient.messages.create(**ask())  # about $0.00011 on claude-haiku-4-5
    resilient.messages.create(**ask())
    with pytest.raises(BudgetExceededError) as refused:
        resilient.messages.create(**ask())
    assert len(messages_calls(fake)) == 2  # refused before the request was sent
    assert refused.value.period == "day" and refused.value.spent >= Decimal("0.0002")
    assert policy.spent()["day"] == refused.value.spent
    assert probe.total("anthropic_otel.resilience.rejected", anthropic_otel__rejection__reason="budget") == 1


async def test_budget_worst_case_refuses_a_call_that_could_exceed_it(aclient: anthropic.AsyncAnthropic,
                                                                     fake: FakeAnthropicServer) -> None:
    policy = Policy(budget=Budget(day=0.004))
    resilient = wrap(aclient, policy)
    with pytest.raises(BudgetExceededError) as refused:  # 1,000 output tokens at $5/MTok = $0.005 worst case
        await resilient.messages.create(**ask(max_tokens=1000))
    assert refused.value.estimate > Decimal("0.004") and refused.value.spent == 0
    assert (await resilient.messages.create(**ask(max_tokens=100))).id  # $0.0005 worst case: fits
    assert len(messages_calls(fake)) == 1
    spent = policy.spent()["day"]
    assert Decimal(0) < spent < Decimal("0.0005")  # the reservation was replaced by the real cost


# -- interface -------------------------------------------------------------------------------------------------


def test_same_interface_and_nothing_configured_means_the_client_itself(client: anthropic.Anthropic,
                                                                       fake: FakeAnthropicServer) -> None:
    assert wrap(client) is client
    resilient = wrap(client, retry=Retry())
    assert isinstance(resilient, anthropic.Anthropic)
    assert resilient.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}]).input_tokens
    assert resilient.beta.messages.create(**ask()).stop_reason == "end_turn"
    assert resilient.messages.parse(**ask()).stop_reason == "end_turn"
    assert resilient.with_options(timeout=5).messages.create(**ask()).id
    assert resilient.messages.batches is not None and resilient.models is client.models
    with pytest.raises(TypeError):
        wrap(client, Policy(retry=Retry()), retry=Retry())


@pytest.mark.parametrize("make", [
    lambda: anthropic.AnthropicBedrock(aws_access_key="a", aws_secret_key="b", aws_region="us-east-1"),
    lambda: anthropic.AnthropicVertex(region="us-east5", project_id="p", access_token="t"),
    lambda: anthropic.AsyncAnthropicBedrock(aws_access_key="a", aws_secret_key="b", aws_region="us-east-1"),
])
def test_bedrock_and_vertex_clients_wrap(make: Any) -> None:
    raw = make()
    resilient = wrap(raw, retry=Retry(), limits=Limits(concurrency=2))
    assert isinstance(resilient, type(raw))
    assert callable(resilient.messages.create) and callable(resilient.beta.messages.stream)
    assert resilient._self_engine.inner.max_retries == 0 and raw.max_retries == 2



def test_input_tokens_are_corrected_with_the_real_count(client: anthropic.Anthropic, fake: FakeAnthropicServer,
                                                        probe: Probe) -> None:
    """ITPM 60,000 over 1 s = 1,000 per second. The estimate sees a short message, the real request carries
    2,000 more tokens (through extra_body): the correction makes the next call wait half a window."""
    resilient = wrap(client, probe.policy(limits=Limits(input_tokens_per_minute=60_000, window_seconds=1,
                                                        from_headers=False)))
    resilient.messages.create(**ask(extra_body={"system": "x" * 8000}))
    assert messages_calls(fake)[0].usage["input_tokens"] > 2000
    resilient.messages.create(**ask())
    first, second = messages_calls(fake)
    assert second.started - first.ended >= 0.45
    [(attrs, _)] = probe.points("anthropic_otel.resilience.limiter.wait")
    assert attrs["anthropic_otel.limiter.resource"] == "input_tokens"


def _status_error(status: int, **headers: str) -> anthropic.APIStatusError:
    import httpx2
    from anthropic._client import Anthropic

    response = httpx2.Response(status, headers=headers, request=httpx2.Request("POST", "http://127.0.0.1/v1/messages"))
    maker = Anthropic(api_key=API_KEY, base_url="http://127.0.0.1:9")
    return maker._make_status_error("error", body=None, response=response)


@pytest.mark.parametrize("status,headers,retried", [
    *[(s, {}, True) for s in (408, 409, 429, 500, 502, 503, 504, 529)],
    *[(s, {}, False) for s in (400, 401, 402, 403, 404, 413, 422, 501)],
    (501, {"x-should-retry": "true"}, True),
    (500, {"x-should-retry": "false"}, False),
    (400, {"x-should-retry": "true"}, False),  # never other 4xx
])
def test_what_is_retried(status: int, headers: dict[str, str], retried: bool) -> None:
    from anthropic_otel.resilience._classify import is_failure, retry_reason

    error = _status_error(status, **headers)
    assert (retry_reason(error) is not None) is retried
    assert is_failure(error) is (None if status == 429 else status >= 500)


def test_retry_after_forms() -> None:
    from email.utils import formatdate

    from anthropic_otel.resilience._classify import retry_after

    assert retry_after(_status_error(429, **{"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_after(_status_error(429, **{"retry-after": "1.5"})) == 1.5
    assert 8 <= (retry_after(_status_error(429, **{"retry-after": formatdate(time.time() + 10, usegmt=True)}))
                 or 0) <= 10
    assert retry_after(_status_error(429)) is None
