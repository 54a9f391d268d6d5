"""What can be configured. Every feature is off until its object is passed to the policy.

Every setting is checked at construction: a wrong type (a string, a bool where a number is meant), NaN, an
infinity, or a value out of range raises `TypeError` / `ValueError` naming the setting, instead of failing on
the first call (or, worse, refusing every call).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

STORE_OPEN: Final = "open"
STORE_CLOSED: Final = "closed"


def _number(owner: object, name: str, *, integer: bool = False, positive: bool = False,
            optional: bool = False, minimum: float = 0) -> None:
    """Checks `owner.name`: an int (or a finite float / Decimal unless `integer`), not a bool, at least `minimum`,
    above 0 when `positive`; None only when `optional`."""
    value: Any = getattr(owner, name)
    where = f"{type(owner).__name__}.{name}"
    if value is None:
        if optional:
            return
        raise TypeError(f"{where} must be a number, not None")
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float | Decimal):
        kind = "an int" if integer else "a number"
        raise TypeError(f"{where} must be {kind}{' or None' if optional else ''}, not {type(value).__name__} "
                        f"{value!r}")
    number = float(value)  # a real number by now (checked above)
    if not math.isfinite(number):
        raise ValueError(f"{where} must be finite, not {value!r}")
    if positive and number <= 0:
        raise ValueError(f"{where} must be > 0{' or None' if optional else ''}, not {value!r}")
    if number < minimum:
        raise ValueError(f"{where} must be >= {minimum:g}{' or None' if optional else ''}, not {value!r}")


def _flag(owner: object, name: str) -> None:
    value = getattr(owner, name)
    if not isinstance(value, bool):
        raise TypeError(f"{type(owner).__name__}.{name} must be True or False, not {value!r}")


def _choice(owner: object, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(owner, name)
    if value not in choices:
        raise ValueError(f"{type(owner).__name__}.{name} must be one of {', '.join(map(repr, choices))}, "
                         f"not {value!r}")


@dataclass(frozen=True)
class Retry:
    """Retries of 408, 409, 429, 500, 502, 503, 504, 529, connection errors and timeouts (and of what the API marks
    `x-should-retry: true`; never of other 4xx, nor of what it marks `false`).

    The wait honours `retry-after-ms` / `retry-after` up to `max_retry_after` seconds, else it is exponential
    backoff with full jitter: uniform in [0, min(max_delay, initial_delay * 2**(attempt - 1))]. No wait and no new
    attempt starts past `deadline` seconds after the call began (limiter waits included); an attempt in flight
    is not cut (give the SDK a `timeout=` for that). The SDK's own `max_retries` is replaced by this policy.
    """

    max_attempts: int = 4
    deadline: float | None = 60.0
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        _number(self, "max_attempts", integer=True, minimum=1)
        _number(self, "deadline", positive=True, optional=True)
        _number(self, "initial_delay")
        _number(self, "max_delay")
        _number(self, "max_retry_after")


@dataclass(frozen=True)
class Breaker:
    """A circuit breaker per model: `failure_threshold` consecutive failures (5xx, 529, connection errors and
    timeouts; not 429 or other 4xx) open it; after `recovery_timeout` seconds it lets `half_open_probes` calls
    through at once, and closes after `success_threshold` of them succeed (one failure re-opens it).

    The `anthropic_otel.resilience.circuit.state` gauge reports a model's current state at each collection while
    the model had a call in the last `state_ttl` seconds (or a state change); after that its series ends, so a
    model no longer called does not report its last state forever."""

    failure_threshold: int = 5
    recovery_timeout: float = 30.0
    half_open_probes: int = 1
    success_threshold: int = 1
    state_ttl: float = 900.0

    def __post_init__(self) -> None:
        _number(self, "failure_threshold", integer=True, minimum=1)
        _number(self, "recovery_timeout", positive=True)
        _number(self, "half_open_probes", integer=True, minimum=1)
        _number(self, "success_threshold", integer=True, minimum=1)
        _number(self, "state_ttl", positive=True)


@dataclass(frozen=True)
class Limits:
    """Client-side limits that make calls wait (at most `max_wait` seconds, then `LimitTimeoutError`).

    - `concurrency`: calls in flight at once through the policy (a stream counts until it ends), in this
      process, shared by sync and async callers.
    - `requests_per_minute`, `input_tokens_per_minute`, `output_tokens_per_minute`: over a moving window of
      `window_seconds` (the per-minute numbers are scaled to it); kept in Redis when the policy has a
      `redis_url`, so every process and host shares them. Input tokens are estimated before the call (characters
      / 4, images 1,600) and corrected with the real count afterwards (uncached input + cache writes, as the API
      counts them). Output tokens are reserved as `max_tokens` (or `output_estimate` when set, smaller) before
      the call, like the API does; what a call used beyond its reservation is charged when it ends; an unused
      reservation is not given back.
    - `per_key`: a context attribute (`anthropic_otel.attributes(**{"enduser.id": ...})`) whose value gets its
      own rate limits, e.g. per end user (calls without the attribute share one); `per_model`: separate rate
      limits per model (as the API has). Rate limits are taken in order (requests, input, output tokens): a
      call refused on a later one has still used its place in the earlier ones.
    - `from_headers`: also wait, before a 429 happens, when the API's `anthropic-ratelimit-*-remaining` headers
      say a resource is used up until its `-reset` time.
    """

    concurrency: int | None = None
    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    max_wait: float = 30.0
    per_key: str | None = None
    per_model: bool = True
    window_seconds: int = 60
    output_estimate: int | None = None
    from_headers: bool = True

    def __post_init__(self) -> None:
        for name in ("concurrency", "requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute",
                     "output_estimate"):
            _number(self, name, integer=True, optional=True, minimum=1)
        _number(self, "window_seconds", integer=True, minimum=1)
        _number(self, "max_wait")
        if self.per_key is not None and (not isinstance(self.per_key, str) or not self.per_key):
            raise TypeError(f"Limits.per_key must be a non-empty attribute name or None, not {self.per_key!r}")
        _flag(self, "per_model")
        _flag(self, "from_headers")


@dataclass(frozen=True)
class Budget:
    """Spend limits in USD per UTC day and month (each > 0, or None), priced by the package's cost engine from each
    response.

    A call is refused (`BudgetExceededError`, nothing sent) when the period's spend is at its budget, or when
    spend plus the call's worst-case cost would exceed it (`worst_case=False` refuses only at/over budget). The
    worst case prices the estimated input tokens at the dearest class the request can incur (a `cache_control`
    block with `ttl: "1h"`: the 1-hour cache-write price, 2x input; any other block: the 5-minute one, 1.25x;
    else the input price, at the model's real rates) plus `max_tokens` at the output price, for the dearer of the
    model and the policy's fallback model. It is reserved while the call runs and replaced by the real cost when
    it ends, so concurrent calls cannot overshoot. A model with no known price is refused under a budget
    (`BudgetExceededError.unpriced` names it): its cost could not be counted, so the budget could not hold; give
    the policy a `Pricer` with a price override for it.

    `per_run` (USD, > 0, or None) bounds one agent run of the SDK's tool runner
    (`client.beta.messages.tool_runner(...)` on the wrapped client, with `anthropic_otel.instrument()` on): a call
    of the run (its own or one a tool makes) is refused before sending when the run's spend so far, plus the
    worst case of the run's calls in flight and of this call, would exceed it. It lives in this process, needs no
    Redis, and does nothing to calls made outside a run.
    """

    day: float | None = None
    month: float | None = None
    worst_case: bool = True
    per_run: float | None = None

    def __post_init__(self) -> None:
        _number(self, "day", positive=True, optional=True)
        _number(self, "month", positive=True, optional=True)
        _flag(self, "worst_case")
        _number(self, "per_run", positive=True, optional=True)

    def budgets(self) -> dict[str, float]:
        return {period: value for period, value in (("day", self.day), ("month", self.month)) if value is not None}


@dataclass(frozen=True)
class StreamTimeouts:
    """For `create(stream=True)` and `messages.stream()`: `idle` seconds without data from the server (between
    events, and before the first), and `total` seconds from sending the request. On expiry the stream is closed
    and `StreamTimeoutError` carries the text received so far. Before the first event a timed-out stream is
    retried like a timeout; after it, never."""

    total: float | None = None
    idle: float | None = None

    def __post_init__(self) -> None:
        _number(self, "total", positive=True, optional=True)
        _number(self, "idle", positive=True, optional=True)


@dataclass(frozen=True)
class StoreFailure:
    """What the wrapper does when the shared store (Redis, with a policy's `redis_url`) cannot be reached.

    `"open"` lets the call go without that component; `"closed"` refuses it with `StoreUnavailableError` (a
    `ResilienceError`; nothing is sent). The defaults: rate limits fail open (they protect against a 429, which
    the API answers by itself and retries handle, so an outage of the store should not stop the traffic), the
    budget fails closed (it protects money: with the spend unknown, sending is the one thing that cannot be
    undone). Either way a response the API already returned is always given to the caller: its cost or token
    count is kept in this process and added to the store when it is back, and the failure is counted in
    `anthropic_otel.resilience.store.failures`.
    """

    limits: Literal["open", "closed"] = "open"
    budget: Literal["open", "closed"] = "closed"

    def __post_init__(self) -> None:
        _choice(self, "limits", (STORE_OPEN, STORE_CLOSED))
        _choice(self, "budget", (STORE_OPEN, STORE_CLOSED))


def check_type(owner: str, name: str, value: Any, kind: type | tuple[type, ...], optional: bool = True) -> None:
    """A `TypeError` naming `owner.name` unless `value` is a `kind` (or None when `optional`)."""
    if value is None and optional:
        return
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise TypeError(f"{owner}.{name} must not be a bool")
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise TypeError(f"{owner}({name}=...) must be {names}{' or None' if optional else ''}, "
                        f"not {type(value).__name__} {value!r}")
