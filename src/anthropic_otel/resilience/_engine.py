"""How one call runs: budget, then (per attempt) breaker, limits, send; retries around the attempts; the fallback
model around the retries; one `resilient {operation} {model}` span around it all.

The logic is written once, as generators that yield each step that blocks (reserve, acquire, send, read the
first event, sleep, settle) as a tuple `(name, *arguments)`; `_drive` runs those steps with blocking calls and
`_drive_async` awaits them, the way tenacity drives one retry state machine from both worlds (its `iter()` is
used here too, with the sleep left to the driver). A driver costs a tuple and a method lookup per step, a few
steps per call and none per stream event.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

import tenacity
from opentelemetry import context as otel_context
from opentelemetry import trace

from ..cost.usage import Usage
from ..telemetry import faults
from ..telemetry import names as n
from ._budget import Reservation
from ._classify import is_failure, is_overloaded, retry_after, retry_reason
from ._errors import CircuitOpenError, LimitTimeoutError, ResilienceError, StreamTimeoutError
from ._limiter import HeaderObserver, Lease, Need
from ._run_budget import RunHold
from ._shared import Shared
from ._streams import NOTHING, AsyncGuardedStream, Guard, GuardedStream, read_timeout

_MISSING: Any = object()
_REFUSALS = frozenset({"budget", "store_unavailable"})  # counted as rejections when the call ends

Step = tuple[Any, ...]  # (name of a driver method, *its arguments)
Steps = Generator[Step, Any, Any]


class GuardedCall:
    """One wrapped call (named apart from the instrumentation's `Call`, which is one attempt's telemetry)."""

    __slots__ = ("attempts", "attrs", "deadline", "light", "model", "need", "operation", "reservation",
                 "run_hold", "span", "started", "stream", "used_model", "waited")

    def __init__(self, shared: Shared, provider: str, operation: str, kwargs: Mapping[str, Any], stream: bool,
                 light: bool) -> None:
        self.operation = operation
        self.model = str(kwargs.get("model", ""))
        self.used_model = self.model
        self.stream = stream
        self.light = light
        self.attrs = shared.metrics.attrs(operation, provider, self.model)
        self.span = shared.metrics.start_span(operation, provider, self.model)
        self.started = time.monotonic()
        retry = shared.retry
        self.deadline = self.started + retry.deadline if retry is not None and retry.deadline is not None else None
        self.attempts = 0
        self.waited = 0.0
        self.reservation: Reservation | None = None
        self.run_hold: RunHold | None = None
        self.need: Need | None = None


def _usage_of(value: Any) -> Usage | None:
    usage = getattr(value, "usage", None)
    if usage is None or not hasattr(usage, "output_tokens"):
        return None
    return Usage.of(usage)


class _DeadlineStop(tenacity.stop.stop_base):
    """Stop before a wait that would end past the call's deadline."""

    def __init__(self, call: GuardedCall) -> None:
        self.call = call

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        deadline = self.call.deadline
        return deadline is not None and time.monotonic() + retry_state.upcoming_sleep >= deadline


# -- drivers ---------------------------------------------------------------------------------------------------


class _Blocking:
    """Runs the steps with blocking calls (threads)."""

    __slots__ = ("engine", "send_fn")

    def __init__(self, engine: Engine, send_fn: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.engine = engine
        self.send_fn = send_fn

    def reserve(self, models: tuple[str, ...], kwargs: Mapping[str, Any]) -> Reservation:
        budget = self.engine.shared.budget
        assert budget is not None
        return budget.reserve(models, self.engine.provider, kwargs)

    def acquire(self, need: Need, deadline: float | None) -> Lease:
        limiters = self.engine.shared.limiters
        assert limiters is not None
        return limiters.acquire(need, deadline)

    def send(self, kwargs: dict[str, Any]) -> Any:
        assert self.send_fn is not None
        return self.send_fn(kwargs)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)

    @staticmethod
    def open(stream: Any, guard: Guard) -> Any:
        guard.arm(stream, in_event_loop=False)
        try:
            return stream.__next__()
        except StopIteration:
            return NOTHING

    @staticmethod
    def close(stream: Any) -> None:
        with contextlib.suppress(Exception):
            stream.close()

    @staticmethod
    def guarded(stream: Any, guard: Guard) -> Any:
        return GuardedStream(stream, guard)

    @staticmethod
    def settle_lease(lease: Lease, usage: Usage | None) -> None:
        lease.settle(usage)

    def settle_budget(self, reservation: Reservation, model: str, usage: Usage | None) -> None:
        budget = self.engine.shared.budget
        assert budget is not None
        budget.settle(reservation, model, usage)


