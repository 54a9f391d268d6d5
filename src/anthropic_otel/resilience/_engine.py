"""How one call runs: budget, then (per attempt) breaker, limits, send; retries around the attempts; the fallback
model around the retries; one `resilient {operation} {model}` span around it all."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import tenacity
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from ..cost.pricing import Pricer
from ..cost.usage import Usage
from ..telemetry import names as n
from ._breaker import Breakers
from ._budget import BudgetGuard, Reservation
from ._classify import is_failure, is_overloaded, retry_after, retry_reason
from ._config import Breaker, Budget, Limits, Retry, StreamTimeouts
from ._errors import CircuitOpenError, LimitTimeoutError, ResilienceError
from ._limiter import HeaderObserver, Lease, Limiters, Need, Stores
from ._streams import AsyncGuardedStream, Guard, GuardedStream, read_timeout
from ._telemetry import Telemetry

_MISSING: Any = object()


class Policy:
    """Everything the wrapper does, and the state it shares: breakers, limits and budget are shared by every
    client the policy wraps (sync and async alike), so wrap both flavours with one policy.

    Each feature is off until configured. With `redis_url`, rate limits and the budget live in Redis, shared by
    every process and host using the same `namespace`; concurrency limits and breakers stay in-process.
    """

    def __init__(self, *, retry: Retry | None = None, breaker: Breaker | None = None,
                 limits: Limits | Sequence[Limits] | None = None, budget: Budget | None = None,
                 fallback_model: str | None = None, stream_timeouts: StreamTimeouts | None = None,
                 redis_url: str | None = None, namespace: str = "default",
                 tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None,
                 pricer: Pricer | None = None) -> None:
        self.retry = retry
        self.fallback_model = fallback_model
        self.stream_timeouts = stream_timeouts
        self.redis_url = redis_url
        self.namespace = namespace
        self.telemetry = Telemetry(tracer_provider, meter_provider)
        self.breakers = Breakers(breaker, self.telemetry.circuit) if breaker is not None else None
        configs = [limits] if isinstance(limits, Limits) else list(limits or ())
        self.limiters = Limiters(configs, namespace, Stores(redis_url), self.telemetry.waited) if configs else None
        self.budget = BudgetGuard(budget, namespace, redis_url, pricer) if budget is not None and budget.budgets() \
            else None
        self.tracks_usage = self.budget is not None or any(
            c.input_tokens_per_minute or c.output_tokens_per_minute for c in configs)

    @property
    def active(self) -> bool:
        return any(x is not None for x in (self.retry, self.breakers, self.limiters, self.budget,
                                           self.fallback_model, self.stream_timeouts))

    def wrap(self, client: Any) -> Any:
        """`client` (any sync or async Anthropic, Bedrock or Vertex client) under this policy; the client itself
        when nothing is configured."""
        if not self.active:
            return client
        from ._client import wrap_client

        return wrap_client(client, self)

    def circuit_state(self, model: str) -> str:
        """`closed`, `open` or `half_open` (`closed` without a breaker)."""
        return "closed" if self.breakers is None else self.breakers.get(model).state

    def spent(self) -> dict[str, Any]:
        """Dollars spent (and reserved by calls in flight) today and this month (UTC), by the budget's count."""
        if self.budget is None:
            raise RuntimeError("the policy has no budget")
        return self.budget.spent()


class Call:
    """One wrapped call."""

    __slots__ = ("attempts", "attrs", "deadline", "engine", "light", "model", "need", "operation",
                 "reservation", "span", "started", "stream", "used_model", "waited")

    def __init__(self, engine: Engine, operation: str, kwargs: Mapping[str, Any], stream: bool, light: bool) -> None:
        policy = engine.policy
        self.engine = engine
        self.operation = operation
        self.model = str(kwargs.get("model", ""))
        self.used_model = self.model
        self.stream = stream
        self.light = light
        self.attrs = policy.telemetry.attrs(operation, engine.provider, self.model)
        self.span = policy.telemetry.start_span(operation, engine.provider, self.model)
        self.started = time.monotonic()
        retry = policy.retry
        self.deadline = self.started + retry.deadline if retry is not None and retry.deadline is not None else None
        self.attempts = 0
        self.waited = 0.0
        self.reservation: Reservation | None = None
        self.need: Need | None = None


