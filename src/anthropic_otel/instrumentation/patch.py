"""What gets patched, and the wrappers. Class-level `wrapt` patches, so existing clients are covered."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import Status, StatusCode

from ..telemetry import faults as _faults
from ..telemetry import names as n
from .batches import counted_results
from .call import CURRENT_CALL, Call, Telemetry, error_type
from .streams import AsyncStreamProxy, StreamProxy

_MESSAGES = ("create", "parse", "count_tokens", "stream")
_BATCHES = ("create", "retrieve", "list", "delete", "cancel", "results")

# (module, class, methods). Bedrock and Vertex beta classes copy the first-party functions at import, so
# patching the first-party class does not reach them: they are patched on their own.
TARGETS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("anthropic.resources.messages.messages", "Messages", _MESSAGES),
    ("anthropic.resources.messages.messages", "AsyncMessages", _MESSAGES),
    ("anthropic.resources.beta.messages.messages", "Messages", _MESSAGES),
    ("anthropic.resources.beta.messages.messages", "AsyncMessages", _MESSAGES),
    ("anthropic.lib.bedrock._beta_messages", "Messages", _MESSAGES),
    ("anthropic.lib.bedrock._beta_messages", "AsyncMessages", _MESSAGES),
    ("anthropic.lib.vertex._beta_messages", "Messages", _MESSAGES),
    ("anthropic.lib.vertex._beta_messages", "AsyncMessages", _MESSAGES),
    ("anthropic.resources.messages.batches", "Batches", _BATCHES),
    ("anthropic.resources.messages.batches", "AsyncBatches", _BATCHES),
    ("anthropic.resources.beta.messages.batches", "Batches", _BATCHES),
    ("anthropic.resources.beta.messages.batches", "AsyncBatches", _BATCHES),
)
# One HTTP attempt each, inside the SDK's retry loop: where per-attempt headers are seen.
ATTEMPTS: tuple[tuple[str, str, str], ...] = (
    ("anthropic._base_client", "SyncAPIClient", "_attempt_request"),
    ("anthropic._base_client", "AsyncAPIClient", "_attempt_request"),
)


class Patcher:
    """Applies and removes every patch of one instrumentation."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self._patched: list[tuple[type, str]] = []
        self._tracer_property: tuple[type, Any] | None = None

    def apply(self) -> None:
        from anthropic import AsyncStream, Stream

        tel = self.telemetry
        for module_name, class_name, methods in TARGETS:
            cls = _find(module_name, class_name)
            if cls is None:
                continue
            for method in methods:
                original = cls.__dict__.get(method)
                if original is None or isinstance(original, wrapt.FunctionWrapper):
                    continue
                is_async = inspect.iscoroutinefunction(inspect.unwrap(original))  # through @required_args
                if methods is _BATCHES:
                    wrapper = _batch_wrapper(tel, method, is_async)
                elif method == "stream":
                    wrapper = _stream_manager_wrapper(tel, Stream, AsyncStream)
                else:
                    operation = n.OP_COUNT_TOKENS if method == "count_tokens" else n.OP_CHAT
                    wrapper = (_async_call_wrapper if is_async else _sync_call_wrapper)(
                        tel, operation, Stream, AsyncStream)
                wrapt.wrap_function_wrapper(cls, method, wrapper)
                self._patched.append((cls, method))
        for module_name, class_name, method in ATTEMPTS:
            cls = _find(module_name, class_name)
            if cls is None or method not in cls.__dict__:
                continue
            original = cls.__dict__[method]
            hook = _async_attempt if inspect.iscoroutinefunction(inspect.unwrap(original)) else _sync_attempt
            wrapt.wrap_function_wrapper(cls, method, hook)
            self._patched.append((cls, method))
        if not tel.keep_sdk_spans:
            self._suppress_sdk_spans()

    def remove(self) -> None:
        for cls, method in reversed(self._patched):
            unwrap(cls, method)
        self._patched.clear()
        if self._tracer_property is not None:
            cls, original = self._tracer_property
            cls._tracer = original  # type: ignore[attr-defined]
            self._tracer_property = None

    def _suppress_sdk_spans(self) -> None:
        """The SDK (>= 1.14) makes its own `anthropic.messages.create` span; ours is the canonical one.

        The client's `_tracer` property answers None while one of our calls sends its request, so the SDK
        skips its span for exactly those calls, for clients made before and after `instrument()`; its spans
        for other endpoints (files, models, ...) stay.
        """
        base = _find("anthropic._base_client", "BaseClient")
        original = None if base is None else base.__dict__.get("_tracer")
        if not isinstance(original, property) or original.fget is None:
            return
        getter = original.fget

        def _tracer(client: Any) -> Any:
            if CURRENT_CALL.get() is not None:
                return None
            return getter(client)

        base._tracer = property(_tracer, doc=original.__doc__)  # type: ignore[union-attr]
        self._tracer_property = (base, original)  # type: ignore[assignment]


