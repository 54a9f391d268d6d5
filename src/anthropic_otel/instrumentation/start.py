"""Starting a call: what one `instrument()` set up (`Instrumentation`), and the span's request attributes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, SpanKind, Tracer

from ..cost.pricing import Pricer
from ..cost.spend import Ledger
from ..telemetry import faults as _faults
from ..telemetry import names as n
from .call import Call
from .content import ContentMode, request_content
from .context import current as current_attributes
from .conversations import Conversations
from .metrics import Metrics
from .record import Sinks

_SPAN_START = _faults.Guard("span start")
_STARTED = _faults.Guard("metrics")
_CONTENT = _faults.Guard("content capture")

_SERVERS: dict[int, tuple[Any, str, int | None]] = {}


def server(client: Any) -> tuple[str, int | None]:
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


class Instrumentation(Sinks):
    """What one `instrument()` set up: tracer, metrics, prices, the spend ledger and options."""

    def __init__(self, tracer: Tracer, metrics: Metrics, pricer: Pricer, content: ContentMode,
                 keep_sdk_spans: bool, ledger: Ledger | None = None,
                 conversations: Conversations | None = None) -> None:
        super().__init__(metrics, pricer, content, ledger, conversations)
        self.tracer = tracer
        self.keep_sdk_spans = keep_sdk_spans

    def begin(self, resource: Any, kwargs: Mapping[str, Any], operation: str, stream: bool) -> Call:
        """Starts the span and counts the call in flight.

        Once the span exists nothing here raises: a tracer or span processor that raises leaves the call with
        a non-recording span, whose metrics, cost and spend are still recorded.
        """
        client = resource._client
        provider = getattr(client, "_gen_ai_provider_name", n.PROVIDER_ANTHROPIC)
        host, port = server(client)
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
        prompt = None
        if self.content.on_span:
            with _CONTENT:
                prompt = request_content(kwargs)
                attributes.update(prompt)
        key = self.metrics.common_key(operation, provider, model, host, context)  # before the span: may raise
        try:
            span = self.tracer.start_span(f"{operation} {model}" if model else operation, kind=SpanKind.CLIENT,
                                          attributes=attributes)
        except Exception as fault:
            _SPAN_START.fault(fault)
            span = INVALID_SPAN
        call = Call(self, span, key, model, provider, stream, operation, kwargs, context, prompt)
        try:
            self.metrics.started(key)
        except Exception as fault:
            _STARTED.fault(fault)
        return call

    def begin_plain(self, resource: Any, operation: str, span_name: str,
                    attributes: Mapping[str, Any]) -> trace.Span:
        """A span for a call with no usage (batch operations): no metrics beyond its span."""
        client = resource._client
        host, port = server(client)
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
