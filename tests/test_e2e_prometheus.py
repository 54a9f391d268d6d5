"""End to end: the package's Prometheus endpoint, a real Prometheus with the rules, a real Alertmanager, a webhook.

A workload (tests/apps/alert_workload.py) drives the package against its fake server; Prometheus scrapes it and
evaluates the rules every second, rendered from a fast config (short windows, `for: 0s`) by the same renderer
as alerts/. The test asserts that every rule evaluates cleanly, that the truncation alert and a latency alert
reach a webhook through the example Alertmanager routing, and that every query of the committed dashboards
evaluates and returns data (the panels marked as needing the resilience wrapper only evaluate: the workload does
not use the wrapper, so its series do not exist here). Needs the Debian `prometheus` and `prometheus-alertmanager`
binaries (see tests/_tools.py: skipped locally without them, failed under CI=true).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from _tools import ROOT, tool, tool_env
from anthropic_otel.ops import rules as _rules

DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
WORKLOAD = ROOT / "tests" / "apps" / "alert_workload.py"
# The mark of a dashboard panel over the resilience wrapper's series (dashboards/build.py, needs_wrapper()).
WRAPPER_LINK = "Needs the resilience wrapper"
# The mark of a panel over the billed series of `anthropic-otel reconcile --serve` (needs_exporter()): no data here.
EXPORTER_LINK = "Needs the reconcile exporter"

# Seconds instead of minutes and days, and no `for:` waits: the alerts fire within seconds of the data.
FAST: dict[str, Any] = {
    "rate_window": "5s",
    "min_requests": 1,
    "truncation": {"ratio": 0.05, "for": "0s"},
    "errors": {"for": "0s"},
    "latency": {"p99_seconds": 0.3, "p99_stream_seconds": 5, "for": "0s"},
    "latency_spike": {"factor": 2, "floor_seconds": 0.1, "baseline_window": "30s", "for": "0s"},
    "rate_limited": {"count": 1, "window": "10s", "for": "0s"},
    "overloaded": {"count": 1, "window": "10s", "for": "0s"},
    "headroom": {"for": "0s"},
    "unpriced": {"window": "30s", "for": "0s"},
    "cache": {"baseline_window": "30s", "for": "0s"},
    "budget": {"day_window": "30s", "month_window": "60s", "month_interval": "1s", "exceeded_for": "0s",
               "burn_window_day": "10s", "burn_window_month": "10s", "burn_for": "0s"},
}
MUST_FIRE = ("AnthropicMaxTokensTruncationHigh", "AnthropicLatencyP99High")
DEADLINE = 50.0


def _alertmanager_templates() -> None:
    """Debian's Alertmanager reads its notification templates from a fixed directory, which only an installed
    package provides; `.ci/debian-tools` puts the unpacked copies there."""
    target = Path("/usr/share/prometheus/alertmanager/default.tmpl")
    if not target.is_file():
        reason = f"Debian's Alertmanager needs {target}: run .ci/debian-tools"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _wait(what: str, check: Callable[[], bool], timeout: float, procs: list[subprocess.Popen[Any]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[0]} exited ({proc.returncode}) while waiting for {what}")
        with contextlib.suppress(OSError, ValueError):
            if check():
                return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class _Webhook:
    """An Alertmanager webhook receiver on 127.0.0.1 that keeps every notification."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def firing(self) -> dict[str, dict[str, Any]]:
        """Alert name -> one firing alert as notified (labels, annotations)."""
        found: dict[str, dict[str, Any]] = {}
        for note in list(self.notifications):
            for alert in note.get("alerts", []):
                if alert.get("status") == "firing":
                    found.setdefault(alert["labels"]["alertname"], {**alert, "receiver": note.get("receiver")})
        return found


def _alertmanager_config(webhook: str) -> dict[str, Any]:
    """The example routing from alerts/, with the webhook URLs pointed here and the waits cut to a second."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "alerts" / "alertmanager.example.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook}/{receiver['name']}"
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
    return config


@contextlib.contextmanager
def _running(args: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[Any]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=tool_env(), **kwargs)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _substitute(expr: str) -> str:
    """A dashboard query as Grafana would send it: All for every variable, concrete intervals."""
    for name, value in (("$__rate_interval", "15s"), ("$__range", "1m"), ("$__interval", "5s"),
                        ("${datasource}", ""), ("$model", ".*"), ("$feature", ".*")):
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def dashboard_queries() -> list[tuple[str, str, str, bool]]:
    """(dashboard file, panel title, expr, whether the panel needs the resilience wrapper) for every target of every
    committed dashboard, the panels of collapsed rows included."""
    found = []
    for path in DASHBOARDS:
        for top in json.loads(path.read_text())["panels"]:
            for panel in [top, *top.get("panels", [])]:
                wrapper = any(link["title"] in (WRAPPER_LINK, EXPORTER_LINK) for link in panel.get("links", []))
                for target in panel.get("targets", []):
                    found.append((path.name, panel["title"], target["expr"], wrapper))
    return found


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, label, series selector) of every `label_values(...)` template variable."""
    found = []
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
                assert match, variable["query"]
                found.append((path.name, match[2], _substitute(match[1])))
    return found


