"""Providers from `OTEL_*` (telemetry/setup.py): prompt exit with a dead or missing Collector, one warning
instead of a stream of connection errors, Prometheus host and port settings that are checked and honoured.

The exit tests run `tests/apps/exit_app.py` in a subprocess (instrument from the environment, one call to
the fake server, exit) and time from its `LAST` line to its exit. The target is under 2 s on an idle
machine (1 s flush bound plus interpreter teardown); the assertion allows 5 s so a busy machine cannot
fail it, and is still far below what an unbounded flush takes (12 to 16 s, the OTLP exporters' 10 s
timeout per signal, one after the other).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from anthropic_otel.telemetry import setup

TESTS = Path(__file__).resolve().parent
EXIT_APP = TESTS / "apps" / "exit_app.py"
RUN_TIMEOUT = 90.0
EXIT_BOUND = 5.0  # seconds from the last call to exit; the idle target is < 2 s (see the module docstring)


def clean_env(**settings: str) -> dict[str, str]:
    """The test's environment minus every OTEL_*/ANTHROPIC_* variable, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    env.update(settings)
    return env


def exit_after_last_call(env: dict[str, str], calls: int = 1) -> tuple[float, str]:
    """Seconds from the app's `LAST` line to its exit, and its stderr."""
    process = subprocess.Popen([sys.executable, str(EXIT_APP), str(calls)], env=env, cwd=TESTS.parent,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        last = time.monotonic()
        _, err = process.communicate(timeout=RUN_TIMEOUT)
        elapsed = time.monotonic() - last
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert line.split() == ["LAST", str(calls)], (line, err)  # the fake server answered every call
    assert process.returncode == 0, err
    return elapsed, err


@pytest.fixture
def refused_port() -> int:
    """A loopback port nobody listens on (bound once to pick it, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that completes the TCP handshake (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # never accepted: connections queue, requests go unanswered
        yield int(sock.getsockname()[1])


def assert_one_warning(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert not [line for line in lines if line.startswith(("Transient error", "Failed to export"))], err
    assert len(lines) <= 1, f"expected at most one warning, got:\n{err}"
    assert all(line.startswith("anthropic_otel: ") for line in lines), err


# -- 1. exit with a dead or missing Collector -------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("endpoint", ["refused", "silent"])
def test_exit_is_prompt_with_a_dead_otlp_endpoint(
        request: pytest.FixtureRequest, protocol: str, endpoint: str) -> None:
    port = request.getfixturevalue(f"{endpoint}_port")
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}", OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
    elapsed, err = exit_after_last_call(env)
    assert elapsed < EXIT_BOUND, f"{elapsed:.1f} s from the last call to exit\n{err}"
    assert_one_warning(err)


def test_quick_start_without_any_collector_exits_promptly() -> None:
    """No OTEL_* at all: OTLP over gRPC to localhost:4317 (the SDK's default), where nothing listens here."""
    with contextlib.suppress(OSError), socket.create_connection(("localhost", 4317), timeout=1):
        pytest.skip("something listens on localhost:4317: this is not the no-Collector case")
    elapsed, err = exit_after_last_call(clean_env())
    assert elapsed < EXIT_BOUND, f"{elapsed:.1f} s from the last call to exit\n{err}"
    assert_one_warning(err)
    assert "localhost:4317" in err or "did not finish within" in err, err  # the one warning says what failed


def test_a_dead_collector_during_a_run_is_one_warning_not_a_stream(refused_port: int) -> None:
    """Exports every 50 ms for a run of 40 calls: each failed attempt used to print a line or two."""
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{refused_port}",
                    OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                    OTEL_BSP_SCHEDULE_DELAY="50", OTEL_METRIC_EXPORT_INTERVAL="50")
    elapsed, err = exit_after_last_call(env, calls=40)
    assert elapsed < EXIT_BOUND, f"{elapsed:.1f} s from the last call to exit\n{err}"
    assert_one_warning(err)
    assert err.strip(), "the dead endpoint must still be reported once"


def test_an_exporter_logger_the_application_configured_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from anthropic_otel.telemetry import exportlog

    configured, untouched = (logging.getLogger(name) for name in exportlog.EXPORTER_LOGGERS[:2])
    monkeypatch.setattr(configured, "level", logging.DEBUG)
    monkeypatch.setattr(configured, "filters", [])
    monkeypatch.setattr(untouched, "filters", [])
    exportlog.quiet_export_errors()
    exportlog.quiet_export_errors()
    assert configured.filters == []
    assert len(untouched.filters) == 1


def test_an_otlp_timeout_the_user_set_bounds_the_exit_flush_instead(silent_port: int) -> None:
    """OTEL_EXPORTER_OTLP_TIMEOUT=4 is the user's choice: the exit flush waits for it, not our 1 s."""
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{silent_port}",
                    OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_EXPORTER_OTLP_TIMEOUT="4")
    elapsed, err = exit_after_last_call(env)
    assert elapsed >= 3.5, f"the exit flush gave up after {elapsed:.1f} s, before the user's 4 s timeout\n{err}"


def test_exit_budget_follows_the_users_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    from anthropic_otel.telemetry import shutdown

    for variable in ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                     "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"):
        monkeypatch.delenv(variable, raising=False)
    assert shutdown.exit_budget() == shutdown.DEFAULT_BUDGET
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "not-a-number")
    assert shutdown.exit_budget() == shutdown.DEFAULT_BUDGET
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "7.5")
    assert shutdown.exit_budget() == 7.5


