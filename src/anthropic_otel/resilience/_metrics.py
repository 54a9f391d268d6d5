"""The wrapper's spans and metrics, from the global providers unless the policy was given its own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from ..instrumentation.call import error_type
from ..telemetry import names as n
from ..version import __version__
from ._breaker import STATE_VALUE

_log = logging.getLogger("anthropic_otel")


class ResilienceMetrics:
    def __init__(self, tracer_provider: TracerProvider | None = None,
                 meter_provider: MeterProvider | None = None) -> None:
        self.tracer = trace.get_tracer(n.SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(n.SCOPE, __version__, meter_provider)
        self._attrs: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.retries = meter.create_counter(
            n.M_RESILIENCE_RETRIES, unit="{retry}", description="Retries made by the resilience wrapper, by reason.")
        self.rejected = meter.create_counter(
            n.M_RESILIENCE_REJECTED, unit="{request}",
            description="Calls the resilience wrapper refused without sending them, by reason.")
        self.fallbacks = meter.create_counter(
            n.M_RESILIENCE_FALLBACKS, unit="{request}", description="Calls moved to the fallback model.")
        self.stream_timeouts = meter.create_counter(
            n.M_RESILIENCE_STREAM_TIMEOUTS, unit="{stream}", description="Streams cut at their idle or total timeout.")
        self.transitions = meter.create_counter(
            n.M_RESILIENCE_CIRCUIT_TRANSITIONS, unit="{transition}",
            description="Circuit breaker state changes, by the state entered.")
        # Observed, not set: the state is read at collection (an open circuit past its recovery timeout reports
        # half-open), and a model with no call for `state_ttl` seconds stops reporting instead of its last state.
        self.state_ttl = 900.0
        self.circuit_source: Callable[[], list[tuple[str, str, float]]] | None = None
        self._circuits: dict[str, tuple[str, float]] = {}
        self.circuit_state = meter.create_observable_gauge(
            n.M_RESILIENCE_CIRCUIT_STATE, callbacks=[self._observe_circuits], unit="1",
            description="Circuit breaker state per model: 0 closed, 1 half-open, 2 open.")
        self.store_failures = meter.create_counter(
            n.M_RESILIENCE_STORE_FAILURES, unit="{failure}",
            description="Operations on the shared store (Redis) that failed, by component and stage.")
        self._store_logged: set[tuple[str, str]] = set()
        self.limiter_wait = meter.create_histogram(
            n.M_RESILIENCE_LIMITER_WAIT, unit="s", description="Time calls waited for a limit (calls that waited).",
            explicit_bucket_boundaries_advisory=list(n.DURATION_BUCKETS))

    def attrs(self, operation: str, provider: str, model: str) -> dict[str, Any]:
        key = (operation, provider, model)
        found = self._attrs.get(key)
        if found is None:
            found = {n.GEN_AI_OPERATION_NAME: operation, n.GEN_AI_PROVIDER_NAME: provider,
                     n.GEN_AI_REQUEST_MODEL: model}
            with self._lock:
                if len(self._attrs) > 1024:
                    self._attrs.clear()
                self._attrs[key] = found
        return found

    def start_span(self, operation: str, provider: str, model: str) -> trace.Span:
        return self.tracer.start_span(f"{n.RESILIENT_SPAN_PREFIX} {operation} {model}", kind=SpanKind.INTERNAL,
                                      attributes=self.attrs(operation, provider, model))

    @staticmethod
    def end_span(span: trace.Span, attempts: int, waited: float, error: BaseException | None) -> None:
        if span.is_recording():
            span.set_attribute(n.RESILIENCE_ATTEMPTS, attempts)
            if waited > 0.001:
                span.set_attribute(n.LIMITER_WAIT, waited)
            if error is not None:
                span.set_attribute(n.ERROR_TYPE, error_type(error))
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()

    def retry(self, span: trace.Span, base: dict[str, Any], reason: str, attempt: int, delay: float,
              status: int | None) -> None:
        self.retries.add(1, {**base, n.RETRY_REASON: reason})
        if span.is_recording():
            event: dict[str, Any] = {n.RETRY_REASON: reason, n.RETRY_ATTEMPT: attempt, n.RETRY_DELAY: delay}
            if status is not None:
                event[n.ATTEMPT_STATUS] = status
            span.add_event(n.RESILIENCE_RETRY_EVENT, event)

    def reject(self, base: dict[str, Any], reason: str) -> None:
        self.rejected.add(1, {**base, n.REJECTION_REASON: reason})

    def fallback(self, span: trace.Span, base: dict[str, Any], model: str, reason: str) -> None:
        self.fallbacks.add(1, {**base, n.FALLBACK_MODEL: model, n.FALLBACK_REASON: reason})
        if span.is_recording():
            span.set_attribute(n.FALLBACK_MODEL, model)
            span.set_attribute(n.FALLBACK_REASON, reason)

    def stream_timeout(self, base: dict[str, Any], kind: str) -> None:
        self.stream_timeouts.add(1, {**base, n.STREAM_TIMEOUT: kind})

    def waited(self, base: Mapping[str, Any], resource: str, seconds: float) -> None:
        self.limiter_wait.record(seconds, {**base, n.LIMITER_RESOURCE: resource})

    def circuit(self, model: str, old: str, new: str) -> None:
        attrs = {n.GEN_AI_REQUEST_MODEL: model}
        self._circuits[model] = (new, time.monotonic())
        if old != new:
            self.transitions.add(1, {**attrs, n.CIRCUIT_STATE: new})

    def _observe_circuits(self, _options: CallbackOptions) -> Iterable[Observation]:
        now = time.monotonic()
        found = dict(self._circuits)
        if self.circuit_source is not None:
            for model, state, used in self.circuit_source():
                changed = found.get(model, (state, used))[1]
                found[model] = (state, max(used, changed))
        return [Observation(STATE_VALUE[state], {n.GEN_AI_REQUEST_MODEL: model})
                for model, (state, seen) in found.items() if now - seen <= self.state_ttl]

    def store_failure(self, component: str, stage: str) -> None:
        """Counts a Redis failure the outage policy absorbed or turned into `StoreUnavailableError`; the first of
        each kind is logged."""
        self.store_failures.add(1, {n.STORE_COMPONENT: component, n.STORE_STAGE: stage})
        key = (component, stage)
        if key not in self._store_logged:
            with self._lock:
                first = key not in self._store_logged
                self._store_logged.add(key)
            if first:
                _log.warning("anthropic_otel.resilience: the %s store (Redis) failed at %s; following the "
                             "policy's StoreFailure (further ones are counted in %s)", component, stage,
                             n.M_RESILIENCE_STORE_FAILURES)
