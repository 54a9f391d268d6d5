"""The alert rules in alerts/: rendered from the config, valid for promtool, unit-tested, routed by Alertmanager."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from _tools import ROOT, tool, tool_env
from anthropic_otel import cli
from anthropic_otel.ops import rules as _rules
from anthropic_otel.telemetry import series

ALERTS = ROOT / "alerts"
TESTS = sorted((ALERTS / "tests").glob("*.test.yml"))
SEVERITIES = {"critical", "warning", "info"}


def _run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # A bound against a hang only: `promtool test rules` evaluates every rule each simulated minute over up to
    # 50 h (8 s for one file idle), and a loaded CI machine can make that minutes.
    return subprocess.run([str(arg) for arg in args], cwd=cwd, env=tool_env(), capture_output=True, text=True,
                          timeout=900)


def _alert_rules(config: _rules.RulesConfig | None = None) -> list[dict[str, Any]]:
    text = _rules.render(config)[_rules.ALERTS_FILE]
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


# -- the committed files are the rendered defaults ------------------------------------------------

def test_committed_rule_files_equal_the_rendered_default_config() -> None:
    for name, text in _rules.render().items():
        assert (ALERTS / name).read_text(encoding="utf-8") == text, f"alerts/{name}: run `anthropic-otel rules`"
    assert _rules.stale(ALERTS) == []


def test_committed_config_file_is_the_default_config() -> None:
    path = ALERTS / _rules.CONFIG_FILE
    assert path.read_text(encoding="utf-8") == _rules.dump_config(), "run `anthropic-otel rules --print-config`"
    assert _rules.load_config(path) == _rules.RulesConfig()
    assert _rules.render(_rules.load_config(path)) == _rules.render()


def test_cli_renders_checks_and_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["rules", "--output", str(tmp_path)]) == 0
    for name, text in _rules.render().items():
        assert (tmp_path / name).read_text(encoding="utf-8") == text
    assert cli.main(["rules", "--output", str(ALERTS), "--check"]) == 0
    config = tmp_path / "mine.yml"
    config.write_text("truncation:\n  ratio: 0.2\n  for: 1m\nrate_window: 2m\n")
    assert cli.main(["rules", "--output", str(tmp_path), "--config", str(config), "--check"]) == 1
    assert cli.main(["rules", "--output", str(tmp_path), "--config", str(config)]) == 0
    assert "model:anthropic_otel_requests_max_tokens:ratio_rate2m > 0.2" in (tmp_path / _rules.ALERTS_FILE).read_text()
    capsys.readouterr()
    assert cli.main(["rules", "--config", str(config), "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "  ratio: 0.2" in printed and "rate_window: 2m" in printed
    assert _rules.load_config(config) == _rules.config_from_mapping(yaml.safe_load(printed))
    bad = tmp_path / "bad.yml"
    bad.write_text("truncation:\n  treshold: 0.2\n")
    assert cli.main(["rules", "--config", str(bad), "--output", str(tmp_path)]) == 2
    assert "unknown setting 'treshold'" in capsys.readouterr().err


# -- the config -----------------------------------------------------------------------------------

def test_config_overrides_reach_the_rules() -> None:
    config = _rules.config_from_mapping({
        "group_by": ["job"],
        "truncation": {"ratio": 0.1, "for": "30m", "severity": "critical"},
        "latency": {"p99_seconds": 12.5},
        "budget": {"day_window": "12h", "burn_factor": 1.5},
    })
    rules = {(rule["alert"], rule["labels"].get("anthropic_otel_budget_period")): rule for rule in _alert_rules(config)}
    truncation = rules[("AnthropicMaxTokensTruncationHigh", None)]
    assert "ratio_rate5m > 0.1" in truncation["expr"]
    assert truncation["for"] == "30m" and truncation["labels"]["severity"] == "critical"
    assert '{gen_ai_request_stream="false"} > 12.5' in rules[("AnthropicLatencyP99High", None)]["expr"]
    burn = rules[("AnthropicBudgetBurnRateHigh", "day")]["expr"]
    assert "* 43200" in burn and "* 1.5" in burn
    recording = _rules.render(config)[_rules.RULES_FILE]
    assert "sum by (gen_ai_request_model, job) (rate(anthropic_otel_requests_total[5m]))" in recording
    assert "sum by (job) (increase(anthropic_otel_cost_usd_total[12h]))" in recording
    assert "and on (gen_ai_request_model, job)" in _rules.render(config)[_rules.ALERTS_FILE]


def test_resilience_config_overrides_reach_the_rules() -> None:
    config = _rules.config_from_mapping({
        "group_by": ["job"],
        "resilience": {"circuit_open": {"for": "5m"}, "retries": {"ratio": 0.5},
                       "stream_timeouts": {"count": 2, "window": "30m"}, "fallback": {"severity": "warning"}},
    })
    assert config.resilience.circuit_flapping == _rules.CircuitFlapping()
    rules = {rule["alert"]: rule for rule in _alert_rules(config)}
    assert rules["AnthropicCircuitOpen"]["for"] == "5m"
    assert rules["AnthropicCircuitOpen"]["expr"].startswith(
        "max by (gen_ai_request_model, job) (anthropic_otel_resilience_circuit_state) >= 1")
    assert "ratio_rate5m > 0.5" in rules["AnthropicRetryRatioHigh"]["expr"]
    timeouts = rules["AnthropicStreamTimeouts"]["expr"]
    assert timeouts.startswith("sum by (gen_ai_request_model, anthropic_otel_stream_timeout, job) (")
    assert "offset 30m" in timeouts and "[30m]" in timeouts and timeouts.endswith(") > 2")
    assert rules["AnthropicBudgetGuardRefusing"]["expr"].startswith("sum by (job) (")
    assert rules["AnthropicServingFallback"]["labels"]["severity"] == "warning"
    assert "sum by (gen_ai_request_model, job) (rate(anthropic_otel_resilience_retries_total[5m]))" in \
        _rules.render(config)[_rules.RULES_FILE]


def test_config_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('rate_window = "10m"\n[errors]\nratio = 0.2\n')
    config = _rules.load_config(path)
    assert config.rate_window == "10m" and config.errors.ratio == 0.2 and config.errors.for_ == "10m"


@pytest.mark.parametrize("data, message", [
    ({"truncation": {"threshold": 0.1}}, "unknown setting 'threshold'"),
    ({"nope": 1}, "unknown setting 'nope'"),
    ({"rate_window": "5 minutes"}, "not a Prometheus duration"),
    ({"errors": {"for": "10"}}, "not a Prometheus duration"),
    ({"errors": {"ratio": "high"}}, "expected a non-negative number"),
    ({"errors": {"ratio": -1}}, "expected a non-negative number"),
    ({"group_by": "job"}, "expected a list of label names"),
    ({"group_by": ["bad-label"]}, "not a Prometheus label name"),
    ({"budget": 5}, "expected a table of settings"),
    ({"resilience": {"retries": {"treshold": 0.3}}}, "resilience.retries: unknown setting 'treshold'"),
    ({"resilience": {"circuit_flapping": {"window": "15 minutes"}}}, "not a Prometheus duration"),
    ({"errors": {"severity": ""}}, "expected a string"),
])
def test_bad_config_is_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _rules.config_from_mapping(data)


def test_durations() -> None:
    assert _rules.seconds("1d") == 86400
    assert _rules.seconds("1h30m") == 5400
    assert _rules.seconds("30d") == 2592000
    assert _rules.seconds("0s") == 0
    with pytest.raises(ValueError):
        _rules.seconds("")


# -- the rules themselves -------------------------------------------------------------------------

def test_every_alert_is_labelled_annotated_and_waits() -> None:
    runbook = (ALERTS / "RUNBOOK.md").read_text()
    for rule in _alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
        assert rule["annotations"]["runbook_url"].endswith(f"#{name.lower()}"), name
        assert _rules.seconds(rule["for"]) >= 60, f"{name}: a for: shorter than a minute flaps"
        assert f"\n## {name}\n" in runbook, f"alerts/RUNBOOK.md has no section for {name}"
    assert set(_rules.alert_names()) >= {
        "AnthropicMaxTokensTruncationHigh", "AnthropicLatencyP99High", "AnthropicLatencyP99Spike",
        "AnthropicErrorRatioHigh", "AnthropicRateLimited", "AnthropicOverloaded", "AnthropicBudgetExceeded",
        "AnthropicBudgetBurnRateHigh", "AnthropicRateLimitHeadroomLow", "AnthropicUnpricedCalls",
        "AnthropicCacheHitRatioCollapsed", "AnthropicCircuitOpen", "AnthropicCircuitFlapping",
        "AnthropicRetryRatioHigh", "AnthropicBudgetGuardRefusing", "AnthropicCallsRejected", "AnthropicLimiterWaitHigh",
        "AnthropicServingFallback", "AnthropicStreamTimeouts"}


def test_resilience_rules_read_the_series_and_labels_the_wrapper_exports() -> None:
    """The wrapper's own telemetry, through the Python Prometheus exporter, writes every wrapper series and label
    that the rules name (the promtool cases would pass just as well on a misspelt name)."""
    pytest.importorskip("tenacity", reason="pip install -e '.[resilience]'")
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.trace import INVALID_SPAN
    from prometheus_client import CollectorRegistry, generate_latest

    from anthropic_otel.resilience._telemetry import Telemetry

    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    try:
        telemetry = Telemetry(meter_provider=provider)
        base = telemetry.attrs("chat", "anthropic", "claude-a")
        telemetry.retry(INVALID_SPAN, base, "rate_limit_error", 1, 0.5, 429)
        telemetry.reject(base, "budget")
        telemetry.fallback(INVALID_SPAN, base, "claude-b", "overloaded")
        telemetry.stream_timeout(base, "idle")
        telemetry.waited(base, "concurrency", 6.0)
        telemetry.circuit("claude-a", "closed", "open")
        exported = generate_latest(registry).decode()
    finally:
        provider.shutdown()
    names = set(re.findall(r"^(\w+)\{", exported, re.MULTILINE))
    labels = set(re.findall(r"[{,](\w+)=", exported))
    text = "\n".join(yaml.safe_dump(build(_rules.RulesConfig())) for build in (_rules.resilience_rules,
                                                                           _rules.resilience_alerts))
    used = set(re.findall(r"(?<![\w:])anthropic_otel_\w+", text)) - {series.REQUESTS}
    assert {name for name in used if name.startswith("anthropic_otel_resilience_")} <= names, (used, names)
    assert {name for name in used if not name.startswith("anthropic_otel_resilience_")} <= labels, (used, labels)
    assert {series.RETRIES, series.REJECTED, series.FALLBACKS, f"{series.LIMITER_WAIT}_bucket", series.STREAM_TIMEOUTS,
            series.CIRCUIT_STATE, series.CIRCUIT_TRANSITIONS} <= names


def test_promtool_check_rules() -> None:
    promtool = tool("promtool")
    result = _run(promtool, "check", "rules", ALERTS / _rules.RULES_FILE, ALERTS / _rules.ALERTS_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_rules_rendered_with_extra_labels(tmp_path: Path) -> None:
    promtool = tool("promtool")
    paths = _rules.write(tmp_path, _rules.config_from_mapping({"group_by": ["job", "cluster"]}))
    result = _run(promtool, "check", "rules", *paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_there_are_promtool_unit_tests() -> None:
    assert len(TESTS) >= 9, TESTS


@pytest.mark.parametrize("test_file", TESTS, ids=lambda path: path.name)
def test_promtool_unit_tests_pass(test_file: Path) -> None:
    """One promtool run per file: each stays short, and a failure names its file."""
    promtool = tool("promtool")
    result = _run(promtool, "test", "rules", test_file.relative_to(ALERTS / "tests"), cwd=ALERTS / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 1, result.stdout


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    firing: dict[str, set[str]] = {}
    silent: set[str] = set()
    for path in TESTS:
        suite = yaml.safe_load(path.read_text())
        assert suite["rule_files"] == [f"../{_rules.RULES_FILE}", f"../{_rules.ALERTS_FILE}"], path
        for case in suite["tests"]:
            for check in case.get("alert_rule_test", []):
                name = check["alertname"]
                if check.get("exp_alerts"):
                    for alert in check["exp_alerts"]:
                        firing.setdefault(name, set()).add(alert["exp_labels"].get("anthropic_otel_budget_period", ""))
                        assert set(alert["exp_annotations"]) == {"summary", "description", "runbook_url"}, name
                else:
                    silent.add(name)
    for name in _rules.alert_names():
        assert name in firing, f"no promtool case where {name} fires"
        assert name in silent, f"no promtool case where {name} stays silent"
    assert firing["AnthropicBudgetExceeded"] == {"day", "month"}
    assert firing["AnthropicBudgetBurnRateHigh"] == {"day", "month"}


# -- Alertmanager ---------------------------------------------------------------------------------

def test_amtool_checks_the_example_config() -> None:
    amtool = tool("amtool")
    result = _run(amtool, "check-config", ALERTS / "alertmanager.example.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 inhibit rules" in result.stdout


@pytest.mark.parametrize("labels, receiver", [
    (["alertname=AnthropicBudgetExceeded", "severity=critical", "anthropic_otel_budget_period=day"],
     "anthropic-critical"),
    (["alertname=AnthropicMaxTokensTruncationHigh", "severity=warning", "gen_ai_request_model=claude-x"],
     "anthropic-warning"),
    (["alertname=AnthropicCircuitOpen", "severity=critical", "gen_ai_request_model=claude-x"], "anthropic-critical"),
    (["alertname=AnthropicServingFallback", "severity=info", "gen_ai_request_model=claude-x"], "anthropic-default"),
    (["alertname=SomethingElse"], "anthropic-default"),
])
def test_example_routing_by_severity(labels: list[str], receiver: str) -> None:
    amtool = tool("amtool")
    result = _run(amtool, "config", "routes", "test", f"--config.file={ALERTS / 'alertmanager.example.yml'}",
                  *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_example_inhibition_names_real_alerts_and_labels() -> None:
    config = yaml.safe_load((ALERTS / "alertmanager.example.yml").read_text())
    names = set(_rules.alert_names())
    budget_exceeded = next(rule for rule in config["inhibit_rules"]
                           if rule["source_matchers"] == ['alertname="AnthropicBudgetExceeded"'])
    assert budget_exceeded["target_matchers"] == ['alertname="AnthropicBudgetBurnRateHigh"']
    assert budget_exceeded["equal"] == ["anthropic_otel_budget_period"]
    rules = _alert_rules()
    assert all(rule["labels"].get("anthropic_otel_budget_period") for rule in rules
               if rule["alert"] in ("AnthropicBudgetExceeded", "AnthropicBudgetBurnRateHigh"))
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            if matcher.startswith("alertname"):
                assert set(matcher.split('"')[1].split("|")) <= names, matcher
    assert config["route"]["group_by"] == ["alertname", "gen_ai_request_model"]
    # An open breaker holds back, for its model only, the retry, flapping and circuit_open rejection alerts. They all
    # carry the model label (as they fire in the promtool cases), so `equal` cannot match two alerts that lack it.
    source = ['alertname="AnthropicCircuitOpen"']
    circuit = [rule for rule in config["inhibit_rules"] if rule["source_matchers"] == source]
    assert [rule["target_matchers"] for rule in circuit] == [
        ['alertname=~"AnthropicRetryRatioHigh|AnthropicCircuitFlapping"'],
        ['alertname="AnthropicCallsRejected"', 'anthropic_otel_rejection_reason="circuit_open"']]
    assert all(rule["equal"] == ["gen_ai_request_model"] for rule in circuit)
    cases = [case for path in TESTS for case in yaml.safe_load(path.read_text())["tests"]]
    fired = {check["alertname"]: alert["exp_labels"] for case in cases for check in case.get("alert_rule_test", [])
             for alert in check.get("exp_alerts") or []}
    for name in ("AnthropicCircuitOpen", "AnthropicRetryRatioHigh", "AnthropicCircuitFlapping",
                 "AnthropicCallsRejected"):
        assert fired[name].get("gen_ai_request_model"), name


# -- the builders ---------------------------------------------------------------------------------

def test_annotation_templates_are_built_not_escaped_by_hand() -> None:
    from anthropic_otel.ops.rules import promql

    assert promql.value("humanizePercentage") == "{{ $value | humanizePercentage }}"
    assert promql.value() == "{{ $value }}"
    assert promql.label("gen_ai_request_model") == "{{ $labels.gen_ai_request_model }}"
    for rule in _alert_rules(_rules.config_from_mapping({"group_by": ["job"]})):
        for text in rule["annotations"].values():
            # Every template action is whole: `{{ ... }}`, never a stray or doubled brace from an f-string.
            assert "{{{" not in text and "}}}" not in text, (rule["alert"], text)
            assert re.sub(r"\{\{ \$(value|labels\.\w+)( \| \w+)? \}\}", "", text).count("{") == 0, (rule["alert"], text)


def test_rule_config_class_names_do_not_collide_with_the_wrappers_runtime_classes() -> None:
    resilience = pytest.importorskip("anthropic_otel.resilience", reason="pip install -e '.[resilience]'")
    assert set(_rules.__all__) & set(resilience.__all__) == set()
    # The config file keeps its keys.
    assert _rules.config_from_mapping({"budget": {"burn_factor": 2}}).budget == _rules.BudgetThresholds(burn_factor=2)
    stream_timeouts = _rules.config_from_mapping({"resilience": {"stream_timeouts": {"count": 1}}})
    assert stream_timeouts.resilience.stream_timeouts == _rules.StreamTimeoutThresholds(count=1)
