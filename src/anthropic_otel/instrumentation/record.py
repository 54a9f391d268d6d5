"""Recording one ended call: its span attributes, metrics, spend ledger entry and log record.

Each sink is guarded on its own (`faults.Guard`): a span processor whose `on_end` raises, or a histogram
whose `record` raises, costs that sink only; the totals, the ledger and the log still get the call, and the
span is ended exactly once whatever its attributes did. Usage that cannot be real stays out of every metric
and the ledger (one warning per kind); the span records the raw values under `anthropic_otel.usage.*`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from time import perf_counter
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from ..cost.pricing import Cost, Pricer
from ..cost.spend import Ledger
from ..cost.usage import Usage, problem
from ..telemetry import faults as _faults
from ..telemetry import names as n
from .content import ContentMode, request_content, response_content
from .conversations import Conversations
from .diagnosis import Miss, miss_of, missed_dollars
from .metrics import CommonKey, Metrics
from .outcome import Outcome
from .runs import CURRENT_RUN
from .unknown import reason as unknown_reason

_request_log = logging.getLogger(n.REQUEST_LOGGER)

_PRICE = _faults.Guard("pricing")
_SPAN = _faults.Guard("span attributes")
_SPAN_END = _faults.Guard("span end")
_METRICS = _faults.Guard("metrics")
_LEDGER = _faults.Guard("spend ledger")
_LOG = _faults.Guard("request log")
_DIAGNOSIS = _faults.Guard("cache diagnostics")
_RUN = _faults.Guard("agent run")

_INT64 = 2**63


def error_type(error: BaseException) -> str:
    """The API's error type (`rate_limit_error`, ...) when it sent one, else the exception's class name."""
    api_type = getattr(error, "type", None)
    if isinstance(api_type, str) and api_type:
        return api_type
    return type(error).__name__


class Sinks:
    """Where a call's telemetry goes: metrics, prices, the spend ledger; and how much content to capture."""

    def __init__(self, metrics: Metrics, pricer: Pricer, content: ContentMode, ledger: Ledger | None = None,
                 conversations: Conversations | None = None) -> None:
        self.metrics = metrics
        self.pricer = pricer
        self.ledger = ledger if ledger is not None else Ledger()
        self.content = content
        self.conversations = conversations  # instrument(cache_diagnostics=True): last answer per conversation


