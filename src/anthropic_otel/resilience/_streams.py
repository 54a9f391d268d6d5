"""Stream deadlines: an idle timeout between events and a total deadline, with the partial text on expiry.

The idle timeout is the HTTP read timeout of the stream's request (set per attempt), so it costs nothing per
event. The total deadline is checked per event and, for a stream that stalls, enforced by shutting down its
socket at the deadline (a shared watchdog thread for sync streams, the event loop for async ones): the blocked
read fails at once and the stream is closed, so an instrumented stream still ends its span exactly once. Before
the response headers there is no socket to shut: the request's read timeout is capped at `total` as well (a
single read that waits that long is past the deadline anyway), and its timeout becomes a `StreamTimeoutError`.

This module knows nothing of the engine: what happens when a stream ends is the `on_end` callback its guard was
given (one implementation in the engine, driven sync or async).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import anthropic
import httpx2
import wrapt

from ..cost.usage import Usage
from ._config import StreamTimeouts
from ._errors import StreamTimeoutError

if TYPE_CHECKING:
    from collections.abc import Awaitable

NOTHING: Final[Any] = object()

# (guard, error or None, completed: the stream was read to its end)
EndCallback = Callable[["Guard", BaseException | None, bool], None]
AsyncEndCallback = Callable[["Guard", BaseException | None, bool], "Awaitable[None]"]


class _Watchdog:
    """One daemon thread that runs callbacks at monotonic deadlines (started on first use)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, list[Any]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, when: float, callback: Callable[[], None]) -> list[Any]:
        entry: list[Any] = [callback]
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), entry))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="anthropic-otel-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return entry

    @staticmethod
    def cancel(entry: list[Any]) -> None:
        entry[0] = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                when, _, entry = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            callback = entry[0]
            if callback is not None:
                with contextlib.suppress(Exception):
                    callback()


WATCHDOG: Final = _Watchdog()


def _shutdown(stream: Any) -> None:
    """Makes a read blocked on the stream's socket fail now (a FIN to ourselves); best effort."""
    response = getattr(stream, "response", None)
    network = getattr(response, "extensions", {}).get("network_stream") if response is not None else None
    sock = network.get_extra_info("socket") if network is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def read_timeout(base: Any, idle: float) -> httpx2.Timeout:
    """`base` (a request's or client's timeout) with its read timeout capped at `idle` (the smaller of the idle
    timeout and the total deadline)."""
    if isinstance(base, httpx2.Timeout):
        read = idle if base.read is None else min(base.read, idle)
        return httpx2.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)
    if isinstance(base, int | float):
        return httpx2.Timeout(float(base), read=min(float(base), idle))
    return httpx2.Timeout(None, read=idle)


class Guard:
    """Per stream attempt: the deadlines, the text and usage seen, the breaker verdict still to give, and what to do
    once when it ends. `call` is the engine's, opaque here."""

    __slots__ = ("_lock", "breaker", "call", "done", "expired", "first", "idle", "lease", "model", "on_end",
                 "on_end_async", "probe", "read_kind", "started", "text", "timer", "total", "total_at", "usage")

    def __init__(self, call: Any, timeouts: StreamTimeouts | None, tracks_usage: bool, lease: Any, model: str,
                 started: float, on_end: EndCallback, on_end_async: AsyncEndCallback) -> None:
        self.call = call
        self.lease = lease
        self.model = model
        self.started = started
        self.on_end = on_end
        self.on_end_async = on_end_async
        self.idle = timeouts.idle if timeouts is not None else None
        self.total = timeouts.total if timeouts is not None else None
        self.total_at = started + self.total if self.total is not None else None
        # which deadline a read timeout stands for: the request's read timeout is the smaller of the two
        self.read_kind: str | None = None
        if self.total is not None and (self.idle is None or self.total <= self.idle):
            self.read_kind = "total"
        elif self.idle is not None:
            self.read_kind = "idle"
        self.text: list[str] | None = [] if timeouts is not None else None
        self.usage: Usage | None = Usage() if tracks_usage else None
        self.breaker: Any = None  # the attempt's breaker, told the outcome when the stream ends
        self.probe = False
        self.expired: str | None = None
        self.timer: Any = None
        self.done = False
        self.first: Any = NOTHING
        self._lock = threading.Lock()

    @property
    def read_limit(self) -> float | None:
        """The request's read timeout: the smaller of `idle` and `total`."""
        limits = [t for t in (self.idle, self.total) if t is not None]
        return min(limits) if limits else None

    # -- per event -------------------------------------------------------------------------------------------

    def observe(self, event: Any) -> None:
        kind = event.type
        if kind == "content_block_delta":
            if self.text is not None:
                delta = event.delta
                if delta.type == "text_delta":
                    self.text.append(delta.text)
        elif kind == "message_start":
            if self.usage is not None:
                self.usage.update(event.message.usage)
        elif kind == "message_delta" and self.usage is not None:
            self.usage.update(event.usage)

    def overdue(self) -> bool:
        return self.total_at is not None and time.monotonic() > self.total_at

    # -- deadlines -------------------------------------------------------------------------------------------

    def arm(self, stream: Any, in_event_loop: bool) -> None:
        """Shuts the stream's socket at the total deadline: from the watchdog thread, or the running event loop."""
        if self.total_at is None:
            return

        def expire() -> None:
            self.expired = "total"
            _shutdown(stream)

        if in_event_loop:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_at(loop.time() + max(0.0, self.total_at - time.monotonic()), expire)
        else:
            self.timer = WATCHDOG.schedule(self.total_at, expire)

    def disarm(self) -> None:
        timer, self.timer = self.timer, None
        if timer is None:
            return
        if isinstance(timer, list):
            WATCHDOG.cancel(timer)
        else:
            timer.cancel()

    def timed_out(self, kind: str) -> StreamTimeoutError:
        timeout = (self.total if kind == "total" else self.idle) or 0.0
        return StreamTimeoutError(kind, timeout, "".join(self.text or ()), time.monotonic() - self.started)

    def convert(self, error: BaseException) -> BaseException:
        """The error to raise for `error`: a `StreamTimeoutError` when a deadline caused it (also before the
        response headers, where the SDK reports the read timeout as `APITimeoutError`)."""
        if isinstance(error, StreamTimeoutError):
            return error
        if self.expired == "total" or (self.total_at is not None and isinstance(error, httpx2.TransportError)
                                       and self.overdue()):
            return self.timed_out("total")
        if self.read_kind is not None and (
                isinstance(error, httpx2.ReadTimeout)
                or (isinstance(error, anthropic.APITimeoutError) and isinstance(error.__cause__, httpx2.ReadTimeout))):
            return self.timed_out(self.read_kind)
        return error

    def claim(self) -> bool:
        """True exactly once: for whoever ends the stream."""
        with self._lock:
            if self.done:
                return False
            self.done = True
        self.disarm()
        return True


