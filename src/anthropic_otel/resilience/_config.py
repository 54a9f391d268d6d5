"""What can be configured. Every feature is off until its object is passed to the policy."""

from __future__ import annotations

from dataclasses import dataclass


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
        if self.max_attempts < 1:
            raise ValueError("Retry.max_attempts must be >= 1")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("Retry.deadline must be > 0 or None")


@dataclass(frozen=True)
class Breaker:
    """A circuit breaker per model: `failure_threshold` consecutive failures (5xx, 529, connection errors and
    timeouts; not 429 or other 4xx) open it; after `recovery_timeout` seconds it lets `half_open_probes` calls
    through at once, and closes after `success_threshold` of them succeed (one failure re-opens it)."""

    failure_threshold: int = 5
    recovery_timeout: float = 30.0
    half_open_probes: int = 1
    success_threshold: int = 1

    def __post_init__(self) -> None:
        if min(self.failure_threshold, self.half_open_probes, self.success_threshold) < 1:
            raise ValueError("Breaker thresholds and probes must be >= 1")


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
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"Limits.{name} must be >= 1 or None")
        if self.window_seconds < 1:
            raise ValueError("Limits.window_seconds must be >= 1")
        if self.max_wait < 0:
            raise ValueError("Limits.max_wait must be >= 0")


@dataclass(frozen=True)
class Budget:
    """Spend limits in USD per UTC day and month, priced by the package's cost engine from each response.

    A call is refused (`BudgetExceededError`, nothing sent) when the period's spend is at its budget, or when
    spend plus the call's worst-case cost (estimated input tokens at the input price plus `max_tokens` at the
    output price) would exceed it (`worst_case=False` refuses only at/over budget). The worst case is reserved
    while the call runs and replaced by the real cost when it ends, so concurrent calls cannot overshoot.
    """

    day: float | None = None
    month: float | None = None
    worst_case: bool = True

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
