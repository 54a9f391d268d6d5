"""OpenTelemetry spans, metrics and exact costs for every call made through the Anthropic SDK.

    import anthropic_otel
    anthropic_otel.instrument()
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .agents import install as _install_agents
from .cost.spend import Spend
from .instrumentation.content import ContentMode
from .instrumentation.context import attributes
from .instrumentation.instrumentor import AnthropicInstrumentor, add_extension
from .version import __version__

add_extension(_install_agents)  # agent runs (tool runner, Claude Agent SDK) are part of instrument()

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["AnthropicInstrumentor", "ContentMode", "Spend", "__version__", "attributes", "instrument", "resilient",
           "spend", "uninstrument"]


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool | str | ContentMode | None = None,
    metric_attributes: Sequence[str] | None = None,
    metric_attribute_limit: int | None = None,
    keep_sdk_spans: bool | None = None,
    budgets: Mapping[str, float | str] | None = None,
    prices: Mapping[str, Mapping[str, float | str]] | None = None,
    prices_file: str | os.PathLike[str] | None = None,
    cache_diagnostics: bool | None = None,
) -> AnthropicInstrumentor:
    """Instruments the Anthropic SDK (idempotent) and returns the instrumentor.

    Uses the global tracer and meter providers when the application set them up; otherwise sets them up
    from the standard `OTEL_*` variables. See `AnthropicInstrumentor` for the settings; a bad one raises
    `TypeError` or `ValueError` naming it, before anything is patched.
    """
    instrumentor = AnthropicInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(
            tracer_provider=tracer_provider, meter_provider=meter_provider, capture_content=capture_content,
            metric_attributes=metric_attributes, metric_attribute_limit=metric_attribute_limit,
            keep_sdk_spans=keep_sdk_spans, budgets=budgets, prices=prices, prices_file=prices_file,
            cache_diagnostics=cache_diagnostics)
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