def _find(module_name: str, class_name: str) -> type | None:
    try:
        cls = getattr(importlib.import_module(module_name), class_name, None)
    except ImportError:
        return None
    return cls if isinstance(cls, type) else None


# -- running one call under its span ----------------------------------------------------------------


def _begin(tel: Telemetry, instance: Any, kwargs: Mapping[str, Any], operation: str, stream: bool) -> Call | None:
    try:
        call = tel.begin(instance, kwargs, operation, stream)
    except Exception as error:
        _faults.report("start", error)
        return None
    try:
        call.activate()
    except Exception as error:
        _faults.report("activate", error)
    return call


def _returned(call: Call, result: Any, stream_cls: type, async_stream_cls: type) -> Any:
    """Ends the span for a finished result, or hands back a proxy for a stream. Never raises."""
    try:
        if isinstance(result, stream_cls):
            return StreamProxy(result, call)
        if isinstance(result, async_stream_cls):
            return AsyncStreamProxy(result, call)
        if call.operation == n.OP_COUNT_TOKENS:
            call.counted(result)
        elif hasattr(result, "stop_reason") and hasattr(result, "usage"):
            call.message(result)
        else:
            call.plain()
    except Exception as error:
        _faults.report("result", error)
        call.plain()
    return result


def _run_sync(tel: Telemetry, instance: Any, kwargs: Mapping[str, Any], operation: str, stream: bool,
              send: Callable[[], Any], stream_cls: type, async_stream_cls: type) -> Any:
    call = _begin(tel, instance, kwargs, operation, stream)
    if call is None:
        return send()
    try:
        result = send()
    except BaseException as error:
        call.deactivate()
        call.fail(error)
        raise
    call.deactivate()
    return _returned(call, result, stream_cls, async_stream_cls)


async def _run_async(tel: Telemetry, instance: Any, kwargs: Mapping[str, Any], operation: str, stream: bool,
                     send: Callable[[], Awaitable[Any]], stream_cls: type, async_stream_cls: type) -> Any:
    call = _begin(tel, instance, kwargs, operation, stream)
    if call is None:
        return await send()
    try:
        result = await send()
    except BaseException as error:
        call.deactivate()
        call.fail(error)
        raise
    call.deactivate()
    return _returned(call, result, stream_cls, async_stream_cls)


def _sync_call_wrapper(tel: Telemetry, operation: str, stream_cls: type, async_stream_cls: type) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        return _run_sync(tel, instance, kwargs, operation, kwargs.get("stream") is True,
                         lambda: wrapped(*args, **kwargs), stream_cls, async_stream_cls)
    return wrapper


def _async_call_wrapper(tel: Telemetry, operation: str, stream_cls: type, async_stream_cls: type) -> Any:
    async def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        return await _run_async(tel, instance, kwargs, operation, kwargs.get("stream") is True,
                                lambda: wrapped(*args, **kwargs), stream_cls, async_stream_cls)
    return wrapper


# Manager class -> the instance attribute holding the request `__enter__` will send (None: not found).
_API_REQUEST: dict[type, str | None] = {}


