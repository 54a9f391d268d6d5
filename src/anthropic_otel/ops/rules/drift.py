"""The drift rules: what the package counted for the last closed bucket against what Anthropic billed for it.

The billed side is `anthropic_otel_billed_usd`, served by `anthropic-otel reconcile --serve` for the last
closed bucket only, once the bill for it is final. The counted side is the growth of the cost counter over
that same bucket: a subquery whose step is the bucket width evaluates only at bucket boundaries (UTC
midnight for 1d), so `last_over_time(...[1d:1d])` is the growth over the last closed day, whenever the rule
runs. A series born inside the bucket counts in full (increase() would lose its first sample). Both sides are
summed per model only: the bill covers every caller of the organization, whatever job counted them.
"""

from __future__ import annotations

from ...telemetry import names as n
from ...telemetry.series import BILLED_USD, COST, MODEL, PROVIDER
from .config import RulesConfig
from .promql import eq, number, select, value
from .rule import MODEL_LABEL as _M
from .rule import Group, alert, record, record_names


def _counted(window: str) -> str:
    sel = select(COST, eq(PROVIDER, n.PROVIDER_ANTHROPIC))
    grown = f"({sel} unless {sel} offset {window})\n    or\n    increase({sel}[{window}])"
    return f"last_over_time(\n  sum by ({MODEL}) (\n    {grown}\n  )[{window}:{window}]\n)"


def drift_rules(config: RulesConfig) -> Group:
    """Counted dollars of the last closed bucket, billed dollars for it, and their relative drift per model."""
    r = record_names(config)
    counted = f"({r['counted_closed']} or on ({MODEL}) 0 * {r['billed']})"  # billed but never counted: +Inf
    return {"name": "anthropic-otel.drift.rules", "rules": [
        record(r["counted_closed"], _counted(config.cost_drift.window)),
        record(r["billed"], f"sum by ({MODEL}) ({BILLED_USD})"),
        record(r["drift"], f"({r['billed']} - on ({MODEL}) {counted})\n/ on ({MODEL})\n{counted}"),
    ]}


def drift_alerts(config: RulesConfig) -> Group:
    """Counted cost of a closed bucket off the bill by more than the ratio and the dollar floor."""
    r = record_names(config)
    d = config.cost_drift
    counted = f"({r['counted_closed']} or on ({MODEL}) 0 * {r['billed']})"
    expr = (f"abs({r['drift']}) > {number(d.ratio)}\nand on ({MODEL})\n"
            f"abs({r['billed']} - on ({MODEL}) {counted}) > {number(d.min_usd)}")
    return {"name": "anthropic-otel.drift", "rules": [alert(
        config, "AnthropicCostDrift", expr, d.for_, d.severity,
        f"Counted cost of {_M} is off Anthropic's bill.",
        f"For the last closed {d.window} bucket (UTC), Anthropic's bill for {_M} differs by "
        f"{value('humanizePercentage')} (and over {number(d.min_usd)} USD) from what anthropic_otel_cost_usd_total "
        "counted: an unpriced dimension, uninstrumented traffic or a stale price override. "
        f"Run anthropic-otel reconcile --bucket {d.window} for the breakdown by token type.")]}


