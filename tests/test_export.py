"""Telemetry leaves the process with the contract's names (docs/telemetry.md), configured only through `OTEL_*`.

Each test runs `tests/apps/workload.py` in a subprocess whose environment is the only configuration:

- OTLP over gRPC and over HTTP into an independent receiver, the `rotel` collector (its debug log, in
  detailed verbosity, is what the assertions read);
- the Prometheus endpoint (`OTEL_METRICS_EXPORTER=prometheus`), scraped over HTTP;
- zero code change: `opentelemetry-instrument python app.py`, where the app never imports anthropic_otel.

The workload never shuts its providers down itself, so every span (and, with a long metric interval,
every metric) that arrives proves the providers flush at interpreter exit.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from anthropic_otel.testing import FakeAnthropicServer

TESTS = Path(__file__).resolve().parent
WORKLOAD = TESTS / "apps" / "workload.py"
MODEL = "claude-sonnet-4-5"
SPAN_NAME = f"chat {MODEL}"
CALLS = 5  # workload.py: create, create(stream=True), stream(), max_tokens, rate_limit error
RUN_TIMEOUT = 30.0
RECEIVE_TIMEOUT = 10.0

CONTRACT_METRICS = {
    "gen_ai.client.operation.duration": "s",
    "gen_ai.client.token.usage": "{token}",
    "gen_ai.client.operation.time_to_first_chunk": "s",
    "anthropic_otel.requests": "{request}",
    "anthropic_otel.tokens": "{token}",
    "anthropic_otel.cost.usd": "{USD}",
    "anthropic_otel.requests.active": "{request}",
    "anthropic_otel.ratelimit.remaining": None,  # the contract names no unit for the gauges
    "anthropic_otel.ratelimit.limit": None,
}

PROMETHEUS_SERIES = (
    "gen_ai_client_operation_duration_seconds_bucket",
    "gen_ai_client_token_usage_bucket",
    "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
    "anthropic_otel_requests_total",
    "anthropic_otel_tokens_total",
    "anthropic_otel_cost_usd_total",
    "anthropic_otel_requests_active",
    "anthropic_otel_ratelimit_remaining",
    "anthropic_otel_ratelimit_limit",
)

# family name (as the Prometheus text parser reports it: counters without `_total`) -> type
PROMETHEUS_TYPES = {
    "gen_ai_client_operation_duration_seconds": "histogram",
    "gen_ai_client_token_usage": "histogram",
    "gen_ai_client_operation_time_to_first_chunk_seconds": "histogram",
    "anthropic_otel_requests": "counter",
    "anthropic_otel_tokens": "counter",
    "anthropic_otel_cost_usd": "counter",
    "anthropic_otel_requests_active": "gauge",
    "anthropic_otel_ratelimit_remaining": "gauge",
    "anthropic_otel_ratelimit_limit": "gauge",
}

# -- helpers ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, deadline: float, alive: Callable[[], bool]) -> bool:
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        time.sleep(0.05)
    return False


def clean_env(**settings: str) -> dict[str, str]:
    """The test's environment minus every OTEL_*/ANTHROPIC_* variable, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"  # the SDK warns about model deprecations
    env.update(settings)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, env=env, cwd=TESTS.parent, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT)
    assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    assert "DONE" in result.stdout, result.stdout
    return result


