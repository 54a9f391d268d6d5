"""Configuration errors: `instrument()` raises TypeError/ValueError naming the setting, before patching anything."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.resources.messages import messages

import anthropic_otel
from anthropic_otel.testing import FakeAnthropicServer
from conftest import API_KEY, ask, make_otel

SETTINGS = ("tracer_provider", "meter_provider", "capture_content", "metric_attributes", "metric_attribute_limit",
            "keep_sdk_spans", "budgets", "prices", "prices_file")


@pytest.fixture(autouse=True)
def _not_instrumented(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")  # should a call set up global providers: no exporters
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    original = messages.Messages.__dict__["create"]
    yield
    assert not anthropic_otel.AnthropicInstrumentor().is_instrumented_by_opentelemetry
    assert messages.Messages.__dict__["create"] is original  # nothing was patched


def _instrument(**kwargs: Any) -> None:
    """Through both entry points: the function and the instrumentor."""
    try:
        anthropic_otel.instrument(**kwargs)
    finally:
        anthropic_otel.uninstrument()


def test_settings_are_typed_keyword_parameters() -> None:
    for function in (anthropic_otel.instrument, anthropic_otel.AnthropicInstrumentor.instrument):
        parameters = inspect.signature(function).parameters
        for name in SETTINGS:
            assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, (function, name)
            assert parameters[name].annotation != "Any", (function, name)
        assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()), function
    instrumentor_parameters = inspect.signature(anthropic_otel.AnthropicInstrumentor.instrument).parameters
    assert {"skip_dep_check", "raise_exception_on_conflict"} <= set(instrumentor_parameters)


@pytest.mark.parametrize("keyword", ["budget", "capture_contents", "metric_attribute", "price_file"])
def test_misspelled_keyword_is_a_type_error_naming_it(keyword: str) -> None:
    with pytest.raises(TypeError, match=keyword):
        anthropic_otel.instrument(**{keyword: 1})
    with pytest.raises(TypeError, match=keyword):
        anthropic_otel.AnthropicInstrumentor().instrument(**{keyword: 1})


@pytest.mark.parametrize(("kwargs", "error", "names"), [
    ({"metric_attributes": "app.feature"}, TypeError, "metric_attributes"),
    ({"metric_attributes": [1]}, TypeError, "metric_attributes"),
    ({"metric_attributes": ["app.feature", ""]}, ValueError, "metric_attributes"),
    ({"metric_attributes": ["gen_ai.request.model"]}, ValueError, "metric_attributes"),
    ({"metric_attribute_limit": 0}, ValueError, "metric_attribute_limit"),
    ({"metric_attribute_limit": -1}, ValueError, "metric_attribute_limit"),
    ({"metric_attribute_limit": "100"}, TypeError, "metric_attribute_limit"),
    ({"metric_attribute_limit": 2.5}, TypeError, "metric_attribute_limit"),
    ({"metric_attribute_limit": True}, TypeError, "metric_attribute_limit"),
    ({"keep_sdk_spans": "false"}, TypeError, "keep_sdk_spans"),
    ({"keep_sdk_spans": 0}, TypeError, "keep_sdk_spans"),
    ({"capture_content": 1}, TypeError, "capture_content"),
    ({"capture_content": "everything"}, ValueError, "capture_content"),
    ({"budgets": 50}, TypeError, "budgets"),
    ({"budgets": {"day": True}}, ValueError, "budgets"),
    ({"prices": [1]}, ValueError, "prices"),
    ({"prices": {3: {"input": 1, "output": 2}}}, ValueError, "prices"),
    ({"prices_file": 3}, TypeError, "prices_file"),
    ({"tracer_provider": "otlp"}, TypeError, "tracer_provider"),
    ({"meter_provider": object()}, TypeError, "meter_provider"),
])
def test_bad_values_name_the_setting(kwargs: dict[str, Any], error: type[Exception], names: str) -> None:
    with pytest.raises(error, match=names):
        _instrument(**kwargs)
    with pytest.raises(error, match=names):
        anthropic_otel.AnthropicInstrumentor().instrument(**kwargs)


@pytest.mark.parametrize(("name", "text"), [
    ("prices.yaml", "models:\n  m: {input: 1, output: [\n"),
    ("prices.toml", '[models."m"\ninput = 1\n'),
    ("prices.yaml", "models:\n  m: {input: 1}\n"),
    ("prices.toml", "\udcff"),
])
def test_bad_price_file_names_the_setting_and_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        name: str, text: str) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ValueError, match=rf"prices_file: .*{name}"):
        _instrument(prices_file=str(path))
    with pytest.raises(ValueError, match=rf"prices_file: .*{name}"):
        _instrument(prices_file=path)
    monkeypatch.setenv("ANTHROPIC_OTEL_PRICES_FILE", str(path))
    with pytest.raises(ValueError, match=rf"ANTHROPIC_OTEL_PRICES_FILE: .*{name}"):
        _instrument()


def test_missing_price_file_names_the_setting_and_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ValueError, match=r"prices_file: .*nowhere\.toml"):
        _instrument(prices_file=str(missing))
    (tmp_path / "prices-dir").mkdir()
    with pytest.raises(ValueError, match=r"prices_file: .*prices-dir"):
        _instrument(prices_file=tmp_path / "prices-dir")
    monkeypatch.setenv("ANTHROPIC_OTEL_PRICES_FILE", str(missing))
    with pytest.raises(ValueError, match=r"ANTHROPIC_OTEL_PRICES_FILE: .*nowhere\.toml"):
        _instrument()


@pytest.mark.parametrize(("variable", "value"), [
    ("ANTHROPIC_OTEL_KEEP_SDK_SPANS", "ture"),
    ("ANTHROPIC_OTEL_METRIC_ATTRIBUTES", "app.feature,server.address"),
    ("ANTHROPIC_OTEL_BUDGET_DAY_USD", "fifty"),
    ("ANTHROPIC_OTEL_BUDGET_MONTH_USD", "-3"),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "all of it"),
])
def test_bad_environment_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                                  value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        _instrument()


def test_bad_prometheus_port_is_a_value_error_naming_it() -> None:
    """Only reachable when the package sets up the providers itself: run in a fresh interpreter."""
    code = ("import anthropic_otel\n"
            "try:\n    anthropic_otel.instrument()\n"
            "except ValueError as error:\n    print('ValueError', error)\n")
    env = {**os.environ, "OTEL_METRICS_EXPORTER": "prometheus", "OTEL_TRACES_EXPORTER": "none",
           "OTEL_EXPORTER_PROMETHEUS_PORT": "99999", "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "ValueError OTEL_EXPORTER_PROMETHEUS_PORT" in result.stdout, result.stdout + result.stderr


def test_good_values_still_work(fake: FakeAnthropicServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("models:\n  claude-haiku-4-5: {input: 1, output: 2}\n")
    monkeypatch.setenv("ANTHROPIC_OTEL_KEEP_SDK_SPANS", "off")
    otel = make_otel(capture_content="SPAN_ONLY", metric_attributes=("app.feature",), metric_attribute_limit=5,
                     keep_sdk_spans=None, budgets={"day": "50"}, prices_file=path)
    try:
        client = anthropic.Anthropic(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
        with anthropic_otel.attributes(**{"app.feature": "x"}):
            client.messages.create(**ask())
        assert "gen_ai.input.messages" in (otel.span().attributes or {})
        assert {a["app.feature"] for a, _ in otel.points("anthropic_otel.requests")} == {"x"}
        assert anthropic_otel.spend().budgets == {"day": 50}
    finally:
        anthropic_otel.uninstrument()


def test_entry_point_path_still_instruments(fake: FakeAnthropicServer) -> None:
    """What `opentelemetry-instrument` does (the distro calls `instrument(skip_dep_check=True)`), in a fresh
    interpreter: the call gets its span from the providers set up from `OTEL_*` variables."""
    code = ("import anthropic, anthropic_otel\n"
            "from opentelemetry.instrumentation.distro import DefaultDistro\n"
            "from opentelemetry.util._importlib_metadata import entry_points\n"
            "(entry,) = [e for e in entry_points(group='opentelemetry_instrumentor') if e.name == 'anthropic_otel']\n"
            "DefaultDistro().load_instrumentor(entry, skip_dep_check=True)\n"
            "assert anthropic_otel.AnthropicInstrumentor().is_instrumented_by_opentelemetry\n"
            f"client = anthropic.Anthropic(base_url={fake.base_url!r}, api_key='k', max_retries=0)\n"
            "client.messages.create(model='claude-haiku-4-5', max_tokens=5,\n"
            "                       messages=[{'role': 'user', 'content': 'hi'}])\n"
            "print('requests', anthropic_otel.AnthropicInstrumentor().telemetry.metrics.totals()['requests'])\n")
    env = {**os.environ, "OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "console",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "requests 1" in result.stdout, result.stdout + result.stderr
    assert '"name": "chat claude-haiku-4-5"' in result.stdout, result.stdout + result.stderr
