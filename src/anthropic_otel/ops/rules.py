"""Prometheus recording and alerting rules over the telemetry contract, rendered from one small config.

Every threshold, `for:` duration and window lives in `RulesConfig` (defaults here); a YAML or TOML file
overrides any of them (`anthropic-otel rules --config FILE`). `render()` turns a config into the rule files
that `alerts/` holds; the committed files are exactly `render(RulesConfig())`.

Rule groups are built by the functions listed in `RECORDING_GROUPS` and `ALERT_GROUPS`, so a new family
is one more config section and one more builder (as the resilience wrapper's `resilience` section was).
Series names are the Prometheus names of TELEMETRY.md, as both the Python exporter and the Collector write them
(the resilience wrapper's: README, "Resilience wrapper").
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Series and label names: the contract's Prometheus names, defined once in `anthropic_otel.telemetry.series`.
from ..telemetry.series import (
    BUDGET,
    CIRCUIT_ENTERED,
    CIRCUIT_STATE,
    CIRCUIT_TRANSITIONS,
    COST,
    DURATION,
    ERROR_TYPE,
    FALLBACK_MODEL,
    FALLBACKS,
    LIMITER_RESOURCE,
    LIMITER_WAIT,
    MODEL,
    PERIOD,
    RATELIMIT_LIMIT,
    RATELIMIT_REMAINING,
    REJECTED,
    REJECTION_REASON,
    REQUESTS,
    RESOURCE,
    RETRIES,
    STOP_REASON,
    STREAM,
    STREAM_TIMEOUT,
    STREAM_TIMEOUTS,
    TOKEN_TYPE,
    TOKENS,
    UNPRICED,
)

RULES_FILE = "anthropic-otel.rules.yml"
ALERTS_FILE = "anthropic-otel.alerts.yml"
CONFIG_FILE = "rules-config.yml"

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION_KEYS = frozenset({"for", "window", "rate_window", "baseline_window", "day_window", "month_window",
                            "month_interval", "exceeded_for", "burn_window_day", "burn_window_month", "burn_for"})


def seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as `1d`, `5m`, `1h30m`, `500ms`; `ValueError` otherwise."""
    match = _DURATION.match(duration)
    if not duration or match is None:
        raise ValueError(f"not a Prometheus duration: {duration!r} (examples: 30s, 5m, 1h, 1d)")
    return sum(int(part) * unit for part, unit in zip(match.groups(), _DURATION_SECONDS, strict=True) if part)