class Recorded(Outcome):
    """A call's request facts and timings, and how an ended call is recorded (`Call` adds the lifecycle)."""

    __slots__ = ("attempts", "context", "first_chunk", "key", "kwargs", "miss", "missed_usd", "model",
                 "operation", "prompt", "provider", "run", "sinks", "span", "start", "stream")

    def __init__(self, sinks: Sinks, span: trace.Span, key: CommonKey, model: str, provider: str, stream: bool,
                 operation: str, kwargs: Mapping[str, Any], context: Mapping[str, Any] | None,
                 prompt: Mapping[str, str] | None) -> None:
        super().__init__()
        self.sinks = sinks
        self.span = span
        self.key = key
        self.model = model
        self.provider = provider
        self.stream = stream
        self.operation = operation
        self.kwargs = kwargs
        self.context = context
        self.prompt = prompt  # the request's captured content, when it was already put on the span
        self.start = perf_counter()
        self.first_chunk: float | None = None
        self.attempts = 0
        self.miss: Miss | None = None  # the cache's diagnosis of a miss, when the response carried one
        self.missed_usd: Decimal | None = None
        self.run = CURRENT_RUN.get()  # the agent run this call belongs to (see runs.py)

    def _record(self, error: BaseException | None, closed_early: bool) -> None:
        """Every sink gets the call once; never raises."""
        duration = perf_counter() - self.start
        sinks = self.sinks
        usage = self.usage
        chat = self.operation == n.OP_CHAT
        if usage is not None and (not chat or not usage.valid):
            if chat:
                self._report_bad(usage)
            usage = None  # what reaches metrics and the ledger: no usage rather than an impossible one
        cost: Cost | None = None
        priced = True
        if usage is not None:
            try:
                cost = sinks.pricer.cost(self.model, self.provider, usage)
                priced = cost is not None
            except Exception as fault:
                _PRICE.fault(fault)
        ttfc = None if self.first_chunk is None else self.first_chunk - self.start
        err_type = None if error is None else error_type(error)
        stop_reason = self.stop_reason if error is None and not closed_early else None
        if chat:
            # the common call (final usage arrived) skips the function call
            self.unknown = None if self.usage_final else unknown_reason(self.unknown, False, error, closed_early)
            if self.diagnostics is not None:
                self._diagnosed(usage)
            if sinks.conversations is not None and self.response_id is not None:
                with _DIAGNOSIS:
                    sinks.conversations.remember(self.context, self.response_id)

        # One guard per sink, in their zero-cost form: this runs once per call (see `faults.Guard`).
        span = self.span
        try:
            if span.is_recording():
                self._span_attributes(span, error, err_type, closed_early, chat, usage, cost, ttfc)
        except Exception as fault:
            _SPAN.fault(fault)
        try:
            span.end()
        except Exception as fault:
            _SPAN_END.fault(fault)
        try:
            sinks.metrics.finished(
                self.key, duration=duration, stream=self.stream, error_type=err_type, stop_reason=stop_reason,
                usage=usage, cost=cost, priced=priced or not chat, ttfc=ttfc,
                container=self.container_id is not None,
                context=trace.set_span_in_context(span))  # the span ended, but exemplars name it
        except Exception as fault:
            _METRICS.fault(fault)
        if self.unknown is not None or self.miss is not None:
            self._record_unseen()
        if cost is not None:
            try:
                sinks.ledger.add(cost.total)
            except Exception as fault:
                _LEDGER.fault(fault)
        if _request_log.isEnabledFor(logging.INFO):
            with _LOG:
                self._log(duration, ttfc, err_type, stop_reason, cost)
        if self.run is not None and chat:
            try:
                self.run.add_call(usage, cost, priced, stop_reason, err_type)
            except Exception as fault:
                _RUN.fault(fault)

    def _diagnosed(self, usage: Usage | None) -> None:
        """The cache's diagnosis of a miss, and its dollars when the call is priced (rare: only on request)."""
        with _DIAGNOSIS:
            self.miss = miss = miss_of(self.diagnostics)
            if miss is not None and usage is not None:
                self.missed_usd = missed_dollars(self.sinks.pricer, self.model, self.provider, usage, miss.tokens)

    def _record_unseen(self) -> None:
        """What the cost counters cannot see (usage unknown) or could have saved (a diagnosed cache miss)."""
        metrics = self.sinks.metrics
        with _METRICS:
            if self.unknown is not None:
                metrics.usage_unknown(self.key, self.unknown)
            if self.miss is not None:
                metrics.cache_missed(self.key, self.miss.reason, self.miss.tokens, self.missed_usd)

    def _span_attributes(self, span: trace.Span, error: BaseException | None, err_type: str | None,
                         closed_early: bool, chat: bool, usage: Usage | None, cost: Cost | None,
                         ttfc: float | None) -> None:
        attributes: dict[str, Any] = {}
        if self.response_id is not None:
            attributes[n.GEN_AI_RESPONSE_ID] = self.response_id
        if self.response_model is not None:
            attributes[n.GEN_AI_RESPONSE_MODEL] = self.response_model
        if chat:
            if self.stop_reason is not None and error is None:
                attributes[n.GEN_AI_RESPONSE_FINISH_REASONS] = (self.stop_reason,)
            elif self.stream:
                attributes[n.GEN_AI_RESPONSE_FINISH_REASONS] = (n.FINISH_ERROR,)
            if usage is not None:
                cache_write = usage.cache_write
                attributes[n.GEN_AI_USAGE_INPUT_TOKENS] = usage.total_input
                attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
                attributes[n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read
                attributes[n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = cache_write
                attributes[n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = cache_write
            elif self.usage is not None:
                _impossible_usage(attributes, self.usage)
            if self.usage is not None:
                _dimensions(attributes, self.usage, usage is not None)
            if self.container_id is not None:
                attributes[n.ANTHROPIC_CONTAINER_ID] = self.container_id
        if ttfc is not None:
            attributes[n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
        if self.request_id:
            attributes[n.ANTHROPIC_REQUEST_ID] = self.request_id
        if cost is not None:
            attributes[n.COST_USD] = float(cost.total)
            if cost.cache_savings or cost.write_premium:
                attributes[n.CACHE_SAVINGS_USD] = float(cost.net_cache_savings)
        if self.attempts > 1:
            attributes[n.HTTP_RESEND_COUNT] = self.attempts - 1
        if closed_early:
            attributes[n.STREAM_CLOSED_EARLY] = True
        if self.unknown is not None:
            attributes[n.USAGE_UNKNOWN_REASON] = self.unknown
        if self.miss is not None:
            attributes[n.CACHE_MISS_REASON] = self.miss.reason
            attributes[n.CACHE_MISS_INPUT_TOKENS] = self.miss.tokens
            if self.missed_usd is not None:
                attributes[n.CACHE_MISS_USD] = float(self.missed_usd)
        if err_type is not None:
            attributes[n.ERROR_TYPE] = err_type
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:500]))
        if self.snapshot is not None and self.sinks.content is not ContentMode.NO_CONTENT:
            self._content(span, attributes)
        span.set_attributes(attributes)

    def _content(self, span: trace.Span, attributes: dict[str, Any]) -> None:
        output = response_content(self.snapshot.content, self.stop_reason)
        mode = self.sinks.content
        if mode.on_span:
            attributes[n.GEN_AI_OUTPUT_MESSAGES] = output
        if mode.on_event:
            event = dict(self.prompt if self.prompt is not None else request_content(self.kwargs))
            event[n.GEN_AI_OUTPUT_MESSAGES] = output
            span.add_event(n.GEN_AI_DETAILS_EVENT, event)

    def _report_bad(self, usage: Usage) -> None:
        for name, value in (usage.bad or {}).items():
            kind = problem(value) or "non-integer"
            shown = repr(value)
            _faults.bad_value(kind, f"usage.{name} = {shown[:60]} in a response of {self.model!r} cannot be real "
                                    f"({kind})")

    def _log(self, duration: float, ttfc: float | None, err_type: str | None, stop_reason: str | None,
             cost: Cost | None) -> None:
        usage = self.usage
        extra: dict[str, Any] = {
            "request_id": self.request_id,
            "model": self.model,
            "provider": self.provider,
            "operation": self.operation,
            "stream": self.stream,
            "latency_s": duration,
            "time_to_first_chunk_s": ttfc,
            "stop_reason": stop_reason,
            "error_type": err_type,
            "cost_usd": None if cost is None else float(cost.total),
            "cache_savings_usd": None if cost is None else float(cost.net_cache_savings),
            "attempts": self.attempts,
            "attributes": dict(self.context) if self.context else {},
        }
        if usage is not None and not usage.valid:
            extra["impossible_usage"] = {name: repr(value)[:60] for name, value in (usage.bad or {}).items()}
            usage = None
        if usage is not None:
            extra.update(usage.as_dict())
            extra.update(service_tier=usage.service_tier, speed=usage.speed, inference_geo=usage.inference_geo)
        if self.container_id is not None:
            extra["container_id"] = self.container_id
        _request_log.info(
            "anthropic call %s model=%s stop=%s error=%s in=%s out=%s cost=%s latency=%.3fs",
            self.request_id, self.model, stop_reason, err_type,
            None if usage is None else usage.total_input, None if usage is None else usage.output_tokens,
            extra["cost_usd"], duration, extra={"anthropic_otel": extra},
        )


def _dimensions(attributes: dict[str, Any], usage: Usage, counts: bool) -> None:
    """The billing dimensions as the API reported them (raw, unbounded on the span), and with `counts` (a
    usage that is real) the thinking share of output and the server tool requests."""
    if usage.service_tier is not None:
        attributes[n.ANTHROPIC_SERVICE_TIER] = _as_attribute(usage.service_tier)
    if usage.speed is not None:
        attributes[n.ANTHROPIC_SPEED] = _as_attribute(usage.speed)
    if usage.inference_geo is not None:
        attributes[n.ANTHROPIC_INFERENCE_GEO] = _as_attribute(usage.inference_geo)
    if not counts:
        return
    if usage.thinking_tokens is not None:
        attributes[n.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.thinking_tokens
    if usage.web_search_requests:
        attributes[n.ANTHROPIC_WEB_SEARCH_REQUESTS] = usage.web_search_requests
    if usage.web_fetch_requests:
        attributes[n.ANTHROPIC_WEB_FETCH_REQUESTS] = usage.web_fetch_requests


def _impossible_usage(attributes: dict[str, Any], usage: Usage) -> None:
    """A usage with impossible values: the counts that are real, and each impossible one raw, as seen."""
    bad = usage.bad or {}
    if "output_tokens" not in bad:
        attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
    if "cache_read_input_tokens" not in bad:
        attributes[n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read
    if "cache_creation_input_tokens" not in bad:
        attributes[n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write
        attributes[n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = usage.cache_write
        if "input_tokens" not in bad and "cache_read_input_tokens" not in bad:
            attributes[n.GEN_AI_USAGE_INPUT_TOKENS] = usage.total_input
    for name, value in bad.items():
        attributes[n.USAGE_RAW_PREFIX + name] = _as_attribute(value)


def _as_attribute(value: Any) -> Any:
    """`value` as an attribute OTLP can encode: ints beyond int64 and non-primitive values become text."""
    if type(value) is int:
        return value if -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, str):
        return value[:256]
    if isinstance(value, bool | float):
        return value
    return repr(value)[:256]
