"""The agent-run alerts follow their config, and a runaway bound must be one of the histogram's buckets."""

from __future__ import annotations

import pytest

from anthropic_otel.ops import rules
from anthropic_otel.telemetry import names


def test_runaway_bounds_reach_the_rules() -> None:
    config = rules.config_from_mapping({"agents": {"runaway_iterations": {"iterations": 50},
                                                   "runaway_cost": {"usd": 0.25},
                                                   "tool_errors": {"ratio": 0.5, "min_calls": 3}}})
    text = rules.render(config)[rules.ALERTS_FILE]
    assert 'anthropic_otel_agent_run_iterations_bucket{le=~"50(\\\\.0+)?"}' in text
    assert 'anthropic_otel_agent_run_cost_usd_bucket{le=~"0\\\\.25"}' in text
    assert ") > 0.5\n" in text and ">= 3" in text
    assert "more than 50 iterations" in text and "more than $0.25 each" in text


@pytest.mark.parametrize(("section", "key", "bad", "bounds"), [
    ("runaway_iterations", "iterations", 17, names.RUN_ITERATION_BUCKETS),
    ("runaway_cost", "usd", 0.3, names.RUN_COST_BUCKETS),
])
def test_a_bound_between_buckets_is_rejected(section: str, key: str, bad: float, bounds: tuple[float, ...]) -> None:
    config = rules.config_from_mapping({"agents": {section: {key: bad}}})
    with pytest.raises(ValueError, match=f"agents.{section}.{key}: .* not a bucket bound") as raised:
        rules.render(config)
    assert all(rules.promql.number(b) in str(raised.value) for b in bounds)
