"""One API call's telemetry: its span, its metrics, its cost and its log record, ended exactly once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar, Token
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from ..cost.pricing import Cost, Pricer
from ..cost.spend import Ledger
from ..cost.usage import Usage
from ..telemetry import faults as _faults
from ..telemetry import names as n
from .content import ContentMode, request_content, response_content
from .context import current as current_attributes
from .metrics import CommonKey, Metrics

_request_log = logging.getLogger(n.REQUEST_LOGGER)

# The call whose request is being sent in this context: read by the per-attempt hook and by the patch
# that keeps the SDK's own span from duplicating ours.
CURRENT_CALL: ContextVar[Call | None] = ContextVar("anthropic_otel_current_call", default=None)

_SERVERS: dict[int, tuple[Any, str, int | None]] = {}


def _server(client: Any) -> tuple[str, int | None]:
    """(host, port) of the client's base URL, cached per URL object (kept alive so its id stays unique)."""
    url = client.base_url
    found = _SERVERS.get(id(url))
    if found is None or found[0] is not url:
        port = url.port
        if port is None:
            port = 443 if url.scheme == "https" else 80 if url.scheme == "http" else None
        if len(_SERVERS) > 256:
            _SERVERS.clear()
        found = _SERVERS[id(url)] = (url, url.host, port)
    return found[1], found[2]


def error_type(error: BaseException) -> str:
    """The API's error type (`rate_limit_error`, ...) when it sent one, else the exception's class name."""
    api_type = getattr(error, "type", None)
    if isinstance(api_type, str) and api_type:
        return api_type
    return type(error).__name__


class Telemetry:
    """What one `instrument()` set up: tracer, metrics, prices and options."""

    def __init__(self, tracer: Tracer, metrics: Metrics, pricer: Pricer, content: ContentMode,
                 keep_sdk_spans: bool, ledger: Ledger | None = None) -> None:
        self.tracer = tracer
        self.metrics = metrics
        self.pricer = pricer
        self.ledger = ledger if ledger is not None else Ledger()
        self.content = content
        self.keep_sdk_spans = keep_sdk_spans

    def begin(self, resource: Any, kwargs: Mapping[str, Any], operation: str, stream: bool) -> Call:
        """Starts the span and counts the call in flight."""
        client = resource._client
        provider = getattr(client, "_gen_ai_provider_name", n.PROVIDER_ANTHROPIC)
        host, port = _server(client)
        model = kwargs.get("model")
        model = model if isinstance(model, str) else ""
        context = current_attributes()
        attributes: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: operation,
            n.GEN_AI_PROVIDER_NAME: provider,
            n.GEN_AI_REQUEST_MODEL: model,
            n.SERVER_ADDRESS: host,
        }
        if port is not None:
            attributes[n.SERVER_PORT] = port
        if operation == n.OP_CHAT:
            _request_attributes(attributes, kwargs, stream)
        if context:
            attributes.update(context)
        if self.content.on_span:
            attributes.update(request_content(kwargs))
        name = f"{operation} {model}" if model else operation
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        key = self.metrics.common_key(operation, provider, model, host, context)
        self.metrics.started(key)
        return Call(self, span, key, model, provider, stream, operation, kwargs, context)

    def begin_plain(self, resource: Any, operation: str, span_name: str,
                    attributes: Mapping[str, Any]) -> trace.Span:
        """A span for a call with no usage (batch operations): no metrics beyond its span."""
        client = resource._client
        host, port = _server(client)
        attrs = {
            n.GEN_AI_OPERATION_NAME: operation,
            n.GEN_AI_PROVIDER_NAME: getattr(client, "_gen_ai_provider_name", n.PROVIDER_ANTHROPIC),
            n.SERVER_ADDRESS: host,
            **attributes,
        }
        if port is not None:
            attrs[n.SERVER_PORT] = port
        context = current_attributes()
        if context:
            attrs.update(context)
        return self.tracer.start_span(span_name, kind=SpanKind.CLIENT, attributes=attrs)


_SAMPLING = (("temperature", n.GEN_AI_REQUEST_TEMPERATURE), ("top_p", n.GEN_AI_REQUEST_TOP_P),
             ("top_k", n.GEN_AI_REQUEST_TOP_K))


