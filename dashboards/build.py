"""Grafana dashboards for anthropic-otel, as code (grafana-foundation-sdk); writes the JSON beside this file.

    python dashboards/build.py                                     # rewrite dashboards/*.json
    python dashboards/build.py --feature-label team --output out/  # your own metric attribute, elsewhere

The committed JSON must equal what this script generates (tests/test_dashboards.py checks it). Queries use the
raw series of docs/telemetry.md, so the dashboards work without the recording rules. Every panel filters on the
`$model` and `$feature` variables (`.*` for All; a series without the feature label matches too) and reads from
the `${datasource}` variable. Rows are built by the functions in OVERVIEW_ROWS / COST_ROWS, so a new row is one
more function.

The optional resilience wrapper's row is collapsed (Grafana runs its queries only once it is opened) and its
panels carry a "Needs the resilience wrapper" link: without the wrapper they have no data. The wrapper's series
carry the model but no feature label, so those panels filter on `$model` only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, gauge, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders.common import StackingConfig
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import StackingMode
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)

from anthropic_otel.telemetry.series import (
    ACTIVE,
    AGENT_RUN_COST,
    AGENT_RUN_ITERATIONS,
    AGENT_RUNS,
    AGENT_TOOL_CALLS,
    AGENT_TOOL_DURATION,
    BILLED_USD,
    BUDGET,
    CACHE_MISS_REASON,
    CACHE_MISSED_TOKENS,
    CACHE_MISSED_USD,
    CIRCUIT_STATE,
    COST,
    DURATION,
    FALLBACKS,
    INFERENCE_GEO,
    LIMITER_WAIT,
    PROVIDER,
    REJECTED,
    REQUESTS,
    RETRIES,
    SERVICE_TIER,
    SPEED,
    STREAM_TIMEOUTS,
    THINKING_TOKENS,
    TOKEN_TYPE,
    TOKENS,
    UNKNOWN_REASON,
    UNPRICED,
    USAGE_UNKNOWN,
)
from anthropic_otel.telemetry.series import (
    CACHE_SAVINGS as SAVINGS,
)
from anthropic_otel.telemetry.series import (
    CACHE_WRITE_PREMIUM as PREMIUM,
)
from anthropic_otel.telemetry.series import (
    RATELIMIT_LIMIT as LIMIT,
)
from anthropic_otel.telemetry.series import (
    RATELIMIT_REMAINING as REMAINING,
)
from anthropic_otel.telemetry.series import (
    TIME_TO_FIRST_CHUNK as TTFC,
)

HERE = Path(__file__).resolve().parent
OUTPUT_TOKENS = f'{TOKEN_TYPE}="output"'
FEATURE_LABEL = "app_feature"  # instrument(metric_attributes=["app.feature"]) -> label app_feature
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["anthropic", "anthropic-otel", "gen-ai"]

WRAPPER_DOCS = "https://github.com/anthropic-otel/anthropic-otel#resilience-wrapper-optional"
EXPORTER_DOCS = "https://github.com/anthropic-otel/anthropic-otel#reconcile-with-the-bill"

SUCCEEDED = 'error_type="none"'
TRUNCATED = 'anthropic_stop_reason="max_tokens"'
CACHE_READ = 'anthropic_otel_token_type="cache_read"'
ALL_INPUT = 'anthropic_otel_token_type=~"input|cache_read|cache_write"'
THROTTLED = 'error_type=~"rate_limit_error|overloaded_error"'

RATE = "$__rate_interval"
RANGE = "$__range"


@dataclass(frozen=True)
class Ctx:
    """What every query of one build shares: the feature label and the variable filter."""

    feature: str

    def sel(self, *matchers: str) -> str:
        """A label selector with the $model and $feature filters and `matchers`."""
        return "{" + ", ".join(['gen_ai_request_model=~"$model"', f'{self.feature}=~"$feature"', *matchers]) + "}"

    def model_sel(self, *matchers: str) -> str:
        """A label selector with the $model filter only, for series without the feature label (the wrapper's)."""
        return "{" + ", ".join(['gen_ai_request_model=~"$model"', *matchers]) + "}"


Panel = Any  # a panel builder of grafana-foundation-sdk
Row = tuple[str, list[Panel]]


class _Ids:
    def __init__(self) -> None:
        self.next = 1

    def take(self) -> int:
        self.next += 1
        return self.next - 1


def _query(expr: str, legend: str = "__auto", ref: str = "A", instant: bool = False, exemplar: bool = False) -> Any:
    query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
    if exemplar:  # the histogram's exemplars as dots that link to their trace (the datasource's trace link)
        query = query.exemplar(True)
    return query.instant() if instant else query.range()


def _targets(panel: Any, queries: Sequence[tuple[str, str]], instant: bool = False, exemplar: bool = False) -> Any:
    for index, (expr, legend) in enumerate(queries):
        panel = panel.with_target(_query(expr, legend, chr(ord("A") + index), instant, exemplar))
    return panel


def ts(title: str, unit: str, queries: Sequence[tuple[str, str]], description: str, width: int = 12,
       stack: bool = False, exemplar: bool = False) -> Any:
    panel = (timeseries.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
             .height(8).span(width).fill_opacity(10 if not stack else 60).line_width(1))
    if stack:
        panel = panel.stacking(StackingConfig().mode(StackingMode.NORMAL))
    return _targets(panel, queries, exemplar=exemplar)


def single(title: str, unit: str, queries: Sequence[tuple[str, str]], description: str, width: int = 6,
           thresholds: Sequence[tuple[float | None, str]] | None = None, height: int = 4) -> Any:
    panel = (stat.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
             .height(height).span(width))
    if thresholds:
        panel = panel.thresholds(_thresholds(thresholds))
    return _targets(panel, queries, instant=True)


def meter(title: str, unit: str, queries: Sequence[tuple[str, str]], description: str, width: int = 6,
          thresholds: Sequence[tuple[float | None, str]] = ((None, "green"), (0.8, "orange"), (1.0, "red"))) -> Any:
    panel = (gauge.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
             .height(8).span(width).min(0).max(1.2).thresholds(_thresholds(thresholds)))
    return _targets(panel, queries, instant=True)


def bars(title: str, unit: str, queries: Sequence[tuple[str, str]], description: str, width: int = 12) -> Any:
    panel = (bargauge.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
             .height(8).span(width).min(0))
    return _targets(panel, queries, instant=True)


def timeline(title: str, queries: Sequence[tuple[str, str]], description: str,
             states: Sequence[tuple[int, str, str]], width: int = 12) -> Any:
    """A state timeline of a gauge whose values are states: (value, text, colour) each."""
    mapping = ValueMap({str(value): ValueMappingResult(text=text, color=color, index=index)
                        for index, (value, text, color) in enumerate(states)})
    panel = (statetimeline.Panel().title(title).description(description).unit("short").datasource(DATASOURCE)
             .height(8).span(width).min(0).max(max(value for value, _, _ in states)).mappings([mapping]))
    return _targets(panel, queries)


def needs_wrapper(panel: Any) -> Any:
    """Marks a panel over the resilience wrapper's series (no data without it) with a link to its docs."""
    return panel.links([dash.DashboardLink("Needs the resilience wrapper").type(DashboardLinkType.LINK)
                        .url(WRAPPER_DOCS).target_blank(True)])


def needs_exporter(panel: Any) -> Any:
    """Marks a panel over the billed series of `anthropic-otel reconcile --serve` (no data without it)."""
    return panel.links([dash.DashboardLink("Needs the reconcile exporter").type(DashboardLinkType.LINK)
                        .url(EXPORTER_DOCS).target_blank(True)])


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> Any:
    return dash.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=value, color=color) for value, color in steps])