# -- 2. OTEL_EXPORTER_PROMETHEUS_PORT is checked -------------------------------------------------------------


@pytest.mark.parametrize("value", ["99999", "ninety"])
def test_instrument_raises_a_value_error_naming_a_bad_prometheus_port(value: str) -> None:
    """It used to be OverflowError (99999) or int()'s message naming nothing, after the tracer provider
    was already set; now it is a ValueError naming the variable, before any provider is set."""
    env = clean_env(OTEL_METRICS_EXPORTER="prometheus", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
                    OTEL_EXPORTER_PROMETHEUS_PORT=value)
    script = ("import anthropic_otel\n"
              "from opentelemetry import trace\n"
              "try:\n"
              "    anthropic_otel.instrument()\n"
              "except ValueError as error:\n"
              "    print('VALUE_ERROR', error)\n"
              "print('TRACER', type(trace.get_tracer_provider()).__name__)\n")
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=TESTS.parent, capture_output=True,
                            text=True, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    error, tracer = result.stdout.splitlines()
    assert error.startswith("VALUE_ERROR"), (result.stdout, result.stderr)
    assert "OTEL_EXPORTER_PROMETHEUS_PORT" in error and repr(value) in error, error
    assert tracer == "TRACER ProxyTracerProvider", "a provider was set before the error"


@pytest.mark.parametrize("value", ["99999", "65536", "-1", "0", "ninety", "9464.5", "0x10"])
def test_a_bad_prometheus_port_is_a_value_error_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", value)
    with pytest.raises(ValueError, match=f"OTEL_EXPORTER_PROMETHEUS_PORT={value!r}"):
        setup.prometheus_port()


def test_the_prometheus_port_is_ignored_when_prometheus_is_not_the_exporter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "99999")
    setup.check_env()  # no error: the variable is not used


@pytest.mark.parametrize("port", [0, 65536, 99999, -5])
def test_prometheus_reader_rejects_a_port_out_of_range(port: int) -> None:
    with pytest.raises(ValueError, match="port"):
        setup.prometheus_reader("127.0.0.1", port)


def test_prometheus_reader_rejects_a_port_that_is_not_an_int() -> None:
    with pytest.raises(TypeError, match="port"):
        setup.prometheus_reader("127.0.0.1", "9464")  # type: ignore[arg-type]


def test_a_taken_prometheus_port_still_only_warns() -> None:
    env = clean_env(OTEL_METRICS_EXPORTER="prometheus", OTEL_TRACES_EXPORTER="none",
                    OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        env["OTEL_EXPORTER_PROMETHEUS_PORT"] = str(taken.getsockname()[1])
        result = subprocess.run([sys.executable, "-c", "import anthropic_otel; anthropic_otel.instrument(); "
                                 "print('INSTRUMENTED')"], env=env, cwd=TESTS.parent, capture_output=True,
                                text=True, timeout=RUN_TIMEOUT)
    assert result.stdout.strip() == "INSTRUMENTED", result.stderr
    assert "cannot serve Prometheus metrics" in result.stderr, result.stderr


# -- 3. the Prometheus endpoint listens where it is told ---------------------------------------------------


@pytest.fixture(autouse=True)
def _stop_new_prometheus_servers() -> Iterator[None]:
    """Endpoints a test starts in this process are closed after it, so ports do not pile up."""
    before = set(setup._prometheus_servers)
    yield
    for address in set(setup._prometheus_servers) - before:
        server, thread = setup._prometheus_servers.pop(address)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port`, from the server object we started."""
    return {str(server[0].server_address[0]) for (_, bound), server in setup._prometheus_servers.items()
            if bound == port}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="127.0.0.2 is a loopback address on Linux")
def test_prometheus_reader_listens_on_the_requested_address_only() -> None:
    port = free_port()
    setup.prometheus_reader("127.0.0.1", port)
    assert listening_addresses(port) == {"127.0.0.1"}
    assert reachable("127.0.0.1", port)
    assert not reachable("127.0.0.2", port), "bound to more than 127.0.0.1 (every interface?)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="127.0.0.2 is a loopback address on Linux")
@pytest.mark.parametrize("value", ["127.0.0.1", "", None])
def test_prometheus_host_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    """OTEL_EXPORTER_PROMETHEUS_HOST, default localhost; empty counts as unset (it used to mean every
    interface)."""
    port = free_port()
    if value is None:
        monkeypatch.delenv("OTEL_EXPORTER_PROMETHEUS_HOST", raising=False)
    else:
        monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_HOST", value)
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", str(port))
    setup.prometheus_reader()
    addresses = listening_addresses(port)
    assert addresses and addresses <= {"127.0.0.1", "::1"}, addresses
    assert not reachable("127.0.0.2", port), "bound to more than loopback"


def test_prometheus_host_and_port_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_PROMETHEUS_HOST", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_PROMETHEUS_PORT", raising=False)
    assert (setup.prometheus_host(), setup.prometheus_port()) == ("localhost", 9464)
    assert setup.prometheus_host("127.0.0.1") == "127.0.0.1"
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "0.0.0.0")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", " 9500 ")
    assert (setup.prometheus_host("127.0.0.1"), setup.prometheus_port()) == ("0.0.0.0", 9500)