# The per-event methods below (`__iter__` / `__aiter__`, `__next__` / `__anext__`) stay twins on purpose: sharing
# a helper between them would cost a function call per stream event, and the per-event budget is an attribute
# read and a compare. Everything that is not per event (what happens at the end) is one implementation in the
# engine, reached through `Guard.on_end` / `Guard.on_end_async`.


class GuardedStream(wrapt.ObjectProxy[Any]):
    """A sync `Stream` (possibly the instrumentation's proxy of one) under a `Guard`; yields the peeked event first."""

    def __init__(self, wrapped: Any, guard: Guard) -> None:
        super().__init__(wrapped)
        self._self_guard = guard

    def __iter__(self) -> Iterator[Any]:
        guard = self._self_guard
        try:
            first, guard.first = guard.first, NOTHING
            if first is not NOTHING:
                yield first
            for event in self.__wrapped__:
                guard.observe(event)
                if guard.total_at is not None and guard.overdue():
                    raise guard.timed_out("total")
                yield event
        except GeneratorExit:
            raise
        except BaseException as error:
            converted = self._self_fail(error)
            if converted is error:
                raise
            raise converted from error
        self._self_finish(None, True)

    def __next__(self) -> Any:
        guard = self._self_guard
        first = guard.first
        if first is not NOTHING:
            guard.first = NOTHING
            return first
        try:
            event = self.__wrapped__.__next__()
            guard.observe(event)
            if guard.total_at is not None and guard.overdue():
                raise guard.timed_out("total")
        except StopIteration:
            self._self_finish(None, True)
            raise
        except BaseException as error:
            converted = self._self_fail(error)
            if converted is error:
                raise
            raise converted from error
        return event

    def _self_fail(self, error: BaseException) -> BaseException:
        converted = self._self_guard.convert(error)
        if isinstance(converted, StreamTimeoutError):
            with contextlib.suppress(Exception):
                self.__wrapped__.close()
        self._self_finish(converted)
        return converted

    def _self_finish(self, error: BaseException | None, completed: bool = False) -> None:
        guard = self._self_guard
        if guard.claim():
            guard.on_end(guard, error, completed)

    def __enter__(self) -> GuardedStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_finish(None)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_finish(None)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._self_finish(None)


class AsyncGuardedStream(wrapt.ObjectProxy[Any]):
    """An `AsyncStream` under a `Guard`."""

    def __init__(self, wrapped: Any, guard: Guard) -> None:
        super().__init__(wrapped)
        self._self_guard = guard

    async def __aiter__(self) -> AsyncIterator[Any]:
        guard = self._self_guard
        try:
            first, guard.first = guard.first, NOTHING
            if first is not NOTHING:
                yield first
            async for event in self.__wrapped__:
                guard.observe(event)
                if guard.total_at is not None and guard.overdue():
                    raise guard.timed_out("total")
                yield event
        except GeneratorExit:
            raise
        except BaseException as error:
            converted = await self._self_fail(error)
            if converted is error:
                raise
            raise converted from error
        await self._self_finish(None, True)

    async def __anext__(self) -> Any:
        guard = self._self_guard
        first = guard.first
        if first is not NOTHING:
            guard.first = NOTHING
            return first
        try:
            event = await self.__wrapped__.__anext__()
            guard.observe(event)
            if guard.total_at is not None and guard.overdue():
                raise guard.timed_out("total")
        except StopAsyncIteration:
            await self._self_finish(None, True)
            raise
        except BaseException as error:
            converted = await self._self_fail(error)
            if converted is error:
                raise
            raise converted from error
        return event

    async def _self_fail(self, error: BaseException) -> BaseException:
        converted = self._self_guard.convert(error)
        if isinstance(converted, StreamTimeoutError):
            with contextlib.suppress(Exception):
                await self.__wrapped__.close()
        await self._self_finish(converted)
        return converted

    async def _self_finish(self, error: BaseException | None, completed: bool = False) -> None:
        guard = self._self_guard
        if guard.claim():
            await guard.on_end_async(guard, error, completed)

    async def __aenter__(self) -> AsyncGuardedStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self.__wrapped__.__aexit__(*exc_info)
        finally:
            await self._self_finish(None)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            await self._self_finish(None)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            guard = self._self_guard
            if guard.claim():
                guard.on_end(guard, None, False)  # no event loop to await in: the blocking driver