# -- query pieces ---------------------------------------------------------------------------------

def _ratio(numerator: str, denominator: str) -> str:
    return f"{numerator}\n/\n({denominator} > 0)"


def _quantile(q: float, metric: str, selector: str, by: str = "") -> str:
    labels = ", ".join(["le", *([by] if by else [])])
    return f"histogram_quantile({q}, sum by ({labels}) (rate({metric}_bucket{selector}[{RATE}])))"


def _spend_vs_budget(window: str, period: str) -> str:
    return (f"sum(increase({COST}[{window}]))\n/\n"
            f'max({BUDGET}{{anthropic_otel_budget_period="{period}"}})')


def _cache_hit(c: Ctx, by: str = "") -> str:
    agg = f"sum by ({by})" if by else "sum"
    read = f'{agg} (rate({TOKENS}{c.sel(CACHE_READ)}[{RATE}]))'
    every = f'{agg} (rate({TOKENS}{c.sel(ALL_INPUT)}[{RATE}]))'
    return _ratio(read, every)


def _in_range_by(series: str, label: str, c: Ctx) -> str:
    """Increase within the range by `label`, or the value itself for a series too new for increase()."""
    return (f"sum by ({label}) (increase({series}{c.sel()}[{RANGE}]))\nor\n"
            f"sum by ({label}) ({series}{c.sel()})")


