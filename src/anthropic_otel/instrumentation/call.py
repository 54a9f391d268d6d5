"""One API call's lifecycle: made current while its request is sent, told of attempts and outcomes, ended once.

What the response teaches is learned by `Outcome` (outcome.py); what an ended call records, by `Recorded`
(record.py). `Call` adds when things happen: the caller's context, the attempt hooks, and the run-once end.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from ..telemetry import faults as _faults
from ..telemetry import names as n
from .metrics import CommonKey
from .record import Recorded, Sinks, error_type

__all__ = ["CURRENT_CALL", "Call", "error_type"]

# The call whose request is being sent in this context: read by the per-attempt hook and by the patch
# that keeps the SDK's own span from duplicating ours.
CURRENT_CALL: ContextVar[Call | None] = ContextVar("anthropic_otel_current_call", default=None)

_DEACTIVATE = _faults.Guard("deactivate")
_ATTEMPT = _faults.Guard("attempt")
_LEARN = _faults.Guard("result")
_EVENT = _faults.Guard("stream event")


class Call(Recorded):
    """The state of one call until its span ends.

    Run once: a stream can end in two threads at the same moment (the caller iterating to `message_stop`
    in one, the garbage collector closing the dropped proxy in another), and every outcome method may be
    called again after the end. `_ended` is a lock that is acquired once and never released: the thread
    whose non-blocking `acquire()` succeeds records the call; every later or concurrent attempt returns.
    """

    __slots__ = ("_context_token", "_current_token", "_ended")

    def __init__(self, sinks: Sinks, span: trace.Span, key: CommonKey, model: str, provider: str,
                 stream: bool, operation: str, kwargs: Mapping[str, Any],
                 context: Mapping[str, Any] | None = None, prompt: Mapping[str, str] | None = None) -> None:
        super().__init__(sinks, span, key, model, provider, stream, operation, kwargs, context, prompt)
        self._ended = threading.Lock()
        self._context_token: object = None
        self._current_token: Token[Call | None] | None = None

    @property
    def ended(self) -> bool:
        return self._ended.locked()

    # -- the request, in the caller's context ------------------------------------------------------

    def activate(self) -> None:
        """Makes the span current while the SDK sends the request (children, SDK span suppression)."""
        self._context_token = otel_context.attach(trace.set_span_in_context(self.span))
        self._current_token = CURRENT_CALL.set(self)

    # The per-call methods use the zero-cost form of their guard (see `faults.Guard`).

    def deactivate(self) -> None:
        try:
            if self._current_token is not None:
                CURRENT_CALL.reset(self._current_token)
            if self._context_token is not None:
                otel_context.detach(self._context_token)  # type: ignore[arg-type]
        except Exception as fault:
            _DEACTIVATE.fault(fault)

    def attempt(self, response: Any) -> None:
        """One HTTP attempt came back (called by the per-attempt hook, inside the SDK's retry loop)."""
        try:
            self.attempts += 1
            headers = response.headers
            self.sinks.metrics.ratelimit_seen(self.key, headers)
            status = response.status_code
            if status >= 400:
                self.span.add_event(n.ATTEMPT_EVENT, {
                    n.ATTEMPT_STATUS: status,
                    n.ANTHROPIC_REQUEST_ID: headers.get("request-id") or "",
                    "anthropic_otel.attempt.number": self.attempts,
                })
        except Exception as fault:
            _ATTEMPT.fault(fault)

    def attempt_failed(self, error: BaseException) -> None:
        with _ATTEMPT:
            self.attempts += 1
            self.span.add_event(n.ATTEMPT_EVENT, {
                n.ERROR_TYPE: type(error).__name__, "anthropic_otel.attempt.number": self.attempts})

    # -- outcomes: learn what there is to learn, then end --------------------------------------------

    def message(self, message: Any) -> None:
        """A complete Message came back (non-streamed create or parse)."""
        try:
            self.learn_message(message)
        except Exception as fault:
            _LEARN.fault(fault)
        self._end(None)

    def counted(self, result: Any) -> None:
        """count_tokens came back: no usage to bill, only its duration and request id."""
        with _LEARN:
            self.request_id = getattr(result, "_request_id", None)
        self._end(None)

    def plain(self) -> None:
        """A result we do not parse (a raw response): the span ends with the request's facts only."""
        self._end(None)

    def fail(self, error: BaseException) -> None:
        with _LEARN:
            self.learn_error(error)
        self._end(error)

    def event(self, event: Any) -> None:
        """A stream event other than a content delta (deltas only set `first_chunk`, in the proxy's loop)."""
        try:
            if self.learn_event(event):
                self._end(None)
        except Exception as fault:
            _EVENT.fault(fault)

    def stream_started(self, stream: Any) -> None:
        self.unknown = n.UNKNOWN_STREAM_CUT  # from here on, an end without `message_delta` leaves usage unknown
        try:
            self.learn_stream(stream)
        except Exception as fault:
            _LEARN.fault(fault)

    def stream_exhausted(self) -> None:
        """The server ended the stream; without `message_stop` it was cut short."""
        if not self._ended.locked():
            self._end(StreamIncomplete() if self.stop_reason is None else None)

    def stream_failed(self, error: BaseException) -> None:
        self.fail(error)

    def stream_closed(self) -> None:
        """The caller closed (or dropped) the stream before its final event: not an error of the call."""
        if not self._ended.locked():
            self._end(None, closed_early=True)

    # -- the end -----------------------------------------------------------------------------------

    def _end(self, error: BaseException | None, closed_early: bool = False) -> None:
        if not self._ended.acquire(blocking=False):
            return  # ended already, or ending in another thread right now
        self._record(error, closed_early)


class StreamIncomplete(Exception):
    """The server ended a stream without its final `message_stop` event."""

    type = "stream_incomplete"