def _number(value: float) -> str:
    """A threshold as PromQL prints best: `20`, not `20.0`."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# -- the config ---------------------------------------------------------------------------------------

def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class Truncation:
    """`AnthropicMaxTokensTruncationHigh`: answers cut off by `max_tokens`."""

    ratio: float = field(default=0.05, metadata=_help("share of successful calls that stop on max_tokens"))
    for_: str = field(default="15m", metadata=_help("how long the ratio must stay above it"))
    severity: str = "warning"


@dataclass(frozen=True)
class Errors:
    """`AnthropicErrorRatioHigh`: calls that failed (after the SDK's own retries)."""

    ratio: float = field(default=0.05, metadata=_help("share of calls that end in an error"))
    for_: str = "10m"
    severity: str = "warning"


@dataclass(frozen=True)
class Latency:
    """`AnthropicLatencyP99High`: p99 of successful calls above an absolute bound, streamed and not apart."""

    p99_seconds: float = field(default=30.0, metadata=_help("bound for non-streamed calls"))
    p99_stream_seconds: float = field(default=60.0, metadata=_help("bound for streamed calls (whole stream)"))
    for_: str = "10m"
    severity: str = "warning"


@dataclass(frozen=True)
class LatencySpike:
    """`AnthropicLatencyP99Spike`: p99 far above its own median over the baseline window."""

    factor: float = field(default=2.0, metadata=_help("p99 / baseline p99 above this fires"))
    floor_seconds: float = field(default=2.0, metadata=_help("and only when p99 is above this many seconds"))
    baseline_window: str = field(default="1d", metadata=_help("the baseline is the median p99 over this window"))
    for_: str = "15m"
    severity: str = "warning"


@dataclass(frozen=True)
class Burst:
    """A burst of one error type (429 rate limits, 529 overloads) that the calls still failed on."""

    count: float = field(default=10, metadata=_help("failed calls within the window"))
    window: str = "5m"
    for_: str = "2m"
    severity: str = "warning"


@dataclass(frozen=True)
class Headroom:
    """`AnthropicRateLimitHeadroomLow`: remaining / limit from the `anthropic-ratelimit-*` headers."""

    ratio: float = field(default=0.1, metadata=_help("remaining share of a per-minute limit below this fires"))
    for_: str = "5m"
    severity: str = "warning"


@dataclass(frozen=True)
class Unpriced:
    """`AnthropicUnpricedCalls`: calls whose model has no known price (their cost is missing from spend)."""

    window: str = "1h"
    for_: str = "5m"
    severity: str = "warning"


@dataclass(frozen=True)
class Cache:
    """`AnthropicCacheHitRatioCollapsed`: cache reads / all input tokens fell far below its own average."""

    collapse_factor: float = field(default=0.5, metadata=_help("ratio below this share of the baseline fires"))
    min_baseline: float = field(default=0.2, metadata=_help("only for models whose baseline ratio is at least this"))
    baseline_window: str = field(default="1d", metadata=_help("the baseline is the average ratio over this window"))
    for_: str = "30m"
    severity: str = "warning"


@dataclass(frozen=True)
class Budget:
    """`AnthropicBudgetExceeded` and `AnthropicBudgetBurnRateHigh`, against the `anthropic_otel_budget_usd` gauge.

    Spend is a rolling window (restart-safe `increase()` of the cost counter), not a calendar day or month.
    """

    day_window: str = field(default="1d", metadata=_help("rolling window compared to the day budget"))
    month_window: str = field(default="30d", metadata=_help("rolling window compared to the month budget"))
    month_interval: str = field(default="5m", metadata=_help("how often the (heavy) month window is evaluated"))
    exceeded_for: str = "5m"
    exceeded_severity: str = "critical"
    burn_window_day: str = field(default="1h", metadata=_help("recent spend rate projected over the day window"))
    burn_window_month: str = field(default="6h", metadata=_help("recent spend rate projected over the month window"))
    burn_factor: float = field(default=1.0, metadata=_help("projected spend / budget above this fires"))
    burn_for: str = "15m"
    burn_severity: str = "warning"


@dataclass(frozen=True)
class CircuitOpen:
    """`AnthropicCircuitOpen`: a model's circuit breaker not closed (open, or half-open while it probes)."""

    for_: str = field(default="2m", metadata=_help("how long the breaker must stay open or half-open"))
    severity: str = "critical"


@dataclass(frozen=True)
class CircuitFlapping:
    """`AnthropicCircuitFlapping`: a model's circuit breaker keeps opening and closing again."""

    count: float = field(default=3, metadata=_help("times the breaker closed again (each after opening) in the window"))
    window: str = "15m"
    for_: str = "1m"
    severity: str = "warning"


@dataclass(frozen=True)
class Retries:
    """`AnthropicRetryRatioHigh`: the wrapper's retries as a share of the attempts sent (needs `instrument()`)."""

    ratio: float = field(default=0.2, metadata=_help(
        "retries / attempts (anthropic_otel_requests_total counts attempts), over rate_window"))
    for_: str = "10m"
    severity: str = "warning"


@dataclass(frozen=True)
class BudgetGuard:
    """`AnthropicBudgetGuardRefusing`: the wrapper's `Budget` refused calls (nothing sent)."""

    window: str = field(default="5m", metadata=_help("one refusal within this window fires"))
    for_: str = "1m"
    severity: str = "critical"


@dataclass(frozen=True)
class Rejections:
    """`AnthropicCallsRejected`: calls the wrapper refused without sending them, other than for the budget."""

    count: float = field(default=30, metadata=_help("refused calls per model and reason within the window (0.1/s)"))
    window: str = "5m"
    for_: str = "5m"
    severity: str = "warning"


@dataclass(frozen=True)
class LimiterWait:
    """`AnthropicLimiterWaitHigh`: p95 of the time calls waited for a client-side limit (of the calls that waited)."""

    p95_seconds: float = field(default=5.0, metadata=_help("p95 wait per model and limited resource above this fires"))
    window: str = "5m"
    for_: str = "10m"
    severity: str = "warning"


@dataclass(frozen=True)
class Fallback:
    """`AnthropicServingFallback`: calls going to the fallback model (529 overloaded or an open breaker)."""

    window: str = field(default="10m", metadata=_help("fallbacks in every window throughout the for: duration fire"))
    for_: str = "10m"
    severity: str = "info"


@dataclass(frozen=True)
class StreamTimeouts:
    """`AnthropicStreamTimeouts`: streams cut at their idle or total deadline (`StreamTimeouts`)."""

    count: float = field(default=5, metadata=_help("timed-out streams per model and kind within the window"))
    window: str = "10m"
    for_: str = "2m"
    severity: str = "warning"


@dataclass(frozen=True)
class Resilience:
    """The optional resilience wrapper's alerts (`anthropic_otel.resilience`); silent without the wrapper."""

    circuit_open: CircuitOpen = field(default_factory=CircuitOpen)
    circuit_flapping: CircuitFlapping = field(default_factory=CircuitFlapping)
    retries: Retries = field(default_factory=Retries)
    budget_guard: BudgetGuard = field(default_factory=BudgetGuard)
    rejections: Rejections = field(default_factory=Rejections)
    limiter_wait: LimiterWait = field(default_factory=LimiterWait)
    fallback: Fallback = field(default_factory=Fallback)
    stream_timeouts: StreamTimeouts = field(default_factory=StreamTimeouts)


@dataclass(frozen=True)
class RulesConfig:
    """Everything the rules depend on. Field `for_` is spelled `for` in config files."""

    group_by: tuple[str, ...] = field(default=(), metadata=_help(
        "labels every aggregation keeps besides the model, e.g. [job] or [cluster]"))
    rate_window: str = field(default="5m", metadata=_help("window of the recorded rates, ratios and p99s"))
    min_requests: float = field(default=20, metadata=_help(
        "ratio and spike alerts need this many calls per model within rate_window"))
    runbook_url: str = field(
        default="https://github.com/anthropic-otel/anthropic-otel/blob/main/alerts/RUNBOOK.md#{anchor}",
        metadata=_help("{anchor} becomes the lower-case alert name"))
    truncation: Truncation = field(default_factory=Truncation)
    errors: Errors = field(default_factory=Errors)
    latency: Latency = field(default_factory=Latency)
    latency_spike: LatencySpike = field(default_factory=LatencySpike)
    rate_limited: Burst = field(default_factory=lambda: Burst(count=10))
    overloaded: Burst = field(default_factory=lambda: Burst(count=5))
    headroom: Headroom = field(default_factory=Headroom)
    unpriced: Unpriced = field(default_factory=Unpriced)
    cache: Cache = field(default_factory=Cache)
    budget: Budget = field(default_factory=Budget)
    resilience: Resilience = field(default_factory=Resilience)


def _key(name: str) -> str:
    return "for" if name == "for_" else name


def _field_value(where: str, current: Any, raw: Any) -> Any:
    """`raw` checked against the type of the default `current`."""
    if dataclasses.is_dataclass(current):
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: expected a table of settings, got {raw!r}")
        return _from_mapping(where, current, raw)
    if isinstance(current, tuple):
        if isinstance(raw, str) or not isinstance(raw, Sequence):
            raise ValueError(f"{where}: expected a list of label names, got {raw!r}")
        for label in raw:
            if not isinstance(label, str) or not _LABEL.match(label):
                raise ValueError(f"{where}: {label!r} is not a Prometheus label name")
        return tuple(raw)
    if isinstance(current, float | int) and not isinstance(current, bool):
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
            raise ValueError(f"{where}: expected a non-negative number, got {raw!r}")
        return float(raw)
    if not isinstance(raw, str) or not raw:
        raise ValueError(f"{where}: expected a string, got {raw!r}")
    if where.rsplit(".", 1)[-1] in _DURATION_KEYS:
        seconds(raw)
    return raw


def _from_mapping(where: str, default: Any, data: Mapping[str, Any]) -> Any:
    names = {_key(f.name): f.name for f in dataclasses.fields(default)}
    changes: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in names:
            raise ValueError(f"{where or 'config'}: unknown setting {key!r}; expected one of {sorted(names)}")
        attr = names[key]
        changes[attr] = _field_value(f"{where}.{key}" if where else key, getattr(default, attr), raw)
    return dataclasses.replace(default, **changes)


def config_from_mapping(data: Mapping[str, Any] | None) -> RulesConfig:
    """A config with the defaults overridden by `data` (nested tables, keys as in the config file)."""
    config = _from_mapping("", RulesConfig(), data or {})
    assert isinstance(config, RulesConfig)
    return config


def load_config(path: str | Path | None) -> RulesConfig:
    """The config in a YAML or TOML (`.toml`) file; the defaults for None."""
    if path is None:
        return RulesConfig()
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    if data is not None and not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a table of settings at the top")
    return config_from_mapping(data)


def config_to_mapping(config: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out[_key(f.name)] = config_to_mapping(value)
        elif isinstance(value, tuple):
            out[_key(f.name)] = list(value)
        else:
            out[_key(f.name)] = value
    return out


def dump_config(config: RulesConfig | None = None) -> str:
    """The config as a commented YAML file (the defaults for None), loadable by `load_config`."""
    config = config or RulesConfig()
    lines = ["# anthropic-otel alert rules config: `anthropic-otel rules --config THIS_FILE --output alerts/`.",
             "# Every key is optional; a missing one keeps its default (the values below are the defaults).",
             "# Durations are Prometheus durations (30s, 5m, 1h, 1d)."]
    _dump_fields(config, lines, "")
    return "\n".join(lines) + "\n"


def _dump_fields(config: Any, lines: list[str], indent: str) -> None:
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            doc = (type(value).__doc__ or "").strip().splitlines()[0]
            lines.append(f"{indent}{_key(f.name)}:  # {doc}")
            _dump_fields(value, lines, indent + "  ")
            continue
        plain = list(value) if isinstance(value, tuple) else value
        text = yaml.safe_dump({_key(f.name): plain}, default_flow_style=True, width=1000).strip()[1:-1]
        comment = f"  # {f.metadata['help']}" if "help" in f.metadata else ""
        lines.append(f"{indent}{text}{comment}")


# -- PromQL helpers -------------------------------------------------------------------------------

def _labels(config: RulesConfig, *labels: str) -> str:
    return ", ".join([*labels, *config.group_by])


def _agg(config: RulesConfig, op: str, labels: Sequence[str], inner: str) -> str:
    listed = _labels(config, *labels)
    return f"{op} by ({listed}) ({inner})" if listed else f"{op}({inner})"


def _on(config: RulesConfig, *labels: str) -> str:
    return f"on ({_labels(config, *labels)})"


def _requests_rate(config: RulesConfig, selector: str = "") -> str:
    inner = f"rate({REQUESTS}{{{selector}}}[{config.rate_window}])" if selector else \
        f"rate({REQUESTS}[{config.rate_window}])"
    return _agg(config, "sum", [MODEL], inner)


def _counted(config: RulesConfig, labels: Sequence[str], series: str, selector: str, window: str) -> str:
    """Events of a counter within `window`, summed by `labels`. A series born within the window (its first sample
    already 1, with no earlier one for increase() to see) counts in full, so the first event is not lost."""
    sel = f"{series}{{{selector}}}" if selector else series
    return _agg(config, "sum", labels, f"\n  ({sel} unless {sel} offset {window})\n  or\n  increase({sel}[{window}])\n")


def record_names(config: RulesConfig) -> dict[str, str]:
    """Names of the recorded series (their windows are part of the name, as in the monitoring mixins)."""
    w = config.rate_window
    b = config.budget
    return {
        "requests": f"model:{REQUESTS.removesuffix('_total')}:rate{w}",
        "errors": f"model:anthropic_otel_requests_errors:ratio_rate{w}",
        "truncation": f"model:anthropic_otel_requests_max_tokens:ratio_rate{w}",
        "p99": f"model_stream:{DURATION}:p99_rate{w}",
        "p99_baseline": f"model_stream:{DURATION}:p99_rate{w}_median{config.latency_spike.baseline_window}",
        "cache": f"model:anthropic_otel_cache_hit:ratio_rate{w}",
        "cache_baseline": f"model:anthropic_otel_cache_hit:ratio_rate{w}_avg{config.cache.baseline_window}",
        "budget": "anthropic_otel:budget_usd:max",
        "spend_day": f"anthropic_otel:cost_usd:increase{b.day_window}",
        "spend_month": f"anthropic_otel:cost_usd:increase{b.month_window}",
        "burn_day": f"anthropic_otel:cost_usd:rate{b.burn_window_day}",
        "burn_month": f"anthropic_otel:cost_usd:rate{b.burn_window_month}",
        "retries": f"model:anthropic_otel_resilience_retries:ratio_rate{w}",
    }


# -- recording rules ------------------------------------------------------------------------------

Group = dict[str, Any]


def _record(name: str, expr: str) -> dict[str, Any]:
    return {"record": name, "expr": expr}


def requests_rules(config: RulesConfig) -> Group:
    r = record_names(config)
    every = _requests_rate(config)
    failed = _requests_rate(config, f'{ERROR_TYPE}!="none"')
    successes = _requests_rate(config, f'{ERROR_TYPE}="none"')
    truncated = _requests_rate(config, f'{STOP_REASON}="max_tokens"')
    return {"name": "anthropic-otel.requests.rules", "rules": [
        _record(r["requests"], every),
        _record(r["errors"], f"{failed}\n/\n({every} > 0)"),
        _record(r["truncation"], f"{truncated}\n/\n({successes} > 0)"),
    ]}


def latency_rules(config: RulesConfig) -> Group:
    r = record_names(config)
    buckets = _agg(config, "sum", [MODEL, STREAM, "le"],
                   f'rate({DURATION}_bucket{{{ERROR_TYPE}=""}}[{config.rate_window}])')
    return {"name": "anthropic-otel.latency.rules", "rules": [
        # `>= 0` drops the NaN of a window without calls, so the baseline below is not poisoned by it.
        _record(r["p99"], f"histogram_quantile(\n  0.99,\n  {buckets}\n)\n>= 0"),
        _record(r["p99_baseline"], f"quantile_over_time(0.5, {r['p99']}[{config.latency_spike.baseline_window}])"),
    ]}


def cache_rules(config: RulesConfig) -> Group:
    r = record_names(config)
    read = _agg(config, "sum", [MODEL], f'rate({TOKENS}{{{TOKEN_TYPE}="cache_read"}}[{config.rate_window}])')
    every = _agg(config, "sum", [MODEL],
                 f'rate({TOKENS}{{{TOKEN_TYPE}=~"input|cache_read|cache_write"}}[{config.rate_window}])')
    return {"name": "anthropic-otel.cache.rules", "rules": [
        _record(r["cache"], f"{read}\n/\n({every} > 0)"),
        _record(r["cache_baseline"], f"avg_over_time({r['cache']}[{config.cache.baseline_window}])"),
    ]}


def spend_rules(config: RulesConfig) -> Group:
    r = record_names(config)
    b = config.budget
    return {"name": "anthropic-otel.spend.rules", "rules": [
        _record(r["spend_day"], _agg(config, "sum", [], f"increase({COST}[{b.day_window}])")),
        _record(r["burn_day"], _agg(config, "sum", [], f"rate({COST}[{b.burn_window_day}])")),
        _record(r["burn_month"], _agg(config, "sum", [], f"rate({COST}[{b.burn_window_month}])")),
        _record(r["budget"], _agg(config, "max", [PERIOD], BUDGET)),
    ]}


def spend_month_rules(config: RulesConfig) -> Group:
    r = record_names(config)
    b = config.budget
    return {"name": "anthropic-otel.spend-month.rules", "interval": b.month_interval, "rules": [
        _record(r["spend_month"], _agg(config, "sum", [], f"increase({COST}[{b.month_window}])")),
    ]}


def resilience_rules(config: RulesConfig) -> Group:
    r = record_names(config)
    retries = _agg(config, "sum", [MODEL], f"rate({RETRIES}[{config.rate_window}])")
    return {"name": "anthropic-otel.resilience.rules", "rules": [
        # With instrument(), anthropic_otel_requests_total counts every attempt the wrapper sends.
        _record(r["retries"], f"{retries}\n/\n({_requests_rate(config)} > 0)"),
    ]}


# -- alerting rules -------------------------------------------------------------------------------

def _alert(config: RulesConfig, name: str, expr: str, for_: str, severity: str, summary: str, description: str,
           labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, **(labels or {})},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": config.runbook_url.format(anchor=name.lower()),
        },
    }