def _usage_unknown(c: Ctx, width: int) -> Any:
    return bars("Calls with usage unknown by reason", "short",
                [(_in_range_by(USAGE_UNKNOWN, UNKNOWN_REASON, c), f"{{{{{UNKNOWN_REASON}}}}}")],
                "Calls whose final usage never arrived, so their cost (if any) is missing from every cost panel: "
                "stream_cut (a stream failed before its message_delta), timeout (after the request was sent), "
                "closed_early (the caller closed the stream first), not_parsed (a raw response never parsed).",
                width=width)


def _cache_misses(c: Ctx) -> list[Any]:
    return [
        ts("Cache misses by reason", "short",
           [(f"sum by ({CACHE_MISS_REASON}) (rate({CACHE_MISSED_TOKENS}{c.sel()}[{RATE}])) * 3600",
             f"{{{{{CACHE_MISS_REASON}}}}}")],
           "Input tokens per hour the prompt cache missed, by the reason the API diagnosed (system_changed, "
           "tools_changed, model_changed, messages_changed, ...). Only requests with diagnostics: "
           "instrument(cache_diagnostics=True) and a gen_ai.conversation.id."),
        ts("Cache-miss cost per hour by reason", "currencyUSD",
           [(f"sum by ({CACHE_MISS_REASON}) (rate({CACHE_MISSED_USD}{c.sel()}[{RATE}])) * 3600",
             f"{{{{{CACHE_MISS_REASON}}}}}")],
           "What those misses cost over cache reads: missed tokens x (input rate - cache-read rate), per hour."),
    ]


# -- rows -----------------------------------------------------------------------------------------

def traffic_row(c: Ctx) -> Row:
    errors = c.sel('error_type!="none"')
    return ("Traffic", [
        ts("Requests by model", "reqps",
           [(f"sum by (gen_ai_request_model) (rate({REQUESTS}{c.sel()}[{RATE}]))", "{{gen_ai_request_model}}")],
           "Calls per second to the Anthropic API, finished (successful or not), by requested model."),
        ts("Errors by type", "reqps",
           [(f"sum by (error_type) (rate({REQUESTS}{errors}[{RATE}]))", "{{error_type}}")],
           "Failed calls per second by error type (rate_limit_error is a 429, overloaded_error a 529), after the "
           "SDK's own retries.", stack=True),
        single("Error ratio", "percentunit",
               [(_ratio(f"sum(increase({REQUESTS}{errors}[{RANGE}]))",
                        f"sum(increase({REQUESTS}{c.sel()}[{RANGE}]))"), "errors")],
               "Share of calls that failed, over the dashboard's time range.",
               thresholds=((None, "green"), (0.01, "orange"), (0.05, "red")), height=8),
        single("Calls", "short",
               [(f"sum(increase({REQUESTS}{c.sel()}[{RANGE}]))", "calls")],
               "Calls finished within the dashboard's time range.", height=8),
        ts("In-flight calls", "short",
           [(f"sum by (gen_ai_request_model) ({ACTIVE}{c.sel()})", "{{gen_ai_request_model}}")],
           "Calls started and not yet finished (streams count until they are closed).", width=12),
    ])


def latency_row(c: Ctx) -> Row:
    ok = c.sel('error_type=""')
    return ("Latency", [
        ts("Latency p50 / p95 / p99 (successful calls)", "s",
           [(_quantile(q, DURATION, ok, "gen_ai_request_stream"),
             f"p{int(q * 100)} stream={{{{gen_ai_request_stream}}}}") for q in (0.5, 0.95, 0.99)],
           "Whole-call duration of successful calls, streamed and non-streamed kept apart (a stream lasts until its "
           "last event). Dots are exemplars: calls that landed in a bucket, linked to their trace.", exemplar=True),
        ts("Time to first token p50 / p95 / p99", "s",
           [(_quantile(q, TTFC, c.sel()), f"p{int(q * 100)}") for q in (0.5, 0.95, 0.99)],
           "Time from sending a streamed call to its first chunk (streams only). Dots are exemplars, linked to "
           "their trace.", exemplar=True),
        ts("Latency p99 by model", "s",
           [(_quantile(0.99, DURATION, ok, "gen_ai_request_model, gen_ai_request_stream"),
             "{{gen_ai_request_model}} stream={{gen_ai_request_stream}}")],
           "p99 of successful calls, per model and streaming mode: what the AnthropicLatencyP99High and "
           "AnthropicLatencyP99Spike alerts watch. Dots are exemplars, linked to their trace.", width=24,
           exemplar=True),
    ])


