"""The core rules over every instrumented call: error and truncation ratios, latency, rate limits and overloads."""

from __future__ import annotations

from ...telemetry.series import (
    DURATION,
    ERROR_TYPE,
    MODEL,
    RATELIMIT_LIMIT,
    RATELIMIT_REMAINING,
    REQUESTS,
    RESOURCE,
    STOP_REASON,
    STREAM,
)
from .config import Burst, RulesConfig
from .promql import agg, eq, label, ne, number, on, requests_rate, seconds, select, value
from .rule import MODEL_LABEL as _M
from .rule import Group, Rule, alert, enough_calls, record, record_names

# -- recording rules ------------------------------------------------------------------------------


def requests_rules(config: RulesConfig) -> Group:
    """Calls per second, and the error and max_tokens-truncation ratios the alerts compare."""
    r = record_names(config)
    every = requests_rate(config)
    failed = requests_rate(config, ne(ERROR_TYPE, "none"))
    successes = requests_rate(config, eq(ERROR_TYPE, "none"))
    truncated = requests_rate(config, eq(STOP_REASON, "max_tokens"))
    return {"name": "anthropic-otel.requests.rules", "rules": [
        record(r["requests"], every),
        record(r["errors"], f"{failed}\n/\n({every} > 0)"),
        record(r["truncation"], f"{truncated}\n/\n({successes} > 0)"),
    ]}


def latency_rules(config: RulesConfig) -> Group:
    """p99 of successful calls per model and stream flag, and its one-day median as the spike baseline."""
    r = record_names(config)
    successful = select(DURATION + "_bucket", eq(ERROR_TYPE, ""))
    buckets = agg(config, "sum", [MODEL, STREAM, "le"], f"rate({successful}[{config.rate_window}])")
    return {"name": "anthropic-otel.latency.rules", "rules": [
        # `>= 0` drops the NaN of a window without calls, so the baseline below is not poisoned by it.
        record(r["p99"], f"histogram_quantile(\n  0.99,\n  {buckets}\n)\n>= 0"),
        record(r["p99_baseline"], f"quantile_over_time(0.5, {r['p99']}[{config.latency_spike.baseline_window}])"),
    ]}


# -- alerting rules -------------------------------------------------------------------------------

def output_alerts(config: RulesConfig) -> Group:
    """Answers cut off by `max_tokens`."""
    r = record_names(config)
    t = config.truncation
    return {"name": "anthropic-otel.outputs", "rules": [
        alert(config, "AnthropicMaxTokensTruncationHigh",
              f"(\n  {r['truncation']} > {number(t.ratio)}\n)\nand\n(\n  {enough_calls(config)}\n)",
              t.for_, t.severity,
              f"Answers from {_M} are cut off by max_tokens.",
              f"{value('humanizePercentage')} of successful calls to {_M} stopped on max_tokens over the "
              f"last {config.rate_window} (threshold {number(t.ratio * 100)}%): the answers are truncated. "
              "Raise max_tokens or shorten what is asked for."),
    ]}


def latency_alerts(config: RulesConfig) -> Group:
    """p99 latency above an absolute bound, and far above its own baseline."""
    r = record_names(config)
    lat = config.latency
    spike = config.latency_spike
    successful = select(DURATION + "_count", eq(ERROR_TYPE, ""))
    calls = agg(config, "sum", [MODEL, STREAM], f"rate({successful}[{config.rate_window}])")
    stream = label(STREAM)
    duration = value("humanizeDuration")
    return {"name": "anthropic-otel.latency", "rules": [
        alert(config, "AnthropicLatencyP99High",
              f"{select(r['p99'], eq(STREAM, 'false'))} > {number(lat.p99_seconds)}\nor\n"
              f"{select(r['p99'], eq(STREAM, 'true'))} > {number(lat.p99_stream_seconds)}",
              lat.for_, lat.severity,
              f"p99 latency of {_M} (stream={stream}) is high.",
              f"p99 latency of successful calls to {_M} (stream={stream}) is {duration} "
              f"over the last {config.rate_window}, above {number(lat.p99_seconds)}s for non-streamed and "
              f"{number(lat.p99_stream_seconds)}s for streamed calls."),
        alert(config, "AnthropicLatencyP99Spike",
              f"(\n  {r['p99']} > {number(spike.factor)} * {r['p99_baseline']}\n)\n"
              f"and\n(\n  {r['p99']} > {number(spike.floor_seconds)}\n)\n"
              f"and\n(\n  {calls} * {number(seconds(config.rate_window))} >= {number(config.min_requests)}\n)",
              spike.for_, spike.severity,
              f"p99 latency of {_M} (stream={stream}) spiked against its baseline.",
              f"p99 latency of successful calls to {_M} (stream={stream}) is {duration}, "
              f"more than {number(spike.factor)}x its median p99 over the last {spike.baseline_window}."),
    ]}


def error_alerts(config: RulesConfig) -> Group:
    """Failed calls: their ratio, 429 and 529 bursts, and little rate-limit headroom left."""
    r = record_names(config)
    e = config.errors
    h = config.headroom
    resource = label(RESOURCE)

    def burst(name: str, error_type: str, what: str, settings: Burst) -> Rule:
        selected = select(REQUESTS, eq(ERROR_TYPE, error_type))
        failed = agg(config, "sum", [MODEL], f"increase({selected}[{settings.window}])")
        return alert(config, name, f"{failed} > {number(settings.count)}", settings.for_, settings.severity,
                     f"Calls to {_M} fail with {what}.",
                     f"{value('humanize')} calls to {_M} failed with {error_type} in the last "
                     f"{settings.window} (threshold {number(settings.count)}), after the SDK's retries.")

    ratio = agg(config, "min", [MODEL, RESOURCE], f"{RATELIMIT_REMAINING} / ({RATELIMIT_LIMIT} > 0)")
    return {"name": "anthropic-otel.errors", "rules": [
        alert(config, "AnthropicErrorRatioHigh",
              f"(\n  {r['errors']} > {number(e.ratio)}\n)\nand\n(\n  {enough_calls(config)}\n)",
              e.for_, e.severity,
              f"Calls to {_M} are failing.",
              f"{value('humanizePercentage')} of calls to {_M} failed over the last {config.rate_window} "
              f"(threshold {number(e.ratio * 100)}%); see error_type on anthropic_otel_requests_total."),
        burst("AnthropicRateLimited", "rate_limit_error", "429 rate limits", config.rate_limited),
        burst("AnthropicOverloaded", "overloaded_error", "529 overloaded", config.overloaded),
        alert(config, "AnthropicRateLimitHeadroomLow",
              f"(\n  {ratio} < {number(h.ratio)}\n)\nand {on(config, MODEL)}\n(\n  {r['requests']} > 0\n)",
              h.for_, h.severity,
              f"Little rate-limit headroom left for {_M} ({resource}).",
              f"Only {value('humanizePercentage')} of the per-minute "
              f"{resource} limit is left for {_M} (threshold "
              f"{number(h.ratio * 100)}%), from the anthropic-ratelimit-* response headers."),
    ]}
