"""Tracer and meter providers from the standard `OTEL_*` variables, for applications that have none.

An application that already set global providers keeps them untouched. Otherwise this follows the
OpenTelemetry SDK's own variables: `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_TRACES_EXPORTER` and `OTEL_METRICS_EXPORTER` (`otlp` by default, `prometheus`, `console`, `none`,
comma-separated), `OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]PROTOCOL` (`grpc` by default, `http/protobuf`),
the exporters' own endpoint variables, and `OTEL_EXPORTER_PROMETHEUS_HOST` / `_PORT` (localhost:9464).

Providers created here are flushed at exit within a bound (`shutdown`), and their OTLP exporters' connection
errors become one warning (`exportlog`): with no Collector, or a dead one, the process still exits promptly.
An invalid `OTEL_EXPORTER_PROMETHEUS_PORT` is a `ValueError` naming it, raised from `instrument()`.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from .exportlog import quiet_export_errors
from .shutdown import own

_log = logging.getLogger("anthropic_otel")

_prometheus_servers: dict[tuple[str, int], Any] = {}


def _names(variable: str) -> list[str]:
    value = os.environ.get(variable, "otlp")
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def _protocol(signal: str) -> str:
    return (os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip().lower()


# (signal, http?) -> (module, class) of the OTLP exporter; each reads its own OTEL_EXPORTER_OTLP_* variables.
_OTLP_EXPORTERS = {
    ("TRACES", True): ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
    ("TRACES", False): ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter"),
    ("METRICS", True): ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"),
    ("METRICS", False): ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "OTLPMetricExporter"),
}


def _otlp_exporter(signal: str) -> Any:
    """The OTLP exporter for `signal` over the protocol the environment names (gRPC by default)."""
    module, name = _OTLP_EXPORTERS[(signal, _protocol(signal).startswith("http"))]
    quiet_export_errors()
    return getattr(importlib.import_module(module), name)()


def _sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def has_tracer_provider() -> bool:
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def has_meter_provider() -> bool:
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    return not isinstance(metrics.get_meter_provider(), _ProxyMeterProvider | NoOpMeterProvider)


def check_env() -> None:
    """Raise the ValueError of a setting we would use before anything is set up, so `instrument()` fails
    without leaving a half-configured process behind (today: `OTEL_EXPORTER_PROMETHEUS_PORT`)."""
    if not _sdk_disabled() and "prometheus" in _names("OTEL_METRICS_EXPORTER") and not has_meter_provider():
        prometheus_port()


def tracer_provider_from_env() -> TracerProvider | None:
    """A new SDK tracer provider with the exporters the environment names, set as global."""
    check_env()
    if _sdk_disabled() or has_tracer_provider():
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = SdkTracerProvider(resource=Resource.create(), shutdown_on_exit=False)
    exporters: list[Any] = []
    for name in _names("OTEL_TRACES_EXPORTER"):
        if name == "none":
            continue
        if name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            exporters.append(_otlp_exporter("TRACES"))
            provider.add_span_processor(BatchSpanProcessor(exporters[-1]))
        else:
            _log.warning("anthropic_otel: OTEL_TRACES_EXPORTER=%s is not supported here; ignored", name)
    trace.set_tracer_provider(provider)
    own(provider, exporters)
    return provider


def meter_provider_from_env() -> MeterProvider | None:
    """A new SDK meter provider with the readers the environment names, set as global."""
    check_env()
    if _sdk_disabled() or has_meter_provider():
        return None
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        MetricReader,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import Resource

    readers: list[MetricReader] = []
    exporters: list[Any] = []
    for name in _names("OTEL_METRICS_EXPORTER"):
        if name == "none":
            continue
        if name == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        elif name == "prometheus":
            host, port = prometheus_host(), prometheus_port()
            try:
                readers.append(prometheus_reader(host, port))
            except OSError as error:  # the port is taken: telemetry must not stop the application
                _log.warning("anthropic_otel: cannot serve Prometheus metrics on %s:%s (%s); not exported",
                             host, port, error)
        elif name == "otlp":
            exporters.append(_otlp_exporter("METRICS"))
            readers.append(PeriodicExportingMetricReader(exporters[-1]))
        else:
            _log.warning("anthropic_otel: OTEL_METRICS_EXPORTER=%s is not supported here; ignored", name)
    provider = SdkMeterProvider(resource=Resource.create(), metric_readers=readers, shutdown_on_exit=False)
    metrics.set_meter_provider(provider)
    own(provider, exporters)
    return provider


PROMETHEUS_HOST = "OTEL_EXPORTER_PROMETHEUS_HOST"
PROMETHEUS_PORT = "OTEL_EXPORTER_PROMETHEUS_PORT"


def prometheus_host(default: str = "localhost") -> str:
    """`OTEL_EXPORTER_PROMETHEUS_HOST`, else `default` (OpenTelemetry's: localhost, never every interface
    unless asked; an empty value counts as unset, where it would otherwise bind every interface)."""
    return os.environ.get(PROMETHEUS_HOST, "").strip() or default


def prometheus_port(default: int = 9464) -> int:
    """`OTEL_EXPORTER_PROMETHEUS_PORT` (1-65535), else `default`; a ValueError naming the variable."""
    raw = os.environ.get(PROMETHEUS_PORT, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{PROMETHEUS_PORT}={raw!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{PROMETHEUS_PORT}={raw!r} is out of range: a port is 1-65535")
    return port


def prometheus_reader(host: str | None = None, port: int | None = None) -> Any:
    """A Prometheus reader, and its HTTP endpoint on host:port (started once per address).

    `host` and `port` default to `OTEL_EXPORTER_PROMETHEUS_HOST` / `_PORT` (localhost:9464). An address that
    cannot be bound (taken, unknown host) raises OSError; a port that is not 1-65535 raises ValueError.
    """
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    host = prometheus_host() if host is None else host
    port = prometheus_port() if port is None else port
    if not isinstance(host, str) or not host:
        raise ValueError(f"prometheus_reader: host must be a host name or address, not {host!r} "
                         "(use '0.0.0.0' or '::' to listen on every interface)")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"prometheus_reader: port must be an int, not {type(port).__name__}")
    if not 1 <= port <= 65535:
        raise ValueError(f"prometheus_reader: port {port} is out of range: a port is 1-65535")
    if (host, port) not in _prometheus_servers:
        _prometheus_servers[(host, port)] = start_http_server(port=port, addr=host)
    return PrometheusMetricReader()
