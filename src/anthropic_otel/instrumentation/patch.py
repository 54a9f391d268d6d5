"""What gets patched, and the wrappers. Class-level `wrapt` patches, so existing clients are covered."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import Status, StatusCode

from ..telemetry import faults as _faults
from ..telemetry import names as n
from . import raw
from .batches import counted_results
from .call import CURRENT_CALL, Call
from .context import current as current_attributes
from .record import error_type
from .start import Instrumentation
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
# The SDK's raw responses (`with_raw_response`, `with_streaming_response`): what the caller parses or closes.
RESPONSES: tuple[tuple[str, str], ...] = (
    ("anthropic._response", "APIResponse"),
    ("anthropic._response", "AsyncAPIResponse"),
)
# One HTTP attempt each, inside the SDK's retry loop: where per-attempt headers are seen.
ATTEMPTS: tuple[tuple[str, str, str], ...] = (
    ("anthropic._base_client", "SyncAPIClient", "_attempt_request"),
    ("anthropic._base_client", "AsyncAPIClient", "_attempt_request"),
)


class Patcher:
    """Applies and removes every patch of one instrumentation."""

    def __init__(self, instrumentation: Instrumentation) -> None:
        self.instrumentation = instrumentation
        self._switch = _Switch()
        self._patched: list[tuple[type, str]] = []
        self._tracer_property: tuple[type, Any] | None = None

    def apply(self) -> None:
        from anthropic import AsyncStream, Stream

        tel = self.instrumentation
        switch = self._switch = _Switch()  # a new one per apply: wrappers of an earlier apply stay off
        responses = tuple(cls for cls in (_find(module, name) for module, name in RESPONSES) if cls is not None)
        streams = _Streams(Stream, AsyncStream, responses)
        for module_name, class_name, methods in TARGETS:
            cls = _find(module_name, class_name)
            if cls is None:
                continue
            for method in methods:
                original = cls.__dict__.get(method)
                if original is None or isinstance(original, wrapt.FunctionWrapper):
                    continue
                is_async = inspect.iscoroutinefunction(inspect.unwrap(original))  # through @required_args
                fill = tel.conversations is not None and method != "count_tokens" and _accepts_diagnostics(original)
                if methods is _BATCHES:
                    wrapper = _batch_wrapper(tel, switch, method, is_async)
                elif method == "stream":
                    wrapper = _stream_manager_wrapper(tel, streams, fill)
                else:
                    operation = n.OP_COUNT_TOKENS if method == "count_tokens" else n.OP_CHAT
                    wrapper = _call_wrapper(tel, switch, method, operation, is_async, streams, fill)
                wrapt.wrap_function_wrapper(cls, method, wrapper)
                self._patched.append((cls, method))
        for cls in responses:
            for method in ("parse", "close"):
                if isinstance(cls.__dict__.get(method), wrapt.FunctionWrapper):
                    continue
                is_async = inspect.iscoroutinefunction(cls.__dict__[method])
                hook = _response_hook(method, is_async, streams)
                wrapt.wrap_function_wrapper(cls, method, hook)
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
        self._switch.on = False
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


class _Switch:
    """Whether one `Patcher`'s patches are in place: one attribute read per call.

    The SDK's `with_raw_response` / `with_streaming_response` (and their `batches`) are cached per resource
    and hold the method bound when first used, so a client first used that way while instrumented keeps
    calling our wrapper after `uninstrument()`. Off, a wrapper hands the call to what the class holds now.
    """

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = True


def _current(wrapper: Any, wrapped: Any, instance: Any, method: str) -> Callable[..., Any]:
    """For a removed patch: the method the class holds now (the original, or a newer patch), bound."""
    if instance is not None:
        for klass in type(instance).__mro__:
            found = klass.__dict__.get(method)
            if found is not None:
                if isinstance(found, wrapt.FunctionWrapper) and found._self_wrapper is not wrapper:
                    return found.__get__(instance, type(instance))
                break
    return wrapped  # type: ignore[no-any-return]


class _Streams(NamedTuple):
    """The SDK's stream classes, whose instances get a proxy; its raw-response classes (see `raw`)."""

    sync: type
    async_: type
    responses: tuple[type, ...] = ()