def unavailable(reason: str) -> None:
    """Skip, except in CI where a missing receiver must fail the build."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def instrument_script() -> Path:
    script = Path(sys.executable).parent / "opentelemetry-instrument"
    if not script.exists():
        unavailable(f"opentelemetry-instrument not found next to {sys.executable}")
    return script


# -- the rotel receiver and its debug log -----------------------------------------------------------


@dataclass
class Span:
    name: str
    scope: str
    resource: dict[str, Any]
    kind: str = ""
    status: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Metric:
    name: str
    scope: str
    resource: dict[str, Any]
    unit: str = ""
    points: list[dict[str, Any]] = field(default_factory=list)


_ATTRIBUTE = re.compile(r"^\s+-> (?P<key>[^:]+): (?P<value>.*)$")
_TYPED = re.compile(r"(Str|Int|Double|Bool)\(([^()]*)\)")


def typed_value(raw: str) -> Any:
    """`Str(x)`, `Int(5)`, `Double(1.5)`, `Bool(true)`, `Slice(Str(a), Str(b))` as Python values."""
    values = [_convert(kind, text) for kind, text in _TYPED.findall(raw)]
    if raw.startswith("Slice("):
        return values
    return values[0] if len(values) == 1 and _TYPED.fullmatch(raw) else raw


def _convert(kind: str, text: str) -> Any:
    if kind == "Int":
        return int(text)
    if kind == "Double":
        return float(text)
    if kind == "Bool":
        return text.lower() == "true"
    return text


def parse_debug_log(text: str) -> tuple[list[Span], list[Metric]]:
    """Spans and metrics from rotel's `--debug-log-verbosity detailed` output (OTel debug exporter format)."""
    spans: list[Span] = []
    metrics: list[Metric] = []
    resource: dict[str, Any] = {}
    scope = ""
    section = ""
    span: Span | None = None
    metric: Metric | None = None
    for line in text.splitlines():
        if line.startswith(("ResourceSpans #", "ResourceMetrics #", "ResourceLogs #")):
            resource, scope, section, span, metric = {}, "", "", None, None
        elif line == "Resource attributes:":
            section = "resource"
        elif line.startswith("InstrumentationScope"):
            parts = line.split()
            scope = parts[1] if len(parts) > 1 else ""
            section = ""
        elif line.startswith("Span #"):
            span = Span("", scope, resource)
            spans.append(span)
            section = "span"
        elif line.startswith("Metric #"):
            metric = Metric("", scope, resource)
            metrics.append(metric)
            section = "descriptor"
        elif line == "Attributes:" and span is not None:
            section = "span attributes"
        elif line == "Data point attributes:" and metric is not None:
            metric.points.append({})
            section = "point attributes"
        elif section == "span" and span is not None and ":" in line:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "Name":
                span.name = value
            elif key == "Kind":
                span.kind = value
            elif key == "Status code":
                span.status = value
        elif (match := _ATTRIBUTE.match(line)) and section:
            key, value = match["key"].strip(), match["value"]
            if section == "resource":
                resource[key] = typed_value(value)
            elif section == "span attributes" and span is not None:
                span.attributes[key] = typed_value(value)
            elif section == "descriptor" and metric is not None:
                if key == "Name":
                    metric.name = value.strip()
                elif key == "Unit":
                    metric.unit = value.strip()
            elif section == "point attributes" and metric is not None:
                metric.points[-1][key] = typed_value(value)
        elif section in ("span attributes", "point attributes", "resource") or line.startswith("Events:"):
            section = ""  # any other line ends an attribute list; events and links are not read
    return spans, metrics


