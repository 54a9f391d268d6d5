"""The Prometheus names of the package's instruments and attributes, derived from `telemetry.names`.

Both the Python Prometheus exporter and the Collector's default translation turn dots into `_`, append
`_seconds` for unit `s` and `_total` to counters, and drop units in braces (docs/telemetry.md, "Prometheus
series and labels"). Alert rules and dashboards take their series and label names from here, so a renamed
instrument renames them too.
"""

from __future__ import annotations

from typing import Final

from . import names as n


def _base(name: str) -> str:
    return name.replace(".", "_")


def _counter(name: str) -> str:
    return _base(name) + "_total"


def _seconds(name: str) -> str:
    return _base(name) + "_seconds"


# Series.
REQUESTS: Final = _counter(n.M_REQUESTS)
TOKENS: Final = _counter(n.M_TOKENS)
COST: Final = _counter(n.M_COST)
CACHE_SAVINGS: Final = _counter(n.M_CACHE_SAVINGS)
CACHE_WRITE_PREMIUM: Final = _counter(n.M_CACHE_WRITE_PREMIUM)
UNPRICED: Final = _counter(n.M_UNPRICED)
USAGE_UNKNOWN: Final = _counter(n.M_USAGE_UNKNOWN)
CACHE_MISSED_TOKENS: Final = _counter(n.M_CACHE_MISSED_TOKENS)
CACHE_MISSED_USD: Final = _counter(n.M_CACHE_MISSED_USD)
ACTIVE: Final = _base(n.M_ACTIVE)
RATELIMIT_REMAINING: Final = _base(n.M_RATELIMIT_REMAINING)
RATELIMIT_LIMIT: Final = _base(n.M_RATELIMIT_LIMIT)
BUDGET: Final = _base(n.M_BUDGET)
DURATION: Final = _seconds(n.M_OPERATION_DURATION)
TIME_TO_FIRST_CHUNK: Final = _seconds(n.M_TIME_TO_FIRST_CHUNK)
TOKEN_USAGE: Final = _base(n.M_TOKEN_USAGE)
# The reconcile exporter's gauges (no `_total`: they are figures per bucket, not counters).
BILLED_USD: Final = _base(n.M_BILLED_USD)
BILLED_TOKENS: Final = _base(n.M_BILLED_TOKENS)
THINKING_TOKENS: Final = _counter(n.M_THINKING_TOKENS)
SERVER_TOOL_REQUESTS: Final = _counter(n.M_SERVER_TOOL_REQUESTS)
CONTAINER_REQUESTS: Final = _counter(n.M_CONTAINER_REQUESTS)
# The optional resilience wrapper.
RETRIES: Final = _counter(n.M_RESILIENCE_RETRIES)
REJECTED: Final = _counter(n.M_RESILIENCE_REJECTED)
FALLBACKS: Final = _counter(n.M_RESILIENCE_FALLBACKS)
LIMITER_WAIT: Final = _seconds(n.M_RESILIENCE_LIMITER_WAIT)
STREAM_TIMEOUTS: Final = _counter(n.M_RESILIENCE_STREAM_TIMEOUTS)
CIRCUIT_STATE: Final = _base(n.M_RESILIENCE_CIRCUIT_STATE)
CIRCUIT_TRANSITIONS: Final = _counter(n.M_RESILIENCE_CIRCUIT_TRANSITIONS)
STORE_FAILURES: Final = _counter(n.M_RESILIENCE_STORE_FAILURES)

# Labels.
MODEL: Final = _base(n.GEN_AI_REQUEST_MODEL)
PROVIDER: Final = _base(n.GEN_AI_PROVIDER_NAME)
STREAM: Final = _base(n.GEN_AI_REQUEST_STREAM)
STOP_REASON: Final = _base(n.ANTHROPIC_STOP_REASON)
ERROR_TYPE: Final = _base(n.ERROR_TYPE)
TOKEN_TYPE: Final = _base(n.TOKEN_TYPE)
UNKNOWN_REASON: Final = _base(n.USAGE_UNKNOWN_REASON)
CACHE_MISS_REASON: Final = _base(n.CACHE_MISS_REASON)
RESOURCE: Final = _base(n.RATELIMIT_RESOURCE)
PERIOD: Final = _base(n.BUDGET_PERIOD)
RETRY_REASON: Final = _base(n.RETRY_REASON)
REJECTION_REASON: Final = _base(n.REJECTION_REASON)
FALLBACK_MODEL: Final = _base(n.FALLBACK_MODEL)
LIMITER_RESOURCE: Final = _base(n.LIMITER_RESOURCE)
STREAM_TIMEOUT: Final = _base(n.STREAM_TIMEOUT)
CIRCUIT_ENTERED: Final = _base(n.CIRCUIT_STATE)
SERVICE_TIER: Final = _base(n.ANTHROPIC_SERVICE_TIER)
SPEED: Final = _base(n.ANTHROPIC_SPEED)
INFERENCE_GEO: Final = _base(n.ANTHROPIC_INFERENCE_GEO)
SERVER_TOOL_TYPE: Final = _base(n.SERVER_TOOL_TYPE)
# Agent runs.
AGENT_RUNS: Final = _counter(n.M_AGENT_RUNS)
AGENT_RUN_COST: Final = _base(n.M_AGENT_RUN_COST)
AGENT_RUN_ITERATIONS: Final = _base(n.M_AGENT_RUN_ITERATIONS)
AGENT_TOOL_CALLS: Final = _counter(n.M_AGENT_TOOL_CALLS)
AGENT_TOOL_DURATION: Final = _seconds(n.M_AGENT_TOOL_DURATION)
AGENT_COST_DIVERGENCE: Final = _base(n.M_AGENT_COST_DIVERGENCE)
OPERATION: Final = _base(n.GEN_AI_OPERATION_NAME)
RUN_OUTCOME: Final = _base(n.RUN_OUTCOME)
TOOL_NAME: Final = _base(n.GEN_AI_TOOL_NAME)
