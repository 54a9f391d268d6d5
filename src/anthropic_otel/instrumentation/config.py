"""`instrument()`'s settings, checked once before anything is patched.

Every bad value, passed or read from the environment, is a `TypeError` (wrong kind of value) or a
`ValueError` (right kind, wrong value) naming the setting or the variable, raised by `instrument()` itself:
a typo in the configuration must not surface as a strange label, a silent default or another library's
error at the first call.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..cost.pricing import PriceOverride, check_overrides
from ..telemetry import names as n
from .content import ContentMode, content_mode

DEFAULT_METRIC_ATTRIBUTE_LIMIT: Final = 100

ENV_METRIC_ATTRIBUTES: Final = "ANTHROPIC_OTEL_METRIC_ATTRIBUTES"
ENV_KEEP_SDK_SPANS: Final = "ANTHROPIC_OTEL_KEEP_SDK_SPANS"
ENV_CAPTURE_CONTENT: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_PROMETHEUS_PORT: Final = "OTEL_EXPORTER_PROMETHEUS_PORT"
ENV_CACHE_DIAGNOSTICS: Final = "ANTHROPIC_OTEL_CACHE_DIAGNOSTICS"

_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("", "0", "false", "no", "off")

# Labels the package sets itself: a metric attribute of the same name would overwrite one of them.
RESERVED_LABELS: Final = frozenset({
    n.GEN_AI_OPERATION_NAME, n.GEN_AI_PROVIDER_NAME, n.GEN_AI_REQUEST_MODEL, n.SERVER_ADDRESS,
    n.GEN_AI_REQUEST_STREAM, n.ERROR_TYPE, n.GEN_AI_TOKEN_TYPE, n.TOKEN_TYPE, n.ANTHROPIC_STOP_REASON,
    n.RATELIMIT_RESOURCE, n.BUDGET_PERIOD, n.USAGE_UNKNOWN_REASON, n.CACHE_MISS_REASON,
})


@dataclass(frozen=True)
class Settings:
    """Checked settings of one `instrument()` (providers as given: None means the global ones)."""

    tracer_provider: Any
    meter_provider: Any
    content: ContentMode
    metric_attributes: tuple[str, ...]
    metric_attribute_limit: int
    keep_sdk_spans: bool
    budgets: dict[str, float]
    overrides: dict[str, PriceOverride]
    cache_diagnostics: bool = False


def _kind(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def _provider(name: str, value: Any, kind: str, method: str) -> Any:
    if value is not None and not callable(getattr(value, method, None)):
        raise TypeError(f"{name} must be an OpenTelemetry {kind} (with {method}()) or None, not {_kind(value)}")
    return value


def _content(value: Any) -> ContentMode:
    if value is not None and not isinstance(value, bool | str | ContentMode):
        raise TypeError(f"capture_content must be a bool, a mode name (e.g. 'SPAN_ONLY') or a ContentMode, "
                        f"not {_kind(value)}")
    return content_mode(value)  # names the setting and the variable when the mode is unknown


def _attribute_names(value: Any) -> tuple[str, ...]:
    if value is None:
        raw = os.environ.get(ENV_METRIC_ATTRIBUTES, "")
        return _checked_names((item.strip() for item in raw.split(",") if item.strip()), ENV_METRIC_ATTRIBUTES)
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"metric_attributes must be a list of attribute names (e.g. ['app.feature']), "
                        f"not {_kind(value)}")
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"metric_attributes: every name must be a str, not {_kind(item)}")
    return _checked_names(items, "metric_attributes")


def _checked_names(names: Iterable[str], setting: str) -> tuple[str, ...]:
    found: list[str] = []
    for name in names:
        if not name.strip():
            raise ValueError(f"{setting}: attribute names must not be empty")
        if name in RESERVED_LABELS:
            raise ValueError(f"{setting}: {name!r} is a label the package sets itself; choose another name")
        if name not in found:
            found.append(name)
    return tuple(found)


def _limit(value: Any) -> int:
    if value is None:
        return DEFAULT_METRIC_ATTRIBUTE_LIMIT
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"metric_attribute_limit must be an int, not {_kind(value)}")
    if value < 1:
        raise ValueError(f"metric_attribute_limit must be at least 1 (distinct values per label), not {value}")
    return value


def _keep_sdk_spans(value: Any) -> bool:
    if value is None:
        return env_bool(ENV_KEEP_SDK_SPANS)
    if not isinstance(value, bool):
        raise TypeError(f"keep_sdk_spans must be True, False or None, not {_kind(value)}")
    return value


def _cache_diagnostics(value: Any) -> bool:
    if value is None:
        return env_bool(ENV_CACHE_DIAGNOSTICS)
    if not isinstance(value, bool):
        raise TypeError(f"cache_diagnostics must be True, False or None, not {_kind(value)}")
    return value


def env_bool(name: str) -> bool:
    """A boolean variable: true/false, 1/0, yes/no, on/off or unset; anything else is a ValueError."""
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, not {os.environ[name]!r}")


def check_budgets(budgets: Mapping[str, Any] | None) -> dict[str, float]:
    """Budgets by period, from the argument or `ANTHROPIC_OTEL_BUDGET_{DAY,MONTH}_USD`; errors now, not later."""
    if budgets is not None and not isinstance(budgets, Mapping):
        raise TypeError(f"budgets must be a mapping like {{'day': 50, 'month': 1000}}, not {_kind(budgets)}")
    found: dict[Any, tuple[Any, str]] = {period: (value, "budgets") for period, value in (budgets or {}).items()}
    for period in ("day", "month"):
        variable = f"ANTHROPIC_OTEL_BUDGET_{period.upper()}_USD"
        raw = os.environ.get(variable)
        if raw is not None and raw.strip() and period not in found:
            found[period] = (raw, variable)
    checked: dict[str, float] = {}
    for period, (value, source) in found.items():
        if period not in ("day", "month"):
            raise ValueError(f"{source}: budget period must be 'day' or 'month', not {period!r}")
        try:
            dollars = math.nan if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{source}: budget for {period!r} must be a number of US dollars, not {value!r}") \
                from None
        if not math.isfinite(dollars) or dollars <= 0:
            raise ValueError(f"{source}: budget for {period!r} must be a positive number of US dollars, "
                             f"not {value!r}")
        checked[period] = dollars
    return checked


def _prices_file(value: Any) -> str | Path | None:
    if value is not None and not isinstance(value, str | os.PathLike):
        raise TypeError(f"prices_file must be a path (str or os.PathLike) or None, not {_kind(value)}")
    return Path(value) if isinstance(value, os.PathLike) else value


def check_prometheus_port() -> None:
    """`OTEL_EXPORTER_PROMETHEUS_PORT`, when the package is about to serve Prometheus metrics itself."""
    exporters = os.environ.get("OTEL_METRICS_EXPORTER", "").lower().replace(" ", "").split(",")
    raw = os.environ.get(ENV_PROMETHEUS_PORT)
    if raw is None or "prometheus" not in exporters:
        return
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ValueError(f"{ENV_PROMETHEUS_PORT} must be a TCP port number (0 to 65535), not {raw!r}")


def check(*, tracer_provider: Any = None, meter_provider: Any = None, capture_content: Any = None,
          metric_attributes: Any = None, metric_attribute_limit: Any = None, keep_sdk_spans: Any = None,
          budgets: Any = None, prices: Any = None, prices_file: Any = None,
          cache_diagnostics: Any = None) -> Settings:
    """Every setting checked, the environment filling what the arguments leave as None."""
    return Settings(
        tracer_provider=_provider("tracer_provider", tracer_provider, "TracerProvider", "get_tracer"),
        meter_provider=_provider("meter_provider", meter_provider, "MeterProvider", "get_meter"),
        content=_content(capture_content),
        metric_attributes=_attribute_names(metric_attributes),
        metric_attribute_limit=_limit(metric_attribute_limit),
        keep_sdk_spans=_keep_sdk_spans(keep_sdk_spans),
        budgets=check_budgets(budgets),
        overrides=check_overrides(prices, _prices_file(prices_file)),
        cache_diagnostics=_cache_diagnostics(cache_diagnostics),
    )