class _Awaiting:
    """Awaits the steps (asyncio)."""

    __slots__ = ("engine", "send_fn")

    def __init__(self, engine: Engine, send_fn: Callable[[dict[str, Any]], Awaitable[Any]] | None = None) -> None:
        self.engine = engine
        self.send_fn = send_fn

    async def reserve(self, models: tuple[str, ...], kwargs: Mapping[str, Any]) -> Reservation:
        budget = self.engine.shared.budget
        assert budget is not None
        return await budget.reserve_async(models, self.engine.provider, kwargs)

    async def acquire(self, need: Need, deadline: float | None) -> Lease:
        limiters = self.engine.shared.limiters
        assert limiters is not None
        return await limiters.acquire_async(need, deadline)

    async def send(self, kwargs: dict[str, Any]) -> Any:
        assert self.send_fn is not None
        return await self.send_fn(kwargs)

    @staticmethod
    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds)

    @staticmethod
    async def open(stream: Any, guard: Guard) -> Any:
        guard.arm(stream, in_event_loop=True)
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return NOTHING

    @staticmethod
    async def close(stream: Any) -> None:
        with contextlib.suppress(Exception):
            await stream.close()

    @staticmethod
    async def guarded(stream: Any, guard: Guard) -> Any:
        return AsyncGuardedStream(stream, guard)

    @staticmethod
    async def settle_lease(lease: Lease, usage: Usage | None) -> None:
        await lease.settle_async(usage)

    async def settle_budget(self, reservation: Reservation, model: str, usage: Usage | None) -> None:
        budget = self.engine.shared.budget
        assert budget is not None
        await budget.settle_async(reservation, model, usage)


def _drive(steps: Steps, runner: _Blocking) -> Any:
    """Runs `steps` to its return value, each step a blocking call."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            value = getattr(runner, step[0])(*step[1:])
        except BaseException as failed:  # handed to the generator, which decides
            error = failed


async def _drive_async(steps: Steps, runner: _Awaiting) -> Any:
    """`_drive`, awaiting each step."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            value = await getattr(runner, step[0])(*step[1:])
        except BaseException as failed:
            error = failed


