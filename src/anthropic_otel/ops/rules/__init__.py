"""Prometheus recording and alerting rules over the telemetry contract, rendered from one small config.

Every threshold, `for:` duration and window lives in `RulesConfig` (defaults in `config`); a YAML or TOML file
overrides any of them (`anthropic-otel rules --config FILE`, read by `config_file`). `render()` turns a config
into the rule files that `alerts/` holds; the committed files are exactly `render(RulesConfig())`.

Modules by concern: `config` (thresholds), `config_file` (reading and writing them), `promql` (PromQL and
alert-template text), `rule` (one rule, recorded-series names), one builder module per family of rules
(`core`, `cost`, `drift`, `resilience`) and `render` (the files). Series names are the Prometheus names of
docs/telemetry.md, taken from `anthropic_otel.telemetry.series`.
"""

from __future__ import annotations

from .agents import agent_alerts
from .config import (
    Agents,
    BudgetGuard,
    BudgetThresholds,
    Burst,
    Cache,
    CacheMiss,
    CircuitFlapping,
    CircuitOpen,
    CostDrift,
    Errors,
    Fallback,
    Headroom,
    Latency,
    LatencySpike,
    LimiterWait,
    Rejections,
    Resilience,
    Retries,
    RulesConfig,
    RunawayCost,
    RunawayIterations,
    StreamTimeoutThresholds,
    ToolErrors,
    Truncation,
    Unpriced,
)
from .config_file import config_from_mapping, config_to_mapping, dump_config, load_config
from .core import error_alerts, latency_alerts, latency_rules, output_alerts, requests_rules
from .cost import cache_rules, cost_alerts, spend_month_rules, spend_rules
from .drift import drift_alerts, drift_rules
from .promql import seconds
from .render import (
    ALERT_GROUPS,
    ALERTS_FILE,
    CONFIG_FILE,
    RECORDING_GROUPS,
    RULES_FILE,
    alert_names,
    recording_names,
    render,
    stale,
    write,
)
from .resilience import resilience_alerts, resilience_rules
from .rule import Group, record_names

__all__ = [
    "ALERTS_FILE", "ALERT_GROUPS", "CONFIG_FILE", "RECORDING_GROUPS", "RULES_FILE",
    "Agents", "BudgetGuard", "BudgetThresholds", "Burst", "Cache", "CacheMiss", "CircuitFlapping", "CircuitOpen",
    "CostDrift", "Errors", "Fallback", "Group", "Headroom", "Latency", "LatencySpike", "LimiterWait", "Rejections",
    "Resilience", "Retries", "RulesConfig", "RunawayCost", "RunawayIterations", "StreamTimeoutThresholds",
    "ToolErrors", "Truncation", "Unpriced",
    "agent_alerts", "alert_names", "cache_rules", "config_from_mapping", "config_to_mapping", "cost_alerts",
    "drift_alerts", "drift_rules", "dump_config", "error_alerts", "latency_alerts", "latency_rules", "load_config",
    "output_alerts", "record_names", "recording_names", "render", "requests_rules", "resilience_alerts",
    "resilience_rules", "seconds",
    "spend_month_rules", "spend_rules", "stale", "write",
]