def tokens_row(c: Ctx) -> Row:
    return ("Tokens and stop reasons", [
        ts("Tokens by type", "short",
           [(f"sum by (anthropic_otel_token_type) (rate({TOKENS}{c.sel()}[{RATE}]))", "{{anthropic_otel_token_type}}")],
           "Billed tokens per second by class: input (uncached), output, cache_read, cache_write.", stack=True),
        ts("Stop reasons", "reqps",
           [(f'sum by (anthropic_stop_reason) (rate({REQUESTS}{c.sel(SUCCEEDED)}[{RATE}]))',
             "{{anthropic_stop_reason}}")],
           "Successful calls per second by Anthropic's stop_reason (end_turn, max_tokens, tool_use, ...).",
           stack=True),
        ts("max_tokens truncation ratio", "percentunit",
           [(_ratio(
               f'sum by (gen_ai_request_model) (rate({REQUESTS}{c.sel(TRUNCATED)}'
               f"[{RATE}]))",
               f'sum by (gen_ai_request_model) (rate({REQUESTS}{c.sel(SUCCEEDED)}[{RATE}]))'),
             "{{gen_ai_request_model}}")],
           "Share of successful calls cut off by max_tokens, by model: the AnthropicMaxTokensTruncationHigh alert.",
           width=24),
    ])


def cost_row(c: Ctx) -> Row:
    return ("Cost", [
        ts("Cost per hour by model", "currencyUSD",
           [(f"sum by (gen_ai_request_model) (rate({COST}{c.sel()}[{RATE}])) * 3600", "{{gen_ai_request_model}}")],
           "Spend rate in US dollars per hour, by model.", stack=True),
        ts(f"Cost per hour by {c.feature}", "currencyUSD",
           [(f"sum by ({c.feature}) (rate({COST}{c.sel()}[{RATE}])) * 3600", f"{{{{{c.feature}}}}}")],
           f"Spend rate in US dollars per hour by the {c.feature} label (a context attribute named in "
           "instrument(metric_attributes=...)).", stack=True),
        single("Spend in range", "currencyUSD",
               [(f"sum(increase({COST}{c.sel()}[{RANGE}]))", "spend")],
               "Dollars spent within the dashboard's time range (filtered by model and feature).", height=8),
        single("Spend last 24h / 30d", "currencyUSD",
               [(f"sum(increase({COST}[1d]))", "24h"), (f"sum(increase({COST}[30d]))", "30d")],
               "Rolling-window spend over every model and feature: what the budget alerts compare.", height=8),
        meter("Budget used (rolling day / month)", "percentunit",
              [(_spend_vs_budget("1d", "day"), "day"), (_spend_vs_budget("30d", "month"), "month")],
              "Spend over the rolling day and 30 days as a share of the budgets set with instrument(budgets=...); "
              "empty without budgets.", width=12),
        _usage_unknown(c, 24),
    ])


def cache_row(c: Ctx) -> Row:
    return ("Prompt cache", [
        ts("Cache hit ratio by model", "percentunit",
           [(_cache_hit(c, "gen_ai_request_model"), "{{gen_ai_request_model}}")],
           "Cache reads as a share of all input tokens (uncached + cache read + cache write)."),
        ts("Cache savings per hour", "currencyUSD",
           [(f"sum(rate({SAVINGS}{c.sel()}[{RATE}])) * 3600", "saved by cache reads"),
            (f"sum(rate({PREMIUM}{c.sel()}[{RATE}])) * 3600", "paid for cache writes"),
            (f"(\n  (sum(rate({SAVINGS}{c.sel()}[{RATE}])) or vector(0))\n  -\n"
             f"  (sum(rate({PREMIUM}{c.sel()}[{RATE}])) or vector(0))\n) * 3600", "net")],
           "Dollars per hour that cache reads saved against the input rate, the premium paid for cache writes over "
           "it, and the difference."),
        single("Net cache savings in range", "currencyUSD",
               [(f"(sum(increase({SAVINGS}{c.sel()}[{RANGE}])) or vector(0))\n-\n"
                 f"(sum(increase({PREMIUM}{c.sel()}[{RANGE}])) or vector(0))", "net")],
               "Savings by cache reads minus the cache-write premium, within the dashboard's time range.",
               width=12),
        single("Cache hit ratio", "percentunit", [(_cache_hit(c).replace(RATE, RANGE).replace("rate(", "increase("),
                                                   "hit ratio")],
               "Cache reads as a share of all input tokens, over the dashboard's time range.", width=12),
        *_cache_misses(c),
    ])