class Engine:
    """A policy bound to one client: the copy it sends through, and the one implementation of a call."""

    def __init__(self, shared: Shared, client: Any) -> None:
        self.shared = shared
        self.client = client
        self.provider = str(getattr(client, "_gen_ai_provider_name", n.PROVIDER_ANTHROPIC))
        self.tracks_usage = shared.tracks_usage
        inner = client
        gate = shared.limiters.gate if shared.limiters is not None else None
        if gate is not None and hasattr(inner, "with_middleware"):
            inner = inner.with_middleware(HeaderObserver(gate))
        if shared.retry is not None:
            inner = inner.with_options(max_retries=0)  # one retry policy, not two
        self.inner = inner
        self._blocking = _Blocking(self)
        self._awaiting = _Awaiting(self)

    def resource(self, path: tuple[str, ...]) -> Any:
        found = self.inner
        for name in path:
            found = getattr(found, name)
        return found

    # -- entry points (the drivers) --------------------------------------------------------------------------

    def run(self, operation: str, kwargs: Mapping[str, Any], send: Callable[[dict[str, Any]], Any], *,
            stream: bool = False, light: bool = False) -> Any:
        call = GuardedCall(self.shared, self.provider, operation, kwargs, stream, light)
        token = otel_context.attach(trace.set_span_in_context(call.span))
        try:
            return _drive(self._call(call, kwargs), _Blocking(self, send))
        finally:
            otel_context.detach(token)

    async def run_async(self, operation: str, kwargs: Mapping[str, Any],
                        send: Callable[[dict[str, Any]], Awaitable[Any]], *, stream: bool = False,
                        light: bool = False) -> Any:
        call = GuardedCall(self.shared, self.provider, operation, kwargs, stream, light)
        token = otel_context.attach(trace.set_span_in_context(call.span))
        try:
            return await _drive_async(self._call(call, kwargs), _Awaiting(self, send))
        finally:
            otel_context.detach(token)

    def stream_ended(self, guard: Guard, error: BaseException | None, completed: bool) -> None:
        """Called once when a guarded stream ends (exhausted, failed, closed or collected)."""
        _drive(self._end_stream(guard, error, completed), self._blocking)

    async def stream_ended_async(self, guard: Guard, error: BaseException | None, completed: bool) -> None:
        await _drive_async(self._end_stream(guard, error, completed), self._awaiting)

    # -- the call --------------------------------------------------------------------------------------------

    def _call(self, call: GuardedCall, kwargs: Mapping[str, Any]) -> Steps:
        try:
            if self.shared.run_budget is not None and not call.light:  # in memory: no step to yield
                call.run_hold = self.shared.run_budget.hold(self._priced_models(kwargs), self.provider, kwargs)
            if self.shared.budget is not None and not call.light:
                call.reservation = yield ("reserve", self._priced_models(kwargs), kwargs)
            value = yield from self._with_fallback(call, kwargs)
        except BaseException as error:
            yield from self._finish(call, None, error)
            raise
        if not call.stream:
            yield from self._finish(call, _usage_of(value), None)
        return value

    def _priced_models(self, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
        """The models the call may be billed for: its own, and the fallback model that may replace it."""
        model = str(kwargs.get("model", ""))
        fallback = self.shared.fallback_model
        return (model,) if fallback is None or fallback == model else (model, fallback)

    def _finish(self, call: GuardedCall, usage: Usage | None, error: BaseException | None) -> Steps:
        """Ends a call that returned (or failed) without a stream still open: budget, then the span, once. Never
        raises: a response the API returned is the caller's whatever happens to the bookkeeping."""
        shared = self.shared
        try:
            if isinstance(error, ResilienceError) and error.reason in _REFUSALS:
                shared.metrics.reject(call.attrs, error.reason)
            if call.run_hold is not None:
                call.run_hold.release()
            if call.reservation is not None:
                try:
                    yield ("settle_budget", call.reservation, call.used_model, usage)
                except Exception as fault:
                    faults.report("resilience.budget.settle", fault)
        finally:
            shared.metrics.end_span(call.span, call.attempts, call.waited, error)

    def _with_fallback(self, call: GuardedCall, kwargs: Mapping[str, Any]) -> Steps:
        try:
            return (yield from self._retrying(call, kwargs))
        except BaseException as error:
            fallback = self._fallback_for(call, kwargs, error)
            if fallback is None:
                raise
            return (yield from self._attempt(call, {**kwargs, "model": fallback}))

    def _retrying(self, call: GuardedCall, kwargs: Mapping[str, Any]) -> Steps:
        """The attempts under tenacity's state machine (`Retrying.iter`), its sleeps left to the driver."""
        if self.shared.retry is None:
            return (yield from self._attempt(call, kwargs))
        retrying = tenacity.Retrying(**self._tenacity_args(call))
        retrying.begin()
        state = tenacity.RetryCallState(retrying, fn=None, args=(), kwargs={})
        while True:
            action = retrying.iter(state)
            if isinstance(action, tenacity.DoAttempt):
                try:
                    value = yield from self._attempt(call, kwargs)
                except BaseException:  # as tenacity's own __call__: its `retry` predicate decides
                    state.set_exception(sys.exc_info())  # type: ignore[arg-type]
                else:
                    state.set_result(value)
            elif isinstance(action, tenacity.DoSleep):
                state.prepare_for_next_attempt()
                yield ("sleep", float(action))
            else:
                return action

    def _attempt(self, call: GuardedCall, kwargs: Mapping[str, Any]) -> Steps:
        model = str(kwargs.get("model", ""))
        call.used_model = model
        breaker, probe = self._admit(call, model)
        lease = None
        try:
            if self.shared.limiters is not None and not call.light:
                lease = yield ("acquire", self._need(call, kwargs), call.deadline)
                call.waited += lease.waited
        except BaseException as error:
            if isinstance(error, LimitTimeoutError):
                self.shared.metrics.reject(call.attrs, LimitTimeoutError.reason)
            if breaker is not None:
                breaker.record(probe, None)
            raise
        call.attempts += 1
        guard = None
        if call.stream:
            guard = Guard(call, self.shared.stream_timeouts, self.tracks_usage, lease, model, time.monotonic(),
                          self.stream_ended, self.stream_ended_async)
        try:
            value = yield ("send", self._attempt_kwargs(call, kwargs, guard))
            if guard is not None:
                value = yield from self._open_stream(guard, value)
        except BaseException as error:
            converted = guard.convert(error) if guard is not None else error
            if breaker is not None:
                breaker.record(probe, is_failure(converted))
            if lease is not None:
                lease.release()
            if converted is error:
                raise
            raise converted from error
        if guard is not None:  # the stream's end tells the breaker and settles the lease
            guard.breaker, guard.probe = breaker, probe
            return value
        if breaker is not None:
            breaker.record(probe, False)
        if lease is not None:
            try:
                yield ("settle_lease", lease, _usage_of(value))
            finally:
                lease.release()
        return value

    def _open_stream(self, guard: Guard, stream: Any) -> Steps:
        """Reads the first event before handing the stream out, so a stream failing at once can be retried."""
        try:
            first = yield ("open", stream, guard)
            if first is not NOTHING:
                guard.first = first
                guard.observe(first)
        except BaseException:
            guard.disarm()
            yield ("close", stream)
            raise
        return (yield ("guarded", stream, guard))

    def _end_stream(self, guard: Guard, error: BaseException | None, completed: bool) -> Steps:
        """A stream's end: the breaker hears a failure, or a success only when the stream was read to its end (a
        stalled stream is a failure, one closed early says nothing); then the lease, the budget, the span."""
        call: GuardedCall = guard.call
        metrics = self.shared.metrics
        try:
            if guard.breaker is not None:
                guard.breaker.record(guard.probe, is_failure(error) if error is not None else
                                     (False if completed else None))
            if isinstance(error, StreamTimeoutError):
                metrics.stream_timeout(call.attrs, error.kind)
            if call.run_hold is not None:
                call.run_hold.release()
            if guard.lease is not None:
                try:
                    yield ("settle_lease", guard.lease, guard.usage)
                finally:
                    guard.lease.release()
            if call.reservation is not None:
                try:
                    yield ("settle_budget", call.reservation, guard.model, guard.usage)
                except Exception as fault:
                    faults.report("resilience.budget.settle", fault)
        finally:
            metrics.end_span(call.span, call.attempts, call.waited, error)

    # -- decisions (no blocking) -----------------------------------------------------------------------------

    def _should_retry(self, call: GuardedCall, error: BaseException) -> bool:
        if retry_reason(error) is None:
            return False
        fallback = self.shared.fallback_model
        return not (fallback is not None and not call.light and call.used_model != fallback and is_overloaded(error))

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        config = self.shared.retry
        assert config is not None and retry_state.outcome is not None
        asked = retry_after(retry_state.outcome.exception())
        if asked is not None and asked > 0:
            return min(asked, config.max_retry_after)
        ceiling = min(config.max_delay, config.initial_delay * 2 ** (retry_state.attempt_number - 1))
        return random.uniform(0, ceiling)  # full jitter

    def _before_sleep(self, call: GuardedCall, retry_state: tenacity.RetryCallState) -> None:
        assert retry_state.outcome is not None
        error = retry_state.outcome.exception()
        assert error is not None
        status = getattr(error, "status_code", None)
        self.shared.metrics.retry(call.span, call.attrs, retry_reason(error) or "unknown",
                                  retry_state.attempt_number, retry_state.upcoming_sleep,
                                  status if isinstance(status, int) else None)

    def _tenacity_args(self, call: GuardedCall) -> dict[str, Any]:
        config = self.shared.retry
        assert config is not None
        return {"stop": tenacity.stop_after_attempt(config.max_attempts) | _DeadlineStop(call),
                "wait": self._wait,
                "retry": tenacity.retry_if_exception(lambda error: self._should_retry(call, error)),
                "before_sleep": lambda state: self._before_sleep(call, state),
                "reraise": True}

    def _fallback_for(self, call: GuardedCall, kwargs: Mapping[str, Any], error: BaseException) -> str | None:
        fallback = self.shared.fallback_model
        if fallback is None or call.light or fallback == kwargs.get("model"):
            return None
        if is_overloaded(error):
            reason = "overloaded"
        elif isinstance(error, CircuitOpenError):
            reason = "circuit_open"
        else:
            return None
        self.shared.metrics.fallback(call.span, call.attrs, fallback, reason)
        return fallback

    def _attempt_kwargs(self, call: GuardedCall, kwargs: Mapping[str, Any], guard: Guard | None) -> dict[str, Any]:
        limit = guard.read_limit if guard is not None else None
        if limit is None:
            return dict(kwargs)
        base = kwargs.get("timeout", _MISSING)
        if base is _MISSING or type(base).__name__ in ("NotGiven", "Omit"):
            base = getattr(self.inner, "timeout", None)
        return {**kwargs, "timeout": read_timeout(base, limit)}

    def _need(self, call: GuardedCall, kwargs: Mapping[str, Any]) -> Need:
        model = str(kwargs.get("model", ""))
        need = call.need
        if need is None:
            need = call.need = Need(model, kwargs, call.attrs)
        elif need.model != model:
            need.model = model
        return need

    def _admit(self, call: GuardedCall, model: str) -> tuple[Any, bool]:
        breakers = self.shared.breakers
        if breakers is None or call.light:
            return None, False
        breaker = breakers.get(model)
        try:
            return breaker, breaker.admit()
        except CircuitOpenError:
            self.shared.metrics.reject(call.attrs, CircuitOpenError.reason)
            raise
