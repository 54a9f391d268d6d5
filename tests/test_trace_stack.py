"""The compose stack's traces: the Collector sends them to Jaeger, Prometheus stores the latency histograms'
exemplars, Grafana links an exemplar to its trace, and the latency panels show exemplars."""

from __future__ import annotations

import json
from typing import Any

import yaml

from _tools import ROOT
from anthropic_otel.telemetry.series import DURATION, TIME_TO_FIRST_CHUNK

DEPLOY = ROOT / "deploy"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources"


def _yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))


def test_the_collector_sends_traces_to_the_trace_backend_and_exemplars_to_prometheus() -> None:
    services = _yaml("docker-compose.otel.yml")["services"]
    jaeger = services["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:") and jaeger["image"].split(":")[1][0].isdigit()
    collector = _yaml("deploy/otel-collector.yml")
    (exporter,) = collector["service"]["pipelines"]["traces"]["exporters"]
    assert exporter.split("/")[0] == "otlp"
    assert collector["exporters"][exporter]["endpoint"] == "jaeger:4317"
    assert "jaeger" in services["otel-collector"]["depends_on"]
    prometheus_exporter = collector["exporters"]["prometheus"]
    assert prometheus_exporter["enable_open_metrics"] is True  # exemplars exist only in OpenMetrics text
    assert prometheus_exporter.get("add_metric_suffixes", True) is True  # _total, _seconds: the rules' names
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]


def test_grafana_links_an_exemplars_trace_id_to_the_trace_datasource() -> None:
    sources = {source["uid"]: source for path in sorted(DATASOURCES.glob("*.yml"))
               for source in yaml.safe_load(path.read_text())["datasources"]}
    jaeger = next(source for source in sources.values() if source["type"] == "jaeger")
    assert jaeger["url"] == "http://jaeger:16686"
    (link,) = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert link == {"name": "trace_id", "datasourceUid": jaeger["uid"]}  # the Collector's exemplar label


def test_latency_panels_show_exemplars() -> None:
    board = json.loads((ROOT / "dashboards" / "anthropic-otel-overview.json").read_text())
    panels = [panel for row in board["panels"] for panel in (row.get("panels", []) if row["type"] == "row" else [row])]
    latency = [(panel["title"], target) for panel in panels for target in panel.get("targets", [])
               if f"{DURATION}_bucket" in target["expr"] or f"{TIME_TO_FIRST_CHUNK}_bucket" in target["expr"]]
    assert len(latency) >= 7
    assert [title for title, target in latency if target.get("exemplar") is not True] == []
