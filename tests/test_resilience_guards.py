"""The wrapper's guards under attack: bad configuration, a budget under 64 threads of cache-writing prompts, a model
with no price, stalled streams and the breaker, and stream deadlines before the response headers."""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest

from anthropic_otel.cost.pricing import Pricer
from anthropic_otel.cost.usage import Usage
from anthropic_otel.resilience import (
    Breaker,
    Budget,
    BudgetExceededError,
    CircuitOpenError,
    Limits,
    Policy,
    Retry,
    StoreFailure,
    StreamTimeoutError,
    StreamTimeouts,
    wrap,
)
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, MODEL, ask
from test_resilience import Probe
from test_resilience_streams import StallProxy

# -- configuration ---------------------------------------------------------------------------------------------

_NUMBERS = {
    # class: {setting: (kind, smallest allowed)}; kind "int" or "real"; smallest: ">0" or a minimum
    Retry: {"max_attempts": ("int", 1), "deadline": ("real", ">0"), "initial_delay": ("real", 0),
            "max_delay": ("real", 0), "max_retry_after": ("real", 0)},
    Breaker: {"failure_threshold": ("int", 1), "recovery_timeout": ("real", ">0"), "half_open_probes": ("int", 1),
              "success_threshold": ("int", 1), "state_ttl": ("real", ">0")},
    Limits: {"concurrency": ("int", 1), "requests_per_minute": ("int", 1), "input_tokens_per_minute": ("int", 1),
             "output_tokens_per_minute": ("int", 1), "max_wait": ("real", 0), "window_seconds": ("int", 1),
             "output_estimate": ("int", 1)},
    Budget: {"day": ("real", ">0"), "month": ("real", ">0"), "per_run": ("real", ">0")},
    StreamTimeouts: {"total": ("real", ">0"), "idle": ("real", ">0")},
}
_FLAGS = {Limits: ("per_model", "from_headers"), Budget: ("worst_case",)}


def _bad_values() -> Iterator[Any]:
    for cls, settings in _NUMBERS.items():
        for name, (kind, smallest) in settings.items():
            below = [-1, 0] if smallest == ">0" else [smallest - 1, -3]
            for value in [*below, math.nan, math.inf, -math.inf, "abc", "5", True, False, [1]]:
                wrong_type = isinstance(value, str | bool | list) or (kind == "int" and isinstance(value, float))
                error = TypeError if wrong_type else ValueError
                yield pytest.param(cls, name, value, error, id=f"{cls.__name__}.{name}={value!r}")
            if kind == "int":
                yield pytest.param(cls, name, 2.5, TypeError, id=f"{cls.__name__}.{name}=2.5")
    for cls, flags in _FLAGS.items():
        for name in flags:
            for value in ("false", 0, 1, None):
                yield pytest.param(cls, name, value, TypeError, id=f"{cls.__name__}.{name}={value!r}")
    yield pytest.param(Limits, "per_key", "", TypeError, id="Limits.per_key=''")
    yield pytest.param(Limits, "per_key", 3, TypeError, id="Limits.per_key=3")
    for name in ("limits", "budget"):
        for value in ("shut", "", None, True):
            yield pytest.param(StoreFailure, name, value, ValueError, id=f"StoreFailure.{name}={value!r}")