def _enough_calls(config: RulesConfig) -> str:
    r = record_names(config)
    return f"{r['requests']} * {_number(seconds(config.rate_window))} >= {_number(config.min_requests)}"


_M = "{{ $labels.gen_ai_request_model }}"


def output_alerts(config: RulesConfig) -> Group:
    r = record_names(config)
    t = config.truncation
    return {"name": "anthropic-otel.outputs", "rules": [
        _alert(config, "AnthropicMaxTokensTruncationHigh",
               f"(\n  {r['truncation']} > {_number(t.ratio)}\n)\nand\n(\n  {_enough_calls(config)}\n)",
               t.for_, t.severity,
               f"Answers from {_M} are cut off by max_tokens.",
               f"{{{{ $value | humanizePercentage }}}} of successful calls to {_M} stopped on max_tokens over the "
               f"last {config.rate_window} (threshold {_number(t.ratio * 100)}%): the answers are truncated. "
               "Raise max_tokens or shorten what is asked for."),
    ]}


def latency_alerts(config: RulesConfig) -> Group:
    r = record_names(config)
    lat = config.latency
    spike = config.latency_spike
    calls = _agg(config, "sum", [MODEL, STREAM], f'rate({DURATION}_count{{{ERROR_TYPE}=""}}[{config.rate_window}])')
    stream = "{{ $labels.gen_ai_request_stream }}"
    return {"name": "anthropic-otel.latency", "rules": [
        _alert(config, "AnthropicLatencyP99High",
               f'{r["p99"]}{{{STREAM}="false"}} > {_number(lat.p99_seconds)}\nor\n'
               f'{r["p99"]}{{{STREAM}="true"}} > {_number(lat.p99_stream_seconds)}',
               lat.for_, lat.severity,
               f"p99 latency of {_M} (stream={stream}) is high.",
               f"p99 latency of successful calls to {_M} (stream={stream}) is {{{{ $value | humanizeDuration }}}} "
               f"over the last {config.rate_window}, above {_number(lat.p99_seconds)}s for non-streamed and "
               f"{_number(lat.p99_stream_seconds)}s for streamed calls."),
        _alert(config, "AnthropicLatencyP99Spike",
               f"(\n  {r['p99']} > {_number(spike.factor)} * {r['p99_baseline']}\n)\n"
               f"and\n(\n  {r['p99']} > {_number(spike.floor_seconds)}\n)\n"
               f"and\n(\n  {calls} * {_number(seconds(config.rate_window))} >= {_number(config.min_requests)}\n)",
               spike.for_, spike.severity,
               f"p99 latency of {_M} (stream={stream}) spiked against its baseline.",
               f"p99 latency of successful calls to {_M} (stream={stream}) is {{{{ $value | humanizeDuration }}}}, "
               f"more than {_number(spike.factor)}x its median p99 over the last {spike.baseline_window}."),
    ]}