def limits_row(c: Ctx) -> Row:
    return ("Rate limits and pricing", [
        ts("Rate-limit headroom", "percentunit",
           [(f"min by (gen_ai_request_model, anthropic_otel_ratelimit_resource) (\n  {REMAINING}{c.model_sel()}\n  /\n"
             f"  ({LIMIT}{c.model_sel()} > 0)\n)", "{{gen_ai_request_model}} {{anthropic_otel_ratelimit_resource}}")],
           "Remaining share of each per-minute limit, from the last anthropic-ratelimit-* headers seen per model."),
        ts("429 and 529 failures", "reqps",
           [(f"sum by (gen_ai_request_model, error_type) (rate({REQUESTS}"
             f'{c.sel(THROTTLED)}[{RATE}]))',
             "{{gen_ai_request_model}} {{error_type}}")],
           "Calls per second that failed with rate_limit_error (429) or overloaded_error (529) after retries."),
        single("Calls with no known price", "short",
               [(f"sum(increase({UNPRICED}{c.sel()}[{RANGE}])) or sum({UNPRICED}{c.sel()})", "unpriced")],
               "Calls whose model has no known price in the time range (or ever, for a new series): their cost is "
               "missing. Add the model with instrument(prices=...).", width=24,
               thresholds=((None, "green"), (1, "orange"))),
    ])


def cost_overview_row(c: Ctx) -> Row:
    return ("Spend", [
        single("Spend in range", "currencyUSD", [(f"sum(increase({COST}{c.sel()}[{RANGE}]))", "spend")],
               "Dollars spent within the dashboard's time range (filtered by model and feature)."),
        single("Projected per day", "currencyUSD", [(f"sum(rate({COST}[1h])) * 86400", "per day")],
               "The spend rate of the last hour over a whole day: what AnthropicBudgetBurnRateHigh compares."),
        single("Spend last 24h", "currencyUSD", [(f"sum(increase({COST}[1d]))", "24h")],
               "Rolling 24-hour spend over every model and feature."),
        single("Spend last 30d", "currencyUSD", [(f"sum(increase({COST}[30d]))", "30d")],
               "Rolling 30-day spend over every model and feature."),
        meter("Day budget used", "percentunit", [(_spend_vs_budget("1d", "day"), "day")],
              "Rolling-day spend as a share of the day budget (instrument(budgets={'day': ...})).", width=8),
        meter("Month budget used", "percentunit", [(_spend_vs_budget("30d", "month"), "month")],
              "Rolling 30-day spend as a share of the month budget (instrument(budgets={'month': ...})).", width=8),
        single("Budgets", "currencyUSD",
               [(f'max({BUDGET}{{anthropic_otel_budget_period="day"}})', "day"),
                (f'max({BUDGET}{{anthropic_otel_budget_period="month"}})', "month")],
               "The configured budgets (the anthropic_otel_budget_usd gauge).", width=8, height=8),
    ])


def cost_breakdown_row(c: Ctx) -> Row:
    return ("Breakdown", [
        ts("Cost per hour by model", "currencyUSD",
           [(f"sum by (gen_ai_request_model) (rate({COST}{c.sel()}[{RATE}])) * 3600", "{{gen_ai_request_model}}")],
           "Spend rate in US dollars per hour, by model.", stack=True),
        ts(f"Cost per hour by {c.feature}", "currencyUSD",
           [(f"sum by ({c.feature}) (rate({COST}{c.sel()}[{RATE}])) * 3600", f"{{{{{c.feature}}}}}")],
           f"Spend rate in US dollars per hour by the {c.feature} label.", stack=True),
        ts("Cost per hour by token class", "currencyUSD",
           [(f"sum by (anthropic_otel_token_type) (rate({COST}{c.sel()}[{RATE}])) * 3600",
             "{{anthropic_otel_token_type}}")],
           "Spend rate by billed class: input, output, cache_read, cache_write, web_search.", stack=True),
        ts("Cost per hour by service tier, speed and geo", "currencyUSD",
           [(f"sum by ({SERVICE_TIER}, {SPEED}, {INFERENCE_GEO}) (rate({COST}{c.sel()}[{RATE}])) * 3600",
             f"{{{{{SERVICE_TIER}}}}} {{{{{SPEED}}}}} {{{{{INFERENCE_GEO}}}}}")],
           "Spend rate by the billing dimensions the responses reported: service tier (standard, priority, batch), "
           "speed (fast mode costs more) and inference geo (US-only is 1.1x on 4.6+ models); none: not reported.",
           stack=True),
        ts("Thinking share of output tokens", "percentunit",
           [(_ratio(f"sum by (gen_ai_request_model) (rate({THINKING_TOKENS}{c.sel()}[{RATE}]))",
                    f"sum by (gen_ai_request_model) (rate({TOKENS}{c.sel(OUTPUT_TOKENS)}[{RATE}]))"),
             "{{gen_ai_request_model}}")],
           "The reasoning share of billed output tokens, by model (thinking is part of output: never added to it)."),
        bars("Spend in range by model", "currencyUSD",
             [(f"sort_desc(sum by (gen_ai_request_model) (increase({COST}{c.sel()}[{RANGE}])))",
               "{{gen_ai_request_model}}")],
             "Dollars spent per model within the dashboard's time range."),
        bars(f"Spend in range by {c.feature}", "currencyUSD",
             [(f"sort_desc(sum by ({c.feature}) (increase({COST}{c.sel()}[{RANGE}])))", f"{{{{{c.feature}}}}}")],
             f"Dollars spent per {c.feature} within the dashboard's time range."),
        bars("Average cost per successful call", "currencyUSD",
             [(_ratio(f"sum by (gen_ai_request_model) (increase({COST}{c.sel()}[{RANGE}]))",
                      f'sum by (gen_ai_request_model) (increase({REQUESTS}{c.sel(SUCCEEDED)}[{RANGE}]))'),
               "{{gen_ai_request_model}}")],
             "Dollars per successful call, by model, within the dashboard's time range."),
    ])


