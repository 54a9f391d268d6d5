"""Raw responses (`with_raw_response`, `with_streaming_response`): the same usage, cost, stop reason and
request id as the plain path, without reading anything the caller reads and without changing what they get.

- A body already read (`with_raw_response` of a non-streamed call reads it before returning): a copy is
  parsed at once and the call ends; the caller's own `.parse()` is untouched.
- A body not read yet (`with_streaming_response`, or `stream=True`): the call waits on the response. The
  class-level hooks on `APIResponse.parse` / `close` (and the async ones) see the caller's parse: a `Stream`
  it yields gets the usual proxy (the parse cache holds the proxy too), a `Message` ends the call; a body the
  caller read another way (`.json()`, `.text()`) is parsed as a copy when the response is closed.
- Never parsed: the call ends when the response is closed or garbage-collected, with usage unknown
  (`not_parsed`).
"""

from __future__ import annotations

import weakref
from typing import Any

from ..telemetry import faults as _faults
from ..telemetry import names as n
from .call import Call
from .streams import AsyncStreamProxy, StreamProxy

_ATTR = "_anthropic_otel_call"  # the pending call, in the response's __dict__ until handled
_RAW = _faults.Guard("raw response")


def returned(call: Call, response: Any) -> None:
    """A raw response was handed back to the caller. Never raises."""
    try:
        call.request_id = response.request_id  # the headers are there, whatever happens to the body
        if call.operation != n.OP_CHAT:
            call.plain()
            return
        call.unknown = n.UNKNOWN_NOT_PARSED  # until a message or a stream's final usage says otherwise
        if not response._is_sse_stream and hasattr(response.http_response, "_content"):
            _from_body(call, response)
        else:
            response.__dict__[_ATTR] = call
            # Dropped unparsed: ends the call (a no-op once ended); not at interpreter exit, after the providers.
            weakref.finalize(response, call.plain).atexit = False
    except Exception as fault:
        _RAW.fault(fault)
        call.plain()


def pending(response: Any) -> bool:
    """Whether a call waits on this response: one dict lookup, for the parse and close hooks."""
    return _ATTR in response.__dict__


def parsed(response: Any, result: Any, kwargs: dict[str, Any], streams: tuple[type, type]) -> Any:
    """The caller parsed `response` into `result`: what the caller gets back (a proxied stream, or `result`)."""
    call: Call | None = response.__dict__.pop(_ATTR, None)
    if call is None or call.ended:
        return result
    try:
        proxy: Any = None
        if isinstance(result, streams[0]):
            proxy = StreamProxy(result, call)
        elif isinstance(result, streams[1]):
            proxy = AsyncStreamProxy(result, call)
        if proxy is not None:
            cache_key = kwargs.get("to") or response._cast_to
            if response._parsed_by_type.get(cache_key) is result:
                response._parsed_by_type[cache_key] = proxy  # a second parse() gets the same proxy
            return proxy
        if hasattr(result, "stop_reason") and hasattr(result, "usage"):
            call.message(result)
        else:  # parse(to=dict) and the like: the body is read now, parse our own copy
            _from_body(call, response)
    except Exception as fault:
        _RAW.fault(fault)
        call.plain()
    return result


def closed(response: Any) -> None:
    """The caller closed a response it never parsed: a body it read is parsed as a copy, else usage unknown."""
    call: Call | None = response.__dict__.pop(_ATTR, None)
    if call is None:
        return
    try:
        if not response._is_sse_stream and hasattr(response.http_response, "_content"):
            _from_body(call, response)
        else:
            call.plain()
    except Exception as fault:
        _RAW.fault(fault)
        call.plain()


def _from_body(call: Call, response: Any) -> None:
    """Parses a copy of a body already read (the caller's parse cache is left alone) and ends the call."""
    message = response._parse()
    if hasattr(message, "stop_reason") and hasattr(message, "usage"):
        message._request_id = response.request_id  # our copy: as the SDK's own parse() marks it
        call.message(message)
    else:
        call.request_id = response.request_id
        call.plain()