def _stream_manager_wrapper(tel: Telemetry, stream_cls: type, async_stream_cls: type) -> Any:
    """`messages.stream()` returns a manager that sends the request in `__enter__`, bypassing `create`.

    The manager is returned as it is; only the request it will send is replaced by one that runs under
    our span and hands the `MessageStream` a proxied raw stream.
    """
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        try:
            attribute = _API_REQUEST.get(type(manager), "")
            if attribute == "":  # first manager of this class: find its (name-mangled) pending request
                attribute = next((name for name in vars(manager) if name.endswith("__api_request")), None)
                _API_REQUEST[type(manager)] = attribute
            if attribute is None:
                return manager
            request = getattr(manager, attribute)
            if inspect.isawaitable(request):
                async def send() -> Any:
                    return await request
                traced: Any = _run_async(tel, instance, kwargs, n.OP_CHAT, True, send, stream_cls,
                                         async_stream_cls)
            else:
                def traced() -> Any:
                    return _run_sync(tel, instance, kwargs, n.OP_CHAT, True, request, stream_cls,
                                     async_stream_cls)
            setattr(manager, attribute, traced)
        except Exception as error:
            _faults.report("stream manager", error)
        return manager
    return wrapper


def _batch_wrapper(tel: Telemetry, operation: str, is_async: bool) -> Any:
    """A span per batch operation (`create batch`, `results batch`, ...); batch cost is priced elsewhere."""
    def start(instance: Any, args: Any, kwargs: Mapping[str, Any]) -> Any:
        try:
            attributes: dict[str, Any] = {n.BATCH_OPERATION: operation}
            batch_id = _batch_id(args, kwargs)
            if isinstance(batch_id, str):
                attributes[n.ANTHROPIC_BATCH_ID] = batch_id
            return tel.begin_plain(instance, n.OP_BATCH, f"{operation} batch", attributes)
        except Exception as error:
            _faults.report("batch start", error)
            return None

    def finish(span: Any, result: Any, error: BaseException | None) -> None:
        if span is None:
            return
        try:
            if error is not None:
                span.set_attribute(n.ERROR_TYPE, error_type(error))
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            else:
                batch_id = getattr(result, "id", None)
                if isinstance(batch_id, str):
                    span.set_attribute(n.ANTHROPIC_BATCH_ID, batch_id)
                request_id = getattr(result, "_request_id", None)
                if isinstance(request_id, str):
                    span.set_attribute(n.ANTHROPIC_REQUEST_ID, request_id)
            span.end()
        except Exception as fault:
            _faults.report("batch end", fault)

    if is_async:
        async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
            span = start(instance, args, kwargs)
            token = _attach(span)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as error:
                _detach(token)
                finish(span, None, error)
                raise
            _detach(token)
            finish(span, result, None)
            if operation == "results":
                return counted_results(tel, instance, _batch_id(args, kwargs), result)
            return result
        return async_wrapper

    def sync_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        span = start(instance, args, kwargs)
        token = _attach(span)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            _detach(token)
            finish(span, None, error)
            raise
        _detach(token)
        finish(span, result, None)
        if operation == "results":
            return counted_results(tel, instance, _batch_id(args, kwargs), result)
        return result
    return sync_wrapper


def _batch_id(args: Any, kwargs: Mapping[str, Any]) -> Any:
    return kwargs.get("message_batch_id", args[0] if args else None)


def _attach(span: Any) -> object:
    if span is None:
        return None
    try:
        return otel_context.attach(trace.set_span_in_context(span))
    except Exception as error:
        _faults.report("batch attach", error)
        return None


def _detach(token: object) -> None:
    if token is not None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception as error:
            _faults.report("batch detach", error)


# -- per attempt -------------------------------------------------------------------------------------


def _sync_attempt(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    call = CURRENT_CALL.get()
    if call is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        call.attempt_failed(error)
        raise
    call.attempt(result[0])
    return result


async def _async_attempt(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    call = CURRENT_CALL.get()
    if call is None:
        return await wrapped(*args, **kwargs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as error:
        call.attempt_failed(error)
        raise
    call.attempt(result[0])
    return result