def cost_cache_row(c: Ctx) -> Row:
    return ("Prompt cache and pricing", [
        ts("Cache savings per hour", "currencyUSD",
           [(f"sum(rate({SAVINGS}{c.sel()}[{RATE}])) * 3600", "saved by cache reads"),
            (f"sum(rate({PREMIUM}{c.sel()}[{RATE}])) * 3600", "paid for cache writes")],
           "Dollars per hour that cache reads saved against the input rate, and the premium paid for cache writes."),
        bars("Calls with no known price by model", "short",
             [(f"sum by (gen_ai_request_model) (increase({UNPRICED}{c.sel()}[{RANGE}]))\nor\n"
               f"sum by (gen_ai_request_model) ({UNPRICED}{c.sel()})", "{{gen_ai_request_model}}")],
             "Calls whose cost is missing from these panels: add their models with instrument(prices=...)."),
        *_cache_misses(c),
        bars("Cache-miss cost in range by reason", "currencyUSD",
             [(_in_range_by(CACHE_MISSED_USD, CACHE_MISS_REASON, c), f"{{{{{CACHE_MISS_REASON}}}}}")],
             "Dollars the diagnosed cache misses cost over cache reads within the dashboard's time range."),
        _usage_unknown(c, 12),
    ])


def billed_row(c: Ctx) -> Row:
    # The growth of the last closed UTC day, whenever the dashboard is viewed: a subquery stepped by one day
    # evaluates only at midnight (as the AnthropicCostDrift rule does); a series born that day counts in full.
    first_party = f'{PROVIDER}="anthropic"'
    sel = f"{COST}{c.sel(first_party)}"
    grown = f"({sel} unless {sel} offset 1d)\n  or\n  increase({sel}[1d])"
    counted = f"last_over_time(sum by (gen_ai_request_model) (\n  {grown}\n)[1d:1d])"
    return ("Counted vs billed", [needs_exporter(bars(
        "Counted vs billed, last closed day", "currencyUSD",
        [(counted, "{{gen_ai_request_model}} counted"),
         (f"sum by (gen_ai_request_model) ({BILLED_USD}{c.sel()})", "{{gen_ai_request_model}} billed")],
        "Dollars the package counted per model for the last closed UTC day, beside what Anthropic billed for it "
        "(anthropic_otel_billed_usd from `anthropic-otel reconcile --serve`, shown once the bill for the day is "
        "final; it has no feature label, so it shows with every feature only). AnthropicCostDrift fires on a "
        "difference; `anthropic-otel reconcile` breaks it down by token type.", width=24))])