def error_alerts(config: RulesConfig) -> Group:
    r = record_names(config)
    e = config.errors
    h = config.headroom

    def burst(name: str, error_type: str, what: str, settings: Burst) -> dict[str, Any]:
        failed = _agg(config, "sum", [MODEL], f'increase({REQUESTS}{{{ERROR_TYPE}="{error_type}"}}[{settings.window}])')
        return _alert(config, name, f"{failed} > {_number(settings.count)}", settings.for_, settings.severity,
                      f"Calls to {_M} fail with {what}.",
                      f"{{{{ $value | humanize }}}} calls to {_M} failed with {error_type} in the last "
                      f"{settings.window} (threshold {_number(settings.count)}), after the SDK's retries.")

    ratio = _agg(config, "min", [MODEL, RESOURCE], f"{RATELIMIT_REMAINING} / ({RATELIMIT_LIMIT} > 0)")
    return {"name": "anthropic-otel.errors", "rules": [
        _alert(config, "AnthropicErrorRatioHigh",
               f"(\n  {r['errors']} > {_number(e.ratio)}\n)\nand\n(\n  {_enough_calls(config)}\n)",
               e.for_, e.severity,
               f"Calls to {_M} are failing.",
               f"{{{{ $value | humanizePercentage }}}} of calls to {_M} failed over the last {config.rate_window} "
               f"(threshold {_number(e.ratio * 100)}%); see error_type on anthropic_otel_requests_total."),
        burst("AnthropicRateLimited", "rate_limit_error", "429 rate limits", config.rate_limited),
        burst("AnthropicOverloaded", "overloaded_error", "529 overloaded", config.overloaded),
        _alert(config, "AnthropicRateLimitHeadroomLow",
               f"(\n  {ratio} < {_number(h.ratio)}\n)\nand {_on(config, MODEL)}\n(\n  {r['requests']} > 0\n)",
               h.for_, h.severity,
               f"Little rate-limit headroom left for {_M} ({{{{ $labels.anthropic_otel_ratelimit_resource }}}}).",
               f"Only {{{{ $value | humanizePercentage }}}} of the per-minute "
               f"{{{{ $labels.anthropic_otel_ratelimit_resource }}}} limit is left for {_M} (threshold "
               f"{_number(h.ratio * 100)}%), from the anthropic-ratelimit-* response headers."),
    ]}


