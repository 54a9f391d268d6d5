"""deploy/kubernetes/: rendered by `anthropic-otel assets export --kubernetes`, valid against the schemas, wired up.

Core objects are validated with kubernetes-validate (the Kubernetes OpenAPI schemas it ships, strict: no unknown
field). The prometheus-operator objects are validated against tests/schemas/prometheus-operator.schema.json, a
minimal schema written from the operator's CRDs (the one PyPI package with models of them, cloudcoil, installs a
pytest plugin that needs more packages, so it is not used).
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from _tools import ROOT, tool, tool_env
from anthropic_otel import cli
from anthropic_otel.ops import rules as _rules
from anthropic_otel.ops.assets import kubernetes as _k8s

DEPLOY = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"  # oldest release still supported by its cloud providers' LTS plans; strict schemas
OPERATOR_SCHEMA = json.loads((ROOT / "tests" / "schemas" / "prometheus-operator.schema.json").read_text())
OPERATOR_KINDS = {"PrometheusRule", "ServiceMonitor", "PodMonitor"}


def _documents() -> list[dict[str, Any]]:
    return [document for path in sorted(DEPLOY.glob("*.yml"))
            for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def _validate(document: dict[str, Any]) -> None:
    if document["kind"] in OPERATOR_KINDS:
        jsonschema.validate(document, OPERATOR_SCHEMA, cls=jsonschema.Draft202012Validator)
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_committed_manifests_equal_the_renderer(tmp_path: Path) -> None:
    rendered = _k8s.manifests()
    assert {path.name for path in DEPLOY.iterdir()} == set(rendered)
    for name, text in rendered.items():
        assert (DEPLOY / name).read_text(encoding="utf-8") == text, (
            f"deploy/kubernetes/{name}: run `anthropic-otel assets export --kubernetes deploy/kubernetes`")
    assert cli.main(["assets", "export", str(tmp_path), "--kubernetes"]) == 0
    assert {path.name: path.read_text(encoding="utf-8") for path in tmp_path.iterdir()} == rendered


def test_every_manifest_validates_against_its_schema() -> None:
    documents = _documents()
    kinds = sorted(document["kind"] for document in documents)
    assert kinds == ["ConfigMap", "ConfigMap", "ConfigMap", "Deployment", "PodMonitor", "PrometheusRule", "Service",
                     "ServiceMonitor"]
    for document in documents:
        _validate(document)


@pytest.mark.parametrize(("kind", "break_it"), [
    ("Deployment", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(containerPorts=[])),
    ("Service", lambda d: d["spec"]["ports"][0].update(port="4317")),
    ("ConfigMap", lambda d: d.update(data={"x": 1})),
    ("PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0].update(alert="Both")),
    ("PrometheusRule", lambda d: d["spec"]["groups"][1]["rules"][0].update(fr="5m")),
    ("PrometheusRule", lambda d: d["spec"]["groups"][-1]["rules"][0].update({"for": "five minutes"})),
    ("ServiceMonitor", lambda d: d["spec"].update(endpoint=d["spec"].pop("endpoints"))),
    ("PodMonitor", lambda d: d["spec"]["podMetricsEndpoints"][0].update(port=9464)),
    ("PodMonitor", lambda d: d.update(apiVersion="monitoring.coreos.com/v2")),
])
def test_the_schemas_reject_a_broken_manifest(kind: str, break_it: Any) -> None:
    document = copy.deepcopy(next(document for document in _documents() if document["kind"] == kind))
    _validate(document)
    break_it(document)
    with pytest.raises(jsonschema.ValidationError):
        _validate(document)


def test_the_prometheus_rule_holds_the_rendered_rules_and_promtool_accepts_them(tmp_path: Path) -> None:
    (rule,) = [document for document in _documents() if document["kind"] == "PrometheusRule"]
    rendered = _rules.render()
    expected = [group for name in (_rules.RULES_FILE, _rules.ALERTS_FILE)
                for group in yaml.safe_load(rendered[name])["groups"]]
    assert rule["spec"]["groups"] == expected
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run([tool("promtool"), "check", "rules", str(path)], env=tool_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_config_and_feature_label_reach_the_manifests(tmp_path: Path) -> None:
    config = _rules.config_from_mapping({"truncation": {"ratio": 0.2}})
    manifests = _k8s.manifests(config, "team")
    (rule,) = yaml.safe_load_all(manifests["prometheus-rule.yml"])
    exprs = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    assert any("ratio_rate5m > 0.2" in expr for expr in exprs)
    (board,) = yaml.safe_load_all(manifests["grafana-dashboard-overview.yml"])
    text = board["data"]["anthropic-otel-overview.json"]
    assert 'team=~\\"$feature\\"' in text and "app_feature" not in text


def test_dashboards_are_config_maps_for_the_grafana_sidecar() -> None:
    maps = [document for document in _documents()
            if document["kind"] == "ConfigMap" and "grafana_dashboard" in document["metadata"]["labels"]]
    assert len(maps) == len(list((ROOT / "dashboards").glob("*.json")))
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((name, text),) = config_map["data"].items()
        assert text == (ROOT / "dashboards" / name).read_text(encoding="utf-8")
        # `kubectl apply` copies the object into an annotation, and annotations hold at most 256 KiB in all
        assert len(text.encode()) < 200_000


def test_the_collector_runs_the_reference_config_and_is_scraped() -> None:
    documents = {(document["kind"], document["metadata"]["name"]): document for document in _documents()}
    name = _k8s.COLLECTOR_NAME
    config = documents[("ConfigMap", name)]["data"]["config.yml"]
    assert config == (ROOT / "deploy" / "otel-collector.yml").read_text(encoding="utf-8")
    compose = yaml.safe_load((ROOT / "docker-compose.otel.yml").read_text())
    deployment = documents[("Deployment", name)]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == compose["services"]["otel-collector"]["image"]
    exporter_port = int(yaml.safe_load(config)["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["prometheus"] == exporter_port and ports["otlp-grpc"] == 4317
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    service = documents[("Service", name)]
    assert service["spec"]["selector"] == selector
    monitor = documents[("ServiceMonitor", name)]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {port["name"] for port in service["spec"]["ports"]} >= {e["port"] for e in monitor["spec"]["endpoints"]}
