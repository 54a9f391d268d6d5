"""The exceptions the wrapper raises itself. All are `anthropic.AnthropicError`s, so existing handlers catch them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import anthropic


class ResilienceError(anthropic.AnthropicError):
    """Base of the wrapper's own errors; `reason` is the `anthropic_otel.rejection.reason` value."""

    reason: str = "resilience"


class CircuitOpenError(ResilienceError):
    """The model's circuit breaker refused the call without sending it.

    `state` is `"open"` (failing; no call goes through until `retry_at`) or `"half_open"` (probes in flight; the
    circuit closes when they succeed). `retry_in` is the number of seconds until the next probe may start.
    """

    reason = "circuit_open"

    def __init__(self, model: str, state: str, retry_in: float, failures: int) -> None:
        self.model = model
        self.state = state
        self.retry_in = max(0.0, retry_in)
        self.retry_at = datetime.now(UTC) + timedelta(seconds=self.retry_in)
        self.failures = failures
        if state == "open":
            detail = (f"after {failures} consecutive failures; next probe in {self.retry_in:.1f} s "
                      f"(at {self.retry_at:%H:%M:%S} UTC)")
        else:
            detail = "its probe calls are in flight; more calls go through once a probe succeeds"
        super().__init__(f"circuit breaker for model {model!r} is {state.replace('_', '-')}: {detail}")


class LimitTimeoutError(ResilienceError):
    """A limit (concurrency, requests, input or output tokens per minute, or the API's own rate-limit headers)
    would have made the call wait longer than allowed; nothing was sent."""

    reason = "limit_timeout"

    def __init__(self, resource: str, waited: float, max_wait: float, key: str | None = None,
                 needed: float | None = None) -> None:
        self.resource = resource
        self.waited = waited
        self.max_wait = max_wait
        self.key = key
        self.needed = needed
        who = f" for key {key!r}" if key else ""
        more = f", {needed:.1f} s more needed" if needed is not None else ""
        super().__init__(f"{resource} limit{who}: waited {waited:.2f} s of at most {max_wait:.2f} s{more}; "
                         "the call was not sent")


class BudgetExceededError(ResilienceError):
    """The period's spend (plus this call's worst-case cost, when estimated) would exceed its budget."""

    reason = "budget"

    def __init__(self, period: str, spent: Decimal, budget: Decimal, estimate: Decimal,
                 unpriced: str | None = None) -> None:
        self.period = period
        self.spent = spent
        self.budget = budget
        self.estimate = estimate
        self.unpriced = unpriced
        if unpriced is not None:
            super().__init__(f"no price is known for model {unpriced!r}, so the {period} budget ${budget} cannot "
                             "bound its cost; the call was not sent (give the policy a Pricer with a price "
                             "override for it)")
            return
        tail = f" + this call's worst case ${estimate:.6f}" if estimate else ""
        super().__init__(f"{period} budget ${budget} reached: spent ${spent:.6f}{tail}; the call was not sent")


class StoreUnavailableError(ResilienceError):
    """The shared store (Redis) could not be reached and the component's `StoreFailure` policy is "closed":
    nothing was sent. `component` is "limits" or "budget"; the Redis error is the `__cause__`."""

    reason = "store_unavailable"

    def __init__(self, component: str, error: BaseException) -> None:
        self.component = component
        super().__init__(f"the {component} store (Redis) is unavailable ({type(error).__name__}: {error}) and "
                         f"its policy is to fail closed; the call was not sent")


class StreamTimeoutError(ResilienceError):
    """A stream was cut at its idle timeout (no data between events) or its total deadline.

    `partial_text` is the text received before the cut; the stream has been closed.
    """

    reason = "stream_timeout"

    def __init__(self, kind: str, timeout: float, partial_text: str, elapsed: float) -> None:
        self.kind = kind
        self.timeout = timeout
        self.partial_text = partial_text
        self.elapsed = elapsed
        what = "no event for" if kind == "idle" else "stream still open after"
        super().__init__(f"stream cut ({kind} timeout): {what} {timeout:g} s; "
                         f"{len(partial_text)} characters of text received before the cut")