class Rotel:
    """A `rotel-agent` collector on free loopback ports that logs everything it receives."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.out = workdir / "rotel.out"
        self.err = workdir / "rotel.err"
        args = [
            str(binary), "start",
            "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint", f"127.0.0.1:{self.http_port}",
            "--debug-log", "traces", "--debug-log", "metrics", "--debug-log-verbosity", "detailed",
            "--exporter", "blackhole",
            "--pid-file", str(workdir / "rotel.pid"), "--log-file", str(workdir / "rotel.log"),
        ]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                            env={**clean_env(), "NO_COLOR": "1"})

    def ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        alive = lambda: self.process.poll() is None  # noqa: E731
        return all(wait_for_port(port, deadline, alive) for port in (self.grpc_port, self.http_port))

    def endpoint(self, protocol: str) -> str:
        return f"http://127.0.0.1:{self.grpc_port if protocol == 'grpc' else self.http_port}"

    def received(self) -> tuple[list[Span], list[Metric]]:
        return parse_debug_log(self.out.read_text(errors="replace"))

    def wait_for(self, done: Callable[[list[Span], list[Metric]], bool]) -> tuple[list[Span], list[Metric]]:
        """What rotel logged once `done` holds (or the timeout passes; the assertions then explain)."""
        deadline = time.monotonic() + RECEIVE_TIMEOUT
        spans, metrics = self.received()
        while not done(spans, metrics) and time.monotonic() < deadline:
            time.sleep(0.1)
            spans, metrics = self.received()
        return spans, metrics

    def describe(self) -> str:
        out = self.out.read_text(errors="replace")[-4000:]
        return f"rotel stdout (tail):\n{out}\nrotel stderr:\n{self.err.read_text(errors='replace')}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def rotel_binary() -> Path | None:
    spec = importlib.util.find_spec("rotel")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        binary = Path(location) / "rotel-agent"
        if binary.is_file():
            return binary
    return None


@pytest.fixture
def rotel(tmp_path: Path) -> Iterator[Rotel]:
    binary = rotel_binary()
    if binary is None:
        unavailable("the rotel package (collector binary rotel/rotel-agent) is not installed")
    assert binary is not None
    try:
        receiver = Rotel(binary, tmp_path)
    except OSError as error:
        unavailable(f"rotel-agent cannot run on this machine: {error}")
    try:
        if not receiver.ready():
            unavailable(f"rotel-agent did not start listening: exit code {receiver.process.poll()}\n"
                        f"{receiver.describe()}")
        yield receiver
    finally:
        receiver.stop()


def names_arrived(spans: list[Span], metrics: list[Metric]) -> bool:
    return (sum(span.name == SPAN_NAME for span in spans) >= CALLS
            and set(CONTRACT_METRICS) <= {metric.name for metric in metrics})


def assert_contract_spans(spans: list[Span], service: str, receiver: Rotel) -> None:
    ours = [span for span in spans if span.scope == "anthropic_otel"]
    assert len(ours) == CALLS, ([(s.scope, s.name) for s in spans], receiver.describe())
    assert all(span.name == SPAN_NAME for span in ours), [span.name for span in ours]
    assert not [span for span in spans if span.name == "anthropic.messages.create"], \
        "the SDK's own span must not be exported as a duplicate by default"
    for span in ours:
        attributes = span.attributes
        assert span.kind == "SPAN_KIND_CLIENT", span
        assert span.resource.get("service.name") == service, span.resource
        assert attributes["gen_ai.operation.name"] == "chat", attributes
        assert attributes["gen_ai.provider.name"] == "anthropic", attributes
        assert attributes["gen_ai.request.model"] == MODEL, attributes
        assert attributes["server.address"] == "127.0.0.1", attributes
    succeeded = [span for span in ours if "error.type" not in span.attributes]
    failed = [span for span in ours if "error.type" in span.attributes]
    assert len(succeeded) == CALLS - 1 and len(failed) == 1, [s.attributes for s in ours]
    for span in succeeded:
        assert isinstance(span.attributes["gen_ai.usage.input_tokens"], int), span.attributes
        assert span.attributes["gen_ai.usage.input_tokens"] > 0, span.attributes
        assert span.attributes["gen_ai.usage.output_tokens"] > 0, span.attributes
        assert span.attributes["anthropic_otel.cost.usd"] > 0, span.attributes
    reasons = sorted(tuple(span.attributes["gen_ai.response.finish_reasons"]) for span in succeeded)
    assert reasons == [("end_turn",)] * 3 + [("max_tokens",)], reasons
    streamed = [span for span in succeeded if span.attributes.get("gen_ai.request.stream") is True]
    assert len(streamed) == 2, [span.attributes for span in succeeded]
    assert all(span.attributes["gen_ai.response.time_to_first_chunk"] > 0 for span in streamed)
    assert failed[0].attributes["error.type"] == "rate_limit_error", failed[0].attributes
    assert failed[0].status == "STATUS_CODE_ERROR", failed[0]


def assert_contract_metrics(metrics: list[Metric], service: str, receiver: Rotel) -> None:
    ours = [metric for metric in metrics if metric.scope == "anthropic_otel"]
    by_name: dict[str, list[Metric]] = {}
    for metric in ours:
        by_name.setdefault(metric.name, []).append(metric)
    missing = set(CONTRACT_METRICS) - set(by_name)
    assert not missing, (missing, sorted(by_name), receiver.describe())
    for name, unit in CONTRACT_METRICS.items():
        for metric in by_name[name]:
            assert metric.resource.get("service.name") == service, metric.resource
            if unit is not None:
                assert metric.unit == unit, (name, metric.unit)

    def points(name: str) -> list[dict[str, Any]]:
        return [point for metric in by_name[name] for point in metric.points]

    for name in CONTRACT_METRICS:
        for point in points(name):
            assert point["gen_ai.operation.name"] == "chat", (name, point)
            assert point["gen_ai.provider.name"] == "anthropic", (name, point)
            assert point["gen_ai.request.model"] == MODEL, (name, point)
            assert point["server.address"] == "127.0.0.1", (name, point)
    assert {p["anthropic.stop_reason"] for p in points("anthropic_otel.requests")} == {
        "end_turn", "max_tokens", "none"}
    assert {p["error.type"] for p in points("anthropic_otel.requests")} == {"none", "rate_limit_error"}
    assert {p["gen_ai.token.type"] for p in points("gen_ai.client.token.usage")} == {"input", "output"}
    assert {"input", "output"} <= {p["anthropic_otel.token.type"] for p in points("anthropic_otel.tokens")}
    assert {"input", "output"} <= {p["anthropic_otel.token.type"] for p in points("anthropic_otel.cost.usd")}
    assert "rate_limit_error" in {p.get("error.type") for p in points("gen_ai.client.operation.duration")}
    assert {p["anthropic_otel.ratelimit.resource"] for p in points("anthropic_otel.ratelimit.remaining")} == {
        "requests", "tokens", "input_tokens", "output_tokens"}


# -- 1. OTLP over gRPC and HTTP into rotel, set up by instrument() from the environment ---------------


@pytest.mark.parametrize(("protocol", "metric_interval_ms"), [
    pytest.param("grpc", "200", id="grpc"),
    # a metric interval longer than the run: the metrics can only come from the flush at exit
    pytest.param("http/protobuf", "60000", id="http-flush-at-exit"),
])
def test_otlp_export_reaches_an_independent_receiver(
        rotel: Rotel, protocol: str, metric_interval_ms: str) -> None:
    service = f"export-test-{protocol.split('/')[0]}"
    env = clean_env(
        OTEL_SERVICE_NAME=service,
        OTEL_EXPORTER_OTLP_ENDPOINT=rotel.endpoint(protocol),
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_METRIC_EXPORT_INTERVAL=metric_interval_ms,
        OTEL_BSP_SCHEDULE_DELAY="60000",  # spans too can only arrive through the flush at exit
    )
    run([sys.executable, str(WORKLOAD)], env)

    spans, metrics = rotel.wait_for(names_arrived)
    assert_contract_spans(spans, service, rotel)
    assert_contract_metrics(metrics, service, rotel)


# -- 2. Prometheus pull endpoint -------------------------------------------------------------------


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline() if ready else ""


def test_prometheus_endpoint_serves_the_contract_series() -> None:
    port = free_port()
    env = clean_env(
        OTEL_SERVICE_NAME="export-test-prometheus",
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        OTEL_TRACES_EXPORTER="none",
        WORKLOAD_HOLD_SECONDS=str(RUN_TIMEOUT),
    )
    process = subprocess.Popen(
        [sys.executable, str(WORKLOAD), "--hold"], env=env, cwd=TESTS.parent, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = read_line(process, RUN_TIMEOUT)
        if line.strip() != "READY":
            process.kill()
            _, err = process.communicate(timeout=5)
            pytest.fail(f"workload did not get ready (exit {process.returncode}): {line!r}\n{err}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        if process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()  # the workload exits when its stdin closes
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    families = list(text_string_to_metric_families(text))
    samples = [sample for family in families for sample in family.samples]
    names = {sample.name for sample in samples}
    missing = [series for series in PROMETHEUS_SERIES if series not in names]
    ours = sorted(name for name in names if name.startswith(("gen_ai_", "anthropic_")))
    assert not missing, f"contract series missing: {missing}; the endpoint serves: {ours}"

    types = {family.name: family.type for family in families}
    for family, kind in PROMETHEUS_TYPES.items():
        assert types.get(family) == kind, (family, types.get(family))
    services = {sample.labels.get("service_name") for sample in samples if sample.name == "target_info"}
    assert services == {"export-test-prometheus"}, services

    def labels(series: str) -> list[dict[str, str]]:
        return [sample.labels for sample in samples if sample.name == series]

    for series in PROMETHEUS_SERIES:
        for sample_labels in labels(series):
            assert sample_labels.get("gen_ai_request_model") == MODEL, (series, sample_labels)
            assert sample_labels.get("gen_ai_operation_name") == "chat", (series, sample_labels)
            assert sample_labels.get("gen_ai_provider_name") == "anthropic", (series, sample_labels)
    assert {s["anthropic_stop_reason"] for s in labels("anthropic_otel_requests_total")} == {
        "end_turn", "max_tokens", "none"}
    assert {s["error_type"] for s in labels("anthropic_otel_requests_total")} == {"none", "rate_limit_error"}
    for series in ("anthropic_otel_tokens_total", "anthropic_otel_cost_usd_total"):
        assert {"input", "output"} <= {s["anthropic_otel_token_type"] for s in labels(series)}, series
    assert {s["gen_ai_token_type"] for s in labels("gen_ai_client_token_usage_bucket")} == {"input", "output"}
    assert {s["anthropic_otel_ratelimit_resource"] for s in labels("anthropic_otel_ratelimit_remaining")} == {
        "requests", "tokens", "input_tokens", "output_tokens"}
    requests = sum(sample.value for sample in samples if sample.name == "anthropic_otel_requests_total")
    assert requests == CALLS
    cost = sum(sample.value for sample in samples if sample.name == "anthropic_otel_cost_usd_total")
    assert cost > 0


# -- 3. Zero code change: opentelemetry-instrument ---------------------------------------------------


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as server:
        yield server


def test_opentelemetry_instrument_exports_anthropic_otel_spans(
        rotel: Rotel, fake_server: FakeAnthropicServer) -> None:
    service = "export-test-zero-code"
    env = clean_env(
        ANTHROPIC_BASE_URL=fake_server.base_url,
        OTEL_SERVICE_NAME=service,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_ENDPOINT=rotel.endpoint("http/protobuf"),
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_METRIC_EXPORT_INTERVAL="200",
    )
    run([str(instrument_script()), sys.executable, str(WORKLOAD), "--no-instrument"], env)

    spans, metrics = rotel.wait_for(names_arrived)
    assert_contract_spans(spans, service, rotel)
    assert_contract_metrics(metrics, service, rotel)


def test_opentelemetry_instrument_console_exporter(fake_server: FakeAnthropicServer) -> None:
    """The same zero-code path with the console exporter: no receiver needed."""
    env = clean_env(
        ANTHROPIC_BASE_URL=fake_server.base_url,
        OTEL_SERVICE_NAME="export-test-console",
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    result = run([str(instrument_script()), sys.executable, str(WORKLOAD), "--no-instrument"], env)

    decoder = json.JSONDecoder()
    spans: list[dict[str, Any]] = []
    text = result.stdout
    index = text.find("{")
    while index != -1:
        span, end = decoder.raw_decode(text, index)
        spans.append(span)
        index = text.find("{", end)
    chat = [span for span in spans if span.get("name") == SPAN_NAME]
    assert len(chat) == CALLS, [span.get("name") for span in spans]
    for span in chat:
        assert span["kind"] == "SpanKind.CLIENT", span
        assert span["attributes"]["gen_ai.operation.name"] == "chat", span
        assert span["attributes"]["gen_ai.provider.name"] == "anthropic", span
        assert span["resource"]["attributes"]["service.name"] == "export-test-console", span
    assert not [span for span in spans if span.get("name") == "anthropic.messages.create"]
