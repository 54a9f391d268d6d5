"""The reconcile exporter in the operations assets: compose profile, Prometheus scrape job, dashboard panel, rules."""

from __future__ import annotations

import json
from typing import Any

import yaml

from _tools import ROOT
from anthropic_otel.ops import rules
from anthropic_otel.telemetry import series as s


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.otel.yml").read_text())
    return loaded


def test_the_exporter_service_is_off_unless_its_profile_is_asked_for() -> None:
    service = _compose()["services"]["billed-exporter"]
    assert service["profiles"] == ["reconcile"]
    assert "anthropic-otel reconcile --serve --port 9465" in service["command"]
    assert service["environment"]["ANTHROPIC_ADMIN_API_KEY"] == "${ANTHROPIC_ADMIN_API_KEY:-}"  # never a literal key
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {target for job in prometheus["scrape_configs"] for config in job["static_configs"]
               for target in config["targets"]}
    assert "billed-exporter:9465" in targets


def test_the_cost_dashboard_sets_counted_beside_billed() -> None:
    board = json.loads((ROOT / "dashboards" / "anthropic-otel-cost.json").read_text())
    (panel,) = [p for p in board["panels"] if p.get("title") == "Counted vs billed, last closed day"]
    exprs = [target["expr"] for target in panel["targets"]]
    assert any("[1d:1d]" in expr and s.COST in expr for expr in exprs)
    assert any(s.BILLED_USD in expr for expr in exprs)
    assert [link["title"] for link in panel["links"]] == ["Needs the reconcile exporter"]


def test_the_drift_alert_reads_the_exporter_and_its_thresholds_come_from_the_config() -> None:
    config = rules.config_from_mapping({"cost_drift": {"ratio": 0.2, "min_usd": 5, "window": "1h", "for": "2h"}})
    (drift,) = [rule for group in (build(config) for build in rules.ALERT_GROUPS) for rule in group["rules"]
                if rule.get("alert") == "AnthropicCostDrift"]
    assert drift["for"] == "2h"
    assert "ratio1h_closed) > 0.2" in drift["expr"] and ") > 5" in drift["expr"]
    recorded = {rule["record"]: rule["expr"] for group in (build(config) for build in rules.RECORDING_GROUPS)
                for rule in group["rules"] if "record" in rule}
    assert "[1h:1h]" in recorded["model:anthropic_otel_cost_usd:increase1h_closed"]
    assert s.BILLED_USD in recorded["model:anthropic_otel_billed_usd:sum"]
