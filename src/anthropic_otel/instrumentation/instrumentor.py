"""`AnthropicInstrumentor`: the opentelemetry-python-contrib entry point of the package."""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from ..cost.pricing import Pricer, check_overrides
from ..cost.spend import Ledger
from ..telemetry import names as n
from ..telemetry.setup import meter_provider_from_env, tracer_provider_from_env
from ..version import __version__
from .content import content_mode
from .metrics import Metrics
from .patch import Patcher
from .start import Instrumentation as Telemetry

DEFAULT_METRIC_ATTRIBUTE_LIMIT = 100


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def check_budgets(budgets: Mapping[str, Any] | None) -> dict[str, float]:
    """Budgets by period, from the argument or `ANTHROPIC_OTEL_BUDGET_{DAY,MONTH}_USD`; errors now, not later."""
    found: dict[str, Any] = dict(budgets or {})
    for period in ("day", "month"):
        raw = os.environ.get(f"ANTHROPIC_OTEL_BUDGET_{period.upper()}_USD")
        if raw is not None and raw.strip() and period not in found:
            found[period] = raw
    checked: dict[str, float] = {}
    for period, value in found.items():
        if period not in ("day", "month"):
            raise ValueError(f"budget period must be 'day' or 'month', not {period!r}")
        try:
            dollars = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"budget for {period!r} must be a number of US dollars, not {value!r}") from None
        if not math.isfinite(dollars) or dollars <= 0:
            raise ValueError(f"budget for {period!r} must be a positive number of US dollars, not {value!r}")
        checked[period] = dollars
    return checked


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every Anthropic SDK client class: spans, metrics, cost; see the telemetry contract.

    Keyword arguments of `instrument()`: `tracer_provider`, `meter_provider` (default: the global ones,
    set up from `OTEL_*` variables when the application has none), `capture_content` (bool or a mode
    name; default `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`), `metric_attributes` (context
    attribute names that become metric labels; default `ANTHROPIC_OTEL_METRIC_ATTRIBUTES`),
    `metric_attribute_limit` (distinct values per label before `_other`, default 100), `keep_sdk_spans`
    (keep the SDK's own `anthropic.messages.create` span as a child of ours; default
    `ANTHROPIC_OTEL_KEEP_SDK_SPANS`), `budgets` (`{"day": 50, "month": 1000}` USD; default
    `ANTHROPIC_OTEL_BUDGET_{DAY,MONTH}_USD`), `prices` (`{"model": {"input": 3, "output": 15, ...}}`, USD per
    million tokens, winning over the bundled prices) and `prices_file` (a TOML or YAML file of the same
    tables under `models`; default `ANTHROPIC_OTEL_PRICES_FILE`). Bad budgets or prices raise `ValueError` here.
    """

    _patcher: Patcher | None = None
    telemetry: Telemetry | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("anthropic >= 1.14, < 3",)

    def _instrument(self, **kwargs: Any) -> None:
        budgets = check_budgets(kwargs.get("budgets"))
        overrides = check_overrides(kwargs.get("prices"), kwargs.get("prices_file"))
        content = content_mode(kwargs.get("capture_content"))
        attribute_names: Sequence[str] = kwargs.get("metric_attributes") or _env_list(
            "ANTHROPIC_OTEL_METRIC_ATTRIBUTES")
        limit = int(kwargs.get("metric_attribute_limit") or DEFAULT_METRIC_ATTRIBUTE_LIMIT)
        keep = kwargs.get("keep_sdk_spans")
        keep_sdk_spans = _env_bool("ANTHROPIC_OTEL_KEEP_SDK_SPANS") if keep is None else bool(keep)

        tracer_provider = kwargs.get("tracer_provider")
        if tracer_provider is None:
            tracer_provider_from_env()
        meter_provider = kwargs.get("meter_provider")
        if meter_provider is None:
            meter_provider_from_env()
        tracer = trace.get_tracer(n.SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(n.SCOPE, __version__, meter_provider=meter_provider)
        telemetry = Telemetry(
            tracer, Metrics(meter, attribute_names, limit, budgets), Pricer(overrides), content, keep_sdk_spans,
            Ledger(budgets))
        patcher = Patcher(telemetry)
        patcher.apply()
        self._patcher = patcher
        self.telemetry = telemetry

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._patcher is not None:
            self._patcher.remove()
        self._patcher = None
        self.telemetry = None
