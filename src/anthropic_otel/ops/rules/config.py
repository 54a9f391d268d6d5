"""Every threshold, `for:` duration and window the rules depend on, with its default.

One frozen dataclass per alert (or family of alerts); `RulesConfig` holds them under the keys of the config
file. A field `for_` is spelled `for` in config files; `help` metadata becomes the comment in
`alerts/rules-config.yml`, and each class's first docstring line the comment of its section.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
class CacheMiss:
    """`AnthropicCacheMissJump`: input tokens the prompt cache missed for one diagnosed reason (a changed system
    prompt, tools or model) jumped far above their usual amount. Needs requests with `diagnostics`
    (`instrument(cache_diagnostics=True)`)."""

    window: str = field(default="1h", metadata=_help("missed tokens within this window are compared"))
    baseline_window: str = field(default="1d", metadata=_help("with their usual amount per window over this one"))
    factor: float = field(default=3.0, metadata=_help("more than this many times the usual amount fires"))
    min_tokens: float = field(default=100000, metadata=_help("and at least this many missed tokens in the window"))
    for_: str = "10m"
    severity: str = "warning"


@dataclass(frozen=True)
class BudgetThresholds:
    """`AnthropicBudgetExceeded` and `AnthropicBudgetBurnRateHigh`, against the `anthropic_otel_budget_usd` gauge.

    Spend is a rolling window (restart-safe `increase()` of the cost counter), not a calendar day or month.
    Config key `budget`. Not the resilience wrapper's runtime `Budget`, which refuses calls.
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
class CostDrift:
    """`AnthropicCostDrift`: counted dollars of the last closed bucket against the bill `reconcile --serve` exports.

    The bill covers the whole organization, so both sides are summed per model only (not by `group_by`).
    """

    ratio: float = field(default=0.05, metadata=_help("|billed - counted| / counted above this fires"))
    min_usd: float = field(default=1.0, metadata=_help("and only when the difference is above this many dollars"))
    window: str = field(default="1d", metadata=_help("the exporter's --bucket: the last closed one is compared"))
    for_: str = "1h"
    severity: str = "warning"


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
class StreamTimeoutThresholds:
    """`AnthropicStreamTimeouts`: streams cut at their idle or total deadline (`StreamTimeouts`).

    Config key `resilience.stream_timeouts`. Not the wrapper's runtime `StreamTimeouts`, which sets the deadlines.
    """

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
    stream_timeouts: StreamTimeoutThresholds = field(default_factory=StreamTimeoutThresholds)


@dataclass(frozen=True)
class RunawayIterations:
    """`AnthropicAgentRunawayIterations`: agent runs that took more iterations (model calls or turns) than this."""

    iterations: float = field(default=20, metadata=_help(
        "a bucket bound of anthropic_otel_agent_run_iterations (1 2 3 4 5 6 8 10 15 20 25 30 40 50 75 100)"))
    window: str = field(default="10m", metadata=_help("one such run within this window fires"))
    for_: str = "1m"
    severity: str = "warning"


@dataclass(frozen=True)
class RunawayCost:
    """`AnthropicAgentRunawayCost`: agent runs that cost more than this many dollars each."""

    usd: float = field(default=1.0, metadata=_help(
        "a bucket bound of anthropic_otel_agent_run_cost_usd (0.001 ... 0.1 0.25 0.5 1 2.5 5 10 25 50)"))
    window: str = field(default="10m", metadata=_help("one such run within this window fires"))
    for_: str = "1m"
    severity: str = "warning"


@dataclass(frozen=True)
class ToolErrors:
    """`AnthropicAgentToolErrorRatioHigh`: a tool of agent runs fails on many of its calls."""

    ratio: float = field(default=0.2, metadata=_help("share of a tool's calls that fail"))
    min_calls: float = field(default=10, metadata=_help("only for tools called at least this often in the window"))
    window: str = "10m"
    for_: str = "10m"
    severity: str = "warning"


@dataclass(frozen=True)
class Agents:
    """Agent runs (the tool runner and the Claude Agent SDK); silent where no agent runs."""

    runaway_iterations: RunawayIterations = field(default_factory=RunawayIterations)
    runaway_cost: RunawayCost = field(default_factory=RunawayCost)
    tool_errors: ToolErrors = field(default_factory=ToolErrors)


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
    cache_miss: CacheMiss = field(default_factory=CacheMiss)
    budget: BudgetThresholds = field(default_factory=BudgetThresholds)
    cost_drift: CostDrift = field(default_factory=CostDrift)
    resilience: Resilience = field(default_factory=Resilience)
    agents: Agents = field(default_factory=Agents)