def _usage_of(value: Any) -> Usage | None:
    usage = getattr(value, "usage", None)
    if usage is None or not hasattr(usage, "output_tokens"):
        return None
    return Usage.of(usage)


class _DeadlineStop(tenacity.stop.stop_base):
    """Stop before a wait that would end past the call's deadline."""

    def __init__(self, call: Call) -> None:
        self.call = call

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        deadline = self.call.deadline
        return deadline is not None and time.monotonic() + retry_state.upcoming_sleep >= deadline


class Engine:
    """A policy bound to one client: the copy it sends through, and the run loops."""

    def __init__(self, policy: Policy, client: Any) -> None:
        self.policy = policy
        self.client = client
        self.provider = str(getattr(client, "_gen_ai_provider_name", n.PROVIDER_ANTHROPIC))
        self.tracks_usage = policy.tracks_usage
        inner = client
        gate = policy.limiters.gate if policy.limiters is not None else None
        if gate is not None and hasattr(inner, "with_middleware"):
            inner = inner.with_middleware(HeaderObserver(gate))
        if policy.retry is not None:
            inner = inner.with_options(max_retries=0)  # one retry policy, not two
        self.inner = inner

    def resource(self, path: tuple[str, ...]) -> Any:
        found = self.inner
        for name in path:
            found = getattr(found, name)
        return found

    # -- shared pieces ---------------------------------------------------------------------------------------

    def _should_retry(self, call: Call, error: BaseException) -> bool:
        if retry_reason(error) is None:
            return False
        fallback = self.policy.fallback_model
        return not (fallback is not None and not call.light and call.used_model != fallback and is_overloaded(error))

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        config = self.policy.retry
        assert config is not None and retry_state.outcome is not None
        asked = retry_after(retry_state.outcome.exception())
        if asked is not None and asked > 0:
            return min(asked, config.max_retry_after)
        ceiling = min(config.max_delay, config.initial_delay * 2 ** (retry_state.attempt_number - 1))
        return random.uniform(0, ceiling)  # full jitter

    def _before_sleep(self, call: Call, retry_state: tenacity.RetryCallState) -> None:
        assert retry_state.outcome is not None
        error = retry_state.outcome.exception()
        assert error is not None
        status = getattr(error, "status_code", None)
        self.policy.telemetry.retry(call.span, call.attrs, retry_reason(error) or "unknown",
                                    retry_state.attempt_number, retry_state.upcoming_sleep,
                                    status if isinstance(status, int) else None)

    def _tenacity_args(self, call: Call) -> dict[str, Any]:
        config = self.policy.retry
        assert config is not None
        return {"stop": tenacity.stop_after_attempt(config.max_attempts) | _DeadlineStop(call),
                "wait": self._wait,
                "retry": tenacity.retry_if_exception(lambda error: self._should_retry(call, error)),
                "before_sleep": lambda state: self._before_sleep(call, state),
                "reraise": True}

    def _fallback_for(self, call: Call, kwargs: Mapping[str, Any], error: BaseException) -> str | None:
        fallback = self.policy.fallback_model
        if fallback is None or call.light or fallback == kwargs.get("model"):
            return None
        if is_overloaded(error):
            reason = "overloaded"
        elif isinstance(error, CircuitOpenError):
            reason = "circuit_open"
        else:
            return None
        self.policy.telemetry.fallback(call.span, call.attrs, fallback, reason)
        return fallback

    def _attempt_kwargs(self, call: Call, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        timeouts = self.policy.stream_timeouts
        if not call.stream or timeouts is None or timeouts.idle is None:
            return dict(kwargs)
        base = kwargs.get("timeout", _MISSING)
        if base is _MISSING or type(base).__name__ in ("NotGiven", "Omit"):
            base = getattr(self.inner, "timeout", None)
        return {**kwargs, "timeout": read_timeout(base, timeouts.idle)}

    def _need(self, call: Call, kwargs: Mapping[str, Any]) -> Need:
        model = str(kwargs.get("model", ""))
        need = call.need
        if need is None:
            need = call.need = Need(model, kwargs, call.attrs)
        elif need.model != model:
            need.model = model
        return need

    def _admit(self, call: Call, model: str) -> tuple[Any, bool]:
        breakers = self.policy.breakers
        if breakers is None or call.light:
            return None, False
        breaker = breakers.get(model)
        try:
            return breaker, breaker.admit()
        except CircuitOpenError:
            self.policy.telemetry.reject(call.attrs, CircuitOpenError.reason)
            raise

    def _rejected(self, call: Call, error: BaseException) -> None:
        if isinstance(error, LimitTimeoutError):
            self.policy.telemetry.reject(call.attrs, LimitTimeoutError.reason)

    def _open_stream(self, call: Call, stream: Any, lease: Lease | None, model: str, started: float) -> Any:
        guard = Guard(call, lease, model, started)
        guard.arm(stream)
        try:
            guard.first = stream.__next__()
            guard.observe(guard.first)
        except StopIteration:
            pass
        except BaseException as error:
            guard.disarm()
            converted = guard.convert(error)
            with contextlib.suppress(Exception):
                stream.close()
            if converted is error:
                raise
            raise converted from error
        return GuardedStream(stream, guard)

    async def _open_stream_async(self, call: Call, stream: Any, lease: Lease | None, model: str,
                                 started: float) -> Any:
        guard = Guard(call, lease, model, started)
        guard.arm_async(stream)
        try:
            guard.first = await stream.__anext__()
            guard.observe(guard.first)
        except StopAsyncIteration:
            pass
        except BaseException as error:
            guard.disarm()
            converted = guard.convert(error)
            with contextlib.suppress(Exception):
                await stream.close()
            if converted is error:
                raise
            raise converted from error
        return AsyncGuardedStream(stream, guard)

    def _finished(self, call: Call, usage: Usage | None, error: BaseException | None) -> None:
        """Ends a call that returned (or failed) without a stream still open: budget, then span."""
        policy = self.policy
        if isinstance(error, ResilienceError) and error.reason == "budget":
            policy.telemetry.reject(call.attrs, error.reason)
        if call.reservation is not None and policy.budget is not None:
            policy.budget.settle(call.reservation, call.used_model, usage)
        policy.telemetry.end_span(call.span, call.attempts, call.waited, error)

    def _stream_outcome(self, guard: Guard, error: BaseException | None) -> None:
        call = guard.call
        policy = self.policy
        if error is not None:
            if is_failure(error) and policy.breakers is not None:
                policy.breakers.get(guard.model).record(False, True)
            if isinstance(error, ResilienceError) and error.reason == "stream_timeout":
                policy.telemetry.stream_timeout(call.attrs, getattr(error, "kind", "total"))

    def stream_ended(self, guard: Guard, error: BaseException | None) -> None:
        """Called once when a guarded stream ends (exhausted, failed, closed or collected)."""
        self._stream_outcome(guard, error)
        if guard.lease is not None:
            guard.lease.settle(guard.usage)
            guard.lease.release()
        call = guard.call
        if call.reservation is not None and self.policy.budget is not None:
            self.policy.budget.settle(call.reservation, guard.model, guard.usage)
        self.policy.telemetry.end_span(call.span, call.attempts, call.waited, error)

    async def stream_ended_async(self, guard: Guard, error: BaseException | None) -> None:
        self._stream_outcome(guard, error)
        if guard.lease is not None:
            try:
                await guard.lease.settle_async(guard.usage)
            finally:
                guard.lease.release()
        call = guard.call
        if call.reservation is not None and self.policy.budget is not None:
            await self.policy.budget.settle_async(call.reservation, guard.model, guard.usage)
        self.policy.telemetry.end_span(call.span, call.attempts, call.waited, error)

    # -- sync ------------------------------------------------------------------------------------------------

    def run(self, operation: str, kwargs: Mapping[str, Any], send: Callable[[dict[str, Any]], Any], *,
            stream: bool = False, light: bool = False) -> Any:
        call = Call(self, operation, kwargs, stream, light)
        token = otel_context.attach(trace.set_span_in_context(call.span))
        try:
            try:
                if self.policy.budget is not None and not light:
                    call.reservation = self.policy.budget.reserve(call.model, self.provider, kwargs)
                value = self._with_fallback(call, kwargs, send)
            except BaseException as error:
                self._finished(call, None, error)
                raise
        finally:
            otel_context.detach(token)
        if not stream:
            self._finished(call, _usage_of(value), None)
        return value

    def _with_fallback(self, call: Call, kwargs: Mapping[str, Any], send: Callable[[dict[str, Any]], Any]) -> Any:
        try:
            if self.policy.retry is None:
                return self._attempt(call, kwargs, send)
            return tenacity.Retrying(**self._tenacity_args(call))(self._attempt, call, kwargs, send)
        except BaseException as error:
            fallback = self._fallback_for(call, kwargs, error)
            if fallback is None:
                raise
            return self._attempt(call, {**kwargs, "model": fallback}, send)

    def _attempt(self, call: Call, kwargs: Mapping[str, Any], send: Callable[[dict[str, Any]], Any]) -> Any:
        model = str(kwargs.get("model", ""))
        call.used_model = model
        breaker, probe = self._admit(call, model)
        lease = None
        try:
            if self.policy.limiters is not None and not call.light:
                lease = self.policy.limiters.acquire(self._need(call, kwargs), call.deadline)
                call.waited += lease.waited
        except BaseException as error:
            self._rejected(call, error)
            if breaker is not None:
                breaker.record(probe, None)
            raise
        call.attempts += 1
        started = time.monotonic()
        try:
            value = send(self._attempt_kwargs(call, kwargs))
            if call.stream:
                value = self._open_stream(call, value, lease, model, started)
        except BaseException as error:
            if breaker is not None:
                breaker.record(probe, is_failure(error))
            if lease is not None:
                lease.release()
            raise
        if breaker is not None:
            breaker.record(probe, False)
        if lease is not None and not call.stream:
            try:
                lease.settle(_usage_of(value))
            finally:
                lease.release()
        return value

    # -- async -----------------------------------------------------------------------------------------------

    async def run_async(self, operation: str, kwargs: Mapping[str, Any],
                        send: Callable[[dict[str, Any]], Awaitable[Any]], *, stream: bool = False,
                        light: bool = False) -> Any:
        call = Call(self, operation, kwargs, stream, light)
        token = otel_context.attach(trace.set_span_in_context(call.span))
        try:
            try:
                if self.policy.budget is not None and not light:
                    call.reservation = await self.policy.budget.reserve_async(call.model, self.provider, kwargs)
                value = await self._with_fallback_async(call, kwargs, send)
            except BaseException as error:
                await self._finished_async(call, None, error)
                raise
        finally:
            otel_context.detach(token)
        if not stream:
            await self._finished_async(call, _usage_of(value), None)
        return value

    async def _finished_async(self, call: Call, usage: Usage | None, error: BaseException | None) -> None:
        if call.reservation is not None and self.policy.budget is not None and self.policy.redis_url is not None:
            await self.policy.budget.settle_async(call.reservation, call.used_model, usage)
        self._finished(call, usage, error)

    async def _with_fallback_async(self, call: Call, kwargs: Mapping[str, Any],
                                   send: Callable[[dict[str, Any]], Awaitable[Any]]) -> Any:
        try:
            if self.policy.retry is None:
                return await self._attempt_async(call, kwargs, send)
            retrying = tenacity.AsyncRetrying(sleep=asyncio.sleep, **self._tenacity_args(call))
            return await retrying(self._attempt_async, call, kwargs, send)
        except BaseException as error:
            fallback = self._fallback_for(call, kwargs, error)
            if fallback is None:
                raise
            return await self._attempt_async(call, {**kwargs, "model": fallback}, send)

    async def _attempt_async(self, call: Call, kwargs: Mapping[str, Any],
                             send: Callable[[dict[str, Any]], Awaitable[Any]]) -> Any:
        model = str(kwargs.get("model", ""))
        call.used_model = model
        breaker, probe = self._admit(call, model)
        lease = None
        try:
            if self.policy.limiters is not None and not call.light:
                lease = await self.policy.limiters.acquire_async(self._need(call, kwargs), call.deadline)
                call.waited += lease.waited
        except BaseException as error:
            self._rejected(call, error)
            if breaker is not None:
                breaker.record(probe, None)
            raise
        call.attempts += 1
        started = time.monotonic()
        try:
            value = await send(self._attempt_kwargs(call, kwargs))
            if call.stream:
                value = await self._open_stream_async(call, value, lease, model, started)
        except BaseException as error:
            if breaker is not None:
                breaker.record(probe, is_failure(error))
            if lease is not None:
                lease.release()
            raise
        if breaker is not None:
            breaker.record(probe, False)
        if lease is not None and not call.stream:
            try:
                await lease.settle_async(_usage_of(value))
            finally:
                lease.release()
        return value