def _request_attributes(attributes: dict[str, Any], kwargs: Mapping[str, Any], stream: bool) -> None:
    attributes[n.GEN_AI_REQUEST_STREAM] = stream
    value = kwargs.get("max_tokens")
    if isinstance(value, int):
        attributes[n.GEN_AI_REQUEST_MAX_TOKENS] = value
    value = kwargs.get("stop_sequences")
    if isinstance(value, list | tuple) and value:
        attributes[n.GEN_AI_REQUEST_STOP_SEQUENCES] = [str(v) for v in value]
    extra = kwargs.get("extra_body")
    if extra is None and "temperature" not in kwargs and "top_p" not in kwargs and "top_k" not in kwargs:
        return  # the common call: no sampling parameters to look at
    for key, attribute in _SAMPLING:
        value = kwargs.get(key)
        if value is None and isinstance(extra, Mapping):
            value = extra.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[attribute] = float(value)


class Call:
    """The state of one call until its span ends; `_end` runs once whatever the caller does."""

    __slots__ = (
        "_context_token", "_current_token", "_once", "attempts", "context", "first_chunk", "key", "kwargs", "model",
        "operation", "provider", "request_id", "response_id", "response_model", "snapshot", "span", "start",
        "stop_reason", "stream", "telemetry", "usage",
    )

    def __init__(self, telemetry: Telemetry, span: trace.Span, key: CommonKey, model: str, provider: str,
                 stream: bool, operation: str, kwargs: Mapping[str, Any],
                 context: Mapping[str, Any] | None = None) -> None:
        self.telemetry = telemetry
        self.context = context
        self.span = span
        self.key = key
        self.model = model
        self.provider = provider
        self.stream = stream
        self.operation = operation
        self.kwargs = kwargs
        self.start = perf_counter()
        self.first_chunk: float | None = None
        self.usage: Usage | None = None
        self.stop_reason: str | None = None
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.request_id: str | None = None
        self.attempts = 0
        self.snapshot: Any = None
        self._once = [True]
        self._context_token: object = None
        self._current_token: Token[Call | None] | None = None

    # -- the request, in the caller's context ------------------------------------------------------

    def activate(self) -> None:
        """Makes the span current while the SDK sends the request (children, SDK span suppression)."""
        self._context_token = otel_context.attach(trace.set_span_in_context(self.span))
        self._current_token = CURRENT_CALL.set(self)

    def deactivate(self) -> None:
        try:
            if self._current_token is not None:
                CURRENT_CALL.reset(self._current_token)
            otel_context.detach(self._context_token)  # type: ignore[arg-type]
        except Exception as error:
            _faults.report("deactivate", error)

    def attempt(self, response: Any) -> None:
        """One HTTP attempt came back (called by the per-attempt hook, inside the SDK's retry loop)."""
        try:
            self.attempts += 1
            headers = response.headers
            self.telemetry.metrics.ratelimit_seen(self.key, headers)
            status = response.status_code
            if status >= 400:
                self.span.add_event(n.ATTEMPT_EVENT, {
                    n.ATTEMPT_STATUS: status,
                    n.ANTHROPIC_REQUEST_ID: headers.get("request-id") or "",
                    "anthropic_otel.attempt.number": self.attempts,
                })
        except Exception as error:
            _faults.report("attempt", error)

    def attempt_failed(self, error: BaseException) -> None:
        try:
            self.attempts += 1
            self.span.add_event(n.ATTEMPT_EVENT, {
                n.ERROR_TYPE: type(error).__name__, "anthropic_otel.attempt.number": self.attempts})
        except Exception as fault:
            _faults.report("attempt", fault)

    # -- outcomes ----------------------------------------------------------------------------------

    def message(self, message: Any) -> None:
        """A complete Message came back (non-streamed create or parse)."""
        try:
            self.response_id = message.id
            self.response_model = message.model
            self.stop_reason = message.stop_reason
            self.usage = Usage.of(message.usage)
            self.request_id = getattr(message, "_request_id", None)
            self.snapshot = message
            self._end(None)
        except Exception as error:
            _faults.report("message", error)
            self._end_safely()

    def counted(self, result: Any) -> None:
        """count_tokens came back: no usage to bill, only its duration and request id."""
        try:
            self.request_id = getattr(result, "_request_id", None)
            self._end(None)
        except Exception as error:
            _faults.report("count_tokens", error)
            self._end_safely()

    def plain(self) -> None:
        """A result we do not parse (a raw response): the span ends with the request's facts only."""
        self._end_safely()

    def fail(self, error: BaseException) -> None:
        try:
            request_id = getattr(error, "request_id", None)
            if isinstance(request_id, str):
                self.request_id = request_id
            self._end(error)
        except Exception as fault:
            _faults.report("fail", fault)
            self._end_safely()

    # stream events (non-delta ones; deltas only set first_chunk in the proxy's loop)
    def event(self, event: Any) -> None:
        try:
            kind = event.type
            if kind == "message_start":
                message = event.message
                self.response_id = message.id
                self.response_model = message.model
                if self.usage is None:
                    self.usage = Usage.of(message.usage)
                else:
                    self.usage.update(message.usage)
            elif kind == "message_delta":
                stop = event.delta.stop_reason
                if stop is not None:
                    self.stop_reason = stop
                if self.usage is None:
                    self.usage = Usage.of(event.usage)
                else:
                    self.usage.update(event.usage)
            elif kind == "message_stop":
                self._end(None)
        except Exception as error:
            _faults.report("stream event", error)

    def stream_exhausted(self) -> None:
        """The server ended the stream; without `message_stop` it was cut short."""
        if self._once:
            self._end(_StreamIncomplete() if self.stop_reason is None else None)

    def stream_failed(self, error: BaseException) -> None:
        self.fail(error)

    def stream_closed(self) -> None:
        """The caller closed (or dropped) the stream before its final event: not an error of the call."""
        if self._once:
            self._end(None, closed_early=True)

    def stream_request_id(self, stream: Any) -> None:
        headers = getattr(getattr(stream, "response", None), "headers", None)
        if headers is not None:
            try:
                self.request_id = headers.get("request-id")
            except Exception as error:
                _faults.report("stream request id", error)

    # -- the end -----------------------------------------------------------------------------------

    def _end_safely(self) -> None:
        try:
            if self._once.pop():
                self.span.end()
                self.telemetry.metrics.finished(
                    self.key, duration=perf_counter() - self.start, stream=self.stream, error_type=None,
                    stop_reason=None, usage=None, cost=None, priced=True, ttfc=None)
        except IndexError:
            pass
        except Exception as error:
            _faults.report("end", error)

    def _end(self, error: BaseException | None, closed_early: bool = False) -> None:
        try:
            self._once.pop()
        except IndexError:
            return  # already ended
        try:
            self._record(error, closed_early)
        except Exception as fault:
            _faults.report("end", fault)
            try:
                self.span.end()
            except Exception as again:
                _faults.report("span end", again)

    def _record(self, error: BaseException | None, closed_early: bool) -> None:
        duration = perf_counter() - self.start
        telemetry = self.telemetry
        span = self.span
        usage = self.usage
        chat = self.operation == n.OP_CHAT
        cost: Cost | None = None
        priced = True
        if usage is not None and chat:
            cost = telemetry.pricer.cost(self.model, self.provider, usage)
            priced = cost is not None
        ttfc = None if self.first_chunk is None else self.first_chunk - self.start
        err_type = None if error is None else error_type(error)
        stop_reason = self.stop_reason if error is None and not closed_early else None

        if span.is_recording():
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
            if usage is not None and chat:
                cache_write = usage.cache_write
                attributes[n.GEN_AI_USAGE_INPUT_TOKENS] = usage.total_input
                attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
                attributes[n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read
                attributes[n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = cache_write
                attributes[n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = cache_write
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
            if err_type is not None:
                attributes[n.ERROR_TYPE] = err_type
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:500]))
            if self.snapshot is not None and telemetry.content is not ContentMode.NO_CONTENT:
                self._content(attributes)
            span.set_attributes(attributes)
        span.end()

        telemetry.metrics.finished(
            self.key, duration=duration, stream=self.stream, error_type=err_type, stop_reason=stop_reason,
            usage=usage if chat else None, cost=cost, priced=priced or not chat, ttfc=ttfc)
        if cost is not None:
            telemetry.ledger.add(cost.total)  # after the span: the cost attribute was set from the same parts

        if _request_log.isEnabledFor(logging.INFO):
            self._log(duration, ttfc, err_type, stop_reason, cost)

    def _content(self, attributes: dict[str, Any]) -> None:
        snapshot = self.snapshot
        output = response_content(snapshot.content, self.stop_reason)
        mode = self.telemetry.content
        if mode.on_span:
            attributes[n.GEN_AI_OUTPUT_MESSAGES] = output
        if mode.on_event:
            event = dict(request_content(self.kwargs))
            event[n.GEN_AI_OUTPUT_MESSAGES] = output
            self.span.add_event(n.GEN_AI_DETAILS_EVENT, event)

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
            **(usage.as_dict() if usage is not None else {}),
        }
        _request_log.info(
            "anthropic call %s model=%s stop=%s error=%s in=%s out=%s cost=%s latency=%.3fs",
            self.request_id, self.model, stop_reason, err_type,
            None if usage is None else usage.total_input, None if usage is None else usage.output_tokens,
            extra["cost_usd"], duration, extra={"anthropic_otel": extra},
        )


class _StreamIncomplete(Exception):
    """The server ended a stream without its final `message_stop` event."""

    type = "stream_incomplete"
