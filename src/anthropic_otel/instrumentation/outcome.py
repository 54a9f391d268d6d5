"""What a response, a stream event or an error teaches about a call: usage, stop reason and ids.

`Outcome` holds those facts and learns them; it knows nothing of spans, metrics or the call's lifecycle
(`Call` extends it, so one object per call carries both, with no extra allocation on the hot path).
"""

from __future__ import annotations

from typing import Any

from ..cost.usage import Usage


class Outcome:
    """The facts of one call's result, filled in as the response or its events arrive."""

    __slots__ = ("container_id", "diagnostics", "request_id", "response_id", "response_model", "snapshot",
                 "stop_reason", "unknown", "usage", "usage_final")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.stop_reason: str | None = None
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.request_id: str | None = None
        self.snapshot: Any = None  # the final message (or the stream's rebuilt one), for content capture
        self.container_id: str | None = None  # the code-execution container the call used
        # Whether the final usage arrived (a Message, or a stream's `message_delta`); when it did not, `unknown`
        # says why it could not (`telemetry.names.UNKNOWN_*`; see `unknown.reason`).
        self.usage_final = False
        self.unknown: str | None = None
        self.diagnostics: Any = None  # the response's `diagnostics` (cache miss reason), when the request asked

    def learn_message(self, message: Any) -> None:
        """A complete Message (non-streamed create or parse)."""
        self.response_id = message.id
        self.response_model = message.model
        self.stop_reason = message.stop_reason
        self.usage = Usage.of(message.usage)
        self.request_id = getattr(message, "_request_id", None)
        self.snapshot = message
        container = getattr(message, "container", None)
        if container is not None:
            self.learn_container(container)
        self.usage_final = True
        self.diagnostics = getattr(message, "diagnostics", None)

    def learn_event(self, event: Any) -> bool:
        """A stream event other than a content delta; True when it is the stream's final `message_stop`."""
        kind = event.type
        if kind == "message_start":
            message = event.message
            self.response_id = message.id
            self.response_model = message.model
            self.diagnostics = getattr(message, "diagnostics", None)
            if self.usage is None:
                self.usage = Usage.of(message.usage)
            else:
                self.usage.update(message.usage)
            container = getattr(message, "container", None)
            if container is not None:
                self.learn_container(container)
        elif kind == "message_delta":
            delta = event.delta
            stop = delta.stop_reason
            if stop is not None:
                self.stop_reason = stop
            container = getattr(delta, "container", None)
            if container is not None:
                self.learn_container(container)
            if self.usage is None:
                self.usage = Usage.of(event.usage)
            else:
                self.usage.update(event.usage)  # cumulative: present fields replace earlier ones
            self.usage_final = True
        elif kind == "message_stop":
            return True
        return False

    def learn_container(self, container: Any) -> None:
        """A `Container` (code execution): its id, when it is text."""
        container_id = getattr(container, "id", None)
        if isinstance(container_id, str):
            self.container_id = container_id

    def learn_stream(self, stream: Any) -> None:
        """The request id of a stream, from its response headers."""
        headers = getattr(getattr(stream, "response", None), "headers", None)
        if headers is not None:
            self.request_id = headers.get("request-id")

    def learn_error(self, error: BaseException) -> None:
        """The request id an API error carries."""
        request_id = getattr(error, "request_id", None)
        if isinstance(request_id, str):
            self.request_id = request_id