def _accepts_diagnostics(original: Any) -> bool:
    """Whether this SDK's method takes `diagnostics` (SDK >= 2.14): only then does the opt-in fill it."""
    try:
        return "diagnostics" in inspect.signature(inspect.unwrap(original)).parameters
    except (TypeError, ValueError):
        return False


_FILL = _faults.Guard("cache diagnostics")


def _fill(tel: Instrumentation, kwargs: dict[str, Any]) -> str | None:
    """instrument(cache_diagnostics=True): the previous answer of this conversation, added to the request."""
    conversations = tel.conversations
    if conversations is None:
        return None
    with _FILL:
        return conversations.fill(kwargs, current_attributes())
    return None


# -- running one call under its span: the logic, shared by the sync and async drivers -----------------

_START = _faults.Guard("start")
_RESULT = _faults.Guard("result")


def _begin(tel: Instrumentation, instance: Any, kwargs: Mapping[str, Any], operation: str,
           stream: bool, filled: str | None = None) -> Call | None:
    """The call, started and current; None when even that failed (the request then goes untraced)."""
    call = None
    try:  # the zero-cost form of the guard on the per-call path (see `faults.Guard`)
        call = tel.begin(instance, kwargs, operation, stream)
        if filled is not None:
            call.span.set_attribute(n.CACHE_PREVIOUS_MESSAGE_ID, filled)
        call.activate()
    except Exception as fault:
        _START.fault(fault)
    return call


def _failed(call: Call, error: BaseException) -> None:
    call.deactivate()
    call.fail(error)


def _returned(call: Call, result: Any, streams: _Streams) -> Any:
    """Ends the span for a finished result, or hands back a proxy for a stream. Never raises."""
    call.deactivate()
    try:
        if isinstance(result, streams.sync):
            return StreamProxy(result, call)
        if isinstance(result, streams.async_):
            return AsyncStreamProxy(result, call)
        if isinstance(result, streams.responses):
            raw.returned(call, result)
            return result
        if call.operation == n.OP_COUNT_TOKENS:
            call.counted(result)
        elif hasattr(result, "stop_reason") and hasattr(result, "usage"):
            call.message(result)
        else:
            call.plain()
    except Exception as fault:
        _RESULT.fault(fault)
        call.plain()
    return result


def _run_sync(tel: Instrumentation, instance: Any, kwargs: Mapping[str, Any], operation: str, stream: bool,
              send: Callable[[], Any], streams: _Streams, filled: str | None = None) -> Any:
    call = _begin(tel, instance, kwargs, operation, stream, filled)
    if call is None:
        return send()
    try:
        result = send()
    except BaseException as error:
        _failed(call, error)
        raise
    return _returned(call, result, streams)


async def _run_async(tel: Instrumentation, instance: Any, kwargs: Mapping[str, Any], operation: str,
                     stream: bool, send: Callable[[], Awaitable[Any]], streams: _Streams,
                     filled: str | None = None) -> Any:
    call = _begin(tel, instance, kwargs, operation, stream, filled)
    if call is None:
        return await send()
    try:
        result = await send()
    except BaseException as error:
        _failed(call, error)
        raise
    return _returned(call, result, streams)


def _call_wrapper(tel: Instrumentation, switch: _Switch, method: str, operation: str, is_async: bool,
                  streams: _Streams, fill: bool = False) -> Any:
    if is_async:
        async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
            if not switch.on:
                return await _current(async_wrapper, wrapped, instance, method)(*args, **kwargs)
            filled = _fill(tel, kwargs) if fill else None
            return await _run_async(tel, instance, kwargs, operation, kwargs.get("stream") is True,
                                    lambda: wrapped(*args, **kwargs), streams, filled)
        return async_wrapper

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        if not switch.on:
            return _current(wrapper, wrapped, instance, method)(*args, **kwargs)
        filled = _fill(tel, kwargs) if fill else None
        return _run_sync(tel, instance, kwargs, operation, kwargs.get("stream") is True,
                         lambda: wrapped(*args, **kwargs), streams, filled)
    return wrapper


