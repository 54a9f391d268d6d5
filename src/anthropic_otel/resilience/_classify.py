"""What an error means for retries, the breaker and the fallback; `retry-after` parsing (as the SDK does it)."""

from __future__ import annotations

import email.utils
import time
from typing import Any, Final

import anthropic
import httpx2

from ._errors import ResilienceError, StreamTimeoutError

RETRYABLE_STATUS: Final = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# API error types that an `error` event inside a 200 stream can carry, retried before the first event only.
_RETRYABLE_TYPES: Final = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})
_SERVER_TYPES: Final = frozenset({"overloaded_error", "api_error", "timeout_error"})


def status_reason(error: anthropic.APIStatusError) -> str:
    api_type = getattr(error, "type", None)
    if isinstance(api_type, str) and api_type:
        return api_type
    return f"http_{error.status_code}"


def retry_reason(error: BaseException) -> str | None:
    """The `anthropic_otel.retry.reason` when `error` may be retried, else None."""
    if isinstance(error, anthropic.APIStatusError):
        status = error.status_code
        if 400 <= status < 500 and status not in RETRYABLE_STATUS:
            return None  # never other 4xx, whatever the headers say
        header = error.response.headers.get("x-should-retry")
        if header == "false":
            return None
        if header == "true" or status in RETRYABLE_STATUS:
            return status_reason(error)
        if status < 300 and getattr(error, "type", None) in _RETRYABLE_TYPES:
            return status_reason(error)  # an `error` event before the stream's first event
        return None
    if isinstance(error, anthropic.APITimeoutError):
        return "timeout"
    if isinstance(error, anthropic.APIConnectionError):
        return "connection_error"
    if isinstance(error, StreamTimeoutError):
        return "timeout" if error.kind == "idle" else None
    if isinstance(error, httpx2.TimeoutException):
        return "timeout"
    if isinstance(error, httpx2.TransportError):
        return "connection_error"
    return None


def is_failure(error: BaseException | None) -> bool | None:
    """For the breaker: True for a sign of an unhealthy API (5xx, 529, connection errors, timeouts, a stalled
    stream), False for a healthy answer (success, other 4xx), None for neither (429, or nothing was sent)."""
    if error is None:
        return False
    if isinstance(error, anthropic.APIStatusError):
        status = error.status_code
        if status == 429:
            return None
        if status >= 500:
            return True
        if status < 300:
            return getattr(error, "type", None) in _SERVER_TYPES
        return False
    if isinstance(error, StreamTimeoutError):
        return True  # a stall, cut at the idle timeout or (without one, or before the headers) the total deadline
    if isinstance(error, ResilienceError):
        return None
    if isinstance(error, anthropic.APIConnectionError | httpx2.TransportError):
        return True
    return None


def is_overloaded(error: BaseException) -> bool:
    return isinstance(error, anthropic.APIStatusError) and (
        error.status_code == 529 or getattr(error, "type", None) == "overloaded_error")


def retry_after(error: BaseException | None) -> float | None:
    """Seconds the API asked to wait: `retry-after-ms`, then `retry-after` as seconds or an HTTP date."""
    response: Any = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    raw = headers.get("retry-after-ms")
    if raw is not None:
        try:
            return float(raw) / 1000
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return float(email.utils.mktime_tz(parsed) - time.time())