def cost_alerts(config: RulesConfig) -> Group:
    r = record_names(config)
    b = config.budget
    u = config.unpriced
    c = config.cache
    rules: list[dict[str, Any]] = []
    for period, window, burn, burn_window in (("day", b.day_window, "burn_day", b.burn_window_day),
                                              ("month", b.month_window, "burn_month", b.burn_window_month)):
        budget = f'{r["budget"]}{{{PERIOD}="{period}"}}'
        spend = r["spend_day"] if period == "day" else r["spend_month"]
        rules.append(_alert(
            config, "AnthropicBudgetExceeded", f"{spend}\n> ignoring ({PERIOD})\n{budget}",
            b.exceeded_for, b.exceeded_severity,
            f"Anthropic spend is over the {period} budget.",
            f"{{{{ $value | humanize }}}} USD spent in the last {window} (a rolling window), over the {period} "
            "budget set with instrument(budgets=...).", {PERIOD: period}))
        factor = "" if b.burn_factor == 1 else f" * {_number(b.burn_factor)}"
        rules.append(_alert(
            config, "AnthropicBudgetBurnRateHigh",
            f"{r[burn]} * {_number(seconds(window))}\n> ignoring ({PERIOD})\n{budget}{factor}",
            b.burn_for, b.burn_severity,
            f"Anthropic spend is on course to exceed the {period} budget.",
            f"At the spend rate of the last {burn_window}, {{{{ $value | humanize }}}} USD would be spent per "
            f"{window}, more than the {period} budget.", {PERIOD: period}))
    unpriced = _agg(config, "sum", [MODEL], f"increase({UNPRICED}[{u.window}])")
    appeared = _agg(config, "sum", [MODEL], f"{UNPRICED} unless {UNPRICED} offset {u.window}")
    rules.append(_alert(
        config, "AnthropicUnpricedCalls",
        # A counter series that is new within the window has no earlier sample for increase() to see.
        f"{unpriced} > 0\nor\n{appeared} > 0",
        u.for_, u.severity,
        f"Calls to {_M} have no known price.",
        f"Calls to {_M} in the last {u.window} had no known price, so their cost is missing from "
        "anthropic_otel_cost_usd_total and the budget alerts. Add the model with instrument(prices=...)."))
    rules.append(_alert(
        config, "AnthropicCacheHitRatioCollapsed",
        f"(\n  {r['cache']} < {_number(c.collapse_factor)} * {r['cache_baseline']}\n)\n"
        f"and\n(\n  {r['cache_baseline']} >= {_number(c.min_baseline)}\n)",
        c.for_, c.severity,
        f"Prompt-cache hit ratio of {_M} collapsed.",
        f"Cache reads are {{{{ $value | humanizePercentage }}}} of input tokens for {_M} over the last "
        f"{config.rate_window}, below {_number(c.collapse_factor * 100)}% of its average over "
        f"{c.baseline_window}: a changed prompt prefix or cache_control may have broken caching."))
    return {"name": "anthropic-otel.cost", "rules": rules}


