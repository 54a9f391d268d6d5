"""The cost rules: spend against the budgets (rolling day and month), burn rate, unpriced calls, prompt caching."""

from __future__ import annotations

from ...telemetry.series import (
    BUDGET,
    CACHE_MISS_REASON,
    CACHE_MISSED_TOKENS,
    COST,
    MODEL,
    PERIOD,
    TOKEN_TYPE,
    TOKENS,
    UNPRICED,
)
from .config import RulesConfig
from .promql import agg, counted, eq, label, matches, number, seconds, select, value
from .rule import MODEL_LABEL as _M
from .rule import Group, Rule, alert, record, record_names

# -- recording rules ------------------------------------------------------------------------------


def cache_rules(config: RulesConfig) -> Group:
    """The prompt-cache hit ratio (cache reads / all input tokens) and its average as the baseline."""
    r = record_names(config)
    read = agg(config, "sum", [MODEL], f"rate({select(TOKENS, eq(TOKEN_TYPE, 'cache_read'))}[{config.rate_window}])")
    inputs = select(TOKENS, matches(TOKEN_TYPE, "input|cache_read|cache_write"))
    every = agg(config, "sum", [MODEL], f"rate({inputs}[{config.rate_window}])")
    return {"name": "anthropic-otel.cache.rules", "rules": [
        record(r["cache"], f"{read}\n/\n({every} > 0)"),
        record(r["cache_baseline"], f"avg_over_time({r['cache']}[{config.cache.baseline_window}])"),
    ]}


def spend_rules(config: RulesConfig) -> Group:
    """Spend over the rolling day, the burn rates, and the budgets."""
    r = record_names(config)
    b = config.budget
    return {"name": "anthropic-otel.spend.rules", "rules": [
        record(r["spend_day"], agg(config, "sum", [], f"increase({COST}[{b.day_window}])")),
        record(r["burn_day"], agg(config, "sum", [], f"rate({COST}[{b.burn_window_day}])")),
        record(r["burn_month"], agg(config, "sum", [], f"rate({COST}[{b.burn_window_month}])")),
        record(r["budget"], agg(config, "max", [PERIOD], BUDGET)),
    ]}


def spend_month_rules(config: RulesConfig) -> Group:
    """Spend over the rolling month, in its own group: a 30-day window is evaluated less often."""
    r = record_names(config)
    b = config.budget
    return {"name": "anthropic-otel.spend-month.rules", "interval": b.month_interval, "rules": [
        record(r["spend_month"], agg(config, "sum", [], f"increase({COST}[{b.month_window}])")),
    ]}


# -- alerting rules -------------------------------------------------------------------------------

def cost_alerts(config: RulesConfig) -> Group:
    """Budgets exceeded or on course to be, unpriced calls, a collapsed cache hit ratio."""
    r = record_names(config)
    b = config.budget
    u = config.unpriced
    c = config.cache
    rules: list[Rule] = []
    for period, window, burn, burn_window in (("day", b.day_window, "burn_day", b.burn_window_day),
                                              ("month", b.month_window, "burn_month", b.burn_window_month)):
        budget = select(r["budget"], eq(PERIOD, period))
        spend = r["spend_day"] if period == "day" else r["spend_month"]
        rules.append(alert(
            config, "AnthropicBudgetExceeded", f"{spend}\n> ignoring ({PERIOD})\n{budget}",
            b.exceeded_for, b.exceeded_severity,
            f"Anthropic spend is over the {period} budget.",
            f"{value('humanize')} USD spent in the last {window} (a rolling window), over the {period} "
            "budget set with instrument(budgets=...).", {PERIOD: period}))
        factor = "" if b.burn_factor == 1 else f" * {number(b.burn_factor)}"
        rules.append(alert(
            config, "AnthropicBudgetBurnRateHigh",
            f"{r[burn]} * {number(seconds(window))}\n> ignoring ({PERIOD})\n{budget}{factor}",
            b.burn_for, b.burn_severity,
            f"Anthropic spend is on course to exceed the {period} budget.",
            f"At the spend rate of the last {burn_window}, {value('humanize')} USD would be spent per "
            f"{window}, more than the {period} budget.", {PERIOD: period}))
    unpriced = agg(config, "sum", [MODEL], f"increase({UNPRICED}[{u.window}])")
    appeared = agg(config, "sum", [MODEL], f"{UNPRICED} unless {UNPRICED} offset {u.window}")
    rules.append(alert(
        config, "AnthropicUnpricedCalls",
        # A counter series that is new within the window has no earlier sample for increase() to see.
        f"{unpriced} > 0\nor\n{appeared} > 0",
        u.for_, u.severity,
        f"Calls to {_M} have no known price.",
        f"Calls to {_M} in the last {u.window} had no known price, so their cost is missing from "
        "anthropic_otel_cost_usd_total and the budget alerts. Add the model with instrument(prices=...)."))
    rules.append(alert(
        config, "AnthropicCacheHitRatioCollapsed",
        f"(\n  {r['cache']} < {number(c.collapse_factor)} * {r['cache_baseline']}\n)\n"
        f"and\n(\n  {r['cache_baseline']} >= {number(c.min_baseline)}\n)",
        c.for_, c.severity,
        f"Prompt-cache hit ratio of {_M} collapsed.",
        f"Cache reads are {value('humanizePercentage')} of input tokens for {_M} over the last "
        f"{config.rate_window}, below {number(c.collapse_factor * 100)}% of its average over "
        f"{c.baseline_window}: a changed prompt prefix or cache_control may have broken caching."))
    rules.append(_cache_miss_jump(config))
    return {"name": "anthropic-otel.cost", "rules": rules}


def _cache_miss_jump(config: RulesConfig) -> Rule:
    """Missed tokens of one model and diagnosed reason far above their usual amount per window (the day before
    the window); a reason new to a model has no usual amount and fires on the floor alone."""
    m = config.cache_miss
    by = [MODEL, CACHE_MISS_REASON]
    recent = counted(config, by, CACHE_MISSED_TOKENS, "", m.window)
    windows = number(seconds(m.baseline_window) / seconds(m.window))  # the usual amount per window
    usual = agg(config, "sum", by, f"increase({CACHE_MISSED_TOKENS}[{m.baseline_window}] offset {m.window})") \
        + f" / {windows}"
    return alert(
        config, "AnthropicCacheMissJump",
        f"(\n{recent} > {number(m.factor)} * {usual}\nor\n{recent} unless {usual}\n)\n"
        f"and\n{recent} > {number(m.min_tokens)}",
        m.for_, m.severity,
        f"Prompt-cache misses of {_M} jumped ({label(CACHE_MISS_REASON)}).",
        f"{value('humanize')} input tokens of {_M} missed the prompt cache for {label(CACHE_MISS_REASON)} in the "
        f"last {m.window}, more than {number(m.factor)} times their usual amount (or a reason new for it): a deploy "
        "may have changed the system prompt, the tools or the model. See the cache-miss panel of the Cost dashboard.")