def _response_hook(method: str, is_async: bool, streams: _Streams) -> Any:
    """`parse` / `close` of the SDK's raw responses: one dict lookup unless one of our calls waits on it."""
    pair = (streams.sync, streams.async_)
    if method == "parse":
        if is_async:
            async def async_parse(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
                result = await wrapped(*args, **kwargs)
                return raw.parsed(instance, result, kwargs, pair) if raw.pending(instance) else result
            return async_parse

        def parse(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
            result = wrapped(*args, **kwargs)
            return raw.parsed(instance, result, kwargs, pair) if raw.pending(instance) else result
        return parse
    if is_async:
        async def async_close(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
            try:
                return await wrapped(*args, **kwargs)
            finally:
                if raw.pending(instance):
                    raw.closed(instance)
        return async_close

    def close(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        try:
            return wrapped(*args, **kwargs)
        finally:
            if raw.pending(instance):
                raw.closed(instance)
    return close


# Manager class -> the instance attribute holding the request `__enter__` will send (None: not found).
_API_REQUEST: dict[type, str | None] = {}
_MANAGER = _faults.Guard("stream manager")


def _stream_manager_wrapper(tel: Instrumentation, streams: _Streams, fill: bool = False) -> Any:
    """`messages.stream()` returns a manager that sends the request in `__enter__`, bypassing `create`.

    The manager is returned as it is; only the request it will send is replaced by one that runs under
    our span and hands the `MessageStream` a proxied raw stream.
    """
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        filled = _fill(tel, kwargs) if fill else None  # before the manager builds its request
        manager = wrapped(*args, **kwargs)
        with _MANAGER:
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
                traced: Any = _run_async(tel, instance, kwargs, n.OP_CHAT, True, send, streams, filled)
            else:
                def traced() -> Any:
                    return _run_sync(tel, instance, kwargs, n.OP_CHAT, True, request, streams, filled)
            setattr(manager, attribute, traced)
        return manager
    return wrapper


# -- batch operations: the logic in `_BatchOperation`, two thin drivers -----------------------------------

_BATCH_START = _faults.Guard("batch start")
_BATCH_END = _faults.Guard("batch end")
_BATCH_CONTEXT = _faults.Guard("batch context")


class _BatchOperation:
    """One batch operation's span (`create batch`, `results batch`, ...); batch cost is priced elsewhere."""

    __slots__ = ("span", "token")

    def __init__(self, tel: Instrumentation, operation: str, instance: Any, args: Any,
                 kwargs: Mapping[str, Any]) -> None:
        self.span: Any = None
        self.token: object = None
        with _BATCH_START:
            attributes: dict[str, Any] = {n.BATCH_OPERATION: operation}
            batch_id = _batch_id(args, kwargs)
            if isinstance(batch_id, str):
                attributes[n.ANTHROPIC_BATCH_ID] = batch_id
            self.span = tel.begin_plain(instance, n.OP_BATCH, f"{operation} batch", attributes)
        if self.span is not None:
            with _BATCH_CONTEXT:
                self.token = otel_context.attach(trace.set_span_in_context(self.span))

    def finish(self, result: Any, error: BaseException | None) -> None:
        if self.token is not None:
            with _BATCH_CONTEXT:
                otel_context.detach(self.token)  # type: ignore[arg-type]
        span = self.span
        if span is None:
            return
        with _BATCH_END:
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
        with _BATCH_END:
            span.end()


def _batch_wrapper(tel: Instrumentation, switch: _Switch, operation: str, is_async: bool) -> Any:
    results = operation == "results"
    if is_async:
        async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
            if not switch.on:
                return await _current(async_wrapper, wrapped, instance, operation)(*args, **kwargs)
            batch = _BatchOperation(tel, operation, instance, args, kwargs)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as error:
                batch.finish(None, error)
                raise
            batch.finish(result, None)
            return counted_results(tel, instance, _batch_id(args, kwargs), result) if results else result
        return async_wrapper

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        if not switch.on:
            return _current(wrapper, wrapped, instance, operation)(*args, **kwargs)
        batch = _BatchOperation(tel, operation, instance, args, kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            batch.finish(None, error)
            raise
        batch.finish(result, None)
        return counted_results(tel, instance, _batch_id(args, kwargs), result) if results else result
    return wrapper


def _batch_id(args: Any, kwargs: Mapping[str, Any]) -> Any:
    return kwargs.get("message_batch_id", args[0] if args else None)


# -- per attempt: already thin drivers (the logic is `Call.attempt` / `Call.attempt_failed`) --------------


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
