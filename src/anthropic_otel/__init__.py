"""OpenTelemetry spans, metrics and exact costs for every call made through the Anthropic SDK.

    import anthropic_otel
    anthropic_otel.instrument()
"""

from __future__ import annotations

from typing import Any

from .cost.spend import Spend
from .instrumentation.content import ContentMode
from .instrumentation.context import attributes
from .instrumentation.instrumentor import AnthropicInstrumentor
from .version import __version__

__all__ = ["AnthropicInstrumentor", "ContentMode", "Spend", "__version__", "attributes", "instrument", "resilient",
           "spend", "uninstrument"]


def instrument(**kwargs: Any) -> AnthropicInstrumentor:
    """Instruments the Anthropic SDK (idempotent) and returns the instrumentor.

    Uses the global tracer and meter providers when the application set them up; otherwise sets them up
    from the standard `OTEL_*` variables. See `AnthropicInstrumentor` for the keyword arguments.
    """
    instrumentor = AnthropicInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(**kwargs)
    return instrumentor


def uninstrument() -> None:
    """Restores every patched method; later calls produce no telemetry."""
    instrumentor = AnthropicInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


def spend() -> Spend:
    """Dollars spent so far in this process, in the current UTC day and month, with the configured budgets.

    For applications that act on spend (degrade to a cheaper model, stop a job). Raises `RuntimeError` before
    `instrument()`.
    """
    telemetry = AnthropicInstrumentor().telemetry
    if telemetry is None:
        raise RuntimeError("anthropic_otel.spend() needs anthropic_otel.instrument() first")
    return telemetry.ledger.spend()


def resilient(client: Any, policy: Any = None, **options: Any) -> Any:
    """`client` under a resilience policy: retries, breaker, limits, budget, fallback, stream deadlines.

    Needs `pip install 'anthropic-otel[resilience]'`; see `anthropic_otel.resilience` for the options.
    """
    from .resilience import wrap

    return wrap(client, policy, **options)
