"""One rule as the mapping Prometheus reads, and the names of the recorded series every builder shares.

Recorded series are named `level:metric:operation` with their windows in the name (as in the monitoring
mixins), so an alert built from another window's config cannot read a stale recording. docs/telemetry.md
lists the names `record_names(RulesConfig())` gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...telemetry.series import DURATION, MODEL, REQUESTS
from .config import RulesConfig
from .promql import label, number, seconds

Group = dict[str, Any]
Rule = dict[str, Any]

# The model of an alert, in its annotations.
MODEL_LABEL = label(MODEL)


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
        "counted_closed": f"model:anthropic_otel_cost_usd:increase{config.cost_drift.window}_closed",
        "billed": "model:anthropic_otel_billed_usd:sum",
        "drift": f"model:anthropic_otel_cost_drift:ratio{config.cost_drift.window}_closed",
    }


def record(name: str, expr: str) -> Rule:
    """A recording rule."""
    return {"record": name, "expr": expr}


def alert(config: RulesConfig, name: str, expr: str, for_: str, severity: str, summary: str, description: str,
          labels: Mapping[str, str] | None = None) -> Rule:
    """An alerting rule with its severity, annotations and the runbook link of its name."""
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


def enough_calls(config: RulesConfig) -> str:
    """The condition that a model saw at least `min_requests` calls within the rate window."""
    r = record_names(config)
    return f"{r['requests']} * {number(seconds(config.rate_window))} >= {number(config.min_requests)}"
