"""`AnthropicInstrumentor`: the opentelemetry-python-contrib entry point of the package."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from ..cost.pricing import Pricer
from ..cost.spend import Ledger
from ..telemetry import names as n
from ..telemetry.faults import Guard
from ..telemetry.setup import has_meter_provider, meter_provider_from_env, tracer_provider_from_env
from ..version import __version__
from .config import DEFAULT_METRIC_ATTRIBUTE_LIMIT, Settings, check, check_budgets, check_prometheus_port
from .content import ContentMode
from .conversations import Conversations
from .metrics import Metrics
from .patch import Patcher
from .start import Instrumentation

__all__ = ["DEFAULT_METRIC_ATTRIBUTE_LIMIT", "AnthropicInstrumentor", "add_extension", "check_budgets"]

# What `instrument()` also runs, given its `Instrumentation` and meter; each returns its undo. The top level
# registers the agent-run patches here (`anthropic_otel.agents` imports this package, not the other way).
Extension = Callable[[Instrumentation, metrics.Meter], Callable[[], None]]
_EXTENSIONS: list[Extension] = []
_EXTENSION = Guard("extension")


def add_extension(extension: Extension) -> None:
    """Makes every later `instrument()` run `extension` too (once, however often it is added)."""
    if extension not in _EXTENSIONS:
        _EXTENSIONS.append(extension)


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every Anthropic SDK client class: spans, metrics, cost; see the telemetry contract.

    Keyword arguments of `instrument()`: `tracer_provider`, `meter_provider` (default: the global ones,
    set up from `OTEL_*` variables when the application has none), `capture_content` (bool or a mode
    name; default `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`), `metric_attributes` (context
    attribute names that become metric labels; default `ANTHROPIC_OTEL_METRIC_ATTRIBUTES`),
    `metric_attribute_limit` (distinct values per label before `_other`, default 100; also bounds the model
    and server labels), `keep_sdk_spans` (keep the SDK's own `anthropic.messages.create` span as a child of
    ours; default `ANTHROPIC_OTEL_KEEP_SDK_SPANS`), `budgets` (`{"day": 50, "month": 1000}` USD; default
    `ANTHROPIC_OTEL_BUDGET_{DAY,MONTH}_USD`), `prices` (`{"model": {"input": 3, "output": 15, ...}}`, USD per
    million tokens, winning over the bundled prices) and `prices_file` (a TOML or YAML file of the same
    tables under `models`; default `ANTHROPIC_OTEL_PRICES_FILE`) and `cache_diagnostics` (fill each request's
    `diagnostics.previous_message_id` from the last answer of its `gen_ai.conversation.id`, on SDKs that
    accept it; default `ANTHROPIC_OTEL_CACHE_DIAGNOSTICS`). An unknown keyword or a value of the wrong
    kind raises `TypeError`, a bad value (passed or from the environment) `ValueError`, naming the setting.
    """

    _patcher: Patcher | None = None
    _undo: tuple[Callable[[], None], ...] = ()
    telemetry: Instrumentation | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("anthropic >= 1.14, < 3",)

    def instrument(
        self,
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
        skip_dep_check: bool = False,
        raise_exception_on_conflict: bool = False,
    ) -> None:
        """Checks every setting (see the class), then patches the SDK; a no-op, with a warning, when done already.

        `skip_dep_check` and `raise_exception_on_conflict` are `BaseInstrumentor`'s (used by
        `opentelemetry-instrument`).
        """
        settings = check(
            tracer_provider=tracer_provider, meter_provider=meter_provider, capture_content=capture_content,
            metric_attributes=metric_attributes, metric_attribute_limit=metric_attribute_limit,
            keep_sdk_spans=keep_sdk_spans, budgets=budgets, prices=prices, prices_file=prices_file,
            cache_diagnostics=cache_diagnostics)
        super().instrument(skip_dep_check=skip_dep_check, raise_exception_on_conflict=raise_exception_on_conflict,
                           _settings=settings)

    def _instrument(self, **kwargs: Any) -> None:
        settings = kwargs.pop("_settings", None)
        if not isinstance(settings, Settings):
            settings = check(**kwargs)  # called directly, not through instrument()
        if settings.meter_provider is None and not has_meter_provider():
            check_prometheus_port()  # before any provider is set up
        if settings.tracer_provider is None:
            tracer_provider_from_env()
        if settings.meter_provider is None:
            meter_provider_from_env()
        tracer = trace.get_tracer(n.SCOPE, __version__, tracer_provider=settings.tracer_provider)
        meter = metrics.get_meter(n.SCOPE, __version__, meter_provider=settings.meter_provider)
        budgets = settings.budgets
        telemetry = Instrumentation(
            tracer, Metrics(meter, settings.metric_attributes, settings.metric_attribute_limit, budgets),
            Pricer(settings.overrides), settings.content, settings.keep_sdk_spans, Ledger(budgets),
            Conversations() if settings.cache_diagnostics else None)
        patcher = Patcher(telemetry)
        patcher.apply()
        self._patcher = patcher
        self.telemetry = telemetry
        undo: list[Callable[[], None]] = []
        for extension in _EXTENSIONS:
            with _EXTENSION:
                undo.append(extension(telemetry, meter))
        self._undo = tuple(undo)

    def _uninstrument(self, **kwargs: Any) -> None:
        for undo in reversed(self._undo):
            with _EXTENSION:
                undo()
        self._undo = ()
        if self._patcher is not None:
            self._patcher.remove()
        self._patcher = None
        self.telemetry = None
