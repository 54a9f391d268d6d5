"""Proxies for the SDK's streams that watch events pass without changing them.

`create(stream=True)` returns a `Stream` / `AsyncStream`; we return a `wrapt.ObjectProxy` of it, so
`isinstance`, `response`, attributes and context managers behave as before. The `messages.stream()`
helper builds its `MessageStream` around the same raw stream, so wrapping the raw stream there too covers
`text_stream`, `get_final_message()`, `until_done()` and plain iteration alike.

Per event the proxy does one attribute read and one comparison; only `message_start`, `message_delta` and
`message_stop` do more. The span ends once: on `message_stop`, when the server ends or cuts the stream,
on `close()` / `__exit__`, or when an unconsumed stream is garbage-collected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from time import perf_counter
from typing import Any

import wrapt

from ..telemetry import faults as _faults
from .call import Call
from .content import ContentMode

_CAPTURE = _faults.Guard("content capture")


def _accumulator() -> Any:
    from anthropic.lib.streaming._messages import accumulate_event

    return accumulate_event


class _Capture:
    """Rebuilds the message from events, for content capture only (off by default: costs per event)."""

    __slots__ = ("accumulate", "json_bufs")

    def __init__(self) -> None:
        self.accumulate = _accumulator()
        self.json_bufs: dict[int, bytes] = {}

    def __call__(self, call: Call, event: Any) -> None:
        with _CAPTURE:
            call.snapshot = self.accumulate(event=event, current_snapshot=call.snapshot, json_bufs=self.json_bufs)


def _capture_for(call: Call) -> _Capture | None:
    return None if call.sinks.content is ContentMode.NO_CONTENT else _Capture()


# The sync and async proxies below are twins on purpose: their loops run per SSE event, and a shared helper
# would add a Python call to every event (about 0.1 µs) where the loop itself costs one attribute read and
# one comparison. Everything past the event type check is shared: it lives in `Call`.


class StreamProxy(wrapt.ObjectProxy[Any]):
    """A `Stream` that reports its events to a `Call`."""

    def __init__(self, wrapped: Any, call: Call) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_capture = _capture_for(call)
        call.stream_started(wrapped)

    def __iter__(self) -> Iterator[Any]:
        call = self._self_call
        capture = self._self_capture
        try:
            for event in self.__wrapped__:
                if event.type != "content_block_delta":
                    call.event(event)
                elif call.first_chunk is None:
                    call.first_chunk = perf_counter()
                if capture is not None:
                    capture(call, event)
                yield event
        except GeneratorExit:
            raise
        except BaseException as error:
            call.stream_failed(error)
            raise
        call.stream_exhausted()

    def __next__(self) -> Any:
        call = self._self_call
        try:
            event = self.__wrapped__.__next__()
        except StopIteration:
            call.stream_exhausted()
            raise
        except BaseException as error:
            call.stream_failed(error)
            raise
        if event.type != "content_block_delta":
            call.event(event)
        elif call.first_chunk is None:
            call.first_chunk = perf_counter()
        if self._self_capture is not None:
            self._self_capture(call, event)
        return event

    def __enter__(self) -> StreamProxy:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_call.stream_closed()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_call.stream_closed()

    def __del__(self) -> None:
        with suppress(Exception):  # interpreter shutdown
            self._self_call.stream_closed()


class AsyncStreamProxy(wrapt.ObjectProxy[Any]):
    """An `AsyncStream` that reports its events to a `Call`."""

    def __init__(self, wrapped: Any, call: Call) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_capture = _capture_for(call)
        call.stream_started(wrapped)

    async def __aiter__(self) -> AsyncIterator[Any]:
        call = self._self_call
        capture = self._self_capture
        try:
            async for event in self.__wrapped__:
                if event.type != "content_block_delta":
                    call.event(event)
                elif call.first_chunk is None:
                    call.first_chunk = perf_counter()
                if capture is not None:
                    capture(call, event)
                yield event
        except GeneratorExit:
            raise
        except BaseException as error:
            call.stream_failed(error)
            raise
        call.stream_exhausted()

    async def __anext__(self) -> Any:
        call = self._self_call
        try:
            event = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            call.stream_exhausted()
            raise
        except BaseException as error:
            call.stream_failed(error)
            raise
        if event.type != "content_block_delta":
            call.event(event)
        elif call.first_chunk is None:
            call.first_chunk = perf_counter()
        if self._self_capture is not None:
            self._self_capture(call, event)
        return event

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_call.stream_closed()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_call.stream_closed()

    def __del__(self) -> None:
        with suppress(Exception):  # interpreter shutdown
            self._self_call.stream_closed()