def resilience_alerts(config: RulesConfig) -> Group:
    r = record_names(config)
    res = config.resilience
    opened, flap, retry, guard = res.circuit_open, res.circuit_flapping, res.retries, res.budget_guard
    rej, wait, fb, st = res.rejections, res.limiter_wait, res.fallback, res.stream_timeouts
    reason = f"{{{{ $labels.{REJECTION_REASON} }}}}"
    resource = f"{{{{ $labels.{LIMITER_RESOURCE} }}}}"
    fallback = f"{{{{ $labels.{FALLBACK_MODEL} }}}}"
    kind = f"{{{{ $labels.{STREAM_TIMEOUT} }}}}"
    closes = _counted(config, [MODEL], CIRCUIT_TRANSITIONS, f'{CIRCUIT_ENTERED}="closed"', flap.window)
    refused = _counted(config, [], REJECTED, f'{REJECTION_REASON}="budget"', guard.window)
    rejected = _counted(config, [MODEL, REJECTION_REASON], REJECTED, f'{REJECTION_REASON}!="budget"', rej.window)
    waits = _agg(config, "sum", [MODEL, LIMITER_RESOURCE, "le"], f"rate({LIMITER_WAIT}_bucket[{wait.window}])")
    # Plain increase(): one fallback (a series born at 1) is not serving from the fallback model.
    fallbacks = _agg(config, "sum", [MODEL, FALLBACK_MODEL], f"increase({FALLBACKS}[{fb.window}])")
    timeouts = _counted(config, [MODEL, STREAM_TIMEOUT], STREAM_TIMEOUTS, "", st.window)
    return {"name": "anthropic-otel.resilience", "rules": [
        # Not closed rather than open (2): a failing half-open probe (1) between open spells would restart for:.
        _alert(config, "AnthropicCircuitOpen", f"{_agg(config, 'max', [MODEL], CIRCUIT_STATE)} >= 1",
               opened.for_, opened.severity,
               f"The circuit breaker for {_M} is open.",
               f"The resilience wrapper's circuit breaker for {_M} has not been closed for {opened.for_} (now "
               "{{ $value }}: 2 open, 1 half-open and probing): calls to it fail at once with CircuitOpenError or "
               "go to the fallback model."),
        # Closes, not opens: every failed half-open probe re-opens the breaker, so a steady outage (which
        # AnthropicCircuitOpen reports) counts many opens but no close.
        _alert(config, "AnthropicCircuitFlapping", f"{closes} >= {_number(flap.count)}",
               flap.for_, flap.severity,
               f"The circuit breaker for {_M} keeps opening and closing.",
               f"The resilience wrapper's circuit breaker for {_M} opened and closed again {{{{ $value | humanize }}}} "
               f"times in the last {flap.window} (threshold {_number(flap.count)}): the model fails on and off, and "
               "calls are refused in bursts."),
        _alert(config, "AnthropicRetryRatioHigh",
               f"(\n  {r['retries']} > {_number(retry.ratio)}\n)\nand\n(\n  {_enough_calls(config)}\n)",
               retry.for_, retry.severity,
               f"The resilience wrapper retries many calls to {_M}.",
               f"{{{{ $value | humanizePercentage }}}} of the attempts sent to {_M} over the last {config.rate_window} "
               f"were retries by the resilience wrapper (threshold {_number(retry.ratio * 100)}%); see "
               "anthropic_otel_retry_reason on anthropic_otel_resilience_retries_total."),
        _alert(config, "AnthropicBudgetGuardRefusing", f"{refused} > 0", guard.for_, guard.severity,
               "The resilience wrapper's budget guard is refusing calls.",
               f"{{{{ $value | humanize }}}} calls were refused by the resilience wrapper's Budget in the last "
               f"{guard.window} (BudgetExceededError, nothing sent): the day's or month's spend, with the call's "
               "worst-case cost reserved, does not fit its budget."),
        _alert(config, "AnthropicCallsRejected", f"{rejected} > {_number(rej.count)}", rej.for_, rej.severity,
               f"The resilience wrapper refuses calls to {_M} ({reason}).",
               f"{{{{ $value | humanize }}}} calls to {_M} were refused without being sent in the last {rej.window}, "
               f"reason {reason} (threshold {_number(rej.count)}): circuit_open is an open breaker, limit_timeout a "
               "client-side limit that did not free up within max_wait."),
        _alert(config, "AnthropicLimiterWaitHigh",
               f"histogram_quantile(\n  0.95,\n  {waits}\n)\n> {_number(wait.p95_seconds)}",
               wait.for_, wait.severity,
               f"Calls to {_M} wait long for the {resource} limit.",
               f"p95 of the time calls to {_M} waited for the client-side {resource} limit is "
               f"{{{{ $value | humanizeDuration }}}} over the last {wait.window} (threshold "
               f"{_number(wait.p95_seconds)}s, of the calls that waited)."),
        _alert(config, "AnthropicServingFallback", f"{fallbacks} > 0", fb.for_, fb.severity,
               f"Calls to {_M} go to the fallback model {fallback}.",
               f"For {fb.for_}, calls to {_M} have been sent to {fallback} instead ({{{{ $value | humanize }}}} in "
               f"the last {fb.window}), after a 529 overloaded or with the breaker open: their answers come from "
               "another model."),
        _alert(config, "AnthropicStreamTimeouts", f"{timeouts} > {_number(st.count)}", st.for_, st.severity,
               f"Streams from {_M} time out ({kind}).",
               f"{{{{ $value | humanize }}}} streams from {_M} were cut at their {kind} deadline in the last "
               f"{st.window} (threshold {_number(st.count)}); their callers got StreamTimeoutError with the partial "
               "text."),
    ]}