@pytest.mark.parametrize(("cls", "name", "value", "error"), list(_bad_values()))
def test_every_setting_rejects_bad_values_at_construction_naming_it(cls: Any, name: str, value: Any,
                                                                     error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        cls(**{name: value})
    assert f"{cls.__name__}.{name}" in str(raised.value)


@pytest.mark.parametrize(("cls", "name", "value"), [
    (Retry, "initial_delay", 0), (Retry, "deadline", None), (Limits, "max_wait", 0), (Budget, "day", Decimal("2.5")),
    (Budget, "month", 3), (Limits, "concurrency", None), (StreamTimeouts, "idle", 0.05), (Breaker, "recovery_timeout",
                                                                                           0.01)])
def test_good_edge_values_are_accepted(cls: Any, name: str, value: Any) -> None:
    assert getattr(cls(**{name: value}), name) == value


@pytest.mark.parametrize(("options", "setting"), [
    ({"retry": {"max_attempts": 3}}, "retry"), ({"budget": 0.5}, "budget"), ({"breaker": "on"}, "breaker"),
    ({"stream_timeouts": 5}, "stream_timeouts"), ({"limits": [Limits(), "x"]}, "limits"),
    ({"store_failure": "open"}, "store_failure"), ({"fallback_model": 3}, "fallback_model"),
    ({"redis_url": 6379}, "redis_url"), ({"namespace": None}, "namespace"), ({"namespace": ""}, "namespace"),
    ({"fallback_model": ""}, "fallback_model"), ({"pricer": {}}, "pricer")])
def test_the_policy_checks_its_settings(options: dict[str, Any], setting: str) -> None:
    with pytest.raises((TypeError, ValueError)) as raised:
        Policy(**options)
    assert setting in str(raised.value)


# -- budget ----------------------------------------------------------------------------------------------------


def _cost_of(call: Any, pricer: Pricer) -> Decimal:
    usage = Usage.of(anthropic.types.Usage.model_validate(call.usage))
    cost = pricer.cost(call.model or MODEL, "anthropic", usage)
    assert cost is not None
    return cost.total


@pytest.mark.parametrize("ttl", ["1h", "5m"])
def test_the_budget_holds_under_64_threads_of_cache_writing_prompts(client: anthropic.Anthropic,
                                                                    fake: FakeAnthropicServer, ttl: str) -> None:
    """Each prompt writes a fresh cache prefix of about 10,000 tokens (a 1-hour write costs twice the input
    price, a 5-minute one 1.25x): the worst case must price the input at that rate, or 64 calls reserved at the
    input price overspend. Checked against the server's log, priced exactly."""
    budget = Decimal("0.5")
    policy = Policy(budget=Budget(day=float(budget)))
    resilient = wrap(client, policy)
    counter = itertools.count()
    refused: list[BudgetExceededError] = []
    control = {"type": "ephemeral", "ttl": ttl} if ttl == "1h" else {"type": "ephemeral"}

    def caller() -> None:
        for _ in range(2):
            prefix = f"prompt {next(counter)}: " + "cacheable context " * 2_250  # ~40,000 characters
            try:
                resilient.messages.create(**ask(max_tokens=20, system=[
                    {"type": "text", "text": prefix, "cache_control": control}]))
            except BudgetExceededError as error:
                refused.append(error)

    threads = [threading.Thread(target=caller) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answered = [c for c in fake.calls if c.status == 200]
    assert len(answered) + len(refused) == 128 and refused
    key = "ephemeral_1h_input_tokens" if ttl == "1h" else "ephemeral_5m_input_tokens"
    assert all(c.usage["cache_creation"][key] > 9_000 for c in answered)  # every call paid a cache write
    pricer = Pricer()
    spent = sum((_cost_of(c, pricer) for c in answered), Decimal(0))
    assert spent <= budget, f"{len(answered)} calls spent ${spent} of ${budget}"
    assert spent > budget * Decimal("0.8")  # and the guard does not refuse far below the budget
    assert policy.spent()["day"] == spent  # every reservation was replaced by the real cost


def test_a_model_with_no_known_price_is_refused_under_a_budget(client: anthropic.Anthropic,
                                                               fake: FakeAnthropicServer) -> None:
    resilient = wrap(client, budget=Budget(day=1_000_000, worst_case=False))
    with pytest.raises(BudgetExceededError) as refused:
        resilient.messages.create(**ask(model="claude-no-such-model-9"))
    assert refused.value.unpriced == "claude-no-such-model-9"
    assert "no price is known" in str(refused.value)
    assert not fake.calls  # nothing was sent


def test_a_fallback_model_with_no_known_price_is_refused_too(client: anthropic.Anthropic,
                                                             fake: FakeAnthropicServer) -> None:
    resilient = wrap(client, budget=Budget(day=10), fallback_model="claude-no-such-model-9")
    with pytest.raises(BudgetExceededError) as refused:
        resilient.messages.create(**ask())
    assert refused.value.unpriced == "claude-no-such-model-9" and not fake.calls


# -- stalled streams and the breaker ---------------------------------------------------------------------------


@pytest.fixture
def stall(fake: FakeAnthropicServer) -> Iterator[StallProxy]:
    with StallProxy(fake.base_url, events=5) as proxy:
        yield proxy


@pytest.mark.parametrize("timeouts", [StreamTimeouts(idle=0.3), StreamTimeouts(total=0.5)], ids=["idle", "total"])
def test_stalled_streams_open_the_breaker(stall: StallProxy, fake: FakeAnthropicServer,
                                          timeouts: StreamTimeouts) -> None:
    policy = Policy(breaker=Breaker(failure_threshold=2, recovery_timeout=60), stream_timeouts=timeouts)
    with anthropic.Anthropic(base_url=stall.base_url, api_key=API_KEY, max_retries=0) as raw:
        resilient = wrap(raw, policy)
        for _ in range(2):
            stream = resilient.messages.create(**ask(stream=True))
            with pytest.raises(StreamTimeoutError):
                for _event in stream:
                    pass
        assert policy.circuit_state(MODEL) == "open"
        with pytest.raises(CircuitOpenError):
            resilient.messages.create(**ask(stream=True))
    assert len(fake.calls) == 2  # the third was refused without being sent


async def test_stalled_streams_open_the_breaker_async(stall: StallProxy) -> None:
    policy = Policy(breaker=Breaker(failure_threshold=2, recovery_timeout=60), stream_timeouts=StreamTimeouts(idle=0.3))
    async with anthropic.AsyncAnthropic(base_url=stall.base_url, api_key=API_KEY, max_retries=0) as raw:
        resilient = wrap(raw, policy)
        for _ in range(2):
            async with resilient.messages.stream(**ask()) as stream:
                with pytest.raises(StreamTimeoutError):
                    await stream.get_final_message()
    assert policy.circuit_state(MODEL) == "open"


def test_a_completed_stream_is_the_success_that_closes_a_half_open_breaker(client: anthropic.Anthropic,
                                                                          fake: FakeAnthropicServer) -> None:
    """The probe's verdict comes at the stream's end: while it is being read the circuit stays half-open."""
    policy = Policy(breaker=Breaker(failure_threshold=1, recovery_timeout=0.2))
    resilient = wrap(client, policy)
    fake.script("server_error")
    with pytest.raises(anthropic.InternalServerError):
        resilient.messages.create(**ask())
    assert policy.circuit_state(MODEL) == "open"
    deadline = time.monotonic() + 10
    while policy.circuit_state(MODEL) != "half_open" and time.monotonic() < deadline:
        time.sleep(0.05)
    stream = resilient.messages.create(**ask(stream=True))
    next(iter(stream))
    assert policy.breakers is not None and policy.breakers.get(MODEL).state == "half_open"
    for _event in stream:
        pass
    assert policy.circuit_state(MODEL) == "closed"


def test_the_circuit_state_gauge_expires_without_calls(client: anthropic.Anthropic, fake: FakeAnthropicServer) -> None:
    """The state is read at collection (open, then half-open once the recovery timeout passed) and a model with no
    call for `state_ttl` seconds stops reporting it, instead of its last state forever."""
    probe = Probe()
    policy = probe.policy(breaker=Breaker(failure_threshold=1, recovery_timeout=0.3, state_ttl=1.0))
    fake.script("server_error")
    with pytest.raises(anthropic.InternalServerError):
        wrap(client, policy).messages.create(**ask())
    last_call = time.monotonic()
    states = {a["gen_ai.request.model"]: v for a, v in probe.points("anthropic_otel.resilience.circuit.state")}
    if time.monotonic() - last_call < 0.3:  # read before the recovery timeout (almost always)
        assert states == {MODEL: 2}
    while time.monotonic() - last_call < 0.5:
        time.sleep(0.05)
    states = {a["gen_ai.request.model"]: v for a, v in probe.points("anthropic_otel.resilience.circuit.state")}
    if time.monotonic() - last_call < 1.0:
        assert states == {MODEL: 1}  # half-open: the next call is a probe
    while time.monotonic() - last_call <= 1.1:
        time.sleep(0.05)
    assert probe.points("anthropic_otel.resilience.circuit.state") == []


# -- deadlines before the response headers ---------------------------------------------------------------------


def test_the_total_deadline_holds_before_the_response_headers(client: anthropic.Anthropic,
                                                              fake: FakeAnthropicServer) -> None:
    resilient = wrap(client, stream_timeouts=StreamTimeouts(total=1))
    began = time.monotonic()
    with pytest.raises(StreamTimeoutError) as cut:
        resilient.messages.create(**ask(stream=True, extra_headers={"x-fake-delay-ms": "3000"}))
    assert time.monotonic() - began < 2.5  # not the 3 s the server stalls
    assert cut.value.kind == "total" and cut.value.timeout == 1 and cut.value.partial_text == ""


async def test_the_total_deadline_holds_before_the_response_headers_async(aclient: anthropic.AsyncAnthropic) -> None:
    resilient = wrap(aclient, stream_timeouts=StreamTimeouts(total=1, idle=5))
    began = time.monotonic()
    with pytest.raises(StreamTimeoutError) as cut:
        async with resilient.messages.stream(**ask(extra_headers={"x-fake-delay-ms": "3000"})) as stream:
            await stream.get_final_message()
    assert time.monotonic() - began < 2.5
    assert cut.value.kind == "total"


def test_the_idle_timeout_before_the_headers_is_a_stream_timeout(client: anthropic.Anthropic,
                                                                 fake: FakeAnthropicServer) -> None:
    """Not the SDK's `APITimeoutError`: the wrapper's own error, retried like a timeout (then the last one)."""
    resilient = wrap(client, retry=Retry(max_attempts=2, initial_delay=0.01),
                     stream_timeouts=StreamTimeouts(idle=0.5))
    with pytest.raises(StreamTimeoutError) as cut:
        resilient.messages.create(**ask(stream=True, extra_headers={"x-fake-delay-ms": "3000"}))
    assert cut.value.kind == "idle" and isinstance(cut.value.__cause__, anthropic.APITimeoutError)


def test_a_stream_well_inside_its_deadlines_is_untouched(client: anthropic.Anthropic,
                                                         fake: FakeAnthropicServer) -> None:
    resilient = wrap(client, stream_timeouts=StreamTimeouts(total=30, idle=10),
                     limits=Limits(concurrency=2))
    with resilient.messages.stream(**ask(extra_headers={"x-fake-delay-ms": "200"})) as stream:
        message = stream.get_final_message()
    assert message.content and fake.calls[0].completed


async def test_async_and_sync_drivers_share_one_budget(client: anthropic.Anthropic,
                                                       aclient: anthropic.AsyncAnthropic,
                                                       fake: FakeAnthropicServer) -> None:
    policy = Policy(budget=Budget(day=1.0))
    await asyncio.to_thread(wrap(client, policy).messages.create, **ask())
    await wrap(aclient, policy).messages.create(**ask())
    pricer = Pricer()
    assert len(fake.calls) == 2
    assert policy.spent()["day"] == sum((_cost_of(c, pricer) for c in fake.calls), Decimal(0))