def test_rules_alerts_and_dashboards_against_real_prometheus(tmp_path: Path) -> None:
    prometheus = tool("prometheus")
    alertmanager = tool("alertmanager")
    _alertmanager_templates()
    started = time.monotonic()

    rules_dir = tmp_path / "rules"
    _rules.write(rules_dir, _rules.config_from_mapping(FAST))
    webhook = _Webhook()
    ports = {name: _free_port() for name in ("workload", "prometheus", "alertmanager")}
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(_alertmanager_config(webhook.url)))
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in sorted(rules_dir.glob("*.yml"))],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}]},
        "scrape_configs": [{"job_name": "anthropic-otel",
                            "static_configs": [{"targets": [f"127.0.0.1:{ports['workload']}"]}]}],
    }))
    prom_url = f"http://127.0.0.1:{ports['prometheus']}"
    am_url = f"http://127.0.0.1:{ports['alertmanager']}"

    with contextlib.ExitStack() as stack:
        am = stack.enter_context(_running([
            alertmanager, f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{ports['alertmanager']}", "--cluster.listen-address=",
        ], tmp_path / "alertmanager.log"))
        prom = stack.enter_context(_running([
            prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}", "--rules.alert.resend-delay=1s",
        ], tmp_path / "prometheus.log"))
        workload = stack.enter_context(_running(
            [sys.executable, str(WORKLOAD), "--port", str(ports["workload"]), "--slow-after", "8"],
            tmp_path / "workload.log", stdin=subprocess.PIPE))
        procs = [am, prom, workload]
        logs = {name: tmp_path / f"{name}.log" for name in ("prometheus", "alertmanager", "workload")}

        try:
            _wait("Alertmanager", lambda: _get(f"{am_url}/api/v2/status")["cluster"] is not None, 20, procs)
            _wait("Prometheus", lambda: _get(f"{prom_url}/api/v1/status/buildinfo")["status"] == "success", 20, procs)
            _wait("the first scrape of the workload", lambda: bool(_get(
                f"{prom_url}/api/v1/query?query=anthropic_otel_requests_total")["data"]["result"]), 20, procs)
            _wait(f"{', '.join(MUST_FIRE)} at the webhook",
                  lambda: set(MUST_FIRE) <= set(webhook.firing()), DEADLINE - (time.monotonic() - started), procs)
        except AssertionError as error:
            tails = "\n".join(f"--- {name}\n{path.read_text(errors='replace')[-3000:]}" for name, path in logs.items())
            fired = sorted(webhook.firing())
            raise AssertionError(f"{error}\nnotified so far: {fired}\n{tails}") from None

        # Every rule, recording and alerting, evaluates against the real series without error.
        groups = _get(f"{prom_url}/api/v1/rules")["data"]["groups"]
        assert {group["name"] for group in groups} >= {"anthropic-otel.requests.rules", "anthropic-otel.cost"}
        broken = [(rule["name"], rule.get("lastError")) for group in groups for rule in group["rules"]
                  if rule["health"] != "ok"]
        assert not broken, broken

        # The notifications went through the example routing: warnings to the warning receiver, annotated.
        firing = webhook.firing()
        print("notified:", sorted(firing), "after", round(time.monotonic() - started, 1), "s")
        for name in MUST_FIRE:
            alert = firing[name]
            assert alert["receiver"] == "anthropic-warning", alert
            assert alert["labels"]["severity"] == "warning"
            assert alert["labels"]["gen_ai_request_model"], alert
            assert {"summary", "description", "runbook_url"} <= set(alert["annotations"])
        assert firing["AnthropicLatencyP99High"]["labels"]["gen_ai_request_stream"] == "false"

        # The example inhibition: with budgets this small, the budget is exceeded at once, and Alertmanager holds
        # back the burn-rate warning for the same period.
        def burn_rate_inhibited() -> bool:
            alerts = _get(f"{am_url}/api/v2/alerts")
            return any(alert["labels"]["alertname"] == "AnthropicBudgetBurnRateHigh" and alert["status"]["inhibitedBy"]
                       for alert in alerts)

        _wait("the burn-rate alert inhibited by the exceeded budget", burn_rate_inhibited, 15, procs)
        assert "AnthropicBudgetExceeded" in webhook.firing()
        assert webhook.firing()["AnthropicBudgetExceeded"]["receiver"] == "anthropic-critical"

        # Every dashboard query evaluates and returns data; those of the panels that need the resilience wrapper (and
        # read nothing but its series, tests/test_dashboards.py checks) only evaluate.
        empty = []
        for dashboard, title, expr, wrapper in dashboard_queries():
            query = urllib.parse.urlencode({"query": _substitute(expr)})
            answer = _get(f"{prom_url}/api/v1/query?{query}")
            assert answer["status"] == "success", (dashboard, title, expr, answer)
            if not answer["data"]["result"] and not wrapper:
                empty.append((dashboard, title, _substitute(expr)))
        assert not empty, empty
        assert any(wrapper for *_, wrapper in dashboard_queries())
        for dashboard, label, selector in variable_queries():
            query = urllib.parse.urlencode({"match[]": selector})
            values = _get(f"{prom_url}/api/v1/label/{label}/values?{query}")["data"]
            assert values, (dashboard, label, selector)

        assert workload.stdin is not None
        workload.stdin.close()
    assert time.monotonic() - started < 90