RECORDING_GROUPS: list[Callable[[RulesConfig], Group]] = [
    requests_rules, latency_rules, cache_rules, spend_rules, spend_month_rules, resilience_rules]
ALERT_GROUPS: list[Callable[[RulesConfig], Group]] = [
    output_alerts, latency_alerts, error_alerts, cost_alerts, resilience_alerts]


# -- rendering ------------------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)

_HEADER = ("# Generated by `anthropic-otel rules [--config FILE]`: change thresholds in the config (defaults:\n"
           "# rules-config.yml beside this file) and re-render, rather than editing this file.\n# {what}\n")


def render(config: RulesConfig | None = None) -> dict[str, str]:
    """The rule files for `config`: file name -> YAML text (recording rules, alerting rules)."""
    config = config or RulesConfig()
    files = {
        RULES_FILE: ("Recording rules over the anthropic-otel series (TELEMETRY.md).", RECORDING_GROUPS),
        ALERTS_FILE: ("Alerting rules; they use the recording rules, so load both files.", ALERT_GROUPS),
    }
    out: dict[str, str] = {}
    for name, (what, builders) in files.items():
        body = yaml.dump({"groups": [build(config) for build in builders]}, Dumper=_Dumper, sort_keys=False,
                         width=120, allow_unicode=True)
        out[name] = _HEADER.format(what=what) + body
    return out


def alert_names(config: RulesConfig | None = None) -> list[str]:
    """Every alert name the rules define, in order, without repeats."""
    names: list[str] = []
    for build in ALERT_GROUPS:
        for rule in build(config or RulesConfig())["rules"]:
            if rule["alert"] not in names:
                names.append(rule["alert"])
    return names


def write(directory: str | Path, config: RulesConfig | None = None) -> list[Path]:
    """Writes the rule files into `directory` (created if needed); returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render(config).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def stale(directory: str | Path, config: RulesConfig | None = None) -> list[Path]:
    """The rule files in `directory` that differ from what `config` renders (missing ones included)."""
    directory = Path(directory)
    return [directory / name for name, text in render(config).items()
            if not (directory / name).is_file() or (directory / name).read_text(encoding="utf-8") != text]
