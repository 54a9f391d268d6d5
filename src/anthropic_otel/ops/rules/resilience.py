"""The optional resilience wrapper's rules: breakers, retries, refusals, limiter waits, fallbacks, stream timeouts.

Its series exist only where `anthropic_otel.resilience` runs, so without the wrapper these rules stay silent.
"""

from __future__ import annotations

from ...telemetry.series import (
    CIRCUIT_ENTERED,
    CIRCUIT_STATE,
    CIRCUIT_TRANSITIONS,
    FALLBACK_MODEL,
    FALLBACKS,
    LIMITER_RESOURCE,
    LIMITER_WAIT,
    MODEL,
    REJECTED,
    REJECTION_REASON,
    RETRIES,
    STREAM_TIMEOUT,
    STREAM_TIMEOUTS,
)
from .config import RulesConfig
from .promql import agg, counted, eq, label, ne, number, requests_rate, value
from .rule import MODEL_LABEL as _M
from .rule import Group, alert, enough_calls, record, record_names


def resilience_rules(config: RulesConfig) -> Group:
    """The wrapper's retries as a share of the attempts sent."""
    r = record_names(config)
    retries = agg(config, "sum", [MODEL], f"rate({RETRIES}[{config.rate_window}])")
    return {"name": "anthropic-otel.resilience.rules", "rules": [
        # With instrument(), anthropic_otel_requests_total counts every attempt the wrapper sends.
        record(r["retries"], f"{retries}\n/\n({requests_rate(config)} > 0)"),
    ]}


def resilience_alerts(config: RulesConfig) -> Group:
    """Open or flapping breakers, retries, refusals, limiter waits, fallbacks, stream timeouts."""
    r = record_names(config)
    res = config.resilience
    opened, flap, retry, guard = res.circuit_open, res.circuit_flapping, res.retries, res.budget_guard
    rej, wait, fb, st = res.rejections, res.limiter_wait, res.fallback, res.stream_timeouts
    reason = label(REJECTION_REASON)
    resource = label(LIMITER_RESOURCE)
    fallback = label(FALLBACK_MODEL)
    kind = label(STREAM_TIMEOUT)
    humanized = value("humanize")
    closes = counted(config, [MODEL], CIRCUIT_TRANSITIONS, eq(CIRCUIT_ENTERED, "closed"), flap.window)
    refused = counted(config, [], REJECTED, eq(REJECTION_REASON, "budget"), guard.window)
    rejected = counted(config, [MODEL, REJECTION_REASON], REJECTED, ne(REJECTION_REASON, "budget"), rej.window)
    waits = agg(config, "sum", [MODEL, LIMITER_RESOURCE, "le"], f"rate({LIMITER_WAIT}_bucket[{wait.window}])")
    # Plain increase(): one fallback (a series born at 1) is not serving from the fallback model.
    fallbacks = agg(config, "sum", [MODEL, FALLBACK_MODEL], f"increase({FALLBACKS}[{fb.window}])")
    timeouts = counted(config, [MODEL, STREAM_TIMEOUT], STREAM_TIMEOUTS, "", st.window)
    return {"name": "anthropic-otel.resilience", "rules": [
        # Not closed rather than open (2): a failing half-open probe (1) between open spells would restart for:.
        alert(config, "AnthropicCircuitOpen", f"{agg(config, 'max', [MODEL], CIRCUIT_STATE)} >= 1",
              opened.for_, opened.severity,
              f"The circuit breaker for {_M} is open.",
              f"The resilience wrapper's circuit breaker for {_M} has not been closed for {opened.for_} (now "
              f"{value()}: 2 open, 1 half-open and probing): calls to it fail at once with CircuitOpenError or "
              "go to the fallback model."),
        # Closes, not opens: every failed half-open probe re-opens the breaker, so a steady outage (which
        # AnthropicCircuitOpen reports) counts many opens but no close.
        alert(config, "AnthropicCircuitFlapping", f"{closes} >= {number(flap.count)}",
              flap.for_, flap.severity,
              f"The circuit breaker for {_M} keeps opening and closing.",
              f"The resilience wrapper's circuit breaker for {_M} opened and closed again {humanized} "
              f"times in the last {flap.window} (threshold {number(flap.count)}): the model fails on and off, and "
              "calls are refused in bursts."),
        alert(config, "AnthropicRetryRatioHigh",
              f"(\n  {r['retries']} > {number(retry.ratio)}\n)\nand\n(\n  {enough_calls(config)}\n)",
              retry.for_, retry.severity,
              f"The resilience wrapper retries many calls to {_M}.",
              f"{value('humanizePercentage')} of the attempts sent to {_M} over the last {config.rate_window} "
              f"were retries by the resilience wrapper (threshold {number(retry.ratio * 100)}%); see "
              "anthropic_otel_retry_reason on anthropic_otel_resilience_retries_total."),
        alert(config, "AnthropicBudgetGuardRefusing", f"{refused} > 0", guard.for_, guard.severity,
              "The resilience wrapper's budget guard is refusing calls.",
              f"{humanized} calls were refused by the resilience wrapper's Budget in the last "
              f"{guard.window} (BudgetExceededError, nothing sent): the day's or month's spend, with the call's "
              "worst-case cost reserved, does not fit its budget."),
        alert(config, "AnthropicCallsRejected", f"{rejected} > {number(rej.count)}", rej.for_, rej.severity,
              f"The resilience wrapper refuses calls to {_M} ({reason}).",
              f"{humanized} calls to {_M} were refused without being sent in the last {rej.window}, "
              f"reason {reason} (threshold {number(rej.count)}): circuit_open is an open breaker, limit_timeout a "
              "client-side limit that did not free up within max_wait."),
        alert(config, "AnthropicLimiterWaitHigh",
              f"histogram_quantile(\n  0.95,\n  {waits}\n)\n> {number(wait.p95_seconds)}",
              wait.for_, wait.severity,
              f"Calls to {_M} wait long for the {resource} limit.",
              f"p95 of the time calls to {_M} waited for the client-side {resource} limit is "
              f"{value('humanizeDuration')} over the last {wait.window} (threshold "
              f"{number(wait.p95_seconds)}s, of the calls that waited)."),
        alert(config, "AnthropicServingFallback", f"{fallbacks} > 0", fb.for_, fb.severity,
              f"Calls to {_M} go to the fallback model {fallback}.",
              f"For {fb.for_}, calls to {_M} have been sent to {fallback} instead ({humanized} in "
              f"the last {fb.window}), after a 529 overloaded or with the breaker open: their answers come from "
              "another model."),
        alert(config, "AnthropicStreamTimeouts", f"{timeouts} > {number(st.count)}", st.for_, st.severity,
              f"Streams from {_M} time out ({kind}).",
              f"{humanized} streams from {_M} were cut at their {kind} deadline in the last "
              f"{st.window} (threshold {number(st.count)}); their callers got StreamTimeoutError with the partial "
              "text."),
    ]}