def resilience_row(c: Ctx) -> Row:
    sel = c.model_sel()
    return ("Resilience wrapper", [needs_wrapper(panel) for panel in (
        ts("Retries by reason", "reqps",
           [(f"sum by (anthropic_otel_retry_reason) (rate({RETRIES}{sel}[{RATE}]))",
             "{{anthropic_otel_retry_reason}}")],
           "Retries per second made by the resilience wrapper, by reason (rate_limit_error, overloaded_error, "
           "http_503, timeout, connection_error, ...). With instrument(), every retry is also an attempt in "
           "\"Requests by model\"; AnthropicRetryRatioHigh watches retries / attempts.", stack=True),
        timeline("Circuit state by model",
                 [(f"max by (gen_ai_request_model) ({CIRCUIT_STATE}{sel})", "{{gen_ai_request_model}}")],
                 "The wrapper's circuit breaker per model (the worst over processes): closed, half-open (probing) or "
                 "open (calls fail at once with CircuitOpenError or go to the fallback model). The state changes "
                 "only on a call. AnthropicCircuitOpen and AnthropicCircuitFlapping watch it.",
                 [(0, "closed", "green"), (1, "half-open", "orange"), (2, "open", "red")]),
        ts("Rejected calls by reason", "reqps",
           [(f"sum by (anthropic_otel_rejection_reason) (rate({REJECTED}{sel}[{RATE}]))",
             "{{anthropic_otel_rejection_reason}}")],
           "Calls per second the wrapper refused without sending them: circuit_open (an open breaker), "
           "limit_timeout (a limit did not free up within max_wait), budget (the Budget guard).", stack=True),
        ts("Fallbacks by model", "reqps",
           [(f"sum by (gen_ai_request_model, anthropic_otel_fallback_model) (rate({FALLBACKS}{sel}[{RATE}]))",
             "{{gen_ai_request_model}} → {{anthropic_otel_fallback_model}}")],
           "Calls per second moved from the requested model to the fallback model (on a 529 overloaded or an "
           "open breaker): AnthropicServingFallback."),
        ts("Limiter wait p95 by resource", "s",
           [(_quantile(0.95, LIMITER_WAIT, sel, "anthropic_otel_limiter_resource"),
             "{{anthropic_otel_limiter_resource}}")],
           "p95 of the time calls waited for a client-side limit (concurrency, requests, input_tokens, "
           "output_tokens, headers), of the calls that waited: AnthropicLimiterWaitHigh.", width=8),
        ts("Limiter waits by resource", "reqps",
           [(f"sum by (anthropic_otel_limiter_resource) (rate({LIMITER_WAIT}_count{sel}[{RATE}]))",
             "{{anthropic_otel_limiter_resource}}")],
           "Calls per second that had to wait for a client-side limit, by the limited resource.", width=8),
        ts("Stream timeouts by kind", "reqps",
           [(f"sum by (anthropic_otel_stream_timeout) (rate({STREAM_TIMEOUTS}{sel}[{RATE}]))",
             "{{anthropic_otel_stream_timeout}}")],
           "Streams per second cut at their idle deadline (no data) or total deadline: AnthropicStreamTimeouts.",
           width=8, stack=True),
    )])


def agents_row(c: Ctx) -> Row:
    sel = c.sel()
    failed = c.sel('error_type!="none"')
    tool_errors = _ratio(f"sum by (gen_ai_tool_name) (rate({AGENT_TOOL_CALLS}{failed}[{RATE}]))",
                         f"sum by (gen_ai_tool_name) (rate({AGENT_TOOL_CALLS}{sel}[{RATE}]))")
    return ("Agent runs", [
        ts("Agent runs per minute by outcome", "short",
           [(f"sum by (anthropic_otel_run_outcome) (rate({AGENT_RUNS}{sel}[{RATE}])) * 60",
             "{{anthropic_otel_run_outcome}}")],
           "Agent runs (the SDK's tool runner, Claude Agent SDK answers) per minute by how they ended: completed, "
           "max_iterations / max_turns (stopped at their cap), error, closed (the application stopped first).",
           width=8, stack=True),
        ts("Cost per run p50 / p99", "currencyUSD",
           [(_quantile(0.5, AGENT_RUN_COST, sel), "p50"), (_quantile(0.99, AGENT_RUN_COST, sel), "p99")],
           "Dollars per agent run (the sum of its calls; for the Claude Agent SDK its usage at this package's "
           "prices). AnthropicAgentRunawayCost fires on a run above the configured bound.", width=8),
        ts("Iterations per run p50 / p99", "short",
           [(_quantile(0.5, AGENT_RUN_ITERATIONS, sel), "p50"), (_quantile(0.99, AGENT_RUN_ITERATIONS, sel), "p99")],
           "Model calls (tool runner) or turns (Claude Agent SDK) per run. AnthropicAgentRunawayIterations fires on "
           "a run above the configured bound.", width=8),
        bars("Top tools by p95 duration", "s",
             [(f"topk(10, {_quantile(0.95, AGENT_TOOL_DURATION, sel, 'gen_ai_tool_name')})", "{{gen_ai_tool_name}}")],
             "The slowest tools of agent runs: p95 of one call's duration, by tool name."),
        bars("Top tools by error ratio", "percentunit",
             [(f"topk(10, {tool_errors})", "{{gen_ai_tool_name}}")],
             "Share of each tool's calls that failed (raised, or returned an error result), the worst first: "
             "AnthropicAgentToolErrorRatioHigh."),
    ])


