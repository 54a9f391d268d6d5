"""docker-compose.otel.yml and its configs in deploy/: valid for docker-compose, promtool and amtool, and wired up."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from _tools import ROOT, tool, tool_env
from anthropic_otel.ops import rules as _rules

COMPOSE = ROOT / "docker-compose.otel.yml"
DEPLOY = ROOT / "deploy"


def _run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(arg) for arg in args], cwd=cwd, env=tool_env(), capture_output=True, text=True,
                          timeout=120)


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _mounts(service: str) -> dict[str, str]:
    """Container path -> host path (relative to the repository) of a service's bind mounts."""
    found = {}
    for volume in _compose()["services"][service].get("volumes", []):
        host, container, *_ = volume.split(":")
        if host.startswith("./"):
            found[container] = host
    return found


def test_docker_compose_config_is_valid() -> None:
    compose = tool("docker-compose")
    result = _run(compose, "-f", COMPOSE, "config", "-q")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_prometheus_config_with_the_mounted_rules(tmp_path: Path) -> None:
    promtool = tool("promtool")
    mounts = _mounts("prometheus")
    # Rebuild the container's /etc/prometheus from the compose mounts, then check it as Prometheus would load it.
    etc = tmp_path / "etc" / "prometheus"
    for container, host in mounts.items():
        assert container.startswith("/etc/prometheus/"), container
        target = etc / container.removeprefix("/etc/prometheus/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(ROOT / host)
    result = _run(promtool, "check", "config", etc / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout
    for name in (_rules.RULES_FILE, _rules.ALERTS_FILE):
        assert f"rules/{name}" in result.stdout


def test_amtool_checks_the_mounted_alertmanager_config() -> None:
    amtool = tool("amtool")
    host = _mounts("alertmanager")["/etc/alertmanager/alertmanager.yml"]
    result = _run(amtool, "check-config", ROOT / host)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stack_is_wired_together() -> None:
    services = _compose()["services"]
    assert set(services) >= {"demo", "otel-collector", "prometheus", "alertmanager", "grafana"}
    for service in services.values():
        assert ":" in service["image"] and not service["image"].endswith(":latest"), service["image"]
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (ROOT / host).exists(), volume

    # demo -> Collector over OTLP gRPC
    demo = services["demo"]
    assert demo["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    assert "anthropic-otel demo --duration 86400 --prometheus-port 9464" in demo["command"]
    assert _mounts("demo")["/src"] == "./"

    # Collector: OTLP in, Prometheus out, on the port Prometheus scrapes
    collector = yaml.safe_load((DEPLOY / "otel-collector.yml").read_text())
    metrics = collector["service"]["pipelines"]["metrics"]
    assert "otlp" in metrics["receivers"] and "prometheus" in metrics["exporters"]
    assert collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    exporter_port = collector["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = [target for job in prometheus["scrape_configs"] for config in job["static_configs"]
               for target in config["targets"]]
    assert f"otel-collector:{exporter_port}" in targets
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]

    # Grafana: the datasource and the dashboards folder it is provisioned from
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/anthropic-otel.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert _mounts("grafana")[path] == "./dashboards"
    assert _mounts("grafana")["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    assert services["grafana"]["image"].startswith("grafana/grafana:11.")
