"""Circuit breakers, one per model, shared by every sync and async caller of a policy in this process.

A plain state machine under a lock rather than `pybreaker` or `aiobreaker`: pybreaker lets every call through
while half-open (no probe limit) and supports async only through Tornado; aiobreaker is asyncio-only and has
not been released since 2021. Neither can be shared by threads and event loops at once, and both decide
failure by wrapping the call, while here the outcome comes from the response (a 429 counts for nothing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from ._config import Breaker
from ._errors import CircuitOpenError

CLOSED: Final = "closed"
HALF_OPEN: Final = "half_open"
OPEN: Final = "open"
STATE_VALUE: Final = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

# (model, old state, new state)
Listener = Callable[[str, str, str], None]


class CircuitBreaker:
    """closed -> open after `failure_threshold` consecutive failures; open -> half-open after `recovery_timeout`;
    half-open lets `half_open_probes` calls through, closes after `success_threshold` successes, re-opens on a
    failure."""

    def __init__(self, model: str, config: Breaker, listener: Listener | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.model = model
        self.config = config
        self._listener = listener
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0
        self._successes = 0
        self.last_used = clock()  # for the state gauge's expiry

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self._clock() >= self._opened_at + self.config.recovery_timeout:
                return HALF_OPEN  # the next call will be a probe
            return self._state

    def admit(self) -> bool:
        """Lets a call through (True when it is a half-open probe) or raises `CircuitOpenError`."""
        changed = None
        self.last_used = self._clock()
        with self._lock:
            if self._state == CLOSED:
                return False
            if self._state == OPEN:
                wait = self._opened_at + self.config.recovery_timeout - self._clock()
                if wait > 0:
                    raise CircuitOpenError(self.model, OPEN, wait, self._failures)
                changed = self._move(HALF_OPEN)
                self._probes = self._successes = 0
            if self._probes >= self.config.half_open_probes:
                raise CircuitOpenError(self.model, HALF_OPEN, 0.0, self._failures)
            self._probes += 1
        self._notify(changed)
        return True

    def record(self, probe: bool, failure: bool | None) -> None:
        """The outcome of an admitted call: failure True/False, or None when it says nothing about health."""
        changed = None
        with self._lock:
            if probe and self._probes > 0:
                self._probes -= 1
            if failure is None:
                return
            if self._state == HALF_OPEN:
                if not probe:
                    return  # a call admitted while closed, ending late: the probes decide
                if failure:
                    changed = self._trip()
                else:
                    self._successes += 1
                    if self._successes >= self.config.success_threshold:
                        self._failures = 0
                        changed = self._move(CLOSED)
            elif self._state == CLOSED:
                if failure:
                    self._failures += 1
                    if self._failures >= self.config.failure_threshold:
                        changed = self._trip()
                else:
                    self._failures = 0
        self._notify(changed)

    def _trip(self) -> tuple[str, str] | None:
        self._opened_at = self._clock()
        self._probes = 0
        return self._move(OPEN)

    def _move(self, state: str) -> tuple[str, str] | None:
        old, self._state = self._state, state
        return (old, state) if old != state else None

    def _notify(self, changed: tuple[str, str] | None) -> None:
        if changed is not None and self._listener is not None:
            self._listener(self.model, *changed)


class Breakers:
    """The policy's breakers by model, made on first use."""

    def snapshot(self) -> list[tuple[str, str, float]]:
        """(model, state, monotonic time of its last call) per breaker, for the state gauge."""
        with self._lock:
            breakers = list(self._by_model.values())
        return [(b.model, b.state, b.last_used) for b in breakers]

    def __init__(self, config: Breaker, listener: Listener | None = None) -> None:
        self.config = config
        self._listener = listener
        self._lock = threading.Lock()
        self._by_model: dict[str, CircuitBreaker] = {}

    def get(self, model: str) -> CircuitBreaker:
        breaker = self._by_model.get(model)
        if breaker is None:
            with self._lock:
                breaker = self._by_model.get(model)
                if breaker is None:
                    breaker = self._by_model[model] = CircuitBreaker(model, self.config, self._listener)
                    if self._listener is not None:
                        self._listener(model, CLOSED, CLOSED)  # publish the initial state
        return breaker