OVERVIEW_ROWS: list[Callable[[Ctx], Row]] = [traffic_row, latency_row, tokens_row, cost_row, cache_row, limits_row,
                                             agents_row, resilience_row]
COST_ROWS: list[Callable[[Ctx], Row]] = [cost_overview_row, cost_breakdown_row, cost_cache_row, billed_row]
# Rows of an optional feature start collapsed: Grafana runs no query of theirs until they are opened.
COLLAPSED_ROWS = frozenset({"Resilience wrapper"})


# -- dashboards -----------------------------------------------------------------------------------

def _variables(board: Any, c: Ctx) -> Any:
    model_query = f"label_values({REQUESTS}, gen_ai_request_model)"
    feature_query = f'label_values({REQUESTS}{{gen_ai_request_model=~"$model"}}, {c.feature})'
    return (board
            .with_variable(dash.DatasourceVariable("datasource").label("Data source").type("prometheus"))
            .with_variable(dash.QueryVariable("model").label("Model").datasource(DATASOURCE)
                           .query(model_query).refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
                           .sort(VariableSort.ALPHABETICAL_ASC).multi(True).include_all(True).all_value(".*"))
            .with_variable(dash.QueryVariable("feature").label(c.feature).datasource(DATASOURCE)
                           .query(feature_query).refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
                           .sort(VariableSort.ALPHABETICAL_ASC).multi(True).include_all(True).all_value(".*")))


def _dashboard(uid: str, title: str, description: str, rows: Sequence[Callable[[Ctx], Row]], c: Ctx,
               link: tuple[str, str]) -> dict[str, Any]:
    board = (dash.Dashboard(title).uid(uid).description(description).tags(TAGS).editable()
             .time("now-6h", "now").refresh("30s").timezone("browser").tooltip(DashboardCursorSync.CROSSHAIR)
             .link(dash.DashboardLink(link[1]).type(DashboardLinkType.LINK).url(f"/d/{link[0]}")
                   .include_vars(True).keep_time(True).icon("dashboard")))
    board = _variables(board, c)
    ids = _Ids()
    for build in rows:
        title_, panels = build(c)
        row = dash.Row(title_).id(ids.take())
        if title_ in COLLAPSED_ROWS:  # a collapsed row holds its panels
            for panel in panels:
                row = row.with_panel(panel.id(ids.take()))
            board = board.with_row(row)
            continue
        board = board.with_row(row)
        for panel in panels:
            board = board.with_panel(panel.id(ids.take()))
    data: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return data


def dashboards(feature_label: str = FEATURE_LABEL) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON model."""
    c = Ctx(feature_label)
    return {
        "anthropic-otel-overview.json": _dashboard(
            "anthropic-otel-overview", "Anthropic / Overview",
            "Anthropic API calls seen by anthropic-otel: traffic, errors, latency, tokens, cost, cache, rate limits, "
            "and the optional resilience wrapper.",
            OVERVIEW_ROWS, c, ("anthropic-otel-cost", "Anthropic / Cost")),
        "anthropic-otel-cost.json": _dashboard(
            "anthropic-otel-cost", "Anthropic / Cost",
            "Anthropic spend seen by anthropic-otel: by model, feature and token class, against the budgets.",
            COST_ROWS, c, ("anthropic-otel-overview", "Anthropic / Overview")),
    }


def render(feature_label: str = FEATURE_LABEL) -> dict[str, str]:
    """File name -> the JSON text committed in dashboards/."""
    models = dashboards(feature_label)
    return {name: json.dumps(model, indent=2, sort_keys=True) + "\n" for name, model in models.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feature-label", default=FEATURE_LABEL,
                        help=f"Prometheus label of your feature attribute (default {FEATURE_LABEL}); "
                             "needs --output: the committed files are the defaults")
    parser.add_argument("--output", default=None, metavar="DIR",
                        help="directory for the JSON files (default: beside this script, only for the defaults)")
    args = parser.parse_args(argv)
    variant = [f"--feature-label {args.feature_label}"] if args.feature_label != FEATURE_LABEL else []
    out = HERE if args.output is None else Path(args.output)
    if variant and out.resolve() == HERE:
        # The committed JSON is what the defaults render (tests/test_dashboards.py holds it); a variant there
        # would be overwritten by the next plain run, or committed by accident.
        where = "" if args.output is None else f" ({args.output} is where the committed dashboards live)"
        print(f"build.py: {' '.join(variant)} changes the dashboards; refusing to overwrite the committed "
              f"files in {HERE}{where}. Give --output DIR for this variant.", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render(args.feature_label).items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
