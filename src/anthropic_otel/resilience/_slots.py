"""A counting semaphore that threads and asyncio tasks (of any event loop) share, first come first served.

`threading.Semaphore` would block an event loop and `asyncio.Semaphore` belongs to one loop; this one hands a
released slot straight to the oldest waiter, waking a thread through its `Event` and a task through
`call_soon_threadsafe` on its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque


class _Waiter:
    __slots__ = ("event", "future", "granted", "loop")

    def __init__(self, event: threading.Event | None = None, loop: asyncio.AbstractEventLoop | None = None,
                 future: asyncio.Future[None] | None = None) -> None:
        self.event = event
        self.loop = loop
        self.future = future
        self.granted = False

    def wake(self) -> bool:
        if self.event is not None:
            self.event.set()
            return True
        assert self.loop is not None and self.future is not None
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:  # its loop is closed: the waiter is gone
            return False
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Slots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = limit
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()

    @property
    def in_use(self) -> int:
        with self._lock:
            return self.limit - self._free

    def acquire(self, timeout: float) -> bool:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            if timeout <= 0:
                return False
            waiter = _Waiter(event=threading.Event())
            self._waiters.append(waiter)
        assert waiter.event is not None
        if waiter.event.wait(timeout):
            return True
        return self._give_up(waiter)

    async def acquire_async(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            if timeout <= 0:
                return False
            waiter = _Waiter(loop=loop, future=loop.create_future())
            self._waiters.append(waiter)
        assert waiter.future is not None
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
            return True
        except TimeoutError:
            return self._give_up(waiter)
        except asyncio.CancelledError:
            if self._give_up(waiter):
                self.release()
            raise

    def _give_up(self, waiter: _Waiter) -> bool:
        """True when the slot was granted in the meantime (the caller then owns it)."""
        with self._lock:
            if waiter.granted:
                return True
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            return False

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                waiter.granted = True
                if waiter.wake():
                    return
            self._free = min(self.limit, self._free + 1)
