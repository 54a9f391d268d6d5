"""The optional resilience wrapper: retries that only retry what can succeed, a circuit breaker per model,
limits that wait instead of failing, a budget guard, a fallback model and stream deadlines.

    import anthropic
    from anthropic_otel.resilience import Limits, Policy, Retry, wrap

    client = wrap(anthropic.Anthropic(), retry=Retry(max_attempts=5, deadline=30),
                  limits=Limits(concurrency=8, requests_per_minute=50))
    client.messages.create(...)          # same interface, same return values

Needs the `resilience` extra: `pip install 'anthropic-otel[resilience]'` (tenacity, limits, redis).
"""

from __future__ import annotations

import importlib.util
from typing import Any, TypeVar

if importlib.util.find_spec("tenacity") is None or importlib.util.find_spec("limits") is None:
    raise ImportError("anthropic_otel.resilience needs its extra: pip install 'anthropic-otel[resilience]'")

from ._config import Breaker, Budget, Limits, Retry, StoreFailure, StreamTimeouts
from ._errors import (
    BudgetExceededError,
    CircuitOpenError,
    LimitTimeoutError,
    ResilienceError,
    StoreUnavailableError,
    StreamTimeoutError,
)
from ._policy import Policy

__all__ = [
    "Breaker",
    "Budget",
    "BudgetExceededError",
    "CircuitOpenError",
    "LimitTimeoutError",
    "Limits",
    "Policy",
    "ResilienceError",
    "Retry",
    "StoreFailure",
    "StoreUnavailableError",
    "StreamTimeoutError",
    "StreamTimeouts",
    "wrap",
]

ClientT = TypeVar("ClientT")


def wrap(client: ClientT, policy: Policy | None = None, **options: Any) -> ClientT:
    """`client` with the same interface under a resilience policy: either `policy`, or a new `Policy(**options)`.

    Wrap a sync and an async client with the same `Policy` to share its breakers, limits and budget.
    """
    if policy is None:
        policy = Policy(**options)
    elif options:
        raise TypeError("pass either a policy or its options, not both")
    wrapped: ClientT = policy.wrap(client)
    return wrapped
